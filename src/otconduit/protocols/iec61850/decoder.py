"""The MMS ConnectionDecoder: the S7 package's TPKT/COTP framers feeding an MMS session.

ISO-on-TCP (RFC 1006 + ISO 8073 class 0) is the same transport under S7comm and MMS, so
each direction has an :class:`~otconduit.protocols.s7.tpkt.TpktStream` (framing,
resynchronisation and TSDU reassembly, with their documented bounds); every COTP event
goes to the connection's :class:`MmsSession`. Framing problems come straight from the
framers as Malformed events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from otconduit.protocols.base import DecoderEvent, Endpoints, Pending
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850.session import DEFAULT_MAX_OUTSTANDING, MmsSession
from otconduit.protocols.s7.tpkt import TpktStream


class MmsDecoder:
    """Decodes both directions of one MMS connection (TCP port 102)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_tsdu: int = 65536,
    ) -> None:
        self.endpoints = endpoints
        self.streams = (TpktStream(max_tsdu=max_tsdu), TpktStream(max_tsdu=max_tsdu))
        self.session = MmsSession(endpoints, max_outstanding=max_outstanding)
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

    # -- Resumable (no fast lane yet; a quiescent connection has nothing in flight) -----
    def quiescent(self) -> bool:
        return (
            not self._finished
            and not self._out
            and all(s.idle for s in self.streams)
            and self.session.idle
        )

    def export_state(self) -> None:
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


def factory(endpoints: Endpoints) -> MmsDecoder:
    """:attr:`ProtocolSpec.factory` for MMS."""
    return MmsDecoder(endpoints)
