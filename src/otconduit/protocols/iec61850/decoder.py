"""The MMS ConnectionDecoder: the S7 package's TPKT/COTP framers feeding an MMS session.

ISO-on-TCP (RFC 1006 + ISO 8073 class 0) is the same transport under S7comm and MMS, so
each direction has an :class:`~otconduit.protocols.s7.tpkt.TpktStream` (framing,
resynchronisation and TSDU reassembly, with their documented bounds); every COTP event
goes to the connection's :class:`MmsSession`. Framing problems come straight from the
framers as Malformed events.
"""

from __future__ import annotations

from typing import Any, Self

from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.iec61850.session import DEFAULT_MAX_OUTSTANDING, MmsSession
from otconduit.protocols.s7.tpkt import TpktStream
from otconduit.protocols.twoway import TwoWayDecoder


class MmsDecoder(TwoWayDecoder):
    """Decodes both directions of one MMS connection (TCP port 102)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_tsdu: int = 65536,
    ) -> None:
        super().__init__(endpoints)
        self.streams = (TpktStream(max_tsdu=max_tsdu), TpktStream(max_tsdu=max_tsdu))
        self.session = MmsSession(endpoints, max_outstanding=max_outstanding)
        self.max_outstanding = max_outstanding
        self.max_tsdu = max_tsdu

    def _handle(self, direction: int, unit: Any) -> list[DecoderEvent]:
        return self.session.handle(direction, unit)

    def _flush(self) -> list[DecoderEvent]:
        return self.session.flush()

    def _idle(self) -> bool:
        return bool(self.session.idle)

    def fork(self) -> Self:
        return type(self)(
            self.endpoints, max_outstanding=self.max_outstanding, max_tsdu=self.max_tsdu
        )


def factory(endpoints: Endpoints) -> MmsDecoder:
    """:attr:`ProtocolSpec.factory` for MMS."""
    return MmsDecoder(endpoints)
