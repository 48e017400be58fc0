"""DNP3 (IEEE 1815) over TCP and UDP: link framing with CRCs, transport reassembly,
application layer decoding, role-aware transaction matching and recognition.

Typical use, per connection (or through :data:`SPEC` and the engine)::

    decoder = Dnp3ConnectionDecoder(endpoints)
    decoder.feed(CLIENT_TO_SERVER, payload, frame, ts_ns)
    for event in decoder.events():  # Operation | IdentityClaim | Malformed
        ...
    tail = decoder.finish()
"""

from otconduit.model import OpClass
from otconduit.protocols.base import Endpoints, FastLane, ProtocolSpec
from otconduit.protocols.dnp3 import danger
from otconduit.protocols.dnp3.app import (
    AnalogOutput,
    AppFragment,
    Crob,
    DeviceAttribute,
    ObjectHeader,
    TimeValue,
    parse_fragment,
)
from otconduit.protocols.dnp3.decoder import Dnp3ConnectionDecoder
from otconduit.protocols.dnp3.detect import dnp3_verdict, starts_with_link_header
from otconduit.protocols.dnp3.functions import function_name, iin_names, op_class
from otconduit.protocols.dnp3.link import LinkFrame, LinkFramer, crc16
from otconduit.protocols.dnp3.ops import identity_claims, transaction_to_operation
from otconduit.protocols.dnp3.session import Dnp3Message, Dnp3Session, Dnp3Transaction
from otconduit.protocols.dnp3.transport import Transport, TransportReassembler


def _factory(endpoints: Endpoints) -> Dnp3ConnectionDecoder:
    return Dnp3ConnectionDecoder(endpoints)


SPEC = ProtocolSpec(
    name="dnp3",
    transports=frozenset({"tcp", "udp"}),
    ports=frozenset({20000}),
    verdict=dnp3_verdict,
    factory=_factory,
    title="DNP3",
    aliases=("dnp",),
    cleartext_control=True,
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
    identity_sources=frozenset({"dnp3", "dnp3_g0"}),
    classify=danger.classify,
    detail_keys=frozenset({"objects"}),
    rules=danger.RULES,
    fast_lane=FastLane(
        lane="otconduit.analysis.fastpath.lanes.dnp3:Dnp3Lane",
        kernel_sources=("otconduit.protocols.dnp3.objects",),
    ),
)

__all__ = [
    "SPEC",
    "AnalogOutput",
    "AppFragment",
    "Crob",
    "DeviceAttribute",
    "Dnp3ConnectionDecoder",
    "Dnp3Message",
    "Dnp3Session",
    "Dnp3Transaction",
    "LinkFrame",
    "LinkFramer",
    "ObjectHeader",
    "TimeValue",
    "Transport",
    "TransportReassembler",
    "crc16",
    "dnp3_verdict",
    "function_name",
    "identity_claims",
    "iin_names",
    "op_class",
    "parse_fragment",
    "starts_with_link_header",
    "transaction_to_operation",
]
