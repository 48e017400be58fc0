"""OPC UA services: which message is which, how each maps onto an operation class, and
the fields of each request and response body that a monitor reports.

A service message body (OPC 10000-6 §6.7.2.2, after the sequence header) is the NodeId
of the message's binary encoding (e.g. ``i=631`` ReadRequest), then the structure of
OPC 10000-4 §5: a RequestHeader or ResponseHeader (§7.33 / §7.34), then the service
parameters. :func:`parse_body` decodes the header and, for the services below, the
parameters; it never raises. A body whose type or header does not decode is reported as
a string (the reason); a body that decodes only in part keeps what was read and says in
``problem`` where it stopped.

Operation classes (what policy and detection speak), by service set of OPC 10000-4:

- read: Attribute Read and HistoryRead, the View set (Browse, BrowseNext,
  TranslateBrowsePathsToNodeIds, RegisterNodes, UnregisterNodes), Query, and the
  Subscription/MonitoredItem sets including Publish: they make the server report values
  or its address space and change nothing in the process.
- write: Write and HistoryUpdate (HistoryUpdate inserts, replaces and deletes history).
- control: Call (a method runs on the server: start, stop, recipe load, ...).
- program: AddNodes, DeleteNodes, AddReferences, DeleteReferences. They change the
  server's address space, its model of the plant; OPC UA has no program download, and
  this is the nearest thing to changing what the device is, so it counts as "program"
  and not as an everyday write.
- identity: the Discovery set (GetEndpoints, FindServers, FindServersOnNetwork,
  RegisterServer, RegisterServer2): applications describing themselves.
- session: Hello/Acknowledge, ReverseHello, OpenSecureChannel, CloseSecureChannel,
  CreateSession, ActivateSession, CloseSession, Cancel.
- other: anything else (unknown encodings, faults without a request).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.model import OpClass
from otconduit.protocols.opcua.binary import (
    BUILTIN_NAMES,
    DataValue,
    DecodeError,
    ExtensionObject,
    NodeId,
    Reader,
    plain,
)
from otconduit.protocols.opcua.status import is_bad


@dataclass(frozen=True, slots=True)
class Service:
    """One service: its name (OPC 10000-4), the numeric ids of its request and response
    binary encodings (namespace 0) and its operation class."""

    name: str
    request_id: int
    response_id: int
    op_class: OpClass


_R, _W, _C, _P, _I, _S = (
    OpClass.READ,
    OpClass.WRITE,
    OpClass.CONTROL,
    OpClass.PROGRAM,
    OpClass.IDENTITY,
    OpClass.SESSION,
)
SERVICES: Final = (
    Service("FindServers", 422, 425, _I),
    Service("GetEndpoints", 428, 431, _I),
    Service("RegisterServer", 437, 440, _I),
    Service("FindServersOnNetwork", 12208, 12209, _I),
    Service("RegisterServer2", 12211, 12212, _I),
    Service("OpenSecureChannel", 446, 449, _S),
    Service("CloseSecureChannel", 452, 455, _S),
    Service("CreateSession", 461, 464, _S),
    Service("ActivateSession", 467, 470, _S),
    Service("CloseSession", 473, 476, _S),
    Service("Cancel", 479, 482, _S),
    Service("AddNodes", 488, 491, _P),
    Service("AddReferences", 494, 497, _P),
    Service("DeleteNodes", 500, 503, _P),
    Service("DeleteReferences", 506, 509, _P),
    Service("Browse", 527, 530, _R),
    Service("BrowseNext", 533, 536, _R),
    Service("TranslateBrowsePathsToNodeIds", 554, 557, _R),
    Service("RegisterNodes", 560, 563, _R),
    Service("UnregisterNodes", 566, 569, _R),
    Service("QueryFirst", 615, 618, _R),
    Service("QueryNext", 621, 624, _R),
    Service("Read", 631, 634, _R),
    Service("HistoryRead", 664, 667, _R),
    Service("Write", 673, 676, _W),
    Service("HistoryUpdate", 700, 703, _W),
    Service("Call", 712, 715, _C),
    Service("CreateMonitoredItems", 751, 754, _R),
    Service("ModifyMonitoredItems", 763, 766, _R),
    Service("SetMonitoringMode", 769, 772, _R),
    Service("SetTriggering", 775, 778, _R),
    Service("DeleteMonitoredItems", 781, 784, _R),
    Service("CreateSubscription", 787, 790, _R),
    Service("ModifySubscription", 793, 796, _R),
    Service("SetPublishingMode", 799, 802, _R),
    Service("Publish", 826, 829, _R),
    Service("Republish", 832, 835, _R),
    Service("TransferSubscriptions", 841, 844, _R),
    Service("DeleteSubscriptions", 847, 850, _R),
)
BY_REQUEST: Final = {s.request_id: s for s in SERVICES}
BY_RESPONSE: Final = {s.response_id: s for s in SERVICES}
SERVICE_FAULT: Final = 397
OPEN_SECURE_CHANNEL: Final = BY_REQUEST[446]
CLOSE_SECURE_CHANNEL: Final = BY_REQUEST[452]
KNOWN_TYPES: Final = frozenset(BY_REQUEST) | frozenset(BY_RESPONSE) | {SERVICE_FAULT}


def type_name(type_id: int) -> str:
    """ "ReadRequest", "ReadResponse", "ServiceFault" or "i=<id>"."""
    if type_id in BY_REQUEST:
        return BY_REQUEST[type_id].name + "Request"
    if type_id in BY_RESPONSE:
        return BY_RESPONSE[type_id].name + "Response"
    if type_id == SERVICE_FAULT:
        return "ServiceFault"
    return f"i={type_id}"


# --- enumerations (OPC 10000-4 §7, OPC 10000-3 §5.9 / §8) ----------------------------------

SECURITY_MODES: Final = {0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"}
REQUEST_TYPES: Final = {0: "Issue", 1: "Renew"}
TIMESTAMPS: Final = {0: "Source", 1: "Server", 2: "Both", 3: "Neither", 4: "Invalid"}
BROWSE_DIRECTIONS: Final = {0: "Forward", 1: "Inverse", 2: "Both", 3: "Invalid"}
MONITORING_MODES: Final = {0: "Disabled", 1: "Sampling", 2: "Reporting"}
APPLICATION_TYPES: Final = {0: "Server", 1: "Client", 2: "ClientAndServer", 3: "DiscoveryServer"}
USER_TOKEN_TYPES: Final = {0: "anonymous", 1: "username", 2: "x509", 3: "issued"}
NODE_CLASSES: Final = {
    0: "Unspecified",
    1: "Object",
    2: "Variable",
    4: "Method",
    8: "ObjectType",
    16: "VariableType",
    32: "ReferenceType",
    64: "DataType",
    128: "View",
}
ATTRIBUTES: Final = {
    1: "NodeId",
    2: "NodeClass",
    3: "BrowseName",
    4: "DisplayName",
    5: "Description",
    6: "WriteMask",
    7: "UserWriteMask",
    8: "IsAbstract",
    9: "Symmetric",
    10: "InverseName",
    11: "ContainsNoLoops",
    12: "EventNotifier",
    13: "Value",
    14: "DataType",
    15: "ValueRank",
    16: "ArrayDimensions",
    17: "AccessLevel",
    18: "UserAccessLevel",
    19: "MinimumSamplingInterval",
    20: "Historizing",
    21: "Executable",
    22: "UserExecutable",
    23: "DataTypeDefinition",
    24: "RolePermissions",
    25: "UserRolePermissions",
    26: "AccessRestrictions",
    27: "AccessLevelEx",
}
VALUE_ATTRIBUTE: Final = 13
# Binary encodings of the identity tokens of ActivateSession (OPC 10000-4 §7.36).
IDENTITY_TOKENS: Final = {321: "anonymous", 324: "username", 327: "x509", 940: "issued"}
# Binary encodings of HistoryRead / HistoryUpdate details (OPC 10000-11 §6.5, §6.9).
HISTORY_DETAILS: Final = {
    646: "ReadEventDetails",
    649: "ReadRawModifiedDetails",
    652: "ReadProcessedDetails",
    655: "ReadAtTimeDetails",
    23500: "ReadAnnotationDataDetails",
    682: "UpdateDataDetails",
    11300: "UpdateStructureDataDetails",
    685: "UpdateEventDetails",
    688: "DeleteRawModifiedDetails",
    691: "DeleteAtTimeDetails",
    694: "DeleteEventDetails",
}
DATA_CHANGE_NOTIFICATION: Final = 811
MAX_LISTED: Final = 32  # items of one request listed in an Operation's detail


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, str(value))


def sha1_thumbprint(certificate: bytes | None) -> str | None:
    """SHA-1 of the first DER certificate of a chain (the application instance
    certificate; OPC 10000-6 §6.2.3 lets a ByteString carry its issuers after it)."""
    if not certificate:
        return None
    return hashlib.sha1(certificate[: _der_length(certificate)]).hexdigest()


def _der_length(data: bytes) -> int:
    """Length of the DER element at the start of ``data`` (all of it when unclear)."""
    if len(data) < 2 or data[0] != 0x30:
        return len(data)
    first = data[1]
    if first < 0x80:
        return min(len(data), 2 + first)
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return len(data)
    return min(len(data), 2 + count + int.from_bytes(data[2 : 2 + count], "big"))


# --- shared structures ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Application:
    """ApplicationDescription (OPC 10000-4 §7.2)."""

    uri: str | None
    product_uri: str | None
    name: str | None
    locale: str | None
    type: int
    gateway_uri: str | None
    discovery_profile_uri: str | None
    discovery_urls: tuple[str, ...]

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "application_uri": self.uri,
            "product_uri": self.product_uri,
            "application_name": self.name,
            "application_type": _name(APPLICATION_TYPES, self.type),
        }
        if self.discovery_urls:
            out["discovery_urls"] = list(self.discovery_urls[:8])
        return out


@dataclass(frozen=True, slots=True)
class UserTokenPolicy:
    policy_id: str | None
    token_type: int
    issued_token_type: str | None
    issuer_endpoint_url: str | None
    security_policy_uri: str | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """EndpointDescription (OPC 10000-4 §7.14)."""

    url: str | None
    server: Application
    certificate: bytes | None
    security_mode: int
    security_policy_uri: str | None
    user_tokens: tuple[UserTokenPolicy, ...]
    transport_profile_uri: str | None
    security_level: int

    def detail(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.url,
            "security_mode": _name(SECURITY_MODES, self.security_mode),
            "security_policy_uri": self.security_policy_uri,
            "user_token_types": [_name(USER_TOKEN_TYPES, t.token_type) for t in self.user_tokens],
            "security_level": self.security_level,
            "certificate_sha1": sha1_thumbprint(self.certificate),
        }


def application(r: Reader) -> Application:
    uri = r.string()
    product = r.string()
    locale, name = r.localized_text()
    app_type = r.u32()
    gateway = r.string()
    profile = r.string()
    urls = tuple(u for u in r.strings() if u is not None)
    return Application(uri, product, name, locale, app_type, gateway, profile, urls)


def endpoint(r: Reader) -> Endpoint:
    url = r.string()
    server = application(r)
    cert = r.bytestring()
    mode = r.u32()
    policy = r.string()
    tokens = tuple(
        UserTokenPolicy(r.string(), r.u32(), r.string(), r.string(), r.string())
        for _ in range(r.array_length(20))
    )
    transport = r.string()
    level = r.u8()
    return Endpoint(url, server, cert, mode, policy, tokens, transport, level)


# --- message bodies ------------------------------------------------------------------------


@dataclass(slots=True)
class Body:
    """A decoded service message body (see the module docstring)."""

    type_id: int  # numeric id of the encoding NodeId (namespace 0), -1 otherwise
    type_node: NodeId
    service: Service | None
    is_request: bool
    handle: int
    service_result: int | None = None  # responses
    timeout_hint: int | None = None  # requests
    info: dict[str, Any] = field(default_factory=dict)
    quantity: int | None = None
    values: tuple[int, ...] | None = None
    results: tuple[int, ...] = ()  # per-operation StatusCodes of a response
    problem: str | None = None
    # Carried for identity and pairing, not reported as such:
    read_nodes: tuple[tuple[NodeId, int], ...] = ()
    read_values: tuple[DataValue, ...] = ()
    servers: tuple[Application, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    certificate: bytes | None = None  # the sender's application instance certificate
    client: Application | None = None

    @property
    def is_fault(self) -> bool:
        return self.type_id == SERVICE_FAULT

    @property
    def name(self) -> str:
        return type_name(self.type_id) if self.type_id >= 0 else str(self.type_node)


def peek_type_id(data: bytes, at: int) -> int | None:
    """The numeric type id a body at ``data[at]`` starts with, when it uses the compact
    four-byte NodeId encoding every namespace-0 service type uses (or two-byte)."""
    if at + 2 <= len(data) and data[at] == 0:
        return data[at + 1]
    if at + 4 <= len(data) and data[at] == 1 and data[at + 1] == 0:
        return data[at + 2] | (data[at + 3] << 8)
    return None


def parse_body(body: bytes) -> Body | str:
    """Decode one message body (its type NodeId, header and parameters)."""
    r = Reader(body)
    try:
        node = r.node_id()
    except DecodeError as e:
        return f"message type: {e}"
    type_id = node.numeric if node.numeric is not None else -1
    req = BY_REQUEST.get(type_id)
    resp = BY_RESPONSE.get(type_id)
    if req is None and resp is None and type_id != SERVICE_FAULT:
        return f"unknown message type {node}"
    is_request = req is not None
    try:
        if is_request:
            r.node_id()  # authenticationToken: a session secret, not kept
            r.i64()  # timestamp
            handle = r.u32()
            r.u32()  # returnDiagnostics
            r.skip_bytestring()  # auditEntryId
            timeout = r.u32()
            r.extension_object()  # additionalHeader
            out = Body(type_id, node, req, True, handle, timeout_hint=timeout)
        else:
            r.i64()  # timestamp
            handle = r.u32()
            result = r.u32()
            r.diagnostic_info()
            r.strings()  # stringTable
            r.extension_object()  # additionalHeader
            out = Body(type_id, node, resp, False, handle, service_result=result)
    except DecodeError as e:
        kind = "RequestHeader" if is_request else "ResponseHeader"
        return f"{type_name(type_id)} {kind}: {e}"
    parser = _PARSERS.get(type_id)
    if parser is not None:
        try:
            parser(r, out)
        except DecodeError as e:
            out.problem = f"{type_name(type_id)}: {e}"
        except (ValueError, OverflowError) as e:  # defensive: never leave the parser
            out.problem = f"{type_name(type_id)}: {e}"
    return out


# --- parameter parsers: each fills ``Body`` from the Reader after the header ---------------


def _listed(items: list[Any]) -> list[Any]:
    return items[:MAX_LISTED]


def _read_value_id(r: Reader) -> tuple[NodeId, int, str | None]:
    node = r.node_id()
    attribute = r.u32()
    index_range = r.string()
    r.qualified_name()  # dataEncoding
    return node, attribute, index_range


def _node_item(node: NodeId, attribute: int, index_range: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"node": str(node), "attribute": _name(ATTRIBUTES, attribute)}
    if index_range:
        item["index_range"] = index_range
    return item


def _results(r: Reader, b: Body) -> None:
    """The common tail: StatusCode[] results, DiagnosticInfo[]."""
    b.results = r.status_codes()
    b.quantity = len(b.results)
    r.skip_diagnostic_infos()


def _open_channel_req(r: Reader, b: Body) -> None:
    b.info["client_protocol_version"] = r.u32()
    b.info["request_type"] = _name(REQUEST_TYPES, r.u32())
    b.info["security_mode"] = _name(SECURITY_MODES, r.u32())
    nonce = r.bytestring()
    b.info["client_nonce_length"] = len(nonce or b"")
    b.info["requested_lifetime"] = r.u32()


def _open_channel_resp(r: Reader, b: Body) -> None:
    b.info["server_protocol_version"] = r.u32()
    b.info["secure_channel_id"] = r.u32()
    b.info["token_id"] = r.u32()
    r.i64()  # createdAt
    b.info["revised_lifetime"] = r.u32()
    nonce = r.bytestring()
    b.info["server_nonce_length"] = len(nonce or b"")


def _get_endpoints_req(r: Reader, b: Body) -> None:
    b.info["endpoint_url"] = r.string()
    locales = r.strings()
    profiles = r.strings()
    if locales:
        b.info["locale_ids"] = _listed(locales)
    if profiles:
        b.info["profile_uris"] = _listed(profiles)


def _get_endpoints_resp(r: Reader, b: Body) -> None:
    b.endpoints = tuple(endpoint(r) for _ in range(r.array_length(40)))
    b.quantity = len(b.endpoints)
    b.info["endpoints"] = [e.detail() for e in b.endpoints[:MAX_LISTED]]
    servers: dict[str | None, Application] = {}
    for e in b.endpoints:
        servers.setdefault(e.server.uri, e.server)
    b.servers = tuple(servers.values())
    b.info["servers"] = [s.detail() for s in b.servers[:MAX_LISTED]]


def _find_servers_req(r: Reader, b: Body) -> None:
    b.info["endpoint_url"] = r.string()
    r.strings()  # localeIds
    uris = r.strings()
    if uris:
        b.info["server_uris"] = _listed(uris)


def _find_servers_resp(r: Reader, b: Body) -> None:
    b.servers = tuple(application(r) for _ in range(r.array_length(25)))
    b.quantity = len(b.servers)
    b.info["servers"] = [s.detail() for s in b.servers[:MAX_LISTED]]


def _create_session_req(r: Reader, b: Body) -> None:
    b.client = application(r)
    b.info["client"] = b.client.detail()
    b.info["server_uri"] = r.string()
    b.info["endpoint_url"] = r.string()
    b.info["session_name"] = r.string()
    r.skip_bytestring()  # clientNonce
    b.certificate = r.bytestring()
    b.info["client_certificate_sha1"] = sha1_thumbprint(b.certificate)
    b.info["requested_session_timeout"] = r.f64()
    b.info["max_response_message_size"] = r.u32()


def _create_session_resp(r: Reader, b: Body) -> None:
    b.info["session_id"] = str(r.node_id())
    r.node_id()  # authenticationToken: a session secret, not kept
    b.info["revised_session_timeout"] = r.f64()
    r.skip_bytestring()  # serverNonce
    b.certificate = r.bytestring()
    b.info["server_certificate_sha1"] = sha1_thumbprint(b.certificate)
    b.endpoints = tuple(endpoint(r) for _ in range(r.array_length(40)))
    b.info["endpoints"] = [e.detail() for e in b.endpoints[:MAX_LISTED]]
    servers: dict[str | None, Application] = {}
    for e in b.endpoints:
        servers.setdefault(e.server.uri, e.server)
    b.servers = tuple(servers.values())
    b.info["servers"] = [s.detail() for s in b.servers[:MAX_LISTED]]
    for _ in range(r.array_length(8)):  # serverSoftwareCertificates (deprecated)
        r.skip_bytestring()
        r.skip_bytestring()
    r.string()  # serverSignature.algorithm
    r.skip_bytestring()  # serverSignature.signature
    b.info["max_request_message_size"] = r.u32()


def _activate_session_req(r: Reader, b: Body) -> None:
    r.string()  # clientSignature.algorithm
    r.skip_bytestring()
    for _ in range(r.array_length(8)):  # clientSoftwareCertificates
        r.skip_bytestring()
        r.skip_bytestring()
    locales = r.strings()
    if locales:
        b.info["locale_ids"] = _listed(locales)
    token = r.extension_object()
    b.info.update(identity_token(token))
    r.string()  # userTokenSignature.algorithm
    r.skip_bytestring()


def identity_token(token: ExtensionObject) -> dict[str, Any]:
    """What an ActivateSession identity token says, minus its secrets: the token type,
    policy id, user name, whether a password was encrypted, a certificate thumbprint."""
    type_id = token.type_id.numeric
    kind = IDENTITY_TOKENS.get(type_id) if type_id is not None else None
    out: dict[str, Any] = {"identity_token": kind or str(token.type_id)}
    if token.body is None:
        if type_id == 0 and token.encoding == 0:
            out["identity_token"] = "anonymous"  # a null token means anonymous (§5.6.3)
        return out
    r = Reader(token.body)
    try:
        out["identity_policy_id"] = r.string()
        if kind == "username":
            out["user_name"] = r.string()
            password = r.bytestring()
            algorithm = r.string()
            out["password_encrypted"] = bool(algorithm)
            out["password_present"] = bool(password)
            if algorithm:
                out["password_encryption"] = algorithm
        elif kind == "x509":
            out["user_certificate_sha1"] = sha1_thumbprint(r.bytestring())
        elif kind == "issued":
            data = r.bytestring()
            algorithm = r.string()
            out["token_length"] = len(data or b"")
            out["token_encrypted"] = bool(algorithm)
    except DecodeError as e:
        out["identity_token_problem"] = str(e)
    return out


def _activate_session_resp(r: Reader, b: Body) -> None:
    r.skip_bytestring()  # serverNonce
    _results(r, b)


def _close_session_req(r: Reader, b: Body) -> None:
    b.info["delete_subscriptions"] = r.boolean()


def _cancel_req(r: Reader, b: Body) -> None:
    b.info["cancel_request_handle"] = r.u32()


def _cancel_resp(r: Reader, b: Body) -> None:
    b.info["cancel_count"] = r.u32()


def _read_req(r: Reader, b: Body) -> None:
    b.info["max_age"] = r.f64()
    b.info["timestamps_to_return"] = _name(TIMESTAMPS, r.u32())
    items = [_read_value_id(r) for _ in range(r.array_length(12))]
    b.read_nodes = tuple((node, attribute) for node, attribute, _ in items)
    b.quantity = len(items)
    b.info["nodes"] = [_node_item(*item) for item in items[:MAX_LISTED]]


def _read_resp(r: Reader, b: Body) -> None:
    values = tuple(r.data_value() for _ in range(r.array_length(1)))
    r.skip_diagnostic_infos()
    b.read_values = values
    b.results = tuple(v.status for v in values)
    b.quantity = len(values)
    b.info["values"] = [_value_detail(v) for v in values[:MAX_LISTED]]


def _value_detail(v: DataValue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if v.status:
        out["status"] = v.status
    if v.value is not None:
        out["type"] = BUILTIN_NAMES.get(v.value.type_id, str(v.value.type_id))
        out["value"] = plain(v.value)
        if v.value.is_array:
            out["array_length"] = v.value.length
    return out


def _write_req(r: Reader, b: Body) -> None:
    items: list[dict[str, Any]] = []
    ints: list[int] = []
    integral = True
    n = r.array_length(11)
    for _ in range(n):
        node = r.node_id()
        attribute = r.u32()
        index_range = r.string()
        dv = r.data_value()
        if len(items) < MAX_LISTED:
            item = _node_item(node, attribute, index_range)
            item.update(_value_detail(dv))
            items.append(item)
        value = dv.value.value if dv.value is not None and not dv.value.is_array else None
        if isinstance(value, bool | int) and integral:
            ints.append(int(value))
        else:
            integral = False
    b.quantity = n
    b.info["nodes"] = items
    if integral and ints:
        b.values = tuple(ints)


def _call_req(r: Reader, b: Body) -> None:
    methods: list[dict[str, Any]] = []
    n = r.array_length(5)
    for _ in range(n):
        obj = r.node_id()
        method = r.node_id()
        args = [r.variant() for _ in range(r.array_length(1))]
        if len(methods) < MAX_LISTED:
            methods.append(
                {
                    "object": str(obj),
                    "method": str(method),
                    "arguments": [plain(a) for a in args[:8]],
                }
            )
    b.quantity = n
    b.info["methods"] = methods


def _call_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    outputs: list[int] = []
    for _ in range(r.array_length(16)):
        codes.append(r.u32())
        r.status_codes()  # inputArgumentResults
        r.skip_diagnostic_infos()
        args = [r.variant() for _ in range(r.array_length(1))]
        outputs.append(len(args))
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)
    b.info["output_arguments"] = _listed(outputs)


def _browse_req(r: Reader, b: Body) -> None:
    view = r.node_id()
    r.i64()  # view timestamp
    r.u32()  # view version
    if view != NodeId(0, "i", 0):
        b.info["view"] = str(view)
    b.info["max_references_per_node"] = r.u32()
    nodes: list[dict[str, Any]] = []
    n = r.array_length(17)
    for _ in range(n):
        node = r.node_id()
        direction = r.u32()
        ref_type = r.node_id()
        r.boolean()  # includeSubtypes
        r.u32()  # nodeClassMask
        r.u32()  # resultMask
        if len(nodes) < MAX_LISTED:
            nodes.append(
                {
                    "node": str(node),
                    "direction": _name(BROWSE_DIRECTIONS, direction),
                    "reference_type": str(ref_type),
                }
            )
    b.quantity = n
    b.info["nodes"] = nodes


def _browse_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    counts: list[int] = []
    names: list[str] = []
    continuation = 0
    for _ in range(r.array_length(12)):
        codes.append(r.u32())
        if r.bytestring():
            continuation += 1
        refs = r.array_length(18)
        for _ in range(refs):
            r.node_id()  # referenceTypeId
            r.boolean()  # isForward
            r.expanded_node_id()
            ns, name = r.qualified_name()
            r.localized_text()
            r.u32()  # nodeClass
            r.expanded_node_id()  # typeDefinition
            if len(names) < MAX_LISTED:
                names.append(f"{ns}:{name}" if ns else str(name))
        counts.append(refs)
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)
    b.info["references"] = _listed(counts)
    b.info["reference_count"] = sum(counts)
    b.info["browse_names"] = names
    if continuation:
        b.info["continuation_points"] = continuation


def _browse_next_req(r: Reader, b: Body) -> None:
    b.info["release_continuation_points"] = r.boolean()
    n = r.array_length(4)
    for _ in range(n):
        r.skip_bytestring()
    b.quantity = n


def _translate_req(r: Reader, b: Body) -> None:
    paths: list[dict[str, Any]] = []
    n = r.array_length(6)
    for _ in range(n):
        start = r.node_id()
        names = []
        for _ in range(r.array_length(10)):
            r.node_id()  # referenceTypeId
            r.boolean()  # isInverse
            r.boolean()  # includeSubtypes
            ns, name = r.qualified_name()
            names.append(f"{ns}:{name}" if ns else str(name))
        if len(paths) < MAX_LISTED:
            paths.append({"start": str(start), "path": "/" + "/".join(names)})
    b.quantity = n
    b.info["paths"] = paths


def _translate_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    targets: list[str] = []
    for _ in range(r.array_length(8)):
        codes.append(r.u32())
        for _ in range(r.array_length(6)):
            target = r.expanded_node_id()
            r.u32()  # remainingPathIndex
            if len(targets) < MAX_LISTED:
                targets.append(str(target))
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)
    b.info["targets"] = targets


def _node_list_req(r: Reader, b: Body) -> None:
    nodes = [r.node_id() for _ in range(r.array_length(2))]
    b.quantity = len(nodes)
    b.info["nodes"] = [str(n) for n in nodes[:MAX_LISTED]]


def _history_read_req(r: Reader, b: Body) -> None:
    details = r.extension_object()
    b.info["details"] = _history_name(details)
    b.info["timestamps_to_return"] = _name(TIMESTAMPS, r.u32())
    b.info["release_continuation_points"] = r.boolean()
    nodes: list[dict[str, Any]] = []
    n = r.array_length(14)
    for _ in range(n):
        node = r.node_id()
        index_range = r.string()
        r.qualified_name()
        r.skip_bytestring()  # continuationPoint
        if len(nodes) < MAX_LISTED:
            nodes.append(_node_item(node, VALUE_ATTRIBUTE, index_range))
    b.quantity = n
    b.info["nodes"] = nodes


def _history_name(obj: ExtensionObject) -> str:
    numeric = obj.type_id.numeric
    if numeric is not None and numeric in HISTORY_DETAILS:
        return HISTORY_DETAILS[numeric]
    return str(obj.type_id)


def _history_read_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    for _ in range(r.array_length(8)):
        codes.append(r.u32())
        r.skip_bytestring()  # continuationPoint
        r.extension_object()  # historyData
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)


def _history_update_req(r: Reader, b: Body) -> None:
    updates: list[dict[str, Any]] = []
    n = r.array_length(3)
    for _ in range(n):
        obj = r.extension_object()
        item: dict[str, Any] = {"details": _history_name(obj)}
        if obj.body:  # every update/delete details structure starts with the NodeId
            with contextlib.suppress(DecodeError):
                item["node"] = str(Reader(obj.body).node_id())
        if len(updates) < MAX_LISTED:
            updates.append(item)
    b.quantity = n
    b.info["updates"] = updates


def _history_update_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    for _ in range(r.array_length(12)):
        codes.append(r.u32())
        r.status_codes()  # operationResults
        r.skip_diagnostic_infos()
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)


def _add_nodes_req(r: Reader, b: Body) -> None:
    items: list[dict[str, Any]] = []
    n = r.array_length(16)
    for _ in range(n):
        parent = r.expanded_node_id()
        ref_type = r.node_id()
        requested = r.expanded_node_id()
        ns, name = r.qualified_name()
        node_class = r.u32()
        r.extension_object()  # nodeAttributes
        type_def = r.expanded_node_id()
        if len(items) < MAX_LISTED:
            items.append(
                {
                    "parent": str(parent),
                    "reference_type": str(ref_type),
                    "requested_node": str(requested),
                    "browse_name": f"{ns}:{name}" if ns else name,
                    "node_class": _name(NODE_CLASSES, node_class),
                    "type_definition": str(type_def),
                }
            )
    b.quantity = n
    b.info["nodes"] = items


def _add_nodes_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    added: list[str] = []
    for _ in range(r.array_length(6)):
        codes.append(r.u32())
        node = r.node_id()
        if len(added) < MAX_LISTED:
            added.append(str(node))
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)
    b.info["added_nodes"] = added


def _add_references_req(r: Reader, b: Body) -> None:
    refs: list[dict[str, Any]] = []
    n = r.array_length(14)
    for _ in range(n):
        source = r.node_id()
        ref_type = r.node_id()
        forward = r.boolean()
        r.string()  # targetServerUri
        target = r.expanded_node_id()
        r.u32()  # targetNodeClass
        if len(refs) < MAX_LISTED:
            refs.append(_reference(source, ref_type, target, forward))
    b.quantity = n
    b.info["references"] = refs


def _reference(source: NodeId, ref_type: NodeId, target: Any, forward: bool) -> dict[str, Any]:
    return {
        "source": str(source),
        "reference_type": str(ref_type),
        "target": str(target),
        "forward": forward,
    }


def _delete_nodes_req(r: Reader, b: Body) -> None:
    nodes: list[dict[str, Any]] = []
    n = r.array_length(3)
    for _ in range(n):
        node = r.node_id()
        targets = r.boolean()
        if len(nodes) < MAX_LISTED:
            nodes.append({"node": str(node), "delete_target_references": targets})
    b.quantity = n
    b.info["nodes"] = nodes


def _delete_references_req(r: Reader, b: Body) -> None:
    refs: list[dict[str, Any]] = []
    n = r.array_length(7)
    for _ in range(n):
        source = r.node_id()
        ref_type = r.node_id()
        forward = r.boolean()
        target = r.expanded_node_id()
        r.boolean()  # deleteBidirectional
        if len(refs) < MAX_LISTED:
            refs.append(_reference(source, ref_type, target, forward))
    b.quantity = n
    b.info["references"] = refs


def _create_subscription_req(r: Reader, b: Body) -> None:
    b.info["publishing_interval"] = r.f64()
    b.info["lifetime_count"] = r.u32()
    b.info["max_keep_alive_count"] = r.u32()
    b.info["max_notifications_per_publish"] = r.u32()
    b.info["publishing_enabled"] = r.boolean()
    b.info["priority"] = r.u8()


def _create_subscription_resp(r: Reader, b: Body) -> None:
    b.info["subscription_id"] = r.u32()
    b.info["revised_publishing_interval"] = r.f64()
    b.info["revised_lifetime_count"] = r.u32()
    b.info["revised_max_keep_alive_count"] = r.u32()


def _create_items_req(r: Reader, b: Body) -> None:
    b.info["subscription_id"] = r.u32()
    b.info["timestamps_to_return"] = _name(TIMESTAMPS, r.u32())
    items: list[dict[str, Any]] = []
    n = r.array_length(30)
    for _ in range(n):
        node, attribute, index_range = _read_value_id(r)
        mode = r.u32()
        r.u32()  # clientHandle
        interval = r.f64()
        r.extension_object()  # filter
        queue = r.u32()
        r.boolean()  # discardOldest
        if len(items) < MAX_LISTED:
            item = _node_item(node, attribute, index_range)
            item.update(
                mode=_name(MONITORING_MODES, mode), sampling_interval=interval, queue_size=queue
            )
            items.append(item)
    b.quantity = n
    b.info["items"] = items


def _create_items_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    ids: list[int] = []
    for _ in range(r.array_length(23)):
        codes.append(r.u32())
        ids.append(r.u32())
        r.f64()  # revisedSamplingInterval
        r.u32()  # revisedQueueSize
        r.extension_object()  # filterResult
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)
    b.info["monitored_item_ids"] = _listed(ids)


def _subscription_ids_req(r: Reader, b: Body) -> None:
    ids = r.u32_array()
    b.quantity = len(ids)
    b.info["subscription_ids"] = list(ids[:MAX_LISTED])


def _subscription_items_req(r: Reader, b: Body) -> None:
    """DeleteMonitoredItems / SetMonitoringMode: subscription id (and mode), item ids."""
    b.info["subscription_id"] = r.u32()
    if b.type_id == 769:
        b.info["mode"] = _name(MONITORING_MODES, r.u32())
    ids = r.u32_array()
    b.quantity = len(ids)


def _subscription_req(r: Reader, b: Body) -> None:
    b.info["subscription_id"] = r.u32()


def _set_publishing_req(r: Reader, b: Body) -> None:
    b.info["publishing_enabled"] = r.boolean()
    _subscription_ids_req(r, b)


def _publish_req(r: Reader, b: Body) -> None:
    n = r.array_length(8)
    r.skip(8 * n)
    b.info["acknowledgements"] = n


def _publish_resp(r: Reader, b: Body) -> None:
    b.info["subscription_id"] = r.u32()
    b.info["available_sequence_numbers"] = len(r.u32_array())
    b.info["more_notifications"] = r.boolean()
    _notification_message(r, b)
    b.results = r.status_codes()  # acknowledgement results
    r.skip_diagnostic_infos()


def _notification_message(r: Reader, b: Body) -> None:
    b.info["sequence_number"] = r.u32()
    r.i64()  # publishTime
    notifications = 0
    data = [r.extension_object() for _ in range(r.array_length(3))]
    for obj in data:
        if obj.type_id.numeric == DATA_CHANGE_NOTIFICATION and obj.body and len(obj.body) >= 4:
            notifications += max(0, int.from_bytes(obj.body[:4], "little", signed=True))
        else:
            notifications += 1
    b.info["notification_data"] = len(data)
    b.quantity = notifications


def _republish_req(r: Reader, b: Body) -> None:
    b.info["subscription_id"] = r.u32()
    b.info["retransmit_sequence_number"] = r.u32()


def _republish_resp(r: Reader, b: Body) -> None:
    _notification_message(r, b)


def _transfer_req(r: Reader, b: Body) -> None:
    _subscription_ids_req(r, b)
    b.info["send_initial_values"] = r.boolean()


def _results_resp(r: Reader, b: Body) -> None:
    _results(r, b)


def _transfer_resp(r: Reader, b: Body) -> None:
    codes: list[int] = []
    for _ in range(r.array_length(8)):
        codes.append(r.u32())
        r.u32_array()  # availableSequenceNumbers
    r.skip_diagnostic_infos()
    b.results = tuple(codes)
    b.quantity = len(codes)


_PARSERS: Final = {
    446: _open_channel_req,
    449: _open_channel_resp,
    428: _get_endpoints_req,
    431: _get_endpoints_resp,
    422: _find_servers_req,
    425: _find_servers_resp,
    461: _create_session_req,
    464: _create_session_resp,
    467: _activate_session_req,
    470: _activate_session_resp,
    473: _close_session_req,
    479: _cancel_req,
    482: _cancel_resp,
    488: _add_nodes_req,
    491: _add_nodes_resp,
    494: _add_references_req,
    497: _results_resp,
    500: _delete_nodes_req,
    503: _results_resp,
    506: _delete_references_req,
    509: _results_resp,
    527: _browse_req,
    530: _browse_resp,
    533: _browse_next_req,
    536: _browse_resp,
    554: _translate_req,
    557: _translate_resp,
    560: _node_list_req,
    566: _node_list_req,
    631: _read_req,
    634: _read_resp,
    664: _history_read_req,
    667: _history_read_resp,
    673: _write_req,
    676: _results_resp,
    700: _history_update_req,
    703: _history_update_resp,
    712: _call_req,
    715: _call_resp,
    751: _create_items_req,
    754: _create_items_resp,
    769: _subscription_items_req,
    772: _results_resp,
    781: _subscription_items_req,
    784: _results_resp,
    787: _create_subscription_req,
    790: _create_subscription_resp,
    793: _subscription_req,
    799: _set_publishing_req,
    802: _results_resp,
    826: _publish_req,
    829: _publish_resp,
    832: _republish_req,
    835: _republish_resp,
    841: _transfer_req,
    844: _transfer_resp,
    847: _subscription_ids_req,
    850: _results_resp,
}


def bad_results(codes: tuple[int, ...]) -> int:
    return sum(1 for c in codes if is_bad(c))
