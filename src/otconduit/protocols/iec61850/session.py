"""Pairs MMS requests with their answers on one ISO-on-TCP connection and maps them onto
Operations and IdentityClaims.

Matching (ISO 9506-2 §7): a confirmed request with the confirmed response, error or
reject that carries its invokeID, from the other side; cancel by the invokeID it
cancels; initiate and conclude (one at a time per side); an ACSE release request
(RLRQ, in a session FINISH) with its response (RLRE). Unconfirmed PDUs (information
reports), aborts and rejects that name no open request stand alone.

As in the S7 session (the two directions reach the decoder in capture order only as
far as the TCP reassembler can release them), an answer whose request has not been
seen is held, bounded, and pairs with a request of the same key sent before it; what
is still held at the end becomes a response-only Operation. Open requests are bounded
by ``max_outstanding``; those pushed out, and those open at the end, are unanswered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850 import osi
from otconduit.protocols.iec61850 import services as S
from otconduit.protocols.iec61850.mms import MmsPdu, parse_mms
from otconduit.protocols.s7.tpkt import CotpData, CotpEvent

PROTOCOL: Final = "mms"
SOURCE: Final = "mms_identify"
IDENTIFY_CONFIDENCE: Final = 0.9
DEFAULT_MAX_OUTSTANDING: Final = 256
MALFORMED_DATA: Final = 256
MAX_OP_VALUES: Final = 64
# IEC 61850-8-1 §20.x control model: writes to these functional-constraint items operate
# or select a controllable object.
CONTROL_ITEMS: Final = ("$Oper", "$SBOw", "$SBO", "$Cancel")

Key = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class _Msg:
    """A decoded TSDU: its MMS PDU (None for ACSE-only units) and OSI layers."""

    pdu: MmsPdu | None
    unit: osi.OsiUnit
    direction: int
    frame: int
    ts_ns: int


def control_variables(names: list[str]) -> list[str]:
    """The names that address an IEC 61850 control service (``...$CO$...$Oper``)."""
    return [n for n in names if "$CO$" in n and n.endswith(CONTROL_ITEMS)]


class MmsSession:
    """Transaction matching and Operation / IdentityClaim building for one connection."""

    def __init__(self, endpoints: Endpoints, max_outstanding: int = DEFAULT_MAX_OUTSTANDING):
        if max_outstanding < 1:
            raise ValueError("max_outstanding must be >= 1")
        self.endpoints = endpoints
        self.max_outstanding = max_outstanding
        self._open: OrderedDict[Key, _Msg] = OrderedDict()
        self._held: OrderedDict[Key, _Msg] = OrderedDict()
        self._claimed: set[tuple[str, str, str]] = set()
        self.pdu_counts: dict[tuple[int, int, int | None], int] = {}  # (dir, kind, service)
        self.evicted = 0

    @property
    def idle(self) -> bool:
        return not (self._open or self._held)

    # --- entry points -----------------------------------------------------------------
    def handle(self, direction: int, event: CotpEvent) -> list[DecoderEvent]:
        """Events that one COTP event of ``direction`` completes (only data carries MMS)."""
        if not isinstance(event, CotpData) or not event.payload:
            return []
        unit = osi.unwrap(event.payload)
        if isinstance(unit, str):
            return [_malformed(unit, event)]
        pdu: MmsPdu | None = None
        out: list[DecoderEvent] = []
        if unit.mms is not None:
            parsed = parse_mms(unit.mms)
            if isinstance(parsed, str):
                return [_malformed(parsed, event)]
            pdu = parsed
            key = (direction, pdu.kind, pdu.service)
            self.pdu_counts[key] = self.pdu_counts.get(key, 0) + 1
        elif unit.problem:
            out.append(_malformed(unit.problem, event))
        msg = _Msg(pdu, unit, direction, event.frame, event.ts_ns)
        return out + self._dispatch(msg)

    def flush(self) -> list[DecoderEvent]:
        """Complete every open request as unanswered (end of the connection)."""
        pending: list[tuple[int, int, _Msg | None, _Msg | None]] = [
            (m.ts_ns, m.frame, m, None) for m in self._open.values()
        ]
        pending += [(m.ts_ns, m.frame, None, m) for m in self._held.values()]
        pending.sort(key=lambda p: (p[0], p[1]))
        self._open.clear()
        self._held.clear()
        return [self._operation(req, resp) for _, _, req, resp in pending]

    # --- matching ---------------------------------------------------------------------
    def _dispatch(self, msg: _Msg) -> list[DecoderEvent]:
        d = msg.direction
        pdu, unit = msg.pdu, msg.unit
        if pdu is None:
            if unit.acse == 2:  # RLRQ
                return self._request(("release", d, 0), msg)
            if unit.acse == 3:  # RLRE
                return self._answer(("release", 1 - d, 0), msg)
            if unit.acse == 4 or unit.spdu in (osi.SI_ABORT, osi.SI_ABORT_ACCEPT):
                return [self._operation(msg, None, push=True)]
            if unit.acse == 0:  # AARQ without an MMS initiate
                return self._request(("initiate", d, 0), msg)
            if unit.acse == 1 or unit.spdu == osi.SI_REFUSE:
                return self._answer(("initiate", 1 - d, 0), msg)
            return []
        k = pdu.kind
        invoke = pdu.invoke_id if pdu.invoke_id is not None else -1
        if k == S.CONFIRMED_REQUEST:
            return self._request(("confirmed", d, invoke), msg)
        if k in (S.CONFIRMED_RESPONSE, S.CONFIRMED_ERROR):
            return self._answer(("confirmed", 1 - d, invoke), msg)
        if k == S.REJECT:
            key = ("confirmed", 1 - d, invoke)
            if key in self._open:
                return self._answer(key, msg)
            return [self._operation(None, msg, push=True)]
        if k == S.CANCEL_REQUEST:
            return self._request(("cancel", d, invoke), msg)
        if k in (S.CANCEL_RESPONSE, S.CANCEL_ERROR):
            return self._answer(("cancel", 1 - d, invoke), msg)
        if k == S.INITIATE_REQUEST:
            return self._request(("initiate", d, 0), msg)
        if k in (S.INITIATE_RESPONSE, S.INITIATE_ERROR):
            return self._answer(("initiate", 1 - d, 0), msg)
        if k == S.CONCLUDE_REQUEST:
            return self._request(("conclude", d, 0), msg)
        if k in (S.CONCLUDE_RESPONSE, S.CONCLUDE_ERROR):
            return self._answer(("conclude", 1 - d, 0), msg)
        return [self._operation(msg, None, push=True)]  # unconfirmed

    def _request(self, key: Key, msg: _Msg) -> list[DecoderEvent]:
        out: list[DecoderEvent] = []
        held = self._held.pop(key, None)
        if held is not None:
            if (held.ts_ns, held.frame) >= (msg.ts_ns, msg.frame):
                return self._answered(msg, held)
            out.append(self._operation(None, held))
        old = self._open.pop(key, None)
        if old is not None:  # the key was reused before any answer
            out.append(self._operation(old, None))
        self._open[key] = msg
        while len(self._open) > self.max_outstanding:
            _, oldest = self._open.popitem(last=False)
            self.evicted += 1
            out.append(self._operation(oldest, None))
        return out

    def _answer(self, key: Key, msg: _Msg) -> list[DecoderEvent]:
        request = self._open.pop(key, None)
        if request is not None:
            return self._answered(request, msg)
        out: list[DecoderEvent] = []
        old = self._held.pop(key, None)
        if old is not None:
            out.append(self._operation(None, old))
        self._held[key] = msg
        while len(self._held) > self.max_outstanding:
            _, oldest = self._held.popitem(last=False)
            out.append(self._operation(None, oldest))
        return out

    def _answered(self, request: _Msg, response: _Msg) -> list[DecoderEvent]:
        op = self._operation(request, response)
        out: list[DecoderEvent] = [op]
        pdu = response.pdu
        if pdu is not None and pdu.kind == S.CONFIRMED_RESPONSE and pdu.service == 2:
            ip = op.dst_ip
            for attribute in ("vendor", "model", "revision"):
                value = pdu.info.get(attribute)
                if value and (ip, attribute, value) not in self._claimed:
                    self._claimed.add((ip, attribute, value))
                    out.append(
                        IdentityClaim(
                            ip=ip,
                            attribute=attribute,
                            value=value,
                            source=SOURCE,
                            confidence=IDENTIFY_CONFIDENCE,
                            ts_ns=response.ts_ns,
                        )
                    )
        return out

    # --- operations -------------------------------------------------------------------
    def _operation(
        self, request: _Msg | None, response: _Msg | None, *, push: bool = False
    ) -> Operation:
        """One Operation from a request and/or its answer (never both missing)."""
        first = request if request is not None else response
        assert first is not None
        direction = first.direction if request is not None else 1 - first.direction
        if push:
            direction = first.direction
        detail: dict[str, Any] = {}
        if push:
            detail["unsolicited"] = True
        elif request is None:
            detail["orphan_response"] = True
        if direction == 1:
            detail["from_server"] = True
        function, code, op_class = _function(first)
        fields: dict[str, Any] = {
            "ts_ns": first.ts_ns,
            "protocol": PROTOCOL,
            **self.endpoints.addresses(direction),
            "function": function,
            "function_code": code,
            "operation": op_class,
            "request_frame": request.frame if request else None,
            "response_frame": response.frame if response else None,
            "latency_ns": response.ts_ns - request.ts_ns if request and response else None,
            "status": OpStatus.OK,
        }
        if request is not None and response is None and not push:
            fields["status"] = OpStatus.NO_RESPONSE
        problems: list[str] = []
        for role, msg in (("", request), ("response_", response)):
            if msg is None:
                continue
            unit, pdu = msg.unit, msg.pdu
            if unit.spdu is not None:
                detail[f"{role}spdu"] = unit.spdu_name
            if unit.acse is not None:
                detail[f"{role}acse"] = unit.acse_name
                detail.update(unit.acse_info)
            if pdu is None:
                continue
            detail[f"{role}pdu"] = pdu.kind_name
            if pdu.invoke_id is not None:
                fields["transaction_id"] = pdu.invoke_id
            if role and pdu.kind == S.CONFIRMED_RESPONSE:
                detail["response_service"] = pdu.service
            detail.update(pdu.info)
            if pdu.problem:
                problems.append(pdu.problem)
        if problems:
            detail["problems"] = problems
        if op_class is OpClass.WRITE and function == "write":
            controls = control_variables(detail.get("variables", []))
            if controls:
                fields["operation"] = OpClass.CONTROL
                detail["control_variables"] = controls
        _quantities(fields, detail)
        if response is not None:
            _outcome(request, response, fields, detail)
        if detail.get("problems") and fields["status"] is OpStatus.OK:
            fields["status"] = OpStatus.MALFORMED
        return Operation(**fields, detail=detail)


def _function(msg: _Msg) -> tuple[str, int, OpClass]:
    """Function name, code and class of an operation from its first message."""
    pdu, unit = msg.pdu, msg.unit
    if pdu is None:
        if unit.acse in (2, 3):
            return "release", S.RELEASE_CODE, OpClass.SESSION
        if unit.acse == 4 or unit.spdu in (osi.SI_ABORT, osi.SI_ABORT_ACCEPT):
            return "abort", S.ABORT_CODE, OpClass.SESSION
        return "initiate", S.PDU_BASE + S.INITIATE_REQUEST, OpClass.SESSION
    k = pdu.kind
    if k in (S.CONFIRMED_REQUEST, S.CONFIRMED_RESPONSE):
        if pdu.service is None:
            return "unknown", S.PDU_BASE + k, OpClass.OTHER
        return S.confirmed_name(pdu.service), pdu.service, S.confirmed_class(pdu.service)
    if k == S.UNCONFIRMED:
        service = pdu.service or 0
        op_class = OpClass.READ if service == 0 else OpClass.OTHER
        return pdu.service_name, S.UNCONFIRMED_BASE + service, op_class
    if k in (S.INITIATE_REQUEST, S.INITIATE_RESPONSE, S.INITIATE_ERROR):
        return "initiate", S.PDU_BASE + S.INITIATE_REQUEST, OpClass.SESSION
    if k in (S.CONCLUDE_REQUEST, S.CONCLUDE_RESPONSE, S.CONCLUDE_ERROR):
        return "conclude", S.PDU_BASE + S.CONCLUDE_REQUEST, OpClass.SESSION
    if k in (S.CANCEL_REQUEST, S.CANCEL_RESPONSE, S.CANCEL_ERROR):
        return "cancel", S.PDU_BASE + S.CANCEL_REQUEST, OpClass.SESSION
    if k == S.REJECT:
        return "reject", S.PDU_BASE + S.REJECT, OpClass.OTHER
    return "confirmed-error", S.PDU_BASE + k, OpClass.OTHER


def _quantities(fields: dict[str, Any], detail: dict[str, Any]) -> None:
    """Operation quantity/values from the decoded variables and values."""
    count = detail.get("variable_count", detail.get("result_count"))
    if count is not None:
        fields["quantity"] = count
    values = detail.get("values")
    if (
        isinstance(values, list)
        and 0 < len(values) <= MAX_OP_VALUES
        and all(isinstance(v, int) for v in values)
    ):
        fields["values"] = tuple(int(v) for v in values)


def _outcome(
    request: _Msg | None, response: _Msg, fields: dict[str, Any], detail: dict[str, Any]
) -> None:
    """Status and exception of an answered operation."""
    pdu, unit = response.pdu, response.unit
    if unit.spdu == osi.SI_REFUSE:
        fields.update(status=OpStatus.EXCEPTION, exception="session connection refused")
        return
    result = unit.acse_info.get("result")
    if result is not None and result != "accepted":
        fields.update(status=OpStatus.EXCEPTION, exception=f"association {result}")
        return
    if pdu is None:
        return
    if pdu.kind == S.REJECT and pdu.error is not None:
        reason, code = pdu.error
        fields.update(
            status=OpStatus.EXCEPTION,
            exception=S.reject_name(reason, code),
            exception_code=S.REJECT_CODE_BASE | (reason << 8) | (code & 0xFF),
        )
        return
    if pdu.kind in (S.CONFIRMED_ERROR, S.INITIATE_ERROR, S.CONCLUDE_ERROR, S.CANCEL_ERROR):
        if pdu.error is None:
            fields.update(status=OpStatus.EXCEPTION, exception=pdu.kind_name)
            return
        cls, code = pdu.error
        fields.update(
            status=OpStatus.EXCEPTION,
            exception=S.error_name(cls, code),
            exception_code=(cls << 8) | (code & 0xFF),
        )
        return
    failures = pdu.info.get("failures")
    if failures and len(failures) == pdu.info.get("result_count"):
        fields.update(
            status=OpStatus.EXCEPTION,
            exception=S.access_error_name(failures[0]),
            exception_code=failures[0],
        )
    if (
        request is not None
        and request.pdu is not None
        and pdu.service is not None
        and request.pdu.service is not None
        and pdu.service != request.pdu.service
        and pdu.kind == S.CONFIRMED_RESPONSE
    ):
        detail.setdefault("problems", []).append(
            f"response service {S.confirmed_name(pdu.service)} to a "
            f"{S.confirmed_name(request.pdu.service)} request"
        )


def _malformed(reason: str, ev: CotpData) -> Malformed:
    return Malformed(
        reason=reason,
        offset=ev.offset,
        frame=ev.frame,
        ts_ns=ev.ts_ns,
        data=ev.payload[:MALFORMED_DATA],
    )
