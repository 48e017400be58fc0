"""IEC 60870-5-104 over TCP: APCI framing with resynchronisation, ASDU and element
decoding, sequence number checks, activation/confirmation/termination matching,
recognition and dangerous operations.

Typical use, per TCP connection (or through :data:`SPEC` and the engine)::

    decoder = Iec104ConnectionDecoder(endpoints)
    decoder.feed(CLIENT_TO_SERVER, payload, frame, ts_ns)  # any segmentation
    for event in decoder.events():  # Operation | IdentityClaim | Malformed
        ...
    tail = decoder.finish()

:data:`SPEC` declares what the registry needs (names, cleartext control, operation
classes, identity sources, dangerous operations from :mod:`.danger` with examples, and
IEC 104's own catalogue rules in ``defines``); it is not in the registry yet.
"""

from otconduit.model import OpClass
from otconduit.protocols.base import Endpoints, ProtocolSpec
from otconduit.protocols.iec104 import danger
from otconduit.protocols.iec104.apci import Apdu, ApduStream
from otconduit.protocols.iec104.asdu import Asdu, InfoObject, parse_asdu
from otconduit.protocols.iec104.danger import DANGEROUS, DangerousOperation, dangerous
from otconduit.protocols.iec104.decoder import Iec104ConnectionDecoder
from otconduit.protocols.iec104.detect import iec104_verdict
from otconduit.protocols.iec104.session import Command, Iec104Session, Message, UExchange
from otconduit.protocols.iec104.types import cot_name, op_class, type_name


def _factory(endpoints: Endpoints) -> Iec104ConnectionDecoder:
    return Iec104ConnectionDecoder(endpoints)


SPEC = ProtocolSpec(
    name="iec104",
    transports=frozenset({"tcp"}),
    ports=frozenset({2404}),
    verdict=iec104_verdict,
    factory=_factory,
    title="IEC 60870-5-104",
    aliases=("iec-104", "iec60870-5-104", "iec-60870-5-104", "104"),
    cleartext_control=True,
    operation_classes=frozenset(OpClass) - {OpClass.FIRMWARE, OpClass.IDENTITY},
    identity_sources=frozenset({"iec104"}),
    unsupported_codes=frozenset({44}),  # cause "unknown type identification"
    classify=danger.classify,
    detail_keys=danger.DETAIL_KEYS,
    rules=danger.RULES,
    defines=danger.DEFINES,
)

__all__ = [
    "DANGEROUS",
    "SPEC",
    "Apdu",
    "ApduStream",
    "Asdu",
    "Command",
    "DangerousOperation",
    "Iec104ConnectionDecoder",
    "Iec104Session",
    "InfoObject",
    "Message",
    "UExchange",
    "cot_name",
    "dangerous",
    "iec104_verdict",
    "op_class",
    "parse_asdu",
    "type_name",
]
