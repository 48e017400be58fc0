"""CIP request trees and their replies: one Operation per request, wrappers unpacked.

A CIP request may wrap others: a Multiple Service Packet (Vol 1 §A-4.10) carries a list
of requests and its reply a list of replies in the same order; an Unconnected Send
(Vol 1 §3-5.5.4) carries one request for a routed target, and its reply *is* the
target's reply (service = embedded service | 0x80) unless routing failed (then the
reply is an Unconnected Send reply with the routing error). Each request in the tree
becomes its own :class:`~otconduit.model.Operation`; the wrapper's own Operation says
how the wrapper fared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.model import OpClass, Operation, OpStatus
from otconduit.protocols.enip import cip, cm, logix
from otconduit.protocols.enip.classes import class_name
from otconduit.protocols.enip.classify import cip_op_class, dangerous_kind
from otconduit.protocols.enip.epath import EPath

PROTOCOL: Final = "cip"
MAX_DEPTH: Final = 4  # wrappers inside wrappers decoded at most this deep
RESET_TYPES: Final = {  # Vol 1 §5-2.3.2: Identity object Reset service parameter
    0: "Emulate power cycle",
    1: "Return to factory defaults, then power cycle",
    2: "Return to factory defaults except communication parameters, then power cycle",
}


@dataclass(slots=True)
class Node:
    """One request of a tree; ``problems`` lists what did not decode (in this node)."""

    request: cip.CipRequest
    problems: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    kind: str = "plain"  # plain | multiple | unconnected_send
    parent: str | None = None
    index: int | None = None
    route: EPath | None = None
    forward_open: cm.ForwardOpenRequest | None = None
    forward_close: cm.ForwardClose | None = None
    tag: logix.TagRequest | None = None

    @property
    def class_id(self) -> int | None:
        return self.request.path.class_id

    @property
    def name(self) -> str:
        return cip.service_name(self.request.service, self.class_id)

    def walk(self) -> list[Node]:
        out = [self]
        for child in self.children:
            out += child.walk()
        return out


def build(
    message: bytes,
    *,
    depth: int = 0,
    parent: str | None = None,
    index: int | None = None,
    route: EPath | None = None,
) -> Node | None:
    """The request tree of ``message`` (None when it has no service byte)."""
    request, problem = cip.parse_request(message)
    if request is None:
        return None
    node = Node(request=request, parent=parent, index=index, route=route)
    if problem:
        node.problems.append(problem)
        return node
    service, class_id = request.service, request.path.class_id
    if service == cip.MULTIPLE_SERVICE_PACKET and depth < MAX_DEPTH:
        node.kind = "multiple"
        parts, problem = cip.split_multiple(request.data)
        for i, part in enumerate(parts):
            child = build(part, depth=depth + 1, parent=node.name, index=i, route=route)
            if child is None:
                node.problems.append(f"embedded service {i} is empty")
            else:
                node.children.append(child)
    elif class_id == cip.CLASS_CONNECTION_MANAGER and service == cip.UNCONNECTED_SEND:
        node.kind = "unconnected_send"
        send, problem = cm.parse_unconnected_send(request.data)
        if send is not None:
            node.route = send.route
            if depth < MAX_DEPTH:
                child = build(send.message, depth=depth + 1, parent=node.name, route=send.route)
                if child is None:
                    problem = problem or "empty embedded request"
                else:
                    node.children.append(child)
    elif class_id == cip.CLASS_CONNECTION_MANAGER and service in (
        cip.FORWARD_OPEN,
        cip.LARGE_FORWARD_OPEN,
    ):
        node.forward_open, problem = cm.parse_forward_open(
            request.data, large=service == cip.LARGE_FORWARD_OPEN
        )
    elif class_id == cip.CLASS_CONNECTION_MANAGER and service == cip.FORWARD_CLOSE:
        node.forward_close = cm.parse_forward_close(request.data, request=True)
        problem = None if node.forward_close else "truncated Forward Close request"
    elif cip.is_tag_service(service, request.path):
        node.tag, problem = logix.parse_tag_request(service, request.data)
    if problem:
        node.problems.append(f"{node.name}: {problem}")
    return node


def _ok_reply(service: int) -> cip.CipResponse:
    return cip.CipResponse(service=service, general_status=0, extended_status=(), data=b"")


def assign(node: Node, reply: cip.CipResponse | None) -> list[tuple[Node, cip.CipResponse | None]]:
    """Pair every node of the tree with its reply (None: unanswered), in tree order."""
    out: list[tuple[Node, cip.CipResponse | None]] = []
    if node.kind == "multiple":
        out.append((node, reply))
        parts: list[bytes] = []
        if reply is not None and reply.service == cip.MULTIPLE_SERVICE_PACKET and reply.data:
            parts, _ = cip.split_multiple(reply.data)
        for i, child in enumerate(node.children):
            if i < len(parts):
                child_reply, _ = cip.parse_response(parts[i])
            elif reply is not None and reply.general_status not in (0, 0x1E):
                child_reply = reply  # the whole packet failed: so did each part
            else:
                child_reply = None
            out += assign(child, child_reply)
        return out
    if node.kind == "unconnected_send":
        routed_reply = reply is not None and reply.service != cip.UNCONNECTED_SEND
        out.append((node, _ok_reply(cip.UNCONNECTED_SEND) if routed_reply else reply))
        for child in node.children:
            out += assign(child, reply)
        return out
    out.append((node, reply))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Where a request and its reply travelled: addresses, frames and carrier detail."""

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    ts_ns: int
    frame: int
    reply_ts_ns: int | None = None
    reply_frame: int | None = None
    transaction_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _quantity(node: Node) -> int | None:
    req = node.request
    if node.kind == "multiple":
        return len(node.children)
    if node.tag is not None:
        return node.tag.elements
    if req.service in (cip.GET_ATTRIBUTE_LIST, cip.SET_ATTRIBUTE_LIST):
        return logix.attribute_list_count(req.data)
    return None


def _values(node: Node) -> tuple[int, ...] | None:
    req = node.request
    if node.tag is not None:
        return node.tag.values
    if cip_op_class(req.service, node.class_id, req.path.classes) in (
        OpClass.WRITE,
        OpClass.CONTROL,
        OpClass.FIRMWARE,
        OpClass.PROGRAM,
    ) and req.service in (
        cip.SET_ATTRIBUTES_ALL,
        cip.SET_ATTRIBUTE_LIST,
        cip.SET_ATTRIBUTE_SINGLE,
        cip.SET_MEMBER,
    ):
        return logix.short_bytes(req.data)
    return None


def _request_detail(node: Node) -> dict[str, Any]:
    req, path = node.request, node.request.path
    d: dict[str, Any] = {
        "service": node.name,
        "class_id": path.class_id,
        "class_name": class_name(path.class_id) if path.class_id is not None else None,
        "instance_id": path.instance_id,
        "attribute_id": path.attribute_id,
        "member_id": path.member_id,
        "connection_point": path.connection_point,
        "tag": path.tag,
        "path": path.describe(),
        "embedded_in": node.parent,
        "embedded_index": node.index,
        "route_path": node.route.describe() if node.route is not None else None,
    }
    if len(path.classes) > 1:
        d["classes"] = list(path.classes)
    d["dangerous"] = dangerous_kind(
        req.service, path.class_id, path.attribute_id, path.classes, req.data
    )
    if req.service == cip.RESET and req.data:
        d["reset_type"] = req.data[0]
        d["reset_type_name"] = RESET_TYPES.get(req.data[0], "vendor specific")
    if node.forward_open is not None:
        d.update(node.forward_open.detail())
    if node.forward_close is not None:
        d["connection_serial"] = node.forward_close.connection_serial
        d["originator_vendor"] = node.forward_close.originator_vendor
        d["originator_serial"] = node.forward_close.originator_serial
    if node.tag is not None:
        d.update(node.tag.detail)
    if node.problems:
        d["malformed_reason"] = "; ".join(node.problems)
    return d


def operation(
    node: Node, reply: cip.CipResponse | None, ctx: Context, extra: dict[str, Any] | None = None
) -> Operation:
    """The Operation of one request of a tree and its reply."""
    req = node.request
    detail = {**ctx.detail, **_request_detail(node), **(extra or {})}
    status, exception, code = OpStatus.OK, None, None
    if reply is not None:
        detail["general_status"] = reply.general_status
        detail["general_status_name"] = cip.general_status_name(reply.general_status)
        if reply.extended_status:
            detail["extended_status"] = list(reply.extended_status)
            detail["extended_status_name"] = cip.extended_status_name(reply.extended_status[0])
    if node.problems:
        status = OpStatus.MALFORMED
    elif reply is None:
        status = OpStatus.NO_RESPONSE
    elif reply.general_status != 0:
        status = OpStatus.EXCEPTION
        exception = cip.general_status_name(reply.general_status)
        code = reply.general_status
    answered = reply is not None and ctx.reply_ts_ns is not None
    latency = ctx.reply_ts_ns - ctx.ts_ns if answered and ctx.reply_ts_ns is not None else None
    return Operation(
        ts_ns=ctx.ts_ns,
        protocol=PROTOCOL,
        src_ip=ctx.src_ip,
        src_port=ctx.src_port,
        dst_ip=ctx.dst_ip,
        dst_port=ctx.dst_port,
        operation=cip_op_class(req.service, node.class_id, req.path.classes),
        function=node.name,
        function_code=req.service,
        unit=node.class_id,
        address=req.path.instance_id,
        quantity=_quantity(node),
        values=_values(node),
        status=status,
        exception=exception,
        exception_code=code,
        latency_ns=latency,
        request_frame=ctx.frame,
        response_frame=ctx.reply_frame if answered else None,
        transaction_id=ctx.transaction_id,
        detail={k: v for k, v in detail.items() if v is not None},
    )


def orphan_operation(reply: cip.CipResponse, ctx: Context) -> Operation:
    """A reply whose request was never seen (the capture started after it)."""
    name = cip.service_name(reply.service, None)
    detail = {
        **ctx.detail,
        "service": name,
        "general_status": reply.general_status,
        "general_status_name": cip.general_status_name(reply.general_status),
        "orphan_reply": True,
    }
    if reply.extended_status:
        detail["extended_status"] = list(reply.extended_status)
    failed = reply.general_status != 0
    return Operation(
        ts_ns=ctx.ts_ns,
        protocol=PROTOCOL,
        src_ip=ctx.src_ip,
        src_port=ctx.src_port,
        dst_ip=ctx.dst_ip,
        dst_port=ctx.dst_port,
        operation=cip_op_class(reply.service, None),
        function=name,
        function_code=reply.service,
        status=OpStatus.EXCEPTION if failed else OpStatus.OK,
        exception=cip.general_status_name(reply.general_status) if failed else None,
        exception_code=reply.general_status if failed else None,
        response_frame=ctx.reply_frame,
        transaction_id=ctx.transaction_id,
        detail=detail,
    )
