"""IEC 61850 on the wire: MMS over ISO-on-TCP (client/server, IEC 61850-8-1 §6-§17) and
GOOSE on Ethernet (publish/subscribe, IEC 61850-8-1 §18).

Public API::

    SPEC                     ProtocolSpec "mms" (variant "goose"): verdict, factory,
                             dangerous operations; registered before S7 (both on port
                             102); the engine's layer 2 (:mod:`otconduit.analysis.layer2`)
                             takes GOOSE frames
    MmsDecoder(endpoints)    ConnectionDecoder for one MMS connection (TCP 102), on the
                             S7 package's TPKT/COTP framers
    GooseMonitor()           frame-oriented GOOSE decoder for a whole capture:
                             feed_frame(ethertype, src_mac, dst_mac, payload, frame, ts_ns,
                             vlan), events(), finish(), streams (per control block)
    parse_mms(pdu) / unwrap(tsdu) / parse_goose(payload)   the layers on their own
    verdict(c, s, known)     MMS (not S7comm) from the first COTP data

Layer-2 operations (GOOSE) carry MAC addresses where IP addresses would be (ports 0,
``detail["layer"] == "ethernet"``); GOOSE identity claims are keyed by the publisher MAC.
"""

from otconduit.model import OpClass
from otconduit.protocols.base import ProtocolSpec, Service, Variant
from otconduit.protocols.iec61850 import danger
from otconduit.protocols.iec61850.decoder import MmsDecoder, factory
from otconduit.protocols.iec61850.detect import carries_mms, verdict
from otconduit.protocols.iec61850.goose import (
    ETHERTYPE_GOOSE,
    ETHERTYPE_GSE_MANAGEMENT,
    GooseMonitor,
    GoosePdu,
    GooseStream,
    parse_goose,
)
from otconduit.protocols.iec61850.mms import MmsPdu, parse_mms
from otconduit.protocols.iec61850.osi import OsiUnit, unwrap
from otconduit.protocols.iec61850.services import UNRECOGNIZED_SERVICE
from otconduit.protocols.iec61850.session import MmsSession

ETHERTYPES = frozenset({ETHERTYPE_GOOSE, ETHERTYPE_GSE_MANAGEMENT})

SPEC = ProtocolSpec(
    name="mms",
    transports=frozenset({"tcp"}),
    ports=frozenset({102}),
    verdict=verdict,
    factory=factory,
    title="IEC 61850 MMS",
    aliases=("iec61850", "iec-61850", "iec61850-mms", "iso9506", "mms-iec61850"),
    variants=(
        Variant(
            name="goose",
            aliases=("iec61850-goose", "gse"),
            cleartext_control=True,
            own_filter=True,
        ),
    ),
    services=(Service("tcp", 102),),
    cleartext_control=True,
    layers=("tpkt", "cotp", "iso-session", "iso-presentation", "acse"),
    operation_classes=frozenset(OpClass) - {OpClass.FIRMWARE},
    identity_sources=frozenset({"mms_identify", "goose"}),
    unsupported_codes=frozenset({UNRECOGNIZED_SERVICE}),
    classify=danger.classify,
    detail_keys=danger.DETAIL_KEYS,
    rules=danger.RULES,
    defines=danger.DEFINES,
)

__all__ = [
    "ETHERTYPES",
    "ETHERTYPE_GOOSE",
    "SPEC",
    "GooseMonitor",
    "GoosePdu",
    "GooseStream",
    "MmsDecoder",
    "MmsPdu",
    "MmsSession",
    "OsiUnit",
    "carries_mms",
    "factory",
    "parse_goose",
    "parse_mms",
    "unwrap",
    "verdict",
]
