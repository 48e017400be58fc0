"""S7comm (and S7comm-plus recognition) over ISO-on-TCP, TCP port 102.

Public API::

    SPEC                    ProtocolSpec "s7comm": verdict + factory for the engine
    S7Decoder(endpoints)    ConnectionDecoder for one connection (both directions)
    TpktStream              sans-I/O TPKT/COTP framer for one direction
    parse_pdu(payload)      one S7comm PDU -> S7Pdu (or the reason it is malformed)
    parse_plus(payload)     one S7comm-plus TSDU -> PlusPdu (or the reason)
    parse_szl(body)         a Read SZL list -> SzlList; identity_attributes(SzlList)
    verdict(c, s, known)    ISO-on-TCP recognition from the first bytes

Operation ``function_code`` encoding is documented in :mod:`.functions`.
"""

from otconduit.protocols.base import ProtocolSpec
from otconduit.protocols.s7.decoder import S7Decoder, factory
from otconduit.protocols.s7.detect import starts_with_tpkt, verdict
from otconduit.protocols.s7.pdu import AnyItem, DataItem, S7Pdu, UserdataParam, parse_pdu
from otconduit.protocols.s7.plus import PlusPdu, parse_plus
from otconduit.protocols.s7.session import S7Session
from otconduit.protocols.s7.szl import SzlList, identity_attributes, parse_szl
from otconduit.protocols.s7.tpkt import (
    CotpConnect,
    CotpData,
    CotpDisconnect,
    CotpOther,
    TpktStream,
)

SPEC = ProtocolSpec(
    name="s7comm",
    transports=frozenset({"tcp"}),
    ports=frozenset({102}),
    verdict=verdict,
    factory=factory,
)

__all__ = [
    "SPEC",
    "AnyItem",
    "CotpConnect",
    "CotpData",
    "CotpDisconnect",
    "CotpOther",
    "DataItem",
    "PlusPdu",
    "S7Decoder",
    "S7Pdu",
    "S7Session",
    "SzlList",
    "TpktStream",
    "UserdataParam",
    "factory",
    "identity_attributes",
    "parse_pdu",
    "parse_plus",
    "parse_szl",
    "starts_with_tpkt",
    "verdict",
]
