"""OPC UA binary over TCP, only what discovery needs, sans-I/O (OPC 10000-6, UA Part 6).

A client that only wants a server's endpoints needs no session (Part 4 §5.4.4: GetEndpoints
is a Discovery Service): Hello / Acknowledge (Part 6 §7.1.2.3-4), OpenSecureChannel with
SecurityPolicy None (Part 6 §6.7.4, Part 4 §5.5.2), GetEndpoints (Part 4 §5.4.4), and
CloseSecureChannel (Part 4 §5.5.3). Encodings follow Part 6 §5.2: little-endian integers,
String and ByteString as Int32 length + bytes (-1: null), NodeId in its compact forms,
DateTime as Int64 100 ns ticks since 1601 (0: not set, which the requests use so the
bytes printed by a dry run are the bytes sent).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

POLICY_NONE = "http://opcfoundation.org/UA/SecurityPolicy#None"
# Binary encoding ids (NodeIds.csv of the UA specification).
OPEN_SECURE_CHANNEL_REQUEST = 446
OPEN_SECURE_CHANNEL_RESPONSE = 449
CLOSE_SECURE_CHANNEL_REQUEST = 452
GET_ENDPOINTS_REQUEST = 428
GET_ENDPOINTS_RESPONSE = 431
SERVICE_FAULT = 397
SECURITY_MODES = {1: "None", 2: "Sign", 3: "SignAndEncrypt"}
BUFFER = 65536
LIFETIME_MS = 60_000
TIMEOUT_HINT_MS = 5_000


class UaError(ValueError):
    """Bytes that are not the expected OPC UA message."""


# -- encoding --------------------------------------------------------------------------
def _string(s: str | None) -> bytes:
    if s is None:
        return struct.pack("<i", -1)
    raw = s.encode("utf-8")
    return struct.pack("<i", len(raw)) + raw


def _numeric_node(identifier: int) -> bytes:
    """NodeId in namespace 0: two-byte form below 256, else four-byte (Part 6 §5.2.2.9)."""
    if identifier < 256:
        return bytes([0x00, identifier])
    return bytes([0x01, 0x00]) + struct.pack("<H", identifier)


def _request_header(handle: int) -> bytes:
    """Part 4 §7.28: null authentication token, no timestamp, handle, no diagnostics,
    null audit id, timeout hint, no additional header."""
    return (
        bytes([0x00, 0x00])  # authenticationToken: null NodeId
        + struct.pack("<qII", 0, handle, 0)  # timestamp, requestHandle, returnDiagnostics
        + _string(None)  # auditEntryId
        + struct.pack("<I", TIMEOUT_HINT_MS)
        + bytes([0x00, 0x00, 0x00])  # additionalHeader: null NodeId, no body
    )


def _message(kind: bytes, body: bytes) -> bytes:
    """Message header (Part 6 §7.1.2.2): type, 'F' (final chunk), total size."""
    return kind + b"F" + struct.pack("<I", len(body) + 8) + body


def hello(endpoint_url: str) -> bytes:
    """HEL: protocol version 0, buffer sizes, no message/chunk limits, the endpoint URL."""
    body = struct.pack("<IIIII", 0, BUFFER, BUFFER, 0, 0) + _string(endpoint_url)
    return _message(b"HEL", body)


def open_secure_channel(request_id: int = 1, handle: int = 1) -> bytes:
    """OPN with SecurityPolicy None: asymmetric header without certificates, sequence
    header, OpenSecureChannelRequest (issue, security mode None, no nonce)."""
    security = _string(POLICY_NONE) + struct.pack("<ii", -1, -1)  # cert, thumbprint: null
    sequence = struct.pack("<II", request_id, request_id)
    request = (
        _numeric_node(OPEN_SECURE_CHANNEL_REQUEST)
        + _request_header(handle)
        + struct.pack("<IiI", 0, 0, 1)  # clientProtocolVersion, requestType Issue, mode None
        + struct.pack("<i", 0)  # clientNonce: empty ByteString
        + struct.pack("<I", LIFETIME_MS)
    )
    return _message(b"OPN", struct.pack("<I", 0) + security + sequence + request)


def _symmetric(kind: bytes, channel: int, token: int, seq: int, body: bytes) -> bytes:
    return _message(kind, struct.pack("<IIII", channel, token, seq, seq) + body)


def get_endpoints(
    endpoint_url: str, channel: int = 0, token: int = 0, seq: int = 2, handle: int = 2
) -> bytes:
    """MSG GetEndpointsRequest for ``endpoint_url``, no locale or profile filter."""
    body = (
        _numeric_node(GET_ENDPOINTS_REQUEST)
        + _request_header(handle)
        + _string(endpoint_url)
        + struct.pack("<ii", 0, 0)  # localeIds, profileUris: empty arrays
    )
    return _symmetric(b"MSG", channel, token, seq, body)


def close_secure_channel(channel: int = 0, token: int = 0, seq: int = 3, handle: int = 3) -> bytes:
    """CLO: CloseSecureChannelRequest (the server answers nothing and closes)."""
    body = _numeric_node(CLOSE_SECURE_CHANNEL_REQUEST) + _request_header(handle)
    return _symmetric(b"CLO", channel, token, seq, body)


def message_length(buf: bytes) -> int | None:
    """Whole message (chunk) length from its header, None while incomplete."""
    if len(buf) < 8:
        return None
    (size,) = struct.unpack_from("<I", buf, 4)
    if size < 8:
        raise UaError("message size below its header")
    return size if len(buf) >= size else None


# -- decoding --------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise UaError("message cut short")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def i32(self) -> int:
        return int(struct.unpack("<i", self.take(4))[0])

    def string(self) -> str | None:
        n = self.i32()
        if n < 0:
            return None
        return self.take(n).decode("utf-8", errors="replace")

    def bytestring(self) -> bytes | None:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def strings(self) -> list[str]:
        n = self.i32()
        if n > 10_000:
            raise UaError("array too long")
        return [s for s in (self.string() for _ in range(max(n, 0))) if s is not None]

    def node_id(self) -> int | str:
        """A NodeId; the numeric identifier (namespace ignored) or a text form."""
        kind = self.u8()
        form = kind & 0x0F
        if form == 0:
            value: int | str = self.u8()
        elif form == 1:
            self.u8()
            value = self.u16()
        elif form == 2:
            self.u16()
            value = self.u32()
        elif form == 3:
            self.u16()
            value = f"s={self.string()}"
        elif form == 4:
            self.u16()
            value = f"g={self.take(16).hex()}"
        elif form == 5:
            self.u16()
            value = f"b={(self.bytestring() or b'').hex()}"
        else:
            raise UaError(f"unknown NodeId encoding 0x{kind:02x}")
        if kind & 0x80:
            self.string()  # namespace URI
        if kind & 0x40:
            self.u32()  # server index
        return value

    def localized_text(self) -> str | None:
        mask = self.u8()
        if mask & 0x01:
            self.string()  # locale
        return self.string() if mask & 0x02 else None

    def diagnostic_info(self, depth: int = 0) -> None:
        if depth > 4:
            raise UaError("diagnostic info nested too deep")
        mask = self.u8()
        for bit in (0x01, 0x02, 0x04, 0x08):  # symbolic id, namespace, locale, text
            if mask & bit:
                self.i32()
        if mask & 0x10:
            self.string()  # additional info
        if mask & 0x20:
            self.u32()  # inner status code
        if mask & 0x40:
            self.diagnostic_info(depth + 1)

    def extension_object(self) -> None:
        self.node_id()
        encoding = self.u8()
        if encoding in (1, 2):
            self.bytestring()

    def response_header(self) -> int:
        """Part 4 §7.29; returns the service result status code."""
        self.take(8)  # timestamp
        self.u32()  # request handle
        status = self.u32()
        self.diagnostic_info()
        self.strings()  # string table
        self.extension_object()
        return status


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """ACK (Part 6 §7.1.2.4) or ERR (§7.1.2.5): ``error`` is 0 for ACK."""

    error: int = 0
    reason: str = ""


def parse_ack(data: bytes) -> Acknowledge:
    kind = data[:3]
    if kind == b"ACK":
        return Acknowledge()
    if kind == b"ERR":
        r = _Reader(data, 8)
        code = r.u32()
        return Acknowledge(code, r.string() or "")
    raise UaError(f"expected ACK, got {kind!r}")


@dataclass(frozen=True, slots=True)
class Channel:
    """What OpenSecureChannel's answer gives the following messages."""

    channel_id: int
    token_id: int
    status: int = 0


def _service_body(data: bytes, expect: bytes, asymmetric: bool) -> tuple[_Reader, int | str]:
    if data[:3] == b"ERR":
        ack = parse_ack(data)
        raise UaError(f"server error 0x{ack.error:08x} {ack.reason}".strip())
    if data[:3] != expect:
        raise UaError(f"expected {expect.decode()}, got {data[:3]!r}")
    if data[3:4] not in (b"F", b"C"):
        raise UaError("aborted or unknown chunk type")
    r = _Reader(data, 8)
    r.u32()  # secure channel id
    if asymmetric:
        r.string()  # policy URI
        r.bytestring()  # sender certificate
        r.bytestring()  # receiver thumbprint
    else:
        r.u32()  # token id
    r.take(8)  # sequence header
    return r, r.node_id()


def parse_open(data: bytes) -> Channel:
    """The OPN answer: channel and token ids, or the service fault's status."""
    r, node = _service_body(data, b"OPN", asymmetric=True)
    channel = struct.unpack_from("<I", data, 8)[0]
    if node == SERVICE_FAULT:
        return Channel(channel, 0, r.response_header())
    if node != OPEN_SECURE_CHANNEL_RESPONSE:
        raise UaError(f"unexpected OPN answer {node}")
    status = r.response_header()
    r.u32()  # server protocol version
    chan, token = r.u32(), r.u32()
    return Channel(chan, token, status)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One EndpointDescription (Part 4 §7.14), the parts that identify the server."""

    url: str | None
    application_uri: str | None
    product_uri: str | None
    application_name: str | None
    security_mode: str
    security_policy: str | None


@dataclass(slots=True)
class Endpoints:
    status: int = 0
    endpoints: list[Endpoint] = field(default_factory=list)


def symmetric_body(chunks: list[bytes]) -> bytes:
    """Bodies of MSG chunks (header, channel, token, sequence header stripped), joined."""
    return b"".join(c[24:] for c in chunks)


def parse_get_endpoints(body: bytes) -> Endpoints:
    """A GetEndpointsResponse (or service fault) from the joined MSG bodies."""
    r = _Reader(body)
    node = r.node_id()
    if node == SERVICE_FAULT:
        return Endpoints(r.response_header())
    if node != GET_ENDPOINTS_RESPONSE:
        raise UaError(f"unexpected answer {node} to GetEndpoints")
    out = Endpoints(r.response_header())
    n = r.i32()
    if n > 1000:
        raise UaError("too many endpoints")
    for _ in range(max(n, 0)):
        url = r.string()
        app_uri, product_uri, name = r.string(), r.string(), r.localized_text()
        r.i32()  # application type
        r.string()  # gateway server URI
        r.string()  # discovery profile URI
        r.strings()  # discovery URLs
        r.bytestring()  # server certificate
        mode = r.i32()
        policy = r.string()
        tokens = r.i32()
        for _t in range(max(tokens, 0)):
            r.string()  # policy id
            r.i32()  # token type
            r.string()  # issued token type
            r.string()  # issuer endpoint URL
            r.string()  # security policy URI
        r.string()  # transport profile URI
        r.u8()  # security level
        out.endpoints.append(
            Endpoint(url, app_uri, product_uri, name, SECURITY_MODES.get(mode, str(mode)), policy)
        )
    return out
