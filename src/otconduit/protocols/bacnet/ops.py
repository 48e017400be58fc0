"""BACnet messages and transactions as protocol-neutral Operations and IdentityClaims.

Roles: ``src`` is the side that sent the request (or the unconfirmed service, network
layer message or BVLC request), ``dst`` the side it went to; a reply without a request
is reversed. A device's report sent to one station (a unicast I-Am or I-Have, a COV or
event notification: :data:`REPORTS`) is the reverse too, as IEC 104 treats monitor
information: ``dst`` is the device that reports, ``src`` the station it informs (the
subscriber, the asker), and the detail says ``report: true``. Otherwise a workstation
that subscribes to changes of value would look like a BACnet server and every
controller like a client. A report counts as one only when the station it went to has
itself sent on the flow (asked, subscribed or acknowledged): one sent to a broadcast
address, even by Original-Unicast-NPDU to a subnet's .255, keeps the sender as
``src``. ``transaction_id`` is the invoke id; ``address`` the 32-bit object
identifier (object type << 22 | instance) of the object the service names first;
``quantity`` the properties it names (file services: the octets transferred, else the
octets or records asked for); ``values``
what a write or control puts on the device when it is integral (written values,
ReinitializeDevice and DeviceCommunicationControl states); ``unit`` the device instance
when the service names a device (I-Am, device object properties). ``exception`` /
``exception_code``: an Error's error code (name / number), a Reject's or Abort's reason
(name / :data:`REJECT_CODE_BASE` or :data:`ABORT_CODE_BASE` + reason, so the three
numbering schemes never collide).

Detail: ``pdu_type`` / ``response_pdu_type`` (Zeek ICSNPP spelling), ``bvlc`` /
``response_bvlc`` (BVLC function names), remote network addresses (``snet``/``sadr``,
``dnet``/``dadr``, ``hop_count``), ``forwarded_from`` (Forwarded-NPDU original source),
``segments`` / ``response_segments`` (segmented messages), ``retries``, the service's
own fields (:mod:`.services`) and, from the reply, its fields where the request does
not have them (``value``, ``results``, ...; ``response_<key>`` where they differ).
"""

from __future__ import annotations

from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.bacnet import classify
from otconduit.protocols.bacnet import enums as E
from otconduit.protocols.bacnet.session import Message, Transaction
from otconduit.protocols.bacnet.vendors import vendor_name
from otconduit.protocols.base import CLIENT_TO_SERVER, Endpoints

PROTOCOL: Final = "bacnet"
SOURCE_I_AM: Final = "bacnet_i_am"
SOURCE_DEVICE: Final = "bacnet_device"
CONFIDENCE: Final = 0.9
REJECT_CODE_BASE: Final = 0x10000  # exception_code of a Reject: this + reason
ABORT_CODE_BASE: Final = 0x20000  # exception_code of an Abort: this + reason
WILDCARD_INSTANCE: Final = 4194303  # device instance meaning "the device addressed"

# Device object properties that say who a device is (135 §12.11) -> inventory attribute.
DEVICE_IDENTITY: Final = {
    "object-name": "device_name",
    "vendor-name": "vendor_name",
    "vendor-identifier": "vendor_id",
    "model-name": "model",
    "firmware-revision": "firmware",
    "application-software-version": "software_version",
    "location": "location",
    "description": "description",
    "serial-number": "serial_number",
}


# Services by which a device reports to a station (135 §13.1, §13.8, §13.9, §16.9, §16.10).
REPORTS: Final = frozenset(
    {("unconfirmed", E.I_AM), ("unconfirmed", E.I_HAVE), ("unconfirmed", 2), ("unconfirmed", 3),
     ("unconfirmed", 11), ("confirmed", 1), ("confirmed", 2), ("confirmed", 31)}
)  # fmt: skip


def _is_report(kind: str, service: int | None, msg: Message, heard: bool) -> bool:
    """A report (:data:`REPORTS`) sent by unicast to one station on the IP network that
    has spoken on the flow (``heard``)."""
    if not heard or service is None or (kind, service) not in REPORTS:
        return False
    npdu = msg.npdu
    remote = npdu is not None and npdu.dnet is not None
    return msg.bvlc.function == E.ORIGINAL_UNICAST and not remote


def _ends(direction: int, e: Endpoints) -> tuple[str, int, str, int]:
    """(src ip, src port, dst ip, dst port) of something sent in ``direction``."""
    if direction == CLIENT_TO_SERVER:
        return e.client_ip, e.client_port, e.server_ip, e.server_port
    return e.server_ip, e.server_port, e.client_ip, e.client_port


def _sender_ip(msg: Message, e: Endpoints) -> str:
    """The IP address of the device that sent ``msg``: a Forwarded-NPDU's original
    source, else the datagram's source."""
    if msg.bvlc.origin is not None:
        return msg.bvlc.origin.rsplit(":", 1)[0]
    return _ends(msg.direction, e)[0]


def _envelope(msg: Message, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {f"{prefix}bvlc": E.bvlc_name(msg.bvlc.function)}
    if msg.apdu is not None:
        out[f"{prefix}pdu_type"] = msg.apdu.type_name
    if msg.bvlc.origin is not None:
        out[f"{prefix}forwarded_from"] = msg.bvlc.origin
    if msg.npdu is not None:
        for key, value in msg.npdu.addressing().items():
            out[f"{prefix}{key}"] = value
    if msg.segments:
        out[f"{prefix}segments"] = msg.segments
    return out


def _merge(detail: dict[str, Any], reply: dict[str, Any]) -> None:
    for key, value in reply.items():
        if key not in detail:
            detail[key] = value
        elif detail[key] != value:
            detail[f"response_{key}"] = value


def _ints(values: list[Any]) -> tuple[int, ...] | None:
    out = tuple(int(v) for v in values if isinstance(v, int))
    return out or None


def _shape(detail: dict[str, Any]) -> tuple[int | None, int | None]:
    """(address, quantity) from an operation's detail."""
    address = detail.get("object_id")
    quantity = detail.get("property_count")
    if quantity is None and "property" in detail:
        quantity = 1
    if quantity is None:
        quantity = detail.get("octets", detail.get("count", detail.get("records")))
    return address, quantity


def _values(request: dict[str, Any], service: int | None) -> tuple[int, ...] | None:
    """What a request puts on the device, when integral: written values, the state a
    ReinitializeDevice or DeviceCommunicationControl asks for."""
    if "writes" in request:
        return _ints([w.get("value") for w in request["writes"]])
    if "state_code" in request:
        return (request["state_code"],)
    if service == E.WRITE_PROPERTY and "value" in request:
        value = request["value"]
        return _ints(value if isinstance(value, list) else [value])
    return None


def _unit(detail: dict[str, Any]) -> int | None:
    if detail.get("object_type") == "device":
        inst = detail.get("instance")
        return inst if isinstance(inst, int) else None
    inst = detail.get("device_instance")
    return inst if isinstance(inst, int) else None


def transaction_operation(tx: Transaction, e: Endpoints, heard: bool = False) -> Operation:
    """One confirmed service (request and reply) as an Operation."""
    req, resp = tx.request, tx.response
    first = tx.first
    req_apdu = req.apdu if req is not None else None
    resp_apdu = resp.apdu if resp is not None else None
    if req is not None:
        src_ip, src_port, dst_ip, dst_port = _ends(req.direction, e)
        if req_apdu is not None and _is_report("confirmed", req_apdu.service, req, heard):
            dst_ip, dst_port, src_ip, src_port = src_ip, src_port, dst_ip, dst_port
    else:
        assert resp is not None
        if resp_apdu is not None and resp_apdu.pdu_type == E.ABORT and not resp_apdu.server:
            src_ip, src_port, dst_ip, dst_port = _ends(resp.direction, e)  # the requester
        else:  # the reply went from the responder back to the requester
            dst_ip, dst_port, src_ip, src_port = _ends(resp.direction, e)
    service = None
    if req_apdu is not None:
        service = req_apdu.service
    elif resp_apdu is not None:
        service = resp_apdu.service
    detail: dict[str, Any] = {}
    if req is not None:
        detail.update(_envelope(req))
        detail.update(req.detail)
    if resp is not None:
        _merge(detail, _envelope(resp, "response_"))
        _merge(detail, resp.detail)
    if req is None:
        detail["orphan_response"] = True
    elif req_apdu is not None and _is_report("confirmed", req_apdu.service, req, heard):
        detail["report"] = True
    if tx.retries:
        detail["retries"] = tx.retries
    if tx.segment_acks:
        detail["segment_acks"] = tx.segment_acks
    status = OpStatus.OK
    exception = exception_code = None
    if resp_apdu is not None and resp_apdu.pdu_type in (E.ERROR, E.REJECT, E.ABORT):
        status = OpStatus.EXCEPTION
        if resp_apdu.pdu_type == E.ERROR:
            exception = detail.get("error")
            exception_code = detail.get("error_code")
        elif resp_apdu.pdu_type == E.REJECT:
            reason = resp_apdu.reason or 0
            exception_code = REJECT_CODE_BASE + reason
            exception = E.pick(E.REJECT_REASON_NAMES, reason, f"reject-{reason}")
        else:
            reason = resp_apdu.reason or 0
            exception_code = ABORT_CODE_BASE + reason
            exception = E.pick(E.ABORT_REASON_NAMES, reason, f"abort-{reason}")
            detail["abort_by"] = "server" if resp_apdu.server else "client"
    elif resp is None:
        status = OpStatus.NO_RESPONSE
    problems = (req.problems if req is not None else []) + (
        resp.problems if resp is not None else []
    )
    if problems:
        status = OpStatus.MALFORMED
        detail["malformed_reason"] = "; ".join(problems)
    _framing(detail, req, resp)
    if service is None:  # an orphan Reject or Abort names no service
        function, code, op_class = "unknown_service", classify.UNKNOWN_SERVICE, OpClass.OTHER
    else:
        function = E.confirmed_service_name(service)
        code, op_class = service, classify.confirmed_class(service)
    address, quantity = _shape(detail)
    values = _values(req.detail, service) if req is not None else None
    return Operation(
        ts_ns=first.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=op_class,
        function=function,
        function_code=code,
        unit=_unit(detail),
        address=address,
        quantity=quantity,
        values=values,
        status=status,
        exception=exception,
        exception_code=exception_code,
        latency_ns=resp.ts_ns - req.ts_ns if req is not None and resp is not None else None,
        request_frame=req.frame if req is not None else None,
        response_frame=resp.frame if resp is not None else None,
        transaction_id=first.apdu.invoke_id if first.apdu is not None else None,
        detail=detail,
    )


def message_operation(msg: Message, e: Endpoints, heard: bool = False) -> Operation:
    """An unconfirmed service or a network layer message (no reply to wait for)."""
    src_ip, src_port, dst_ip, dst_port = _ends(msg.direction, e)
    detail = _envelope(msg)
    detail.update(msg.detail)
    if msg.apdu is not None and _is_report("unconfirmed", msg.apdu.service, msg, heard):
        dst_ip, dst_port, src_ip, src_port = src_ip, src_port, dst_ip, dst_port
        detail["report"] = True
    if msg.apdu is not None:
        service = msg.apdu.service or 0
        function = E.unconfirmed_service_name(service)
        code = classify.UNCONFIRMED_BASE + service
        op_class = classify.unconfirmed_class(service)
    else:
        assert msg.npdu is not None and msg.npdu.message_type is not None
        kind = msg.npdu.message_type
        function = E.network_message_name(kind)
        code = classify.NETWORK_BASE + kind
        op_class = classify.network_class(kind, detail.get("routing_entries"))
    status = OpStatus.OK
    if msg.problems:
        status = OpStatus.MALFORMED
        detail["malformed_reason"] = "; ".join(msg.problems)
    _framing(detail, msg)
    address, quantity = _shape(detail)
    values = _values(msg.detail, None)
    return Operation(
        ts_ns=msg.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=op_class,
        function=function,
        function_code=code,
        unit=_unit(detail),
        address=address,
        quantity=quantity,
        values=values,
        status=status,
        request_frame=msg.frame,
        detail=detail,
    )


_BVLC_FUNCTIONS: Final = {
    E.BVLC_RESULT: "bvlc_result",
    E.WRITE_BDT: "write_broadcast_distribution_table",
    E.READ_BDT: "read_broadcast_distribution_table",
    E.READ_BDT_ACK: "read_broadcast_distribution_table_ack",
    E.REGISTER_FOREIGN_DEVICE: "register_foreign_device",
    E.READ_FDT: "read_foreign_device_table",
    E.READ_FDT_ACK: "read_foreign_device_table_ack",
    E.DELETE_FDT_ENTRY: "delete_foreign_device_table_entry",
}


def _bvlc_detail(msg: Message, prefix: str = "") -> dict[str, Any]:
    b = msg.bvlc
    out: dict[str, Any] = {f"{prefix}bvlc": E.bvlc_name(b.function)}
    if b.result is not None:
        out[f"{prefix}result"] = E.BVLC_RESULT_NAMES.get(b.result, f"0x{b.result:04x}")
    if b.ttl is not None:
        out[f"{prefix}ttl_s"] = b.ttl
    if b.function in (E.WRITE_BDT, E.READ_BDT_ACK, E.READ_FDT_ACK):
        out[f"{prefix}entries"] = list(b.entries)
        out[f"{prefix}entry_count"] = b.entry_count
    if b.address is not None:
        out[f"{prefix}address"] = b.address
    return out


def bvlc_operation(tx: Transaction, e: Endpoints) -> Operation:
    """A BVLL management request (BDT/FDT, foreign device registration) and its result."""
    req, resp = tx.request, tx.response
    first = tx.first
    detail: dict[str, Any] = {}
    if req is not None:
        detail.update(_bvlc_detail(req))
        src_ip, src_port, dst_ip, dst_port = _ends(req.direction, e)
        function = req.bvlc.function
    else:
        assert resp is not None
        dst_ip, dst_port, src_ip, src_port = _ends(resp.direction, e)
        function = resp.bvlc.function
        detail["orphan_response"] = True
    if resp is not None:
        detail.update(_bvlc_detail(resp, "response_"))
    status = OpStatus.OK
    exception = exception_code = None
    if resp is None:
        status = OpStatus.NO_RESPONSE
    elif resp.bvlc.result:
        status = OpStatus.EXCEPTION
        exception_code = resp.bvlc.result
        exception = E.BVLC_RESULT_NAMES.get(resp.bvlc.result, f"0x{resp.bvlc.result:04x}")
    problems = (req.problems if req is not None else []) + (
        resp.problems if resp is not None else []
    )
    if problems:
        status = OpStatus.MALFORMED
        detail["malformed_reason"] = "; ".join(problems)
    _framing(detail, req, resp)
    return Operation(
        ts_ns=first.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=classify.bvlc_class(function),
        function=_BVLC_FUNCTIONS.get(function, f"bvlc_0x{function:02x}"),
        function_code=classify.BVLC_BASE + function,
        quantity=first.bvlc.entry_count or None,
        status=status,
        exception=exception,
        exception_code=exception_code,
        latency_ns=resp.ts_ns - req.ts_ns if req is not None and resp is not None else None,
        request_frame=req.frame if req is not None else None,
        response_frame=resp.frame if resp is not None else None,
        detail=detail,
    )


def _claim(ip: str, attribute: str, value: Any, source: str, ts_ns: int) -> IdentityClaim:
    return IdentityClaim(
        ip=ip,
        attribute=attribute,
        value=str(value),
        source=source,
        confidence=CONFIDENCE,
        ts_ns=ts_ns,
    )


def message_claims(msg: Message, e: Endpoints) -> list[IdentityClaim]:
    """What an I-Am or I-Have says about its sender (devices behind a router, whose
    NPDU names a source network, have no IP address of their own: none)."""
    apdu, d = msg.apdu, msg.detail
    if apdu is None or msg.source is not None or msg.problems:
        return []
    ip = _sender_ip(msg, e)
    if apdu.service == E.I_AM and d.get("object_type") == "device":
        claims = [
            _claim(ip, "bacnet_device_instance", d["instance"], SOURCE_I_AM, msg.ts_ns),
            _claim(ip, "vendor_id", d["vendor_id"], SOURCE_I_AM, msg.ts_ns),
        ]
        if not str(d["vendor"]).startswith("Vendor "):
            claims.append(_claim(ip, "vendor", d["vendor"], SOURCE_I_AM, msg.ts_ns))
        return claims
    if apdu.service == E.I_HAVE and d.get("device_object_type") == "device":
        return [_claim(ip, "bacnet_device_instance", d["device_instance"], SOURCE_I_AM, msg.ts_ns)]
    return []


def transaction_claims(tx: Transaction, e: Endpoints) -> list[IdentityClaim]:
    """Device object properties in a ReadProperty(Multiple) ACK, claimed for the device
    that answered (when it is on the IP network itself)."""
    resp = tx.response
    if resp is None or resp.apdu is None or resp.apdu.pdu_type != E.COMPLEX_ACK:
        return []
    if resp.source is not None or resp.problems:
        return []
    ip = _sender_ip(resp, e)
    d = resp.detail
    items = d.get("results") if resp.apdu.service == E.READ_PROPERTY_MULTIPLE else [d]
    claims: list[IdentityClaim] = []
    instance = None
    for item in items or []:
        prop, value = item.get("property", ""), item.get("value")
        if item.get("object_type") != "device":
            continue
        if isinstance(item.get("instance"), int) and item["instance"] != WILDCARD_INSTANCE:
            instance = item["instance"]
        if prop == "object-identifier" and isinstance(value, str) and value.startswith("device,"):
            instance = int(value.split(",", 1)[1])
        attribute = DEVICE_IDENTITY.get(prop)
        if attribute is None:
            continue
        if value is None or value == "" or isinstance(value, list):
            continue
        claims.append(_claim(ip, attribute, value, SOURCE_DEVICE, resp.ts_ns))
        if prop == "vendor-identifier" and isinstance(value, int):
            # The vendor as ASHRAE registers it (as an I-Am's vendor id says it); the
            # vendor-name property is the device's own free text (``vendor_name``).
            name = vendor_name(value)
            if not name.startswith("Vendor "):
                claims.append(_claim(ip, "vendor", name, SOURCE_DEVICE, resp.ts_ns))
    if instance is not None:
        claims.append(_claim(ip, "bacnet_device_instance", instance, SOURCE_DEVICE, resp.ts_ns))
    return claims


def _framing(detail: dict[str, Any], *msgs: Message | None) -> None:
    """Keep a BVLC length slip with the operation it framed (the decode problem is
    reported apart): the operation keeps the outcome the device gave it."""
    notes = [m.bvlc.length_note for m in msgs if m is not None and m.bvlc.length_note]
    if notes:
        detail["framing_note"] = "; ".join(dict.fromkeys(notes))
