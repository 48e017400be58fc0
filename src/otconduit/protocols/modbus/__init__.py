"""Modbus/TCP: sans-I/O framing, PDU decoding, transaction matching and detection.

Typical use, per TCP connection::

    up, down = ModbusStream(is_request=True), ModbusStream(is_request=False)
    session = ModbusSession()
    up.feed(payload, frame, ts_ns)
    for event in up.events():
        if isinstance(event, ModbusMessage):
            for tx in session.request(event):
                ops.append(transaction_to_operation(tx, src_ip=..., ...))
"""

from otconduit.model import OpClass
from otconduit.protocols.base import Endpoints, FastLane, ProtocolSpec
from otconduit.protocols.events import NEED_DATA, Malformed, NeedData
from otconduit.protocols.modbus import danger
from otconduit.protocols.modbus.decoder import ModbusConnectionDecoder
from otconduit.protocols.modbus.detect import looks_like_modbus, modbus_score, modbus_verdict
from otconduit.protocols.modbus.functions import (
    diagnostic_name,
    exception_name,
    function_name,
    op_class,
)
from otconduit.protocols.modbus.pdu import DecodedPdu, ModbusMessage, decode_pdu
from otconduit.protocols.modbus.session import (
    ModbusSession,
    ModbusTransaction,
    device_identity,
    transaction_to_operation,
)
from otconduit.protocols.modbus.stream import ModbusStream

__all__ = [
    "NEED_DATA",
    "SPEC",
    "DecodedPdu",
    "Malformed",
    "ModbusConnectionDecoder",
    "ModbusMessage",
    "ModbusSession",
    "ModbusStream",
    "ModbusTransaction",
    "NeedData",
    "decode_pdu",
    "device_identity",
    "diagnostic_name",
    "exception_name",
    "function_name",
    "looks_like_modbus",
    "modbus_score",
    "op_class",
    "transaction_to_operation",
]


def _verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    return modbus_verdict(client, server, on_port_502=on_known_port)


def _factory(endpoints: Endpoints) -> ModbusConnectionDecoder:
    return ModbusConnectionDecoder(endpoints)


SPEC = ProtocolSpec(
    name="modbus",
    transports=frozenset({"tcp"}),
    ports=frozenset({502}),
    verdict=_verdict,
    factory=_factory,
    title="Modbus/TCP",
    aliases=("modbus-tcp", "modbus/tcp", "modbustcp", "mbtcp"),
    cleartext_control=True,
    operation_classes=frozenset(
        {
            OpClass.READ,
            OpClass.WRITE,
            OpClass.CONTROL,
            OpClass.DIAGNOSTIC,
            OpClass.PROGRAM,
            OpClass.FIRMWARE,
            OpClass.IDENTITY,
            OpClass.OTHER,
        }
    ),
    identity_sources=frozenset({"modbus_43_14", "modbus_17"}),
    unsupported_codes=frozenset({1}),  # ILLEGAL FUNCTION (MB §7)
    classify=danger.classify,
    detail_keys=frozenset({"subfunction"}),
    rules=danger.RULES,
    fast_lane=FastLane(lane="otconduit.analysis.fastpath.lanes.modbus:ModbusLane"),
)
