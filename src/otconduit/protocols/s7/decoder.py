"""The S7comm ConnectionDecoder: two TPKT/COTP framers feeding one session.

Each direction of the TCP connection has its own :class:`TpktStream`; every COTP event
goes to the connection's :class:`S7Session`, which answers with Operations,
IdentityClaims and Malformed events. Framing problems (bad TPKT/COTP headers, lost
bytes, unfinished TSDUs) come straight from the framers as Malformed events.

Bounds: each framer holds less than one TPKT packet (64 KiB) of unread input plus one
TSDU of at most ``max_tsdu`` bytes; the session holds at most ``max_outstanding`` open
requests and a few Read SZL lists under reassembly (64 KiB each).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from otconduit.protocols.base import DecoderEvent, Endpoints, Pending
from otconduit.protocols.events import Malformed
from otconduit.protocols.s7.session import DEFAULT_MAX_OUTSTANDING, S7Session
from otconduit.protocols.s7.tpkt import TpktStream


class S7Decoder:
    """Decodes both directions of one ISO-on-TCP connection (S7comm and S7comm-plus)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_tsdu: int = 65536,
    ) -> None:
        self.endpoints = endpoints
        self.streams = (TpktStream(max_tsdu=max_tsdu), TpktStream(max_tsdu=max_tsdu))
        self.session = S7Session(endpoints, max_outstanding=max_outstanding)
        self.max_outstanding = max_outstanding
        self.max_tsdu = max_tsdu
        self._out: list[DecoderEvent] = []
        self._finished = False

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        if self._finished:
            return
        self.streams[direction].feed(data, frame, ts_ns)
        self._drain(direction)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        if self._finished:
            return
        self.streams[direction].gap(nbytes, frame, ts_ns)
        self._drain(direction)

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        if not self._finished:
            self._finished = True
            for direction in (0, 1):
                self.streams[direction].end()
                self._drain(direction)
            self._out += self.session.flush()
        return self.events()

    # -- Resumable -----------------------------------------------------------------------
    def quiescent(self) -> bool:
        return (
            not self._finished
            and not self._out
            and all(s.idle for s in self.streams)
            and self.session.idle
        )

    def export_state(self) -> None:
        """Nothing to hand over: a quiescent S7 connection has nothing in flight."""
        return None

    def resume(self, state: object, pending: Sequence[Pending]) -> None:
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def fork(self) -> Self:
        return type(self)(
            self.endpoints, max_outstanding=self.max_outstanding, max_tsdu=self.max_tsdu
        )

    def _drain(self, direction: int) -> None:
        for event in self.streams[direction].events():
            if isinstance(event, Malformed):
                self._out.append(event)
            else:
                self._out += self.session.handle(direction, event)


def factory(endpoints: Endpoints) -> S7Decoder:
    """:attr:`ProtocolSpec.factory` for S7comm."""
    return S7Decoder(endpoints)
