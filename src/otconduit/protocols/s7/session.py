"""Pairs S7comm / S7comm-plus requests with responses and maps them onto Operations.

Matching, per connection:

- S7comm Job (ROSCTR 1) <-> Ack / Ack-Data (2 / 3) by PDU reference, which the
  responder echoes (WS). Either side may send jobs: in a download the PLC sends
  "Download Block" jobs to the engineering station, so a job is keyed by its direction.
- Userdata request (type 4) <-> response (type 8) by PDU reference as well. The
  userdata sequence number is *not* a request key: CPUs answer a request with sequence
  0 with a number of their own (seen in every capture of the corpus); that number links
  a fragmented response to its follow-up requests instead, which is how Read SZL lists
  longer than one PDU are joined. When no request carries the reference, the oldest open
  request of the same group and subfunction is taken.
- S7comm-plus request (0x31) <-> response (0x32 / 0x02) by sequence number.
- COTP CR <-> CC: the connection itself, an Operation "COTP_CONNECT".

A response whose request has not been seen is held (bounded like open requests): the
two directions of a connection reach the decoder in capture order only as far as the
TCP reassembler can release them, and after a hole in one direction its later bytes
may arrive after the other direction's answers to them. A held response pairs with a
request of the same key that was sent before it; whatever is still held at the end
becomes a response-only Operation.

The table of open requests is bounded (``max_outstanding``); requests pushed out of it,
and those still open at the end, complete with status "no_response".
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.s7 import functions as fn
from otconduit.protocols.s7 import plus
from otconduit.protocols.s7.pdu import MAX_ITEM_VALUES, AnyItem, DataItem, S7Pdu, parse_pdu
from otconduit.protocols.s7.szl import identity_attributes, parse_szl
from otconduit.protocols.s7.tpkt import (
    TPDU_CC,
    TPDU_CR,
    TPDU_DR,
    CotpConnect,
    CotpData,
    CotpDisconnect,
    CotpEvent,
)

PROTOCOL: Final = "s7comm"
PLUS_PROTOCOL: Final = "s7comm-plus"
SOURCE: Final = "s7_szl"
SZL_CONFIDENCE: Final = 0.9
VENDOR_CONFIDENCE: Final = 0.8
DEFAULT_MAX_OUTSTANDING: Final = 256
MAX_SZL_PARTS: Final = 8
MAX_SZL_BYTES: Final = 65536
MALFORMED_DATA: Final = 256  # bytes of an undecodable TSDU kept in its Malformed event
CONNECTION_TYPES: Final = {0x01: "PG", 0x02: "OP", 0x03: "S7 Basic"}


@dataclass(frozen=True, slots=True)
class _Msg:
    """A decoded PDU and where it came from."""

    pdu: Any  # S7Pdu, PlusPdu or CotpConnect
    direction: int
    frame: int
    ts_ns: int


@dataclass(slots=True)
class _SzlPart:
    """Fragments of one Read SZL response, joined until the last data unit."""

    szl_id: int | None
    szl_index: int | None
    data: bytearray = field(default_factory=bytearray)


class S7Session:
    """Transaction matching and Operation / IdentityClaim building for one connection."""

    def __init__(self, endpoints: Endpoints, max_outstanding: int = DEFAULT_MAX_OUTSTANDING):
        if max_outstanding < 1:
            raise ValueError("max_outstanding must be >= 1")
        self.endpoints = endpoints
        self.max_outstanding = max_outstanding
        self._open: OrderedDict[tuple[str, int, int], _Msg] = OrderedDict()
        self._held: OrderedDict[tuple[str, int, int], _Msg] = OrderedDict()
        self._connect: dict[int, _Msg] = {}  # direction -> pending CR
        self._plus_fragment = [False, False]
        self._szl: OrderedDict[tuple[int, int, int, int], _SzlPart] = OrderedDict()
        self._claimed: set[tuple[str, str, str]] = set()
        self.evicted = 0

    @property
    def idle(self) -> bool:
        """Nothing in flight: no open or held request, connection request, SZL list
        under reassembly or S7comm-plus fragment."""
        return not (
            self._open or self._held or self._connect or self._szl or any(self._plus_fragment)
        )

    # --- entry points -----------------------------------------------------------------

    def handle(self, direction: int, event: CotpEvent) -> list[DecoderEvent]:
        """Events that one COTP event of ``direction`` completes."""
        if isinstance(event, CotpConnect):
            return self._cotp_connect(direction, event)
        if isinstance(event, CotpDisconnect):
            return self._cotp_disconnect(direction, event)
        if not isinstance(event, CotpData) or not event.payload:
            return []
        pid = event.payload[0]
        if pid == fn.PROTOCOL_ID:
            return self._s7(direction, event)
        if pid == plus.PROTOCOL_ID:
            return self._plus(direction, event)
        return [_malformed(f"unknown protocol id 0x{pid:02x} in COTP data", event)]

    def flush(self) -> list[DecoderEvent]:
        """Complete every open request as unanswered (end of the connection)."""
        pending: list[tuple[int, int, _Msg | None, _Msg | None]] = [
            (m.ts_ns, m.frame, m, None) for m in [*self._open.values(), *self._connect.values()]
        ]
        pending += [(m.ts_ns, m.frame, None, m) for m in self._held.values()]
        pending.sort(key=lambda p: (p[0], p[1]))
        self._open.clear()
        self._held.clear()
        self._connect.clear()
        self._szl.clear()
        return [self._operation(req, resp) for _, _, req, resp in pending]

    # --- COTP -------------------------------------------------------------------------

    def _cotp_connect(self, direction: int, ev: CotpConnect) -> list[DecoderEvent]:
        msg = _Msg(ev, direction, ev.frame, ev.ts_ns)
        if ev.code == TPDU_CR:
            old = self._connect.pop(direction, None)
            self._connect[direction] = msg
            return [self._operation(old, None)] if old else []
        request = self._connect.pop(1 - direction, None)
        return [self._operation(request, msg)] if ev.code == TPDU_CC else []

    def _cotp_disconnect(self, direction: int, ev: CotpDisconnect) -> list[DecoderEvent]:
        if ev.code != TPDU_DR:
            return []
        request = self._connect.pop(1 - direction, None)
        if request is not None:  # the peer refused the connection
            return [self._operation(request, _Msg(ev, direction, ev.frame, ev.ts_ns))]
        src = self.endpoints.addresses(direction)
        return [
            Operation(
                ts_ns=ev.ts_ns,
                protocol=PROTOCOL,
                **src,
                operation=OpClass.SESSION,
                function=fn.COTP_DISCONNECT,
                function_code=fn.COTP_DISCONNECT_CODE,
                request_frame=ev.frame,
                detail={"reason": ev.reason, "src_ref": ev.src_ref, "dst_ref": ev.dst_ref},
            )
        ]

    # --- S7comm -----------------------------------------------------------------------

    def _s7(self, direction: int, ev: CotpData) -> list[DecoderEvent]:
        pdu = parse_pdu(ev.payload)
        if isinstance(pdu, str):
            return [_malformed(pdu, ev)]
        msg = _Msg(pdu, direction, ev.frame, ev.ts_ns)
        if pdu.rosctr == fn.ROSCTR_JOB:
            return self._open_request(("job", direction, pdu.pdu_ref), msg)
        if pdu.rosctr in (fn.ROSCTR_ACK, fn.ROSCTR_ACK_DATA):
            key = ("job", 1 - direction, pdu.pdu_ref)
            request = self._open.pop(key, None)
            return self._answered(request, msg) if request else self._hold(key, msg)
        ud = pdu.userdata
        if ud is None:
            return [_malformed(pdu.problem or "userdata parameter missing", ev)]
        if ud.type in fn.UD_REQUEST_TYPES:
            return self._open_request(("ud", direction, pdu.pdu_ref), msg)
        if ud.type in fn.UD_RESPONSE_TYPES:
            key = ("ud", 1 - direction, pdu.pdu_ref)
            request = self._open.pop(key, None)
            if request is None:
                request = self._oldest_userdata(1 - direction, ud.group, ud.subfunction)
            return self._answered(request, msg) if request else self._hold(key, msg)
        return [self._operation(msg, None, push=True)]  # push: nothing answers it

    def _open_request(self, key: tuple[str, int, int], msg: _Msg) -> list[DecoderEvent]:
        out: list[DecoderEvent] = []
        held = self._held.pop(key, None)
        if held is not None:
            if (held.ts_ns, held.frame) >= (msg.ts_ns, msg.frame) and _same_function(msg, held):
                return self._answered(msg, held)
            out.append(self._operation(None, held))
        old = self._open.pop(key, None)
        if old is not None:  # the reference was reused before any answer
            out.append(self._operation(old, None))
        self._open[key] = msg
        while len(self._open) > self.max_outstanding:
            _, oldest = self._open.popitem(last=False)
            self.evicted += 1
            out.append(self._operation(oldest, None))
        return out

    def _hold(self, key: tuple[str, int, int], msg: _Msg) -> list[DecoderEvent]:
        """Keep a response whose request may still arrive (see the module docstring)."""
        out: list[DecoderEvent] = []
        old = self._held.pop(key, None)
        if old is not None:
            out.append(self._operation(None, old))
        self._held[key] = msg
        while len(self._held) > self.max_outstanding:
            _, oldest = self._held.popitem(last=False)
            out.append(self._operation(None, oldest))
        return out

    def _oldest_userdata(self, direction: int, group: int, sub: int) -> _Msg | None:
        for key, msg in self._open.items():
            ud = msg.pdu.userdata if key[0] == "ud" and key[1] == direction else None
            if ud is not None and ud.group == group and ud.subfunction == sub:
                return self._open.pop(key)
        return None

    def _answered(self, request: _Msg | None, response: _Msg) -> list[DecoderEvent]:
        out: list[DecoderEvent] = []
        extra: dict[str, Any] = {}
        if isinstance(response.pdu, S7Pdu) and response.pdu.userdata is not None:
            out += self._szl_response(request, response, extra)
        out.insert(0, self._operation(request, response, extra=extra))
        if request is not None and response.direction == 1:
            out += self._claims(response, [("vendor", "Siemens")], VENDOR_CONFIDENCE)
        return out

    def _szl_response(
        self, request: _Msg | None, response: _Msg, extra: dict[str, Any]
    ) -> list[DecoderEvent]:
        """Join Read SZL fragments; identity claims once the list is complete."""
        pdu: S7Pdu = response.pdu
        ud = pdu.userdata
        if ud is None or ud.group != fn.GROUP_CPU or ud.subfunction != fn.SUB_READ_SZL:
            return []
        if ud.error_code or pdu.ud_return_code != fn.RETURN_SUCCESS:
            return []
        key = (response.direction, ud.group, ud.subfunction, ud.sequence)
        part = self._szl.pop(key, None)
        body = pdu.ud_body
        if part is None:
            first = request.pdu.info if request is not None else {}
            szl_id = (body[0] << 8) | body[1] if len(body) >= 2 else first.get("szl_id")
            index = (body[2] << 8) | body[3] if len(body) >= 4 else first.get("szl_index")
            part = _SzlPart(szl_id, index)
        part.data += body[: MAX_SZL_BYTES - len(part.data)]
        if part.szl_id is not None:
            extra["szl_id"] = part.szl_id
            extra["szl_id_name"] = fn.szl_name(part.szl_id)
        if part.szl_index is not None:
            extra["szl_index"] = part.szl_index
        if ud.last_data_unit:  # more fragments follow
            extra["more_data"] = True
            self._szl[key] = part
            while len(self._szl) > MAX_SZL_PARTS:
                self._szl.popitem(last=False)
            return []
        szl = parse_szl(bytes(part.data))
        if isinstance(szl, str):
            extra["szl_problem"] = szl
            return []
        extra["szl_records"] = len(szl.records)
        return self._claims(response, identity_attributes(szl), SZL_CONFIDENCE)

    def _claims(
        self, response: _Msg, pairs: list[tuple[str, str]], confidence: float
    ) -> list[DecoderEvent]:
        ip = self.endpoints.addresses(1 - response.direction)["dst_ip"]
        out: list[DecoderEvent] = []
        for attribute, value in pairs:
            if (ip, attribute, value) in self._claimed:
                continue
            self._claimed.add((ip, attribute, value))
            out.append(
                IdentityClaim(
                    ip=ip,
                    attribute=attribute,
                    value=value,
                    source=SOURCE,
                    confidence=confidence,
                    ts_ns=response.ts_ns,
                )
            )
        return out

    # --- S7comm-plus ------------------------------------------------------------------

    def _plus(self, direction: int, ev: CotpData) -> list[DecoderEvent]:
        pdu = plus.parse_plus(ev.payload, continuation=self._plus_fragment[direction])
        if isinstance(pdu, str):
            self._plus_fragment[direction] = False
            return [_malformed(pdu, ev)]
        if pdu.keepalive:
            return []
        self._plus_fragment[direction] = not pdu.has_trailer
        if pdu.continuation or pdu.opcode is None:
            return []
        msg = _Msg(pdu, direction, ev.frame, ev.ts_ns)
        if pdu.opcode == plus.OPCODE_REQUEST and pdu.sequence is not None:
            return self._open_request(("plus", direction, pdu.sequence), msg)
        if pdu.opcode in plus.RESPONSE_OPCODES and pdu.sequence is not None:
            key = ("plus", 1 - direction, pdu.sequence)
            request = self._open.get(key)
            if request is None or request.pdu.function != pdu.function:
                return self._hold(key, msg)
            del self._open[key]
            return self._answered(request, msg)
        return [self._operation(msg, None, push=True)]

    # --- operations -------------------------------------------------------------------

    def _operation(
        self,
        request: _Msg | None,
        response: _Msg | None,
        *,
        push: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Operation:
        """One Operation from a request and/or its response (never both missing)."""
        first = request if request is not None else response
        assert first is not None
        direction = first.direction if request is not None else 1 - first.direction
        fields: dict[str, Any] = {
            "ts_ns": first.ts_ns,
            "request_frame": request.frame if request else None,
            "response_frame": response.frame if response else None,
            "latency_ns": response.ts_ns - request.ts_ns if request and response else None,
            **self.endpoints.addresses(direction),
        }
        if request is None:
            fields["status"] = OpStatus.OK
        elif response is None and not push:
            fields["status"] = OpStatus.NO_RESPONSE
        detail: dict[str, Any] = {}
        if push:
            detail["unsolicited"] = True
        if request is None:
            detail["orphan_response"] = True
        if direction == 1:
            detail["from_server"] = True
        pdu = first.pdu
        if isinstance(pdu, CotpConnect | CotpDisconnect):
            _cotp_fields(request, response, fields, detail)
        elif isinstance(pdu, plus.PlusPdu):
            _plus_fields(request, response, fields, detail)
        elif pdu.rosctr == fn.ROSCTR_USERDATA:
            _userdata_fields(request, response, fields, detail)
        else:
            _job_fields(request, response, fields, detail)
        detail.update(extra or {})
        if fields.get("function_code") in PLC_DRIVEN and direction == 1:
            # In a download the PLC pulls the blocks from the programming device with its
            # own jobs; the change is still the programming device's doing, so the
            # operation runs from it to the PLC (the wire direction stays in detail).
            fields.update(self.endpoints.addresses(0))
            detail["wire_direction"] = "plc_to_pg"
        fields.setdefault("protocol", PROTOCOL)
        fields.setdefault("status", OpStatus.OK)
        return Operation(**fields, detail=detail)


# Jobs the PLC sends to the programming device during a download (Download Block, Download
# Ended): see _operation.
PLC_DRIVEN = frozenset({fn.FUNC_DOWNLOAD_BLOCK, fn.FUNC_DOWNLOAD_ENDED})


def _same_function(request: _Msg, response: _Msg) -> bool:
    """S7comm-plus responses repeat the request's function code; S7comm ones need not."""
    if isinstance(request.pdu, plus.PlusPdu) and isinstance(response.pdu, plus.PlusPdu):
        return request.pdu.function == response.pdu.function
    return True


def _malformed(reason: str, ev: CotpData) -> Malformed:
    return Malformed(
        reason=reason,
        offset=ev.offset,
        frame=ev.frame,
        ts_ns=ev.ts_ns,
        data=ev.payload[:MALFORMED_DATA],
    )


# --- field builders: fill Operation keyword arguments and detail ---------------------------


def _cotp_fields(
    request: _Msg | None, response: _Msg | None, fields: dict[str, Any], detail: dict[str, Any]
) -> None:
    fields.update(
        operation=OpClass.SESSION, function=fn.COTP_CONNECT, function_code=fn.COTP_CONNECT_CODE
    )
    cr = request.pdu if request is not None else None
    if isinstance(cr, CotpConnect):
        detail.update(_tsaps(cr.calling_tsap, cr.called_tsap))
        detail["tpdu_size"] = cr.tpdu_size
        detail["src_ref"] = cr.src_ref
    answer = response.pdu if response is not None else None
    if isinstance(answer, CotpConnect) and answer.code == TPDU_CC:
        if cr is None:
            detail.update(_tsaps(answer.calling_tsap, answer.called_tsap))
        detail["negotiated_tpdu_size"] = answer.tpdu_size
    elif isinstance(answer, CotpDisconnect):
        fields["status"] = OpStatus.EXCEPTION
        fields["exception"] = "Connection refused (COTP disconnect request)"
        fields["exception_code"] = answer.reason
        detail["reason"] = answer.reason


def _tsaps(calling: bytes | None, called: bytes | None) -> dict[str, Any]:
    """TSAPs as hex (and text when printable); S7 rack/slot from a 2-byte called TSAP:
    connection type (1: PG, 2: OP, 3: S7 basic), then rack << 5 | slot (snap7, WS)."""
    out: dict[str, Any] = {}
    for name, tsap in (("src_tsap", calling), ("dst_tsap", called)):
        if tsap is None:
            continue
        out[name] = tsap.hex()
        text = tsap.decode("latin-1")
        if len(tsap) > 2 and text.isprintable():
            out[f"{name}_text"] = text
    if called is not None and len(called) == 2:
        out["connection_type"] = CONNECTION_TYPES.get(called[0], f"0x{called[0]:02x}")
        out["rack"] = called[1] >> 5
        out["slot"] = called[1] & 0x1F
    return out


def _job_fields(
    request: _Msg | None, response: _Msg | None, fields: dict[str, Any], detail: dict[str, Any]
) -> None:
    req: S7Pdu | None = request.pdu if request is not None else None
    resp: S7Pdu | None = response.pdu if response is not None else None
    base = req or resp
    assert base is not None
    func = next((p.function for p in (req, resp) if p is not None and p.function is not None), 0xFF)
    info: dict[str, Any] = {}
    for p in (req, resp):
        if p is not None:
            info.update(p.info)
    fields.update(
        function=fn.job_function_name(func),
        function_code=func,
        operation=fn.job_op_class(func, info.get("pi_service")),
        transaction_id=base.pdu_ref,
    )
    detail["rosctr"] = fn.ROSCTR_NAMES[fn.ROSCTR_JOB]
    detail["pdu_reference"] = fields["transaction_id"]
    if resp is not None:
        detail["response_rosctr"] = fn.ROSCTR_NAMES[resp.rosctr]
    detail.update(info)
    _problems(req, resp, detail)
    if func in (fn.FUNC_READ_VAR, fn.FUNC_WRITE_VAR):
        _items(func, req, resp, fields, detail)
    if resp is not None and (resp.error_class or resp.error_code):
        cls, code = resp.error_class or 0, resp.error_code or 0
        fields.update(
            status=OpStatus.EXCEPTION,
            exception=fn.error_name(cls, code),
            exception_code=(cls << 8) | code,
        )
        detail["error_class"] = fn.ERROR_CLASSES.get(cls, f"0x{cls:02x}")
        detail["error_source"] = "header"
    if "problems" in detail and fields.get("status", OpStatus.OK) == OpStatus.OK:
        fields["status"] = OpStatus.MALFORMED


def _items(
    func: int,
    req: S7Pdu | None,
    resp: S7Pdu | None,
    fields: dict[str, Any],
    detail: dict[str, Any],
) -> None:
    """Read/write items: addresses from the request, values and return codes."""
    addresses: tuple[AnyItem | None, ...] = req.items if req is not None else ()
    if func == fn.FUNC_WRITE_VAR:
        values: tuple[DataItem | None, ...] = req.data_items if req is not None else ()
        codes = resp.return_codes if resp is not None else ()
    else:
        values = resp.data_items if resp is not None else ()
        codes = tuple(d.return_code for d in values) if resp is not None else ()
    count = max(len(addresses), len(values), len(codes))
    items = []
    for i in range(count):
        item = _item_detail(addresses[i] if i < len(addresses) else None)
        value = values[i] if i < len(values) else None
        if value is not None and len(value.data) <= MAX_ITEM_VALUES:
            item["values"] = tuple(value.data)
        if value is not None:
            item["data_length"] = len(value.data)
        if i < len(codes):
            item["return_code"] = codes[i]
            item["return_code_name"] = fn.return_code_name(codes[i])
        items.append(item)
    detail["items"] = items
    fields["quantity"] = count
    first = addresses[0] if addresses else None
    if first is not None and first.byte_address is not None:
        fields["address"] = first.byte_address
        if first.area == fn.AREA_DB:
            fields["unit"] = first.db
    if count == 1 and "values" in items[0]:
        fields["values"] = items[0]["values"]
    failed = [c for c in codes if c != fn.RETURN_SUCCESS]
    if failed:
        detail["failed_items"] = len(failed)
    if codes and len(failed) == len(codes):
        fields.update(
            status=OpStatus.EXCEPTION,
            exception=fn.return_code_name(failed[0]),
            exception_code=failed[0],
        )
        detail["error_source"] = "item"


def _item_detail(item: AnyItem | None) -> dict[str, Any]:
    if item is None:
        return {}
    out: dict[str, Any] = {"syntax": fn.SYNTAX_IDS.get(item.syntax_id, f"0x{item.syntax_id:02x}")}
    if item.area is None:
        out["raw"] = item.raw.hex()
        return out
    out.update(
        area=fn.AREAS.get(item.area, f"0x{item.area:02x}"),
        area_code=item.area,
        db=item.db,
        start=item.byte_address,
        bit=item.bit_address,
        length=item.length,
        transport_size=fn.TRANSPORT_SIZES.get(item.transport_size or 0, "UNKNOWN"),
    )
    return out


def _userdata_fields(
    request: _Msg | None, response: _Msg | None, fields: dict[str, Any], detail: dict[str, Any]
) -> None:
    req: S7Pdu | None = request.pdu if request is not None else None
    resp: S7Pdu | None = response.pdu if response is not None else None
    base = req or resp
    assert base is not None and base.userdata is not None
    ud = base.userdata
    fields.update(
        function=fn.subfunction_name(ud.group, ud.subfunction),
        function_code=fn.userdata_code(ud.group, ud.subfunction),
        operation=fn.userdata_op_class(ud.group, ud.subfunction),
        transaction_id=base.pdu_ref,
    )
    detail.update(
        rosctr=fn.ROSCTR_NAMES[fn.ROSCTR_USERDATA],
        pdu_reference=base.pdu_ref,
        type=fn.UD_TYPE_NAMES.get(ud.type, f"0x{ud.type:x}"),
        group=ud.group,
        group_name=fn.group_name(ud.group),
        subfunction=ud.subfunction,
        sequence_number=ud.sequence,
    )
    if req is not None and req.userdata is not None and req.userdata.follow_up:
        detail["follow_up"] = True
    for p in (req, resp):
        if p is not None:
            detail.update(p.info)
    _problems(req, resp, detail)
    rud = resp.userdata if resp is not None else None
    if resp is not None and rud is not None:
        detail["response_pdu_reference"] = resp.pdu_ref
        detail["sequence_number"] = rud.sequence
        if rud.last_data_unit is not None:
            detail["last_data_unit"] = rud.last_data_unit == 0
        if rud.error_code:
            fields.update(
                status=OpStatus.EXCEPTION,
                exception=fn.parameter_error_name(rud.error_code),
                exception_code=rud.error_code,
            )
            detail["error_source"] = "parameter"
        elif resp.ud_return_code not in (None, fn.RETURN_SUCCESS, fn.RETURN_NO_DATA, 0):
            code = resp.ud_return_code or 0
            fields.update(
                status=OpStatus.EXCEPTION,
                exception=fn.return_code_name(code),
                exception_code=code,
            )
            detail["error_source"] = "item"
    if "problems" in detail and fields.get("status", OpStatus.OK) == OpStatus.OK:
        fields["status"] = OpStatus.MALFORMED


def _problems(req: S7Pdu | None, resp: S7Pdu | None, detail: dict[str, Any]) -> None:
    found = [p.problem for p in (req, resp) if p is not None and p.problem]
    if found:
        detail["problems"] = found


def _plus_fields(
    request: _Msg | None, response: _Msg | None, fields: dict[str, Any], detail: dict[str, Any]
) -> None:
    req: plus.PlusPdu | None = request.pdu if request is not None else None
    resp: plus.PlusPdu | None = response.pdu if response is not None else None
    base = req or resp
    assert base is not None
    if base.opcode == plus.OPCODE_NOTIFICATION:
        fields.update(function=plus.NOTIFICATION, function_code=0, operation=OpClass.OTHER)
    else:
        code = base.function or 0
        fields.update(
            function=plus.function_name(code),
            function_code=code,
            operation=plus.op_class(code),
            transaction_id=base.sequence,
        )
    fields["protocol"] = PLUS_PROTOCOL
    detail.update(
        version=base.version,
        opcode=plus.OPCODES.get(base.opcode or 0, "Unknown"),
        sequence_number=base.sequence,
        integrity=base.integrity,
        payload_decoded=False,
    )
    if req is not None and req.session_id is not None:
        detail["session_id"] = req.session_id
