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

from typing import Any, Self

from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.s7.session import DEFAULT_MAX_OUTSTANDING, S7Session
from otconduit.protocols.s7.tpkt import TpktStream
from otconduit.protocols.twoway import TwoWayDecoder


class S7Decoder(TwoWayDecoder):
    """Decodes both directions of one ISO-on-TCP connection (S7comm and S7comm-plus)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_tsdu: int = 65536,
    ) -> None:
        super().__init__(endpoints)
        self.streams = (TpktStream(max_tsdu=max_tsdu), TpktStream(max_tsdu=max_tsdu))
        self.session = S7Session(endpoints, max_outstanding=max_outstanding)
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


def factory(endpoints: Endpoints) -> S7Decoder:
    """:attr:`ProtocolSpec.factory` for S7comm."""
    return S7Decoder(endpoints)
