"""S7comm PDU decoding: header, parameter and data parts of one TSDU.

Layouts follow the Wireshark S7comm dissector documentation (``packet-s7comm.c``,
"WS") and, for upload/download/PI parameters, Zeek ICSNPP's ``s7comm-protocol.pac``.
All integers are big-endian.

Header (WS ``s7comm_decode_header``): protocol id 0x32 (1), ROSCTR (1), redundancy id
(2), PDU reference (2), parameter length (2), data length (2); Ack (2) and Ack-Data (3)
add error class (1) and error code (1). Parameter and data parts follow.

:func:`parse_pdu` returns an :class:`S7Pdu` or, when the header itself is unusable, a
reason string (the caller reports a Malformed event). A header that holds but a
parameter or data part that does not parse still yields an S7Pdu, with ``problem``
set: the transaction stays matchable by its PDU reference. Nothing here raises on byte
content: short reads inside the parts raise :class:`_Truncated`, caught below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.protocols.s7 import functions as fn

HEADER_SIZE: Final = 10
ACK_HEADER_SIZE: Final = 12
MAX_ITEM_VALUES: Final = 64  # bytes of an item shown as integers; longer ones are not


class _Truncated(Exception):
    """A field ran past the end of its part (internal: never leaves this module)."""


class _Reader:
    """Bounds-checked big-endian reads over one PDU part."""

    def __init__(self, buf: bytes, what: str) -> None:
        self.buf = buf
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise _Truncated(f"{self.what} truncated at byte {self.pos} (need {n})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        b = self.take(2)
        return (b[0] << 8) | b[1]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    @property
    def left(self) -> int:
        return len(self.buf) - self.pos


@dataclass(frozen=True, slots=True, kw_only=True)
class AnyItem:
    """One address of a read/write request (WS ``s7comm_decode_param_item``).

    Variable specification 0x12, address length (1), syntax id (1); for S7ANY (0x10,
    length 10): transport size (1), length (2), DB number (2), area (1), address (3) =
    byte address << 3 | bit address. Other syntaxes keep their raw address bytes.
    """

    syntax_id: int
    transport_size: int | None = None
    length: int | None = None
    db: int | None = None
    area: int | None = None
    byte_address: int | None = None
    bit_address: int | None = None
    raw: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataItem:
    """One data item of a read response or write request (WS ``s7comm_decode_response_read_data``).

    Return code (1), transport size (1), length (2, in bits for sizes 3/4/5, else bytes),
    data, and a fill byte after odd-length data unless it is the last item.
    """

    return_code: int
    transport_size: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class UserdataParam:
    """Userdata parameter (WS ``s7comm_decode_ud``): head 0x000112 (3), length (1),
    method (1), type << 4 | function group (1), subfunction (1), sequence number (1);
    when length is 8: data unit reference (1), last data unit (1, 0 = last), error (2)."""

    method: int
    type: int
    group: int
    subfunction: int
    sequence: int
    data_unit_ref: int | None
    last_data_unit: int | None
    error_code: int | None

    @property
    def follow_up(self) -> bool:
        """A request that fetches the next fragment of an earlier response: it has the
        long parameter form and repeats the response's (non-zero) sequence number."""
        request = self.type in fn.UD_REQUEST_TYPES
        return request and self.last_data_unit is not None and self.sequence != 0


@dataclass(frozen=True, slots=True, kw_only=True)
class S7Pdu:
    """One decoded S7comm PDU."""

    rosctr: int
    redundancy_id: int
    pdu_ref: int
    param: bytes
    data: bytes
    error_class: int | None = None
    error_code: int | None = None
    function: int | None = None  # job / ack-data function byte
    items: tuple[AnyItem, ...] = ()
    data_items: tuple[DataItem, ...] = ()
    return_codes: tuple[int, ...] = ()  # write variable response
    userdata: UserdataParam | None = None
    ud_return_code: int | None = None
    ud_transport_size: int | None = None
    ud_body: bytes = b""  # userdata data after its 4-byte header
    info: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def parse_pdu(payload: bytes) -> S7Pdu | str:
    """Decode one S7comm PDU (a whole TSDU starting with 0x32)."""
    if len(payload) < HEADER_SIZE:
        return f"S7 header truncated: {len(payload)} of {HEADER_SIZE} bytes"
    if payload[0] != fn.PROTOCOL_ID:
        return f"S7 protocol id 0x{payload[0]:02x} is not 0x32"
    rosctr = payload[1]
    if rosctr not in fn.ROSCTR_NAMES:
        return f"unknown S7 ROSCTR {rosctr}"
    hsize = ACK_HEADER_SIZE if rosctr in (fn.ROSCTR_ACK, fn.ROSCTR_ACK_DATA) else HEADER_SIZE
    if len(payload) < hsize:
        return f"S7 header truncated: {len(payload)} of {hsize} bytes"
    plen = (payload[6] << 8) | payload[7]
    dlen = (payload[8] << 8) | payload[9]
    if hsize + plen + dlen > len(payload):
        return (
            f"S7 parameter ({plen}) and data ({dlen}) lengths exceed the"
            f" {len(payload) - hsize} bytes after the header"
        )
    param = payload[hsize : hsize + plen]
    data = payload[hsize + plen : hsize + plen + dlen]
    fields: dict[str, Any] = {}
    try:
        if rosctr == fn.ROSCTR_JOB:
            _job(param, data, fields)
        elif rosctr == fn.ROSCTR_USERDATA:
            _userdata(param, data, fields)
        else:
            _ack_data(param, data, fields)
    except _Truncated as exc:
        fields["problem"] = str(exc)
    return S7Pdu(
        rosctr=rosctr,
        redundancy_id=(payload[2] << 8) | payload[3],
        pdu_ref=(payload[4] << 8) | payload[5],
        param=param,
        data=data,
        error_class=payload[10] if hsize == ACK_HEADER_SIZE else None,
        error_code=payload[11] if hsize == ACK_HEADER_SIZE else None,
        **fields,
    )


# --- jobs ---------------------------------------------------------------------------------


def _job(param: bytes, data: bytes, out: dict[str, Any]) -> None:
    r = _Reader(param, "job parameter")
    func = out["function"] = r.u8()
    info: dict[str, Any] = {}
    out["info"] = info
    if func == fn.FUNC_SETUP_COMMUNICATION:
        _setup(r, info, "")
    elif func in (fn.FUNC_READ_VAR, fn.FUNC_WRITE_VAR):
        count = r.u8()
        out["items"] = tuple(_any_item(r) for _ in range(count))
        if func == fn.FUNC_WRITE_VAR:
            out["data_items"] = _data_items(_Reader(data, "write data"), count)
    elif func in (fn.FUNC_REQUEST_DOWNLOAD, fn.FUNC_DOWNLOAD_BLOCK, fn.FUNC_DOWNLOAD_ENDED):
        _block_job(r, info, with_name=True)
        if func == fn.FUNC_REQUEST_DOWNLOAD and r.left:
            _download_lengths(r.take(r.u8()), info)
    elif func == fn.FUNC_START_UPLOAD:
        _block_job(r, info, with_name=True)
    elif func in (fn.FUNC_UPLOAD, fn.FUNC_END_UPLOAD):
        _block_job(r, info, with_name=False)
    elif func == fn.FUNC_PI_SERVICE:
        # ICSNPP ROSCTR_Job_PLC_Control: 7 reserved bytes, parameter block length (2),
        # parameter block, service name length (1), service name.
        r.take(7)
        block = r.take(r.u16())
        _pi_service(_ascii(r.take(r.u8())), block, info)
    elif func == fn.FUNC_PLC_STOP:
        # WS: 5 reserved bytes, service name length (1), service name ("P_PROGRAM").
        r.take(5)
        info["pi_service"] = _ascii(r.take(r.u8()))


def _setup(r: _Reader, info: dict[str, Any], prefix: str) -> None:
    """Setup communication (WS): reserved (1), max AmQ calling (2), called (2), PDU size (2)."""
    r.take(1)
    info[f"{prefix}max_amq_calling"] = r.u16()
    info[f"{prefix}max_amq_called"] = r.u16()
    info[f"{prefix}pdu_length"] = r.u16()


def _any_item(r: _Reader) -> AnyItem:
    spec, length = r.u8(), r.u8()
    if spec != fn.VAR_SPEC:
        raise _Truncated(f"item variable specification 0x{spec:02x} is not 0x12")
    addr = _Reader(r.take(length), "item address")
    syntax = addr.u8()
    if syntax != fn.SYNTAX_S7ANY or length != 10:
        return AnyItem(syntax_id=syntax, raw=addr.take(addr.left))
    ts, count, db, area = addr.u8(), addr.u16(), addr.u16(), addr.u8()
    a = addr.take(3)
    bits = (a[0] << 16) | (a[1] << 8) | a[2]
    return AnyItem(
        syntax_id=syntax,
        transport_size=ts,
        length=count,
        db=db,
        area=area,
        byte_address=bits >> 3,
        bit_address=bits & 7,
    )


def _data_items(r: _Reader, count: int) -> tuple[DataItem, ...]:
    items = []
    for i in range(count):
        rc, ts, length = r.u8(), r.u8(), r.u16()
        nbytes = (length + 7) // 8 if ts in fn.DATA_SIZES_IN_BITS else length
        if rc not in (fn.RETURN_SUCCESS, 0x00):
            nbytes = 0  # WS: an item that failed carries no data, whatever its length says
        items.append(DataItem(return_code=rc, transport_size=ts, data=r.take(nbytes)))
        if nbytes % 2 and i < count - 1 and r.left:
            r.take(1)  # fill byte
    return tuple(items)


def _block_job(r: _Reader, info: dict[str, Any], *, with_name: bool) -> None:
    """Upload/download jobs (ICSNPP, WS): status (1), reserved or error code (2), upload
    id (4), then for those naming a block: file name length (1), file name."""
    info["function_status"] = r.u8()
    r.take(2)
    info["session_id"] = r.u32()
    if with_name:
        _filename(_ascii(r.take(r.u8())), info)


def _filename(name: str, info: dict[str, Any]) -> None:
    """Block file name (WS): "_" + block type (2 hex chars) + number (5 digits) +
    file system ("A" active, "P" passive, "B" both), e.g. "_0A00001P" = DB 1, passive."""
    info["filename"] = name
    if len(name) == 9 and name[0] == "_":
        _block_id(name[1:], info)


def _block_id(code: str, info: dict[str, Any]) -> None:
    """Type (2), number (5 digits), file system (1): the 8-character block id."""
    btype = code[0:2].upper()
    info["block_type"] = btype
    info["block_type_name"] = fn.BLOCK_TYPES.get(btype, "Unknown")
    number = code[2:7]
    # isascii too: str.isdigit() takes "²" (a latin-1 byte here), which int() refuses
    info["block_number"] = int(number) if number.isascii() and number.isdigit() else number
    if len(code) > 7:
        info["filesystem"] = fn.FILESYSTEMS.get(code[7], code[7])


def _download_lengths(part: bytes, info: dict[str, Any]) -> None:
    """Request download length part (WS): 1 char, load memory length (6 digits), MC7
    code length (6 digits), all ASCII."""
    text = _ascii(part)
    if len(text) == 13 and text[1:].isascii() and text[1:].isdigit():
        info["load_memory_length"] = int(text[1:7])
        info["mc7_length"] = int(text[7:13])


def _pi_service(service: str, block: bytes, info: dict[str, Any]) -> None:
    info["pi_service"] = service
    info["pi_service_name"] = fn.PI_SERVICES.get(service, "Unknown")
    text = _ascii(block)
    info["parameter_block"] = text if text.isprintable() else block.hex()
    if service in ("_INSE", "_INS2", "_DELE") and len(block) >= 2:
        # WS: number of blocks (1), reserved (1), then 8-character block ids.
        blocks = []
        for i in range(min(block[0], (len(block) - 2) // 8)):
            one: dict[str, Any] = {}
            _block_id(_ascii(block[2 + 8 * i : 10 + 8 * i]), one)
            blocks.append(one)
        info["blocks"] = blocks
    elif service == "P_PROGRAM":
        # snap7 sends "C " for a cold start and no parameter block for a hot start.
        info["restart"] = "cold" if block.startswith(b"C") else "hot"


# --- ack / ack-data -----------------------------------------------------------------------


def _ack_data(param: bytes, data: bytes, out: dict[str, Any]) -> None:
    info: dict[str, Any] = {}
    out["info"] = info
    if not param:
        return
    r = _Reader(param, "ack-data parameter")
    func = out["function"] = r.u8()
    if func == fn.FUNC_SETUP_COMMUNICATION:
        _setup(r, info, "negotiated_")
    elif func == fn.FUNC_READ_VAR:
        out["data_items"] = _data_items(_Reader(data, "read data"), r.u8())
    elif func == fn.FUNC_WRITE_VAR:
        out["return_codes"] = tuple(_Reader(data, "write return codes").take(r.u8()))
    elif func == fn.FUNC_START_UPLOAD:
        # ICSNPP ROSCTR_ACK_Data_Start_Upload: status (1), reserved (2), upload id (4),
        # block length as ASCII digits (length-prefixed).
        info["function_status"] = r.u8()
        r.take(2)
        info["session_id"] = r.u32()
        text = _ascii(r.take(r.u8()))
        if text.isascii() and text.isdigit():
            info["block_length"] = int(text)
    elif func in (fn.FUNC_UPLOAD, fn.FUNC_DOWNLOAD_BLOCK):
        # WS: status (1); data: length (2), reserved 0x00FB (2), block bytes.
        info["function_status"] = r.u8()
        if len(data) >= 2:
            info["data_length"] = (data[0] << 8) | data[1]


# --- userdata -----------------------------------------------------------------------------


def _userdata(param: bytes, data: bytes, out: dict[str, Any]) -> None:
    r = _Reader(param, "userdata parameter")
    head = r.take(3)
    plen = r.u8()
    method, tg, sub, seq = r.u8(), r.u8(), r.u8(), r.u8()
    dur = last = err = None
    if plen >= 8 and r.left >= 4:
        dur, last, err = r.u8(), r.u8(), r.u16()
    ud = UserdataParam(
        method=method,
        type=tg >> 4,
        group=tg & 0x0F,
        subfunction=sub,
        sequence=seq,
        data_unit_ref=dur,
        last_data_unit=last,
        error_code=err,
    )
    out["userdata"] = ud
    info: dict[str, Any] = {}
    out["info"] = info
    if head != b"\x00\x01\x12":
        out["problem"] = f"userdata parameter head {head.hex()} is not 000112"
    if len(data) < 4:
        return
    out["ud_return_code"], out["ud_transport_size"] = data[0], data[1]
    length = (data[2] << 8) | data[3]
    body = out["ud_body"] = data[4 : 4 + length]
    if len(body) < length:
        out["problem"] = f"userdata data truncated: {len(body)} of {length} bytes"
    _userdata_info(ud, body, info)


def _userdata_info(ud: UserdataParam, body: bytes, info: dict[str, Any]) -> None:
    """Fields of the userdata functions we name (WS ``s7comm_decode_ud_*``)."""
    request = ud.type in fn.UD_REQUEST_TYPES
    if ud.group == fn.GROUP_CPU and ud.subfunction == fn.SUB_READ_SZL:
        if request and not ud.follow_up and len(body) >= 4:
            info["szl_id"] = (body[0] << 8) | body[1]
            info["szl_index"] = (body[2] << 8) | body[3]
    elif ud.group == fn.GROUP_BLOCK:
        if request and ud.subfunction == fn.SUB_LIST_BLOCKS_OF_TYPE and len(body) >= 2:
            btype = _ascii(body[:2]).upper()
            info["block_type"] = btype
            info["block_type_name"] = fn.BLOCK_TYPES.get(btype, "Unknown")
        elif request and ud.subfunction == fn.SUB_BLOCK_INFO and len(body) >= 8:
            _block_id(_ascii(body[:8]), info)
        elif not request and ud.subfunction == fn.SUB_LIST_BLOCKS:
            # Response: (block type as 2 ASCII chars, count (2)) per type.
            counts = {}
            for i in range(0, len(body) - 3, 4):
                counts[_ascii(body[i : i + 2]).upper()] = (body[i + 2] << 8) | body[i + 3]
            info["block_counts"] = counts
    elif ud.group == fn.GROUP_TIME:
        setting = ud.subfunction in (fn.SUB_SET_CLOCK, fn.SUB_SET_CLOCK_2)
        if request == setting and len(body) >= 10:
            stamp = s7_timestamp(body[:10])
            if stamp is not None:
                info["time"] = stamp


def s7_timestamp(b: bytes) -> str | None:
    """A 10-byte S7 timestamp (WS ``s7comm_add_timestamp_to_tree``) as ISO 8601 text.

    Reserved (1), "year 1" (1, seen as 0x19 and ignored, as WS does), then BCD year
    (< 90 means 20xx), month, day, hour, minute, second, 3 digits of milliseconds and a
    weekday nibble. None when a digit is not BCD.
    """
    digits = []
    for byte in b[2:9]:
        hi, lo = byte >> 4, byte & 0x0F
        if hi > 9 or lo > 9:
            return None
        digits.append(hi * 10 + lo)
    ms_hi = b[9] >> 4
    if ms_hi > 9:
        return None
    year, month, day, hour, minute, second, ms = digits
    year += 2000 if year < 90 else 1900
    return (
        f"{year:04d}-{month:02d}-{day:02d}T"
        f"{hour:02d}:{minute:02d}:{second:02d}.{ms * 10 + ms_hi:03d}"
    )


def _ascii(b: bytes) -> str:
    return b.decode("latin-1")
