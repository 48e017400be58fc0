"""S7comm (and S7comm-plus recognition) over ISO-on-TCP, TCP port 102.

Public API::

    SPEC                    ProtocolSpec "s7comm": verdict + factory for the engine
    S7Decoder(endpoints)    ConnectionDecoder for one connection (both directions)
    TpktStream              sans-I/O TPKT/COTP framer for one direction
    parse_pdu(payload)      one S7comm PDU -> S7Pdu (or the reason it is malformed)
    parse_plus(payload)     one S7comm-plus TSDU -> PlusPdu (or the reason)
    parse_szl(body)         a Read SZL list -> SzlList; identity_attributes(SzlList)
    verdict(c, s, known)    S7 recognition from the first COTP data (iso_on_tcp: the
                            ISO-on-TCP stack alone, what an undecided connection settles on)

Operation ``function_code`` encoding is documented in :mod:`.functions`.
"""

from otconduit.model import OpClass
from otconduit.protocols.base import FastLane, ProtocolSpec, Variant
from otconduit.protocols.s7 import danger
from otconduit.protocols.s7.decoder import S7Decoder, factory
from otconduit.protocols.s7.detect import iso_on_tcp, starts_with_tpkt, verdict
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
    settle=iso_on_tcp,  # undecided at the end (CR/CC only, other data): S7 as before
    factory=factory,
    aliases=("s7", "s7-comm"),
    # S7comm-plus protects its messages (integrity part, session key) from V3 on.
    variants=(
        Variant(
            name="s7comm-plus",
            aliases=("s7plus", "s7comm+", "s7-plus"),
            cleartext_control=False,
            own_filter=True,
        ),
    ),
    cleartext_control=True,
    layers=("tpkt", "cotp"),
    operation_classes=frozenset(
        {
            OpClass.READ,
            OpClass.WRITE,
            OpClass.CONTROL,
            OpClass.DIAGNOSTIC,
            OpClass.PROGRAM,
            OpClass.IDENTITY,
            OpClass.SESSION,
            OpClass.OTHER,
        }
    ),
    identity_sources=frozenset({"s7_szl"}),
    classify=danger.classify,
    detail_keys=frozenset({"pi_service", "group", "subfunction"}),
    rules=danger.RULES,
    fast_lane=FastLane(lane="otconduit.analysis.fastpath.lanes.s7:S7Lane"),
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
    "iso_on_tcp",
    "parse_pdu",
    "parse_plus",
    "parse_szl",
    "starts_with_tpkt",
    "verdict",
]
