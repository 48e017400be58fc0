"""IEC 104 exchanges as protocol-neutral Operations (and the common address claim).

Roles: ``src`` is the controlling station and ``dst`` the controlled station
(outstation): for an activation, the sender of the activation; for every other ASDU
(monitor information, one operation per ASDU, class ``read``: the outstation reporting
to the station; file transfer; mirrored commands) the connection's client, which is the
controlling station (the outstation listens on 2404); for U-format exchanges the
sender of the act (either side tests the link).

Fields: ``function`` is the type mnemonic (``C_SC_NA_1``) or the U-format function
(``STARTDT``, ``STOPDT``, ``TESTFR``); ``function_code`` the type id, or 0x100 plus the
U-format act control octet (0x107, 0x113, 0x143) so the two never collide; ``unit`` the
common address; ``address`` the first information object address; ``quantity`` the
number of objects; ``values`` the integral values (point states, step positions,
scaled values, counters, command states, scaled setpoints); ``transaction_id`` the
send sequence number N(S) of the activation (or of the monitor ASDU).

Detail: ``cot`` / ``cot_code`` (cause of transmission), ``originator``, ``test``,
``negative``, ``ns``/``nr``, ``ns_gap`` (I-format APDUs missing before this one),
``points`` (decoded objects, at most 64: ``ioa``, ``value``, ``quality``, ``time``, ...),
for activations ``select`` (S/E), ``qualifier``, ``state``, ``confirmation``
(positive/negative/refused cause), ``confirmation_frame``, ``terminated``,
``termination_frame``, ``superseded``, interrogation ``answers``/``answer_objects``.
"""

from __future__ import annotations

from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import CLIENT_TO_SERVER, Endpoints
from otconduit.protocols.iec104 import types as T
from otconduit.protocols.iec104.session import Command, Message, UExchange

PROTOCOL: Final = "iec104"
U_BASE: Final = 0x100
U_NAMES: Final = {0x04: "STARTDT", 0x10: "STOPDT", 0x40: "TESTFR"}
U_CLASSES: Final = {0x04: OpClass.SESSION, 0x10: OpClass.SESSION, 0x40: OpClass.DIAGNOSTIC}
MAX_POINTS: Final = 64


def _ends(direction: int, e: Endpoints) -> tuple[str, int, str, int]:
    """(src ip, src port, dst ip, dst port) of something sent in ``direction``."""
    if direction == CLIENT_TO_SERVER:
        return e.client_ip, e.client_port, e.server_ip, e.server_port
    return e.server_ip, e.server_port, e.client_ip, e.client_port


def _points(msg: Message) -> list[dict[str, Any]]:
    return [{"ioa": o.ioa, **o.fields} for o in msg.asdu.objects[:MAX_POINTS]]


def _ints(msg: Message) -> tuple[int, ...] | None:
    out = []
    for o in msg.asdu.objects:
        v = o.fields.get("value")
        if isinstance(v, int) and not isinstance(v, bool):
            out.append(v)
    return tuple(out) or None


def _asdu_detail(msg: Message, prefix: str = "") -> dict[str, Any]:
    a = msg.asdu
    d: dict[str, Any] = {
        f"{prefix}cot": T.cot_name(a.cot),
        f"{prefix}cot_code": a.cot,
        f"{prefix}originator": a.originator,
        f"{prefix}ns": msg.apdu.ns,
        f"{prefix}nr": msg.apdu.nr,
    }
    if a.test:
        d[f"{prefix}test"] = True
    if a.negative:
        d[f"{prefix}negative"] = True
    if a.sq:
        d[f"{prefix}sq"] = True
    if msg.ns_gap:
        d[f"{prefix}ns_gap"] = msg.ns_gap
    return d


def monitor_operation(msg: Message, e: Endpoints) -> Operation:
    """An ASDU that is not part of an activation: monitor information, end of
    initialisation, file transfer, security, or a command type with a cause that
    activates nothing (a mirrored command, return information)."""
    a = msg.asdu
    t = a.type_id
    control_direction = t in T.ACTIVATED or t in T.FILES
    # the controlling station is the side that connected (the outstation listens)
    src_ip, src_port, dst_ip, dst_port = _ends(CLIENT_TO_SERVER, e)
    detail = _asdu_detail(msg)
    detail["direction"] = "control" if control_direction else "monitor"
    detail["points"] = _points(msg)
    if len(a.objects) > MAX_POINTS:
        detail["points_total"] = len(a.objects)
    status = OpStatus.OK
    if msg.problems:
        status = OpStatus.MALFORMED
        detail["malformed_reason"] = "; ".join(msg.problems)
    return Operation(
        ts_ns=msg.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=T.op_class(t),
        function=T.type_name(t),
        function_code=t,
        unit=a.common_address,
        address=a.objects[0].ioa if a.objects else None,
        quantity=a.count,
        values=_ints(msg),
        status=status,
        request_frame=msg.frame,
        transaction_id=msg.apdu.ns,
        detail=detail,
    )


def command_operation(cmd: Command, e: Endpoints) -> Operation:
    """An activation (or deactivation) and its confirmation and termination."""
    first = cmd.first
    req, con, term = cmd.request, cmd.confirmation, cmd.termination
    a = first.asdu
    if req is not None:
        src_ip, src_port, dst_ip, dst_port = _ends(req.direction, e)
    else:
        dst_ip, dst_port, src_ip, src_port = _ends(first.direction, e)
    detail: dict[str, Any] = {}
    if req is not None:
        detail.update(_asdu_detail(req))
        detail["points"] = _points(req)
        obj = req.asdu.objects[0].fields if req.asdu.objects else {}
        for key in ("select", "qualifier", "state", "scope", "reset", "time", "freeze"):
            if key in obj:
                detail[key] = obj[key]
    else:
        detail["orphan_response"] = True
    if cmd.deactivation:
        detail["deactivation"] = True
    status = OpStatus.OK
    exception = exception_code = None
    if con is not None:
        detail.update(_asdu_detail(con, "confirmation_"))
        detail["confirmation_frame"] = con.frame
        if con.asdu.cot in T.UNKNOWN_CAUSES:
            detail["confirmation"] = T.cot_name(con.asdu.cot)
            status, exception, exception_code = (
                OpStatus.EXCEPTION,
                T.cot_name(con.asdu.cot),
                con.asdu.cot,
            )
        elif con.asdu.negative:
            detail["confirmation"] = "negative"
            status, exception, exception_code = (
                OpStatus.EXCEPTION,
                "negative_confirmation",
                con.asdu.cot,
            )
        else:
            detail["confirmation"] = "positive"
        if con.asdu.cot == T.REQUEST:  # the object a read asked for
            detail["response_points"] = _points(con)
    if term is not None:
        detail["terminated"] = True
        detail["termination_frame"] = term.frame
        if term.asdu.negative:
            detail["termination_negative"] = True
    elif req is not None and con is not None and status is OpStatus.OK:
        ends_at_con = a.type_id in T.ENDS_AT_CONFIRMATION or req.select or cmd.deactivation
        if not ends_at_con:
            detail["terminated"] = False
    if cmd.answers:
        detail["answers"] = cmd.answers
        detail["answer_objects"] = cmd.answer_objects
    if cmd.superseded:
        detail["superseded"] = True
    if req is not None and con is None and term is None:
        status = OpStatus.NO_RESPONSE
    problems = [p for m in (req, con, term) if m is not None for p in m.problems]
    if problems:
        status = OpStatus.MALFORMED
        detail["malformed_reason"] = "; ".join(problems)
    reply = con or term
    return Operation(
        ts_ns=first.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=T.op_class(a.type_id),
        function=T.type_name(a.type_id),
        function_code=a.type_id,
        unit=a.common_address,
        address=first.ioa if a.objects else None,
        quantity=a.count,
        values=_ints(req) if req is not None else None,
        status=status,
        exception=exception,
        exception_code=exception_code,
        latency_ns=reply.ts_ns - req.ts_ns if req is not None and reply is not None else None,
        request_frame=req.frame if req is not None else None,
        response_frame=reply.frame if reply is not None else None,
        transaction_id=first.apdu.ns,
        detail=detail,
    )


def u_operation(ux: UExchange, e: Endpoints) -> Operation:
    """A STARTDT / STOPDT / TESTFR act and its con."""
    src_ip, src_port, dst_ip, dst_port = _ends(ux.act_direction, e)
    first = ux.act or ux.con
    assert first is not None
    detail: dict[str, Any] = {}
    status = OpStatus.OK
    if ux.act is None:
        detail["orphan_response"] = True
    elif ux.con is None:
        status = OpStatus.NO_RESPONSE
    return Operation(
        ts_ns=first.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=U_CLASSES[ux.function],
        function=U_NAMES[ux.function],
        function_code=U_BASE + (ux.function | 0x03),
        status=status,
        latency_ns=ux.con.ts_ns - ux.act.ts_ns if ux.act and ux.con else None,
        request_frame=ux.act.frame if ux.act else None,
        response_frame=ux.con.frame if ux.con else None,
        detail=detail,
    )


def common_address_claim(msg: Message, e: Endpoints) -> IdentityClaim | None:
    """The common address an outstation reports its monitor information under."""
    a = msg.asdu
    if a.type_id in T.ACTIVATED or a.type_id in T.FILES or a.common_address == 0xFFFF:
        return None
    ip = _ends(msg.direction, e)[0]
    return IdentityClaim(
        ip=ip,
        attribute="iec104_common_address",
        value=str(a.common_address),
        source=PROTOCOL,
        confidence=0.9,
        ts_ns=msg.ts_ns,
    )
