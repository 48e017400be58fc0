"""The contract between the analysis engine and every protocol decoder.

A protocol package provides a :class:`ProtocolSpec`: how to recognise the protocol from
the first bytes of a connection, and a factory for a :class:`ConnectionDecoder` that turns
both directions of one connection (TCP) or flow (UDP) into protocol-neutral events:
:class:`~otconduit.model.Operation` (one per request/response transaction),
:class:`~otconduit.model.IdentityClaim` (what a device says about itself) and
:class:`~otconduit.protocols.events.Malformed` (what could not be decoded, and why).

Decoders are sans-I/O: bytes in, events out, no sockets, files, clocks or databases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.events import Malformed

DecoderEvent = Operation | IdentityClaim | Malformed

CLIENT_TO_SERVER = 0
SERVER_TO_CLIENT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Who is client and who is server of the connection a decoder works on."""

    transport: str  # "tcp" or "udp"
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int


class ConnectionDecoder(Protocol):
    """Both directions of one connection of one protocol.

    ``direction`` is :data:`CLIENT_TO_SERVER` or :data:`SERVER_TO_CLIENT`. For TCP,
    ``feed`` receives reassembled stream bytes (any segmentation; ``frame``/``ts_ns`` say
    which capture frame delivered them) and ``gap`` announces bytes lost by the capture.
    For UDP each ``feed`` call is one whole datagram and ``gap`` is never called.
    """

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None: ...

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None: ...

    def events(self) -> list[DecoderEvent]:
        """Events completed so far (each returned once)."""
        ...

    def finish(self) -> list[DecoderEvent]:
        """The connection ended: flush what is pending (e.g. requests never answered)."""
        ...


@dataclass(frozen=True, slots=True)
class Pending:
    """Stream bytes of one direction as a decoder would have been fed them: a whole
    message in flight, or the start of one."""

    direction: int
    data: bytes
    frame: int
    ts_ns: int


class Resumable(Protocol):
    """A TCP decoder whose connection a compiled fast path may carry for a while.

    The fast path takes over a connection only at a quiet moment (:meth:`quiescent`),
    with the state :meth:`export_state` hands it (what it needs to know to decode the
    next messages exactly as this decoder would: learned pairings, requests in flight,
    which the decoder then forgets). It gives the connection back with :meth:`resume`:
    the state it changed, and the bytes it holds (messages in flight, unfinished ones),
    which the decoder takes as if it had been fed them; it then stands exactly where it
    would stand had it seen every byte itself.
    """

    def quiescent(self) -> bool:
        """At a message boundary both ways, with nothing buffered or held that the fast
        path could not carry."""
        ...

    def export_state(self) -> Any:
        """What a fast path needs to carry on (protocol-specific)."""
        ...

    def resume(self, state: Any, pending: Sequence[Pending]) -> None:
        """Take back the connection: ``state`` as the fast path left it (None: nothing
        changed), then ``pending`` in order."""
        ...

    def fork(self) -> Self:
        """A decoder in this one's learned state with nothing in flight, to decode a
        sample transaction on without touching this one."""
        ...


Verdict = Callable[[bytes, bytes, bool], "bool | None"]
"""``verdict(client_bytes, server_bytes, on_known_port)``: the first bytes seen in each
direction (TCP: up to 512 bytes of the stream; UDP: the first datagram). True: this
protocol. False: certainly not. None: not enough data yet."""


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """How the engine finds and decodes one protocol."""

    name: str  # "modbus", "dnp3", "s7comm", "enip", ...
    transports: frozenset[str]
    ports: frozenset[int]  # well-known server ports: a prior for recognition, not a rule
    verdict: Verdict
    factory: Callable[[Endpoints], ConnectionDecoder]
    title: str = ""  # for people: "Modbus/TCP"; defaults to the name

    @property
    def label(self) -> str:
        return self.title or self.name
