"""What every identity probe is: a short, read-only dialogue with one device, written
sans-I/O so the exact bytes can be printed (``--dry-run``), checked against a protocol
analyser, and sent by one small runner that owns the sockets, timeouts and rate limit.

A dialogue says what to send first, how long the answer in a byte buffer is, what to send
next given an answer (or nothing: done), and what it learnt. It never decides to write,
control or program anything: each protocol module builds only identification requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from otconduit.model import IdentityClaim
from otconduit.protocols.base import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Endpoints, ProtocolSpec

# Outcome statuses, as the CLI and JSON print them.
IDENTIFIED = "identified"  # the device stated at least one identity attribute
ANSWERED = "answered"  # it answered in the protocol but stated nothing we could use
REFUSED = "refused"  # it answered with an error / exception / rejection
NO_ANSWER = "no_answer"  # connected (or sent, for UDP) but nothing came back in time
CLOSED = "closed"  # the port refused the connection (or ICMP port unreachable)
ERROR = "error"  # the answer was not the protocol, or broke the dialogue

MAX_ANSWER = 256 * 1024  # bytes one answer may take before the dialogue gives up


class ProbeError(Exception):
    """An answer a dialogue cannot go on from (not the protocol, inconsistent)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One request: its bytes and what it asks, in words."""

    data: bytes
    description: str
    expects_answer: bool = True
    note: str = ""  # e.g. which bytes are filled in from an earlier answer


@dataclass(slots=True)
class Outcome:
    """What one dialogue learnt: ``claims`` are (attribute, value) pairs."""

    status: str
    detail: str = ""
    claims: list[tuple[str, str]] = field(default_factory=list)


class Dialogue(ABC):
    """One protocol's identification exchange with one device."""

    protocol: str  # stored protocol name: modbus, s7comm, enip, bacnet, opcua
    title: str  # for people
    transport: str = "tcp"
    default_port: int
    max_messages: int = 8  # a bound whatever the device answers

    def __init__(self, ip: str, port: int) -> None:
        self.ip = ip
        self.port = port
        self.transcript: list[tuple[int, bytes]] = []  # (direction, bytes), in order

    @abstractmethod
    def plan(self) -> list[Message]:
        """Every message a complete, successful dialogue sends, in order (dry-run)."""

    @abstractmethod
    def first(self) -> Message:
        """The opening request."""

    def frame(self, buf: bytes) -> int | None:
        """Length of the first whole answer in ``buf``, None while incomplete (UDP: a
        datagram is one answer)."""
        return len(buf) if buf else None

    @abstractmethod
    def answer(self, data: bytes) -> Message | None:
        """Take one whole answer; the next request, or None when the dialogue is over.
        Raises :class:`ProbeError` when the answer cannot be understood."""

    @abstractmethod
    def outcome(self) -> Outcome:
        """What was learnt so far (also after a timeout part-way)."""

    def fallback(self) -> Dialogue | None:
        """Another attempt to make when this one was refused at connection set-up."""
        return None

    # -- helpers ------------------------------------------------------------------------
    def sent(self, msg: Message) -> None:
        self.transcript.append((CLIENT_TO_SERVER, msg.data))

    def received(self, data: bytes) -> None:
        self.transcript.append((SERVER_TO_CLIENT, data))


def decoder_claims(
    spec: ProtocolSpec, transcript: list[tuple[int, bytes]], ip: str, port: int, transport: str
) -> list[tuple[str, str]]:
    """Identity claims the monitor's own decoder finds in a probe's exchange: the same
    code that reads passive captures reads the answers, so a probed device is described
    in the same words as one that was only watched."""
    dec = spec.factory(
        Endpoints(
            transport=transport,
            client_ip="0.0.0.0",
            client_port=0,
            server_ip=ip,
            server_port=port,
        )
    )
    events = []
    for frame, (direction, data) in enumerate(transcript, start=1):
        dec.feed(direction, data, frame, frame)
        events += dec.events()
    events += dec.finish()
    out: list[tuple[str, str]] = []
    for ev in events:
        if isinstance(ev, IdentityClaim) and (ev.attribute, ev.value) not in out:
            out.append((ev.attribute, ev.value))
    return out


__all__ = [
    "ANSWERED",
    "CLOSED",
    "ERROR",
    "IDENTIFIED",
    "NO_ANSWER",
    "REFUSED",
    "Dialogue",
    "Message",
    "Outcome",
    "ProbeError",
    "decoder_claims",
]
