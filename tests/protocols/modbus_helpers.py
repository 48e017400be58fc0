"""Shared builders for the Modbus tests: pymodbus is the peer that produces the bytes."""

from __future__ import annotations

import struct

from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ModbusPDU

from otconduit.protocols.events import Malformed, NeedData
from otconduit.protocols.modbus import ModbusMessage, ModbusStream

_FRAMER = FramerSocket(DecodePDU(is_server=False))


def adu(pdu: ModbusPDU, *, tid: int = 1, unit: int = 1) -> bytes:
    """A full Modbus/TCP ADU built by pymodbus's socket framer."""
    pdu.transaction_id = tid
    pdu.dev_id = unit
    return bytes(_FRAMER.buildFrame(pdu))


def raw_adu(pdu: bytes, *, tid: int = 1, unit: int = 1, pid: int = 0) -> bytes:
    """A hand-built ADU around raw PDU bytes (for layouts pymodbus cannot produce)."""
    return struct.pack(">HHHB", tid, pid, len(pdu) + 1, unit) + pdu


def drain(stream: ModbusStream) -> list[ModbusMessage | Malformed]:
    """Every event available now; asserts the loop ends on NEED_DATA."""
    out: list[ModbusMessage | Malformed] = []
    for _ in range(100_000):
        event = stream.next_event()
        if isinstance(event, NeedData):
            return out
        out.append(event)
    raise AssertionError("next_event() never returned NEED_DATA")


def decode_stream(
    data: bytes, *, is_request: bool, chunks: list[int] | None = None
) -> list[ModbusMessage | Malformed]:
    """Feed ``data`` (in the given chunk sizes, or whole), end it, return all events."""
    stream = ModbusStream(is_request=is_request)
    events: list[ModbusMessage | Malformed] = []
    pos = 0
    for frame, size in enumerate(chunks or [len(data)]):
        stream.feed(data[pos : pos + size], frame, frame * 1000)
        pos += size
        events += drain(stream)
    if pos < len(data):
        stream.feed(data[pos:], 999, 999_000)
        events += drain(stream)
    stream.end()
    events += drain(stream)
    return events


def comparable(event: ModbusMessage | Malformed) -> tuple[object, ...]:
    """An event without its capture position (which depends on how bytes were cut)."""
    if isinstance(event, Malformed):
        return ("malformed", event.reason, event.offset, event.data)
    return (
        "message",
        event.raw,
        event.function_code,
        event.is_exception,
        event.values,
        event.malformed_reason,
        tuple(sorted(event.extra)),
    )
