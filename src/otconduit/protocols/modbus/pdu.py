"""Modbus PDU decoding: one function code's request or response bytes to typed fields.

``decode_pdu`` never raises and never guesses silently: whatever could be read is
kept, and every way the body departs from the MODBUS Application Protocol
Specification V1.1b3 (cited "MB §x") is named in ``malformed_reason``. Big-endian
16-bit fields throughout (MB §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otconduit.protocols.modbus.functions import (
    EXCEPTION_BIT,
    MEI_CANOPEN,
    MEI_READ_DEVICE_ID,
    function_name,
)

# MB §6.x quantity limits, inclusive.
MAX_READ_BITS = 2000  # FC 1, 2 (0x7D0)
MAX_READ_REGISTERS = 125  # FC 3, 4, FC 23 read (0x7D)
MAX_WRITE_BITS = 1968  # FC 15 (0x7B0)
MAX_WRITE_REGISTERS = 123  # FC 16 (0x7B)
MAX_RW_WRITE_REGISTERS = 121  # FC 23 write (0x79)
MAX_FIFO_COUNT = 31  # FC 24
MAX_EVENT_LOG_EVENTS = 64  # FC 12
FILE_REFERENCE_TYPE = 6  # FC 20/21 sub-request reference type
MAX_RECORD_NUMBER = 0x270F  # FC 20/21
COIL_ON = 0xFF00  # FC 5 output value
COIL_OFF = 0x0000


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedPdu:
    """Fields of one PDU, before the MBAP header and capture position are attached."""

    function_code: int
    is_exception: bool = False
    exception_code: int | None = None
    address: int | None = None
    quantity: int | None = None
    values: tuple[int, ...] | None = None
    subfunction: int | None = None
    mei_type: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    malformed_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusMessage:
    """One Modbus/TCP ADU seen in one direction.

    ``function_code`` never carries the exception bit (``is_exception`` says so).
    ``malformed_reason`` is set when the MBAP framing was fine but the PDU breaks the
    spec; such messages still count as Modbus. ``frame``/``ts_ns`` are those of the
    capture frame that delivered the ADU's last byte; ``raw`` is the whole ADU.
    """

    tid: int
    pid: int
    length: int
    unit: int
    function_code: int
    is_request: bool
    is_exception: bool
    exception_code: int | None
    frame: int
    ts_ns: int
    address: int | None = None
    quantity: int | None = None
    values: tuple[int, ...] | None = None
    subfunction: int | None = None
    mei_type: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    raw: bytes = b""
    malformed_reason: str | None = None

    @property
    def function(self) -> str:
        """Log name of the function code."""
        return function_name(self.function_code)

    @property
    def pdu(self) -> bytes:
        """The PDU (function code onwards) without the 7-byte MBAP header."""
        return self.raw[7:]


class _Fields:
    """Mutable scratch record a decoder fills; frozen into :class:`DecodedPdu` at the end."""

    __slots__ = (
        "address",
        "exception_code",
        "extra",
        "function_code",
        "is_exception",
        "mei_type",
        "problems",
        "quantity",
        "subfunction",
        "values",
    )

    def __init__(self, function_code: int) -> None:
        self.function_code = function_code
        self.is_exception = False
        self.exception_code: int | None = None
        self.address: int | None = None
        self.quantity: int | None = None
        self.values: tuple[int, ...] | None = None
        self.subfunction: int | None = None
        self.mei_type: int | None = None
        self.extra: dict[str, Any] = {}
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def freeze(self) -> DecodedPdu:
        return DecodedPdu(
            function_code=self.function_code,
            is_exception=self.is_exception,
            exception_code=self.exception_code,
            address=self.address,
            quantity=self.quantity,
            values=self.values,
            subfunction=self.subfunction,
            mei_type=self.mei_type,
            extra=self.extra,
            malformed_reason="; ".join(self.problems) if self.problems else None,
        )


# --- small readers -----------------------------------------------------------------


def _u16(data: bytes, at: int) -> int | None:
    """Big-endian 16-bit value at ``at``, or None if the data ends first."""
    if at + 2 > len(data):
        return None
    return (data[at] << 8) | data[at + 1]


def _u8(data: bytes, at: int) -> int | None:
    return data[at] if at < len(data) else None


def words(data: bytes) -> tuple[int, ...]:
    """Big-endian 16-bit words (MB §4.2); a trailing odd byte is ignored."""
    return tuple((data[i] << 8) | data[i + 1] for i in range(0, len(data) - 1, 2))


def bits(data: bytes, count: int | None = None) -> tuple[int, ...]:
    """Coil/input bits, LSB of the first byte first (MB §6.1), optionally truncated."""
    out = tuple((byte >> i) & 1 for byte in data for i in range(8))
    return out if count is None else out[:count]


def _exact(f: _Fields, data: bytes, size: int) -> None:
    """Note a body that is shorter or longer than its fixed size."""
    if len(data) < size:
        f.problem(f"truncated: {len(data)} of {size} data bytes")
    elif len(data) > size:
        f.problem(f"{len(data) - size} unexpected trailing bytes")


def _check_qty(f: _Fields, what: str, qty: int | None, low: int, high: int) -> None:
    if qty is not None and not low <= qty <= high:
        f.problem(f"{what} {qty} outside {low}..{high}")


def _byte_count_body(f: _Fields, data: bytes, at: int = 0) -> bytes:
    """Read a 1-byte byte count at ``at`` and the payload it announces, noting mismatch."""
    count = _u8(data, at)
    if count is None:
        f.problem("truncated: missing byte count")
        return b""
    f.extra["byte_count"] = count
    payload = data[at + 1 :]
    if count != len(payload):
        f.problem(f"byte count {count} but {len(payload)} bytes follow")
    return payload[:count]


# --- per function code ---------------------------------------------------------------


def _address_quantity(f: _Fields, data: bytes, what: str, low: int, high: int) -> None:
    """MB §6.1-6.4 requests, §6.11/6.12 responses: starting address(2), quantity(2)."""
    f.address = _u16(data, 0)
    f.quantity = _u16(data, 2)
    _exact(f, data, 4)
    _check_qty(f, what, f.quantity, low, high)


def _read_bits_response(f: _Fields, data: bytes) -> None:
    """MB §6.1/6.2 response: byte count(1), status bytes (LSB first)."""
    payload = _byte_count_body(f, data)
    f.values = bits(payload)


def _read_registers_response(f: _Fields, data: bytes) -> None:
    """MB §6.3/6.4/6.17 response: byte count(1) = 2 x N, N registers(2)."""
    payload = _byte_count_body(f, data)
    if len(payload) % 2:
        f.problem(f"odd register byte count {len(payload)}")
    if len(payload) > 2 * MAX_READ_REGISTERS:
        f.problem(f"{len(payload) // 2} registers exceed {MAX_READ_REGISTERS}")
    f.values = words(payload)


def _write_single_coil(f: _Fields, data: bytes) -> None:
    """MB §6.5 request and echo response: output address(2), output value(2)."""
    f.address = _u16(data, 0)
    value = _u16(data, 2)
    _exact(f, data, 4)
    if value is None:
        return
    f.quantity = 1
    f.extra["output_value"] = value
    if value == COIL_ON:
        f.values = (1,)
    elif value == COIL_OFF:
        f.values = (0,)
    else:
        f.problem(f"coil value 0x{value:04X} is neither 0xFF00 nor 0x0000")


def _write_single_register(f: _Fields, data: bytes) -> None:
    """MB §6.6 request and echo response: register address(2), register value(2)."""
    f.address = _u16(data, 0)
    value = _u16(data, 2)
    _exact(f, data, 4)
    if value is not None:
        f.quantity = 1
        f.values = (value,)


def _empty_request(f: _Fields, data: bytes) -> None:
    """MB §6.7, §6.9, §6.10, §6.13 requests: the function code alone."""
    _exact(f, data, 0)


def _read_exception_status_response(f: _Fields, data: bytes) -> None:
    """MB §6.7 response: output data(1), eight exception status bits."""
    _exact(f, data, 1)
    if data:
        f.extra["output_data"] = data[0]
        f.values = bits(data[:1])


def _diagnostics(f: _Fields, data: bytes) -> None:
    """MB §6.8 request and response: sub-function(2), data (N x 2 bytes, usually 2)."""
    f.subfunction = _u16(data, 0)
    if f.subfunction is None:
        f.problem("truncated: missing diagnostics sub-function")
        return
    body = data[2:]
    f.extra["data"] = body
    if len(body) % 2 == 0:
        f.values = words(body)
    else:
        f.problem(f"odd diagnostics data length {len(body)}")


def _comm_event_counter_response(f: _Fields, data: bytes) -> None:
    """MB §6.9 response: status(2), event count(2)."""
    status = _u16(data, 0)
    count = _u16(data, 2)
    _exact(f, data, 4)
    if status is not None:
        f.extra["status"] = status
    if count is not None:
        f.extra["event_count"] = count


def _comm_event_log_response(f: _Fields, data: bytes) -> None:
    """MB §6.10 response: byte count(1), status(2), event count(2), message count(2),
    events (0..64 bytes)."""
    payload = _byte_count_body(f, data)
    for name, at in (("status", 0), ("event_count", 2), ("message_count", 4)):
        value = _u16(payload, at)
        if value is None:
            f.problem(f"truncated: missing {name}")
            return
        f.extra[name] = value
    events = payload[6:]
    if len(events) > MAX_EVENT_LOG_EVENTS:
        f.problem(f"{len(events)} events exceed {MAX_EVENT_LOG_EVENTS}")
    f.extra["events"] = tuple(events)


def _write_multiple_coils_request(f: _Fields, data: bytes) -> None:
    """MB §6.11 request: address(2), quantity(2), byte count(1) = ceil(N/8), outputs."""
    f.address = _u16(data, 0)
    f.quantity = _u16(data, 2)
    _check_qty(f, "coil quantity", f.quantity, 1, MAX_WRITE_BITS)
    if f.quantity is None:
        f.problem("truncated: missing quantity")
        return
    payload = _byte_count_body(f, data, 4)
    count = f.extra.get("byte_count")
    expected = (f.quantity + 7) // 8
    if count is not None and count != expected:
        f.problem(f"byte count {count} but {f.quantity} coils need {expected}")
    f.values = bits(payload, f.quantity)


def _write_multiple_registers_request(f: _Fields, data: bytes) -> None:
    """MB §6.12 request: address(2), quantity(2), byte count(1) = 2 x N, registers."""
    f.address = _u16(data, 0)
    f.quantity = _u16(data, 2)
    _check_qty(f, "register quantity", f.quantity, 1, MAX_WRITE_REGISTERS)
    if f.quantity is None:
        f.problem("truncated: missing quantity")
        return
    payload = _byte_count_body(f, data, 4)
    count = f.extra.get("byte_count")
    if count is not None and count != 2 * f.quantity:
        f.problem(f"byte count {count} but {f.quantity} registers need {2 * f.quantity}")
    f.values = words(payload)


def _report_slave_id_response(f: _Fields, data: bytes) -> None:
    """MB §6.13 response: byte count(1), server id (device specific), run indicator
    (0x00 off / 0xFF on), additional data. Where the id ends is device specific, so the
    run indicator is only reported when the byte after the first one is 0x00 or 0xFF."""
    payload = _byte_count_body(f, data)
    f.extra["data"] = payload
    if not payload:
        f.problem("empty server id")
        return
    f.extra["slave_id"] = payload[0]
    if len(payload) >= 2 and payload[1] in (0x00, 0xFF):
        f.extra["run_indicator"] = payload[1]


def _read_file_record_request(f: _Fields, data: bytes) -> None:
    """MB §6.14 request: byte count(1) 0x07..0xF5, then sub-requests of reference type(1)
    = 6, file number(2), record number(2) 0..0x270F, record length(2)."""
    payload = _byte_count_body(f, data)
    if not 0x07 <= len(payload) <= 0xF5 or len(payload) % 7:
        f.problem(f"file request byte count {len(payload)} not a multiple of 7 in 7..245")
    records = []
    for at in range(0, len(payload) - 6, 7):
        ref, sub = payload[at], payload[at + 1 : at + 7]
        number = _u16(sub, 2)
        records.append(
            {
                "reference_type": ref,
                "file_number": _u16(sub, 0),
                "record_number": number,
                "record_length": _u16(sub, 4),
            }
        )
        _check_file_sub_request(f, ref, number)
    f.quantity = len(records)  # the operation's quantity: how many records it touches
    f.extra["records"] = tuple(records)


def _check_file_sub_request(f: _Fields, ref: int, record_number: int | None) -> None:
    if ref != FILE_REFERENCE_TYPE:
        f.problem(f"file reference type {ref} is not 6")
    if record_number is not None and record_number > MAX_RECORD_NUMBER:
        f.problem(f"record number {record_number} exceeds {MAX_RECORD_NUMBER}")


def _read_file_record_response(f: _Fields, data: bytes) -> None:
    """MB §6.14 response: data length(1), then sub-responses of file response length(1),
    reference type(1) = 6, record data (length - 1 bytes, whole registers)."""
    payload = _byte_count_body(f, data)
    records = []
    at = 0
    while at < len(payload):
        size = payload[at]
        if size < 1 or at + 1 + size > len(payload):
            f.problem(f"file sub-response length {size} overruns the data")
            break
        ref = payload[at + 1]
        record = payload[at + 2 : at + 1 + size]
        if ref != FILE_REFERENCE_TYPE:
            f.problem(f"file reference type {ref} is not 6")
        if len(record) % 2:
            f.problem(f"odd file record data length {len(record)}")
        records.append({"reference_type": ref, "record_data": record})
        at += 1 + size
    f.extra["records"] = tuple(records)


def _write_file_record(f: _Fields, data: bytes) -> None:
    """MB §6.15 request and echo response: data length(1) 0x09..0xFB, then sub-requests
    of reference type(1) = 6, file number(2), record number(2), record length(2) = N,
    record data (2 x N bytes)."""
    payload = _byte_count_body(f, data)
    if not 0x09 <= len(payload) <= 0xFB:
        f.problem(f"file request data length {len(payload)} outside 9..251")
    records = []
    at = 0
    while at < len(payload):
        head = payload[at : at + 7]
        length = _u16(head, 5)
        if length is None or at + 7 + 2 * length > len(payload):
            f.problem("file sub-request overruns the data")
            break
        number = _u16(head, 3)
        records.append(
            {
                "reference_type": head[0],
                "file_number": _u16(head, 1),
                "record_number": number,
                "record_length": length,
                "record_data": payload[at + 7 : at + 7 + 2 * length],
            }
        )
        _check_file_sub_request(f, head[0], number)
        at += 7 + 2 * length
    f.quantity = len(records)
    f.extra["records"] = tuple(records)


def _mask_write_register(f: _Fields, data: bytes) -> None:
    """MB §6.16 request and echo response: address(2), AND mask(2), OR mask(2)."""
    f.address = _u16(data, 0)
    and_mask = _u16(data, 2)
    or_mask = _u16(data, 4)
    _exact(f, data, 6)
    if and_mask is not None:
        f.extra["and_mask"] = and_mask
    if or_mask is not None:
        f.extra["or_mask"] = or_mask


def _read_write_registers_request(f: _Fields, data: bytes) -> None:
    """MB §6.17 request: read address(2), read quantity(2) 1..125, write address(2),
    write quantity(2) 1..121, write byte count(1) = 2 x N, write registers."""
    read_address, read_qty = _u16(data, 0), _u16(data, 2)
    write_address, write_qty = _u16(data, 4), _u16(data, 6)
    for name, value in (
        ("read_address", read_address),
        ("read_quantity", read_qty),
        ("write_address", write_address),
        ("write_quantity", write_qty),
    ):
        if value is not None:
            f.extra[name] = value
    f.address, f.quantity = write_address, write_qty
    _check_qty(f, "read quantity", read_qty, 1, MAX_READ_REGISTERS)
    _check_qty(f, "write quantity", write_qty, 1, MAX_RW_WRITE_REGISTERS)
    if write_qty is None:
        f.problem("truncated: missing write quantity")
        return
    payload = _byte_count_body(f, data, 8)
    count = f.extra.get("byte_count")
    if count is not None and count != 2 * write_qty:
        f.problem(f"byte count {count} but {write_qty} registers need {2 * write_qty}")
    f.values = words(payload)


def _read_fifo_response(f: _Fields, data: bytes) -> None:
    """MB §6.18 response: byte count(2) = 2 + 2 x N, FIFO count(2) N <= 31, values."""
    count = _u16(data, 0)
    fifo_count = _u16(data, 2)
    if count is None or fifo_count is None:
        f.problem("truncated: missing FIFO byte count or FIFO count")
        return
    f.extra["byte_count"] = count
    f.extra["fifo_count"] = fifo_count
    f.quantity = fifo_count  # only the response says how many registers the FIFO held
    payload = data[4:]
    if count != len(data) - 2:
        f.problem(f"byte count {count} but {len(data) - 2} bytes follow")
    if 2 * fifo_count != len(payload):
        f.problem(f"FIFO count {fifo_count} but {len(payload)} value bytes")
    if fifo_count > MAX_FIFO_COUNT:
        f.problem(f"FIFO count {fifo_count} exceeds {MAX_FIFO_COUNT}")
    f.values = words(payload)


def _encapsulated(f: _Fields, data: bytes, is_request: bool) -> None:
    """MB §6.19: MEI type(1) then type-specific data (§6.20 CANopen kept raw)."""
    f.mei_type = _u8(data, 0)
    if f.mei_type is None:
        f.problem("truncated: missing MEI type")
        return
    body = data[1:]
    if f.mei_type != MEI_READ_DEVICE_ID:
        f.extra["mei_data"] = body
        if f.mei_type != MEI_CANOPEN:
            f.problem(f"unknown MEI type {f.mei_type}")
        return
    if is_request:
        _device_id_request(f, body)
    else:
        _device_id_response(f, body)


def _device_id_request(f: _Fields, body: bytes) -> None:
    """MB §6.21 request: read device id code(1) 1..4, object id(1)."""
    code, object_id = _u8(body, 0), _u8(body, 1)
    _exact(f, body, 2)
    if code is not None:
        f.extra["read_device_id_code"] = code
        if not 1 <= code <= 4:
            f.problem(f"read device id code {code} outside 1..4")
    if object_id is not None:
        f.extra["object_id"] = object_id


def _device_id_response(f: _Fields, body: bytes) -> None:
    """MB §6.21 response: read device id code(1), conformity level(1), more follows(1)
    0x00/0xFF, next object id(1), number of objects(1), then objects of id(1),
    length(1), value. Values are decoded as UTF-8 with replacement (spec: ASCII)."""
    names = ("read_device_id_code", "conformity_level", "more_follows", "next_object_id")
    for at, name in enumerate((*names, "number_of_objects")):
        value = _u8(body, at)
        if value is None:
            f.problem(f"truncated: missing {name}")
            return
        f.extra[name] = value
    if f.extra["more_follows"] not in (0x00, 0xFF):
        f.problem(f"more follows 0x{f.extra['more_follows']:02X} is neither 0x00 nor 0xFF")
    objects: dict[int, str] = {}
    at, parsed = 5, 0
    while at < len(body):
        if at + 2 > len(body) or at + 2 + body[at + 1] > len(body):
            f.problem("device id object overruns the data")
            break
        object_id, size = body[at], body[at + 1]
        objects[object_id] = body[at + 2 : at + 2 + size].decode("utf-8", "replace")
        parsed += 1
        at += 2 + size
    if parsed != f.extra["number_of_objects"]:
        f.problem(f"number of objects {f.extra['number_of_objects']} but {parsed} present")
    f.extra["objects"] = objects


# --- dispatch ------------------------------------------------------------------------


def _decode_request(f: _Fields, data: bytes) -> None:
    fc = f.function_code
    if fc in (1, 2):
        _address_quantity(f, data, "bit quantity", 1, MAX_READ_BITS)
    elif fc in (3, 4):
        _address_quantity(f, data, "register quantity", 1, MAX_READ_REGISTERS)
    elif fc == 5:
        _write_single_coil(f, data)
    elif fc == 6:
        _write_single_register(f, data)
    elif fc in (7, 11, 12, 17):
        _empty_request(f, data)
    elif fc == 8:
        _diagnostics(f, data)
    elif fc == 15:
        _write_multiple_coils_request(f, data)
    elif fc == 16:
        _write_multiple_registers_request(f, data)
    elif fc == 20:
        _read_file_record_request(f, data)
    elif fc == 21:
        _write_file_record(f, data)
    elif fc == 22:
        _mask_write_register(f, data)
    elif fc == 23:
        _read_write_registers_request(f, data)
    elif fc == 24:
        f.address = _u16(data, 0)  # MB §6.18 request: FIFO pointer address(2)
        _exact(f, data, 2)
    elif fc == 43:
        _encapsulated(f, data, True)
    else:
        f.extra["data"] = data


def _decode_response(f: _Fields, data: bytes) -> None:
    fc = f.function_code
    if fc in (1, 2):
        _read_bits_response(f, data)
    elif fc in (3, 4, 23):
        _read_registers_response(f, data)
    elif fc == 5:
        _write_single_coil(f, data)
    elif fc == 6:
        _write_single_register(f, data)
    elif fc == 7:
        _read_exception_status_response(f, data)
    elif fc == 8:
        _diagnostics(f, data)
    elif fc == 11:
        _comm_event_counter_response(f, data)
    elif fc == 12:
        _comm_event_log_response(f, data)
    elif fc == 15:
        _address_quantity(f, data, "coil quantity", 1, MAX_WRITE_BITS)
    elif fc == 16:
        _address_quantity(f, data, "register quantity", 1, MAX_WRITE_REGISTERS)
    elif fc == 17:
        _report_slave_id_response(f, data)
    elif fc == 20:
        _read_file_record_response(f, data)
    elif fc == 21:
        _write_file_record(f, data)
    elif fc == 22:
        _mask_write_register(f, data)
    elif fc == 24:
        _read_fifo_response(f, data)
    elif fc == 43:
        _encapsulated(f, data, False)
    else:
        f.extra["data"] = data


def decode_pdu(pdu: bytes, *, is_request: bool) -> DecodedPdu:
    """Decode one PDU (function code onwards) seen in the given direction.

    Always returns a :class:`DecodedPdu`; spec violations are listed in its
    ``malformed_reason`` with every readable field kept. Unknown function codes are
    not malformed: their body is kept raw in ``extra["data"]``.
    """
    if not pdu:
        f = _Fields(0)
        f.problem("empty PDU: no function code")
        return f.freeze()
    code, data = pdu[0], bytes(pdu[1:])
    if code & EXCEPTION_BIT and not is_request:
        # MB §7: exception response = function code | 0x80, exception code(1).
        f = _Fields(code & ~EXCEPTION_BIT)
        f.is_exception = True
        f.exception_code = _u8(data, 0)
        _exact(f, data, 1)
        return f.freeze()
    f = _Fields(code)
    if code == 0:
        f.problem("function code 0 is not valid")
    elif code & EXCEPTION_BIT:
        f.problem(f"function code {code} is reserved for exception responses")
    if is_request:
        _decode_request(f, data)
    else:
        _decode_response(f, data)
    return f.freeze()
