"""TLS handshakes (RFC 8446 §4.1; server_name RFC 6066 §3; ALPN RFC 7301): the name a
client asks a server for, from the first bytes of a TCP connection.

Client side: records (type, version, length) are gathered until the first handshake
message is whole (a ClientHello may span records), then :func:`parse_client_hello`
reads the offered version, the server name (SNI), the ALPN protocols and supported
versions. Server side: the ServerHello's selected version and ALPN protocol. After the
hellos everything is encrypted and only counted.

:class:`TlsDecoder` claims ``server_name`` (the SNI) for the server address, and
``role = web_server`` when the server answers and HTTP is what was negotiated (ALPN
``h2``/``http/1.x`` selected, or offered when TLS 1.3 hides the selection, or no ALPN
on 443/8443).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import CLIENT_TO_SERVER, Endpoints
from otconduit.protocols.it._base import StreamDecoder
from otconduit.protocols.it._wire import Reader, WireError, text, usable_ip
from otconduit.protocols.it.claims import ROLE, SERVER_NAME, SRC_TLS, WEB_SERVER

HANDSHAKE: Final = 22
CLIENT_HELLO: Final = 1
SERVER_HELLO: Final = 2
EXT_SERVER_NAME: Final = 0
EXT_ALPN: Final = 16
EXT_SUPPORTED_VERSIONS: Final = 43
MAX_RECORD: Final = (1 << 14) + 2048  # TLSCiphertext limit (RFC 8446 §5.2)
MAX_HELLO: Final = 1 << 16
HTTPS_PORTS: Final = frozenset({443, 8443, 4443})
_HTTP_ALPN: Final = ("h2", "http/1.1", "http/1.0", "h3")


@dataclass(frozen=True, slots=True)
class Hello:
    """A ClientHello or ServerHello, as far as naming and versions go."""

    kind: int  # CLIENT_HELLO or SERVER_HELLO
    legacy_version: int
    server_names: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ()  # offered (client) or selected (server)
    versions: tuple[int, ...] = ()  # supported_versions: offered, or the one selected
    cipher_suite: int | None = None  # ServerHello only

    @property
    def version(self) -> int:
        """The negotiated (server) or highest offered (client) version."""
        return max(self.versions) if self.versions else self.legacy_version


def _extensions(r: Reader) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    if r.left == 0:  # no extensions at all (TLS 1.0-era hellos)
        return out
    ext = Reader(r.take(r.u16("extensions length"), "extensions"))
    while ext.left:
        etype = ext.u16("extension type")
        out[etype] = ext.take(ext.u16("extension length"), f"extension {etype}")
    return out


def _server_names(data: bytes) -> tuple[str, ...]:
    r = Reader(data)
    names = Reader(r.take(r.u16("server name list length"), "server name list"))
    out: list[str] = []
    while names.left:
        name_type = names.u8("name type")
        raw = names.take(names.u16("name length"), "server name")
        if name_type == 0:
            out.append(text(raw, "utf-8"))
    return tuple(out)


def _alpn(data: bytes) -> tuple[str, ...]:
    r = Reader(data)
    protos = Reader(r.take(r.u16("ALPN list length"), "ALPN list"))
    out: list[str] = []
    while protos.left:
        out.append(text(protos.take(protos.u8("protocol length"), "protocol"), "latin-1"))
    return tuple(out)


def parse_hello(body: bytes, kind: int) -> Hello:
    """Decode the body of a ClientHello or ServerHello handshake message."""
    r = Reader(body)
    legacy = r.u16("version")
    r.skip(32, "random")
    r.skip(r.u8("session id length"), "session id")
    suite = None
    if kind == CLIENT_HELLO:
        suites = r.u16("cipher suites length")
        if suites % 2:
            raise WireError(f"cipher suites length {suites} is odd")
        r.skip(suites, "cipher suites")
        r.skip(r.u8("compression methods length"), "compression methods")
    else:
        suite = r.u16("cipher suite")
        r.skip(1, "compression method")
    ext = _extensions(r)
    names = _server_names(ext[EXT_SERVER_NAME]) if ext.get(EXT_SERVER_NAME) else ()
    alpn = _alpn(ext[EXT_ALPN]) if EXT_ALPN in ext else ()
    versions: tuple[int, ...] = ()
    sv = ext.get(EXT_SUPPORTED_VERSIONS)
    if sv is not None:
        if kind == CLIENT_HELLO:
            v = Reader(sv)
            n = v.u8("supported versions length")
            raw = v.take(n, "supported versions")
            versions = tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, n - 1, 2))
        elif len(sv) == 2:
            versions = (int.from_bytes(sv, "big"),)
    return Hello(kind, legacy, names, alpn, versions, suite)


def version_name(version: int) -> str:
    return {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2"}.get(
        version, "TLS 1.3" if version == 0x0304 else f"0x{version:04x}"
    )


class TlsDecoder(StreamDecoder):
    """The hellos of one TLS connection (any port)."""

    protocol = "tls"
    limit = MAX_HELLO + MAX_RECORD

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints)
        self._hs = [bytearray(), bytearray()]
        self.hellos: list[tuple[int, Hello]] = []  # (frame, hello), at most one each way
        self.not_tls = [False, False]
        self._offered: tuple[str, ...] = ()  # the client's ALPN list

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        pos = 0
        hs = self._hs[direction]
        while len(buf) - pos >= 5:
            ctype, major = buf[pos], buf[pos + 1]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if ctype != HANDSHAKE or major != 3:
                if pos == 0 and not hs:  # not the start of a TLS connection: nothing to learn
                    self.not_tls[direction] = True
                    self.done[direction] = True
                    return pos
                raise WireError(f"record type {ctype} version {major}.x inside the hello")
            if length == 0 or length > MAX_RECORD:
                raise WireError(f"handshake record of {length} bytes")
            if len(buf) - pos - 5 < length:
                break
            hs += buf[pos + 5 : pos + 5 + length]
            pos += 5 + length
            if len(hs) >= 4:
                htype = hs[0]
                hlen = (hs[1] << 16) | (hs[2] << 8) | hs[3]
                want = CLIENT_HELLO if direction == CLIENT_TO_SERVER else SERVER_HELLO
                if htype != want:
                    raise WireError(f"first handshake message is type {htype}, not {want}")
                if hlen > MAX_HELLO:
                    raise WireError(f"hello of {hlen} bytes")
                if len(hs) >= 4 + hlen:
                    hello = parse_hello(bytes(hs[4 : 4 + hlen]), htype)
                    self._hello(direction, hello, frame, ts_ns)
                    self.done[direction] = True
                    return pos
        return pos

    def _hello(self, direction: int, hello: Hello, frame: int, ts_ns: int) -> None:
        self.hellos.append((frame, hello))
        server = self.endpoints.server_ip
        if not usable_ip(server):
            return
        if hello.kind == CLIENT_HELLO:
            self._offered = hello.alpn
            for name in hello.server_names:
                self.claims.add(
                    ip=server,
                    attribute=SERVER_NAME,
                    value=name,
                    source=SRC_TLS,
                    confidence=0.6,
                    ts_ns=ts_ns,
                    evidence=f"TLS ClientHello server_name from {self.endpoints.client_ip}",
                )
            return
        # TLS 1.3 servers send the selected ALPN encrypted: then what the client offered
        # (a browser or HTTP library offers h2/http/1.1) tells what it came for.
        port = self.endpoints.server_port
        if hello.alpn:
            alpn, how = hello.alpn[0], f"ALPN {hello.alpn[0]} selected"
        else:
            alpn = next((a for a in self._offered if a.startswith(_HTTP_ALPN)), "")
            how = f"ALPN {', '.join(self._offered)} offered" if alpn else f"port {port}"
        if alpn.startswith(_HTTP_ALPN) or (not alpn and not self._offered and port in HTTPS_PORTS):
            self.claims.add(
                ip=server,
                attribute=ROLE,
                value=WEB_SERVER,
                source=SRC_TLS,
                confidence=0.7,
                ts_ns=ts_ns,
                evidence=f"answers a TLS ClientHello ({version_name(hello.version)}, {how})",
            )


def looks_like_client_hello(data: bytes) -> bool:
    """A handshake record header followed by a ClientHello message header."""
    return (
        len(data) >= 6
        and data[0] == HANDSHAKE
        and data[1] == 3
        and data[2] <= 4
        and data[5] == CLIENT_HELLO
    )


def tls_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """TLS: the client's first bytes are a ClientHello record."""
    if len(client) < 6:
        return None
    return looks_like_client_hello(client)
