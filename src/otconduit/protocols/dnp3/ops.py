"""Maps DNP3 transactions onto protocol-neutral Operations and IdentityClaims.

``src`` is always the master's endpoint and ``dst`` the outstation's, whichever side
opened the connection: the master is the side that sent the request (or, for a
response without one, the side that did not send it). ``unit`` is the outstation's link
address; ``detail["link_src"]``/``["link_dst"]`` are the master's and outstation's link
addresses.
"""

from __future__ import annotations

from typing import Any

from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols.base import CLIENT_TO_SERVER, Endpoints
from otconduit.protocols.dnp3.app import AppFragment, ObjectHeader
from otconduit.protocols.dnp3.functions import (
    DEVICE_ATTRIBUTES,
    IIN2_ERROR_MASK,
    WRITE,
    function_name,
    iin_names,
    op_class,
)
from otconduit.protocols.dnp3.session import (
    NO_RESPONSE_FUNCTIONS,
    Dnp3Message,
    Dnp3Transaction,
)

PROTOCOL = "dnp3"
ATTRIBUTE_SOURCE = "dnp3_g0"
ADDRESS_SOURCE = "dnp3"
CONFIDENCE = 0.9
MAX_DETAIL_OBJECTS = 64  # response object headers kept in detail (long polls have more)


def _master_is_client(tx: Dnp3Transaction) -> bool:
    if tx.request is not None:
        return tx.request.direction == CLIENT_TO_SERVER
    return tx.responses[0].direction != CLIENT_TO_SERVER


def roles(tx: Dnp3Transaction, e: Endpoints) -> tuple[tuple[str, int], tuple[str, int]]:
    """((master ip, port), (outstation ip, port)) of a transaction."""
    client, server = (e.client_ip, e.client_port), (e.server_ip, e.server_port)
    return (client, server) if _master_is_client(tx) else (server, client)


def _address_quantity(objects: list[ObjectHeader]) -> tuple[int | None, int | None]:
    address = next((h.start for h in objects if h.start is not None), None)
    counts = [h.count for h in objects if h.count is not None]
    return address, (sum(counts) if counts else None)


def _values(frag: AppFragment) -> tuple[int, ...]:
    """What a write or control puts on the device: CROB control codes, integral analog
    output values, written times (ms since the epoch), written packed bits."""
    out = [c.control_code for c in frag.crobs]
    for ao in frag.analog_outputs:
        if isinstance(ao.value, int) or float(ao.value).is_integer():
            out.append(int(ao.value))
    out += [t.ms for t in frag.times if t.group == 50]
    if frag.function_code == WRITE:
        out += frag.bits
    return tuple(out)


def _iin(responses: list[Dnp3Message]) -> int | None:
    values = [m.fragment.iin for m in responses if m.fragment.iin is not None]
    if not values:
        return None
    combined = 0
    for value in values:
        combined |= value
    return combined


def _problems(tx: Dnp3Transaction) -> list[str]:
    out = []
    for msg in ([tx.request] if tx.request is not None else []) + tx.responses:
        if msg.bad_crc:
            out.append(f"bad CRC in frame {msg.frame}")
        if msg.fragment.problem is not None:
            out.append(msg.fragment.problem)
    if not tx.complete:
        out.append("multi-fragment response cut short")
    return out


def _dir_mismatch(msg: Dnp3Message) -> bool:
    """DIR set means "from a master" (1815 §9.2.4.1.3): responses should not have it."""
    return msg.link_dir == msg.fragment.is_response


def transaction_to_operation(tx: Dnp3Transaction, endpoints: Endpoints) -> Operation:
    """The protocol-neutral record of one DNP3 transaction."""
    req, resps = tx.request, tx.responses
    first = tx.first
    (src_ip, src_port), (dst_ip, dst_port) = roles(tx, endpoints)
    base = req.fragment if req is not None else resps[0].fragment
    req_objects = list(req.fragment.objects) if req is not None else []
    resp_objects = [h for m in resps for h in m.fragment.objects]
    groups = [h.group for h in (req_objects or resp_objects)]
    address, quantity = _address_quantity(req_objects)
    if address is None and quantity is None:
        address, quantity = _address_quantity(resp_objects)
    values = _values(base)
    iin = _iin(resps)
    # IIN2 bits 0-2 describe the request being answered: an unsolicited response has none.
    errors = 0 if tx.unsolicited else (iin or 0) & IIN2_ERROR_MASK
    problems = _problems(tx)
    if problems:
        status = OpStatus.MALFORMED
    elif req is not None and not resps and base.function_code not in NO_RESPONSE_FUNCTIONS:
        status = OpStatus.NO_RESPONSE
    elif errors:
        status = OpStatus.EXCEPTION
    else:
        status = OpStatus.OK
    detail: dict[str, Any] = {
        "objects": [h.as_detail() for h in (req_objects if req is not None else resp_objects)],
        "link_src": first.master,
        "link_dst": first.outstation,
    }
    if req is not None and resp_objects:
        detail["response_objects"] = [h.as_detail() for h in resp_objects[:MAX_DETAIL_OBJECTS]]
        if len(resp_objects) > MAX_DETAIL_OBJECTS:
            detail["response_objects_total"] = len(resp_objects)
    if iin is not None:
        detail["iin"] = iin_names(iin)
        detail["iin_value"] = iin
    _control_detail(detail, base, resps if req is not None else [])
    times = [t for m in resps for t in m.fragment.times if t.group == 52]
    if times:
        detail["delay_ms"] = times[0].ms
    attrs = {a.variation: a.text for m in resps for a in m.fragment.attributes}
    if attrs:
        detail["attributes"] = attrs
    if tx.unsolicited:
        detail["unsolicited"] = True
    if len(resps) > 1:
        detail["response_fragments"] = [
            {"frame": m.frame, "seq": m.fragment.seq, "iin": m.fragment.iin} for m in resps
        ]
    if tx.confirmed is not None:
        detail["confirmed"] = tx.confirmed
        if tx.confirm_frame is not None:
            detail["confirm_frame"] = tx.confirm_frame
    if problems:
        detail["malformed_reason"] = "; ".join(problems)
    if any(_dir_mismatch(m) for m in ([req] if req is not None else []) + resps):
        detail["dir_mismatch"] = True
    return Operation(
        ts_ns=first.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=op_class(base.function_code, groups),
        function=function_name(base.function_code),
        function_code=base.function_code,
        unit=first.outstation,
        address=address,
        quantity=quantity,
        values=values or None,
        status=status,
        exception=",".join(iin_names(errors)) if errors else None,
        exception_code=(iin or 0) & 0xFF if errors else None,
        latency_ns=resps[0].ts_ns - req.ts_ns if req is not None and resps else None,
        request_frame=req.frame if req is not None else None,
        response_frame=resps[0].frame if resps else None,
        transaction_id=base.seq,
        detail=detail,
    )


def _control_detail(detail: dict[str, Any], base: AppFragment, resps: list[Dnp3Message]) -> None:
    """CROB and analog output blocks of the request, with the outstation's echoed status."""
    echoed = [c for m in resps for c in m.fragment.crobs]
    if base.crobs:
        crobs = [c.as_detail() for c in base.crobs]
        for item, echo in zip(crobs, echoed, strict=False):
            item["response_status"] = echo.status
            item["response_status_name"] = echo.as_detail()["status_name"]
        detail["crob"] = crobs
    echoed_ao = [a for m in resps for a in m.fragment.analog_outputs]
    if base.analog_outputs:
        aos = [a.as_detail() for a in base.analog_outputs]
        for item, echo_ao in zip(aos, echoed_ao, strict=False):
            item["response_status"] = echo_ao.status
        detail["analog_outputs"] = aos
    times = [t for t in base.times if t.group == 50]
    if times:
        detail["time_ms"] = [t.ms for t in times]


def identity_claims(tx: Dnp3Transaction, endpoints: Endpoints) -> list[IdentityClaim]:
    """Device attributes (g0) in the responses, and both sides' link addresses."""
    (master_ip, _), (outstation_ip, _) = roles(tx, endpoints)
    first = tx.first
    claims = [
        IdentityClaim(
            ip=outstation_ip,
            attribute="dnp3_address",
            value=str(first.outstation),
            source=ADDRESS_SOURCE,
            confidence=CONFIDENCE,
            ts_ns=first.ts_ns,
        ),
        IdentityClaim(
            ip=master_ip,
            attribute="dnp3_address",
            value=str(first.master),
            source=ADDRESS_SOURCE,
            confidence=CONFIDENCE,
            ts_ns=first.ts_ns,
        ),
    ]
    for msg in tx.responses:
        for attr in msg.fragment.attributes:
            name = DEVICE_ATTRIBUTES.get(attr.variation)
            text = attr.text
            if name is None or not text:
                continue
            claims.append(
                IdentityClaim(
                    ip=outstation_ip,
                    attribute=name,
                    value=text,
                    source=ATTRIBUTE_SOURCE,
                    confidence=CONFIDENCE,
                    ts_ns=msg.ts_ns,
                )
            )
    return claims
