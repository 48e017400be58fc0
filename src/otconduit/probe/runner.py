"""The only part of probing that touches the network: one connection (or UDP flow) per
dialogue, a timeout on every wait, a global rate limit on requests, and a bound on how
much a device may send back. Nothing runs in parallel: one device, one request at a time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from otconduit.probe.base import (
    CLOSED,
    ERROR,
    MAX_ANSWER,
    NO_ANSWER,
    Dialogue,
    Message,
    Outcome,
    ProbeError,
)

MAX_TOTAL = 4 * MAX_ANSWER  # bytes one dialogue may receive in all


class RateLimiter:
    """At most ``rate`` requests per second over the whole run (sends are spaced
    1/rate apart), so a probe never bursts at fragile controllers."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@dataclass(slots=True)
class ProbeResult:
    """One dialogue's result, as ``conduit probe`` prints and stores it."""

    ip: str
    protocol: str
    port: int
    transport: str
    status: str
    detail: str
    claims: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0


def _recv_answer(sock: socket.socket, dialogue: Dialogue, buf: bytearray) -> bytes:
    """Read until the dialogue sees one whole answer; the rest stays in ``buf``."""
    while True:
        n = dialogue.frame(bytes(buf))
        if n is not None:
            data = bytes(buf[:n])
            del buf[:n]
            return data
        if len(buf) > MAX_ANSWER:
            raise ProbeError(f"answer longer than {MAX_ANSWER} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            if buf:
                raise ProbeError("connection closed in the middle of an answer")
            raise ConnectionResetError("connection closed by the device")
        if dialogue.transport == "udp":
            buf.clear()  # one datagram, one answer
        buf += chunk


def run_dialogue(dialogue: Dialogue, timeout: float, limiter: RateLimiter) -> ProbeResult:
    """Run one dialogue to its end, a timeout, or an error; what was learnt is kept."""
    started = time.monotonic()
    requests = 0
    failure: tuple[str, str] | None = None
    received = False
    received_bytes = 0
    kind = socket.SOCK_DGRAM if dialogue.transport == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in dialogue.ip else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.settimeout(timeout)
    try:
        sock.connect((dialogue.ip, dialogue.port))  # UDP: only this peer's datagrams
        buf = bytearray()
        msg: Message | None = dialogue.first()
        while msg is not None and requests < dialogue.max_messages:
            if msg.data:  # an empty message: the answer goes on, nothing to send
                limiter.wait()
                sock.sendall(msg.data)
                dialogue.sent(msg)
                requests += 1
            if not msg.expects_answer:
                break
            data = _recv_answer(sock, dialogue, buf)
            received_bytes += len(data)
            if received_bytes > MAX_TOTAL:
                raise ProbeError(f"the device sent more than {MAX_TOTAL} bytes")
            received = True
            dialogue.received(data)
            msg = dialogue.answer(data)
    except ConnectionRefusedError:
        failure = (
            CLOSED,
            "connection refused" if kind == socket.SOCK_STREAM else "port unreachable",
        )
    except TimeoutError:
        failure = (NO_ANSWER, f"no answer within {timeout:g} s")
    except ProbeError as exc:
        failure = (ERROR, str(exc))
    except OSError as exc:
        failure = (ERROR if received else NO_ANSWER, exc.strerror or str(exc))
    finally:
        sock.close()
    out: Outcome = dialogue.outcome()
    status, detail = out.status, out.detail
    if failure is not None:
        if not out.claims:
            status = failure[0]
        detail = f"{detail}; then {failure[1]}" if received and detail else failure[1]
    return ProbeResult(
        ip=dialogue.ip,
        protocol=dialogue.protocol,
        port=dialogue.port,
        transport=dialogue.transport,
        status=status,
        detail=detail,
        claims=list(out.claims),
        requests=requests,
        seconds=round(time.monotonic() - started, 3),
    )


def run(dialogue: Dialogue, timeout: float, limiter: RateLimiter) -> list[ProbeResult]:
    """A dialogue and, when it was refused at connection set-up, its fallback."""
    results = [run_dialogue(dialogue, timeout, limiter)]
    alt = dialogue.fallback()
    if alt is not None:
        results.append(run_dialogue(alt, timeout, limiter))
    return results


__all__ = ["ProbeResult", "RateLimiter", "run", "run_dialogue"]
