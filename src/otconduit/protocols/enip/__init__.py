"""EtherNet/IP and CIP: sans-I/O framing, CIP message decoding, transaction matching,
identity extraction and detection.

Typical use, per TCP connection or UDP flow::

    decoder = SPEC.factory(endpoints)
    decoder.feed(CLIENT_TO_SERVER, payload, frame, ts_ns)
    events = decoder.events()  # Operation | IdentityClaim | Malformed
    ...
    events += decoder.finish()

Operations use protocol ``enip`` for encapsulation commands that do not carry CIP
(ListIdentity, RegisterSession, ...) and ``cip`` for CIP requests, one per request
including those inside Multiple Service Packets and Unconnected Sends, plus one
``IMPLICIT_IO`` operation per I/O connection seen on UDP 2222.
"""

from otconduit.model import OpClass
from otconduit.protocols.base import Endpoints, FastLane, ProtocolSpec, Service, Variant
from otconduit.protocols.enip import danger
from otconduit.protocols.enip.cip import (
    CipRequest,
    CipResponse,
    general_status_name,
    parse_request,
    parse_response,
    service_name,
    split_multiple,
)
from otconduit.protocols.enip.classify import cip_op_class, encap_op_class
from otconduit.protocols.enip.decoder import IMPLICIT_IO, IO_PORT, EnipDecoder, parse_io
from otconduit.protocols.enip.detect import starts_with_encapsulation, verdict
from otconduit.protocols.enip.encap import (
    CpfItem,
    EncapHeader,
    command_name,
    parse_cpf,
    parse_header,
    status_name,
)
from otconduit.protocols.enip.epath import EPath, parse_epath
from otconduit.protocols.enip.identity import IdentityInfo, parse_list_identity_item
from otconduit.protocols.enip.stream import EncapMessage, EncapStream


def _factory(endpoints: Endpoints) -> EnipDecoder:
    return EnipDecoder(endpoints)


SPEC = ProtocolSpec(
    name="enip",
    transports=frozenset({"tcp", "udp"}),
    ports=frozenset({44818, 2222}),
    verdict=verdict,
    factory=_factory,
    aliases=("eip", "ethernet/ip", "ethernetip", "ethernet-ip"),
    variants=(Variant(name="cip", cleartext_control=True),),
    services=(
        Service("tcp", 44818),
        Service("udp", 44818),
        Service("udp", IO_PORT, "enip-io"),  # class 0/1 implicit I/O (Vol 2 §2-2.3)
    ),
    cleartext_control=True,
    operation_classes=frozenset(
        {
            OpClass.READ,
            OpClass.WRITE,
            OpClass.CONTROL,
            OpClass.PROGRAM,
            OpClass.FIRMWARE,
            OpClass.IDENTITY,
            OpClass.SESSION,
            OpClass.OTHER,
        }
    ),
    identity_sources=frozenset({"cip_identity"}),
    classify=danger.classify,
    detail_keys=frozenset({"dangerous", "class_id", "reset_type"}),
    rules=danger.RULES,
    fast_lane=FastLane(
        lane="otconduit.analysis.fastpath.lanes.enip:EnipLane",
        kernel_sources=("otconduit.protocols.enip.encap",),
    ),
)

__all__ = [
    "IMPLICIT_IO",
    "SPEC",
    "CipRequest",
    "CipResponse",
    "CpfItem",
    "EPath",
    "EncapHeader",
    "EncapMessage",
    "EncapStream",
    "EnipDecoder",
    "IdentityInfo",
    "cip_op_class",
    "command_name",
    "encap_op_class",
    "general_status_name",
    "parse_cpf",
    "parse_epath",
    "parse_header",
    "parse_io",
    "parse_list_identity_item",
    "parse_request",
    "parse_response",
    "service_name",
    "split_multiple",
    "starts_with_encapsulation",
    "status_name",
    "verdict",
]
