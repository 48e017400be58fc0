"""Dangerous OPC UA requests, by service (OPC 10000-4 §5):

- Write (§5.10.4) of a Value attribute changes process data: ``process-write``. A Write
  of any other attribute (AccessLevel, RolePermissions, WriteMask, DisplayName, ...)
  changes the node itself, the server's model of the plant: ``program-modify``.
- Call (§5.11.2) runs a method on the server (start, stop, reset, recipe load, or any
  vendor function): ``method-call``; the note names the object and method.
- AddNodes, AddReferences, DeleteNodes, DeleteReferences (§5.7, NodeManagement) change
  the address space: ``program-modify``. OPC UA has no program download; this is the
  nearest thing to changing what the device is.
- HistoryUpdate (§5.10.5) inserts, replaces or deletes archived values or events:
  ``history-modify``, high when it deletes (evidence removal).

Session security (SecurityPolicy None, anonymous or clear-text-password activation) is
judged by the zones-and-conduits policy (``insecure-opcua-crossing``), and browse sweeps
by reconnaissance (``browse-sweep``): neither is a property of one request.

The examples are UA TCP conversations built here byte by byte (OPC 10000-6 §7.1 and
§6.7: a Hello, an OpenSecureChannel under policy None, then MSG chunks in clear), so the
conformance harness can replay them; ``tests/protocols/test_opcua_danger.py`` has the
asyncua stack decode each one as an independent check.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from otconduit.protocols.danger import DangerRule, Example, Hit, OpView

VALUE_ATTRIBUTE: Final = "Value"
NODE_MANAGEMENT: Final = frozenset({"AddNodes", "DeleteNodes", "AddReferences", "DeleteReferences"})
SHOWN: Final = 3  # items named in a note


def _items(detail: Any, key: str) -> list[dict[str, Any]]:
    value = detail.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _names(texts: list[str]) -> str:
    shown = ", ".join(texts[:SHOWN])
    return shown + (f" (+{len(texts) - SHOWN} more)" if len(texts) > SHOWN else "")


def _write(detail: Any) -> list[Hit]:
    nodes = _items(detail, "nodes")
    values = [str(n.get("node")) for n in nodes if n.get("attribute") == VALUE_ATTRIBUTE]
    other = [
        f"{n.get('attribute')} of {n.get('node')}"
        for n in nodes
        if n.get("attribute") != VALUE_ATTRIBUTE
    ]
    out: list[Hit] = []
    if other:
        out.append(Hit("program-modify", note=f"Write of node attributes: {_names(other)}"))
    if values or not nodes:
        out.append(Hit("process-write", note=f"Write {_names(values)}" if values else "Write"))
    return out


def _call(detail: Any) -> list[Hit]:
    methods = [f"{m.get('method')} on {m.get('object')}" for m in _items(detail, "methods")]
    return [Hit("method-call", note=f"Call {_names(methods)}" if methods else "Call")]


def _node_management(fn: str, detail: Any) -> list[Hit]:
    if fn == "AddNodes":
        what = [
            f"{n.get('node_class')} {n.get('browse_name')} under {n.get('parent')}"
            for n in _items(detail, "nodes")
        ]
    elif fn == "DeleteNodes":
        what = [str(n.get("node")) for n in _items(detail, "nodes")]
    else:
        what = [
            f"{r.get('source')} -> {r.get('target')} ({r.get('reference_type')})"
            for r in _items(detail, "references")
        ]
    return [Hit("program-modify", note=f"{fn} {_names(what)}" if what else fn)]


def _history_update(detail: Any) -> list[Hit]:
    updates = _items(detail, "updates")
    kinds = sorted({str(u.get("details")) for u in updates})
    nodes = sorted({str(u["node"]) for u in updates if u.get("node")})
    deletes = any(k.startswith("Delete") for k in kinds)
    note = "HistoryUpdate " + (", ".join(kinds) or "(no details)")
    if nodes:
        note += f" of {_names(nodes)}"
    return [Hit("history-modify", severity="high" if deletes else None, note=note)]


def classify(op: OpView) -> list[Hit]:
    """Rules an OPC UA request triggers (operation classes: see :mod:`.services`)."""
    fn, detail = op["function"], op["detail"]
    if fn == "Write":
        return _write(detail)
    if fn == "Call":
        return _call(detail)
    if fn in NODE_MANAGEMENT:
        return _node_management(fn, detail)
    if fn == "HistoryUpdate":
        return _history_update(detail)
    return []


# -- session security (the policy's insecure-opcua-crossing) ---------------------------------
SESSION_FUNCTIONS: Final = ("OpenSecureChannel", "ActivateSession")
NO_SECURITY: Final = "None"


def weaknesses(op: OpView) -> list[str]:
    """What an OpenSecureChannel or ActivateSession shows about the session's security,
    as short phrases: a channel without message security (SecurityPolicy None or mode
    None), an anonymous user, a user name whose password travels unencrypted."""
    fn, detail = op["function"], op["detail"]
    out: list[str] = []
    if fn == "OpenSecureChannel":
        policy = str(detail.get("security_policy_uri") or "")
        if policy.endswith("#None"):
            out.append("SecurityPolicy None")
        elif detail.get("security_mode") == NO_SECURITY:
            out.append("security mode None")
    elif fn == "ActivateSession":
        token = detail.get("identity_token")
        if token == "anonymous":
            out.append("anonymous user")
        elif token == "username" and detail.get("password_encrypted") is False:
            user = detail.get("user_name")
            out.append(f"password of user {user!r} unencrypted" if user else "password unencrypted")
    return out


# -- address-space walks (browse sweeps) ----------------------------------------------------
BROWSE_FUNCTIONS: Final = frozenset({"Browse", "BrowseNext", "TranslateBrowsePathsToNodeIds"})


def walked(op: OpView) -> tuple[list[str], int]:
    """What one browse request walks: the nodes a Browse starts from and the paths a
    TranslateBrowsePathsToNodeIds resolves (named), plus those its detail does not list
    and, for BrowseNext, one per continuation point (a further page of references)."""
    fn, detail = op["function"], op["detail"]
    quantity = op.get("quantity") or 0
    if fn == "Browse":
        named = [str(n.get("node")) for n in _items(detail, "nodes")]
    elif fn == "TranslateBrowsePathsToNodeIds":
        named = [f"{p.get('start')}{p.get('path')}" for p in _items(detail, "paths")]
    else:
        return [], quantity
    return named, max(0, quantity - len(named))


# -- examples: UA Binary encoding (OPC 10000-6 §5.2) ------------------------------------------
def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack("<i", -1)
    data = text.encode()
    return struct.pack("<i", len(data)) + data


def _numeric(ident: int, ns: int = 0) -> bytes:
    """A numeric NodeId: two-byte, four-byte or full encoding (§5.2.2.9)."""
    if ns == 0 and ident < 256:
        return bytes([0, ident])
    if ns < 256 and ident < 65536:
        return bytes([1, ns]) + struct.pack("<H", ident)
    return bytes([2]) + struct.pack("<HI", ns, ident)


def _text_node(ident: str, ns: int) -> bytes:
    return bytes([3]) + struct.pack("<H", ns) + _string(ident)


def _array(items: list[bytes]) -> bytes:
    return struct.pack("<i", len(items)) + b"".join(items)


NULL_EXTENSION: Final = _numeric(0) + b"\x00"  # ExtensionObject without a body


def _request(type_id: int, handle: int, params: bytes) -> bytes:
    """A service request body: the encoding NodeId, the RequestHeader (§7.33: null
    authentication token, timestamp, handle, return diagnostics, audit entry id, timeout
    hint, no additional header), the parameters."""
    header = _numeric(0) + struct.pack("<qII", 0, handle, 0) + _string(None)
    header += _u32(10_000) + NULL_EXTENSION
    return _numeric(type_id) + header + params


CHANNEL: Final = 7
TOKEN: Final = 1


def _msg(body: bytes, sequence: int, request_id: int) -> bytes:
    """One final MSG chunk in clear (§6.7.2: header, channel id, token id, sequence
    number, request id, body)."""
    size = 8 + 8 + 8 + len(body)
    head = b"MSGF" + _u32(size) + _u32(CHANNEL) + _u32(TOKEN)
    return head + _u32(sequence) + _u32(request_id) + body


def _hello() -> bytes:
    url = _string("opc.tcp://10.0.0.2:4840")
    body = struct.pack("<IIIII", 0, 65536, 65536, 0, 0) + url
    return b"HELF" + _u32(8 + len(body)) + body


def _acknowledge() -> bytes:
    body = struct.pack("<IIIII", 0, 65536, 65536, 0, 0)
    return b"ACKF" + _u32(8 + len(body)) + body


POLICY_NONE: Final = "http://opcfoundation.org/UA/SecurityPolicy#None"


def _open(body: bytes, channel: int) -> bytes:
    """An OPN chunk under policy None: asymmetric header without certificates (§6.7.2.3),
    sequence number 1, request id 1."""
    security = _string(POLICY_NONE) + _u32(0xFFFFFFFF) + _u32(0xFFFFFFFF)
    rest = _u32(channel) + security + _u32(1) + _u32(1) + body
    return b"OPNF" + _u32(8 + len(rest)) + rest


def _open_request() -> bytes:
    # client protocol version, request type Issue, security mode None, no nonce, lifetime
    params = _u32(0) + _u32(0) + _u32(1) + _string(None) + _u32(600_000)
    return _open(_request(446, 1, params), 0)


def _open_response() -> bytes:
    header = struct.pack("<qII", 0, 1, 0) + b"\x00" + _array([]) + NULL_EXTENSION
    token = _u32(CHANNEL) + _u32(TOKEN) + struct.pack("<q", 0) + _u32(600_000)
    params = _u32(0) + token + _string(None)
    return _open(_numeric(449) + header + params, CHANNEL)


def _conversation(params: bytes, type_id: int, *, setup: bool = False) -> Example:
    """The request as the only MSG of a conversation; with ``setup``, after a Hello and
    an OpenSecureChannel (policy None, mode None) and their answers."""
    messages: list[tuple[int, bytes]] = []
    if setup:
        messages = [(0, _hello()), (1, _acknowledge()), (0, _open_request()), (1, _open_response())]
    messages.append((0, _msg(_request(type_id, 2, params), 2, 2)))
    return Example(messages=tuple(messages))


LAB_NS: Final = 2


def _variant_int32(value: int) -> bytes:
    return bytes([6]) + struct.pack("<i", value)


def _write_value(node: bytes, attribute: int, variant: bytes) -> bytes:
    return node + _u32(attribute) + _string(None) + bytes([0x01]) + variant  # DataValue: value


_SPEED = _text_node("CasePacker.Command.MachSpeed", LAB_NS)
WRITE_VALUE: Final = _conversation(
    _array([_write_value(_SPEED, 13, _variant_int32(90))]), 673, setup=True
)
# AccessLevel (attribute 17) is a Byte: CurrentRead | CurrentWrite
WRITE_ACCESS_LEVEL: Final = _conversation(_array([_write_value(_SPEED, 17, bytes([3, 3]))]), 673)
CALL: Final = _conversation(
    _array(
        [
            _text_node("CasePacker", LAB_NS)
            + _text_node("CasePacker.Reset", LAB_NS)
            + _array([_variant_int32(1)])
        ]
    ),
    712,
)


def _expanded(ident: int, ns: int = 0) -> bytes:
    return _numeric(ident, ns)  # no namespace URI or server index flags


ADD_NODES: Final = _conversation(
    _array(
        [
            _expanded(85)  # parent: Objects
            + _numeric(35)  # Organizes
            + _expanded(0)  # let the server choose the id
            + struct.pack("<H", LAB_NS)
            + _string("Backdoor")  # BrowseName
            + _u32(1)  # NodeClass Object
            + NULL_EXTENSION  # NodeAttributes
            + _expanded(58)  # BaseObjectType
        ]
    ),
    488,
)
DELETE_NODES: Final = _conversation(
    _array([_text_node("CasePacker.Status", LAB_NS) + b"\x01"]), 500
)
ADD_REFERENCES: Final = _conversation(
    _array(
        [
            _numeric(85)
            + _numeric(35)
            + b"\x01"  # IsForward
            + _string(None)  # TargetServerUri
            + _text_node("CasePacker.Command.MachSpeed", LAB_NS)
            + _u32(2)  # Variable
        ]
    ),
    494,
)
DELETE_REFERENCES: Final = _conversation(
    _array(
        [
            _numeric(85)
            + _numeric(35)
            + b"\x01"
            + _text_node("CasePacker", LAB_NS)
            + b"\x01"  # DeleteBidirectional
        ]
    ),
    506,
)


def _details(type_id: int, body: bytes) -> bytes:
    """An ExtensionObject with a binary body (§5.2.2.15)."""
    return _numeric(type_id) + b"\x01" + struct.pack("<i", len(body)) + body


# DeleteRawModifiedDetails (OPC 10000-11 §6.9.5): node, isDeleteModified, start, end
HISTORY_DELETE: Final = _conversation(
    _array([_details(688, _SPEED + b"\x00" + struct.pack("<qq", 0, 1 << 60))]), 700
)
# UpdateDataDetails (§6.9.2): node, PerformUpdateType Replace (2), one DataValue
HISTORY_REPLACE: Final = _conversation(
    _array([_details(682, _SPEED + _u32(2) + _array([bytes([0x01]) + _variant_int32(0)]))]),
    700,
)

RULES = (
    DangerRule(
        rule="process-write",
        trigger="Write of a Value attribute",
        examples=(WRITE_VALUE,),
    ),
    DangerRule(
        rule="program-modify",
        trigger="AddNodes, DeleteNodes, AddReferences, DeleteReferences; Write of any "
        "attribute but Value",
        examples=(ADD_NODES, DELETE_NODES, ADD_REFERENCES, DELETE_REFERENCES, WRITE_ACCESS_LEVEL),
    ),
    DangerRule(rule="method-call", trigger="Call", examples=(CALL,)),
    DangerRule(
        rule="history-modify",
        trigger="HistoryUpdate (high when its details delete)",
        examples=(HISTORY_DELETE, HISTORY_REPLACE),
    ),
)
