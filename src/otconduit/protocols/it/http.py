"""HTTP/1.x (RFC 9112) requests and responses: the host name a client asks for, its
User-Agent, and the server's ``Server`` header.

Each direction is framed message by message: start line and header fields (at most
:data:`MAX_HEADER` bytes), then the body is skipped by ``Content-Length`` or chunked
coding (RFC 9112 §6-7) without being buffered; a response body without either runs to
the end of the connection. HEAD, 1xx, 204 and 304 responses have no body; a 101 or a
successful CONNECT ends HTTP on the connection.

:class:`HttpDecoder` claims ``server_name`` (``Host``, without a port; addresses are
not names) for the server, ``user_agent`` with ``os`` and ``browser`` hints for the
client, ``software`` (``Server``) with an ``os`` hint, and ``role = web_server`` for
a server that answers.
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import CLIENT_TO_SERVER, Endpoints
from otconduit.protocols.it._base import StreamDecoder
from otconduit.protocols.it._wire import WireError, text, usable_ip
from otconduit.protocols.it.claims import (
    BROWSER,
    OS,
    ROLE,
    SERVER_NAME,
    SOFTWARE,
    SRC_HTTP,
    USER_AGENT,
    WEB_SERVER,
)
from otconduit.protocols.it.hints import http_server_os, user_agent_browser, user_agent_os

MAX_HEADER: Final = 32768
MAX_FIELDS: Final = 200
MAX_KEPT: Final = 1024  # requests/responses kept on the decoder for inspection
METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
    | {"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH"}
    | {"NOTIFY", "M-SEARCH", "SUBSCRIBE", "UNSUBSCRIBE", "MKCALENDAR", "PURGE"}
)
_REQUEST_LINE: Final = re.compile(rb"^([A-Z][A-Z-]{0,19}) (\S{1,8192}) HTTP/(\d)\.(\d)$")
_STATUS_LINE: Final = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")
_TOKEN: Final = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True, slots=True)
class HttpMessage:
    frame: int  # frame that completed the header block
    request: bool
    method: str = ""  # request: method; response: the method it answers ("" unknown)
    target: str = ""
    status: int = 0
    version: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


def parse_head(block: bytes, frame: int) -> HttpMessage:
    """Decode a start line and header fields (``block`` without the final CRLFCRLF)."""
    lines = block.split(b"\n")
    start = lines[0].rstrip(b"\r")
    headers: list[tuple[str, str]] = []
    if len(lines) - 1 > MAX_FIELDS:
        raise WireError(f"more than {MAX_FIELDS} header fields")
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding
            k, v = headers[-1]
            headers[-1] = (k, f"{v} {text(line, 'latin-1', 4096)}")
            continue
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise WireError(f"bad header field line {line[:40]!r}")
        headers.append((name.decode("ascii"), text(value, "latin-1", 4096)))
    m = _REQUEST_LINE.match(start)
    if m is not None:
        return HttpMessage(
            frame,
            True,
            m.group(1).decode(),
            text(m.group(2), "latin-1", 1024),
            version=f"{m.group(3).decode()}.{m.group(4).decode()}",
            headers=tuple(headers),
        )
    m = _STATUS_LINE.match(start)
    if m is not None:
        return HttpMessage(
            frame,
            False,
            status=int(m.group(3)),
            version=f"{m.group(1).decode()}.{m.group(2).decode()}",
            headers=tuple(headers),
        )
    raise WireError(f"not an HTTP start line: {start[:40]!r}")


def host_name(host: str) -> str | None:
    """The name in a ``Host`` value: the port removed, None for an address literal."""
    h = host.strip()
    if h.startswith("["):
        return None  # an IPv6 literal
    name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.rstrip(".") or None
    return None


def _content_length(msg: HttpMessage) -> int | None:
    v = msg.header("Content-Length")
    if v is None:
        return None
    first = v.split(",")[0].strip()
    if not first.isdigit():
        raise WireError(f"Content-Length {v!r}")
    return int(first)


def _chunked(msg: HttpMessage) -> bool:
    te = msg.header("Transfer-Encoding")
    return te is not None and te.lower().replace(" ", "").endswith("chunked")


# Body states of a direction.
_HEAD, _FIXED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _TO_CLOSE = range(7)


class HttpDecoder(StreamDecoder):
    """Both directions of one HTTP/1.x connection."""

    protocol = "http"
    limit = MAX_HEADER + 2

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints)
        self.messages: list[HttpMessage] = []  # the first MAX_KEPT, for inspection
        self.counts = [0, 0]  # requests, responses
        self.unsynced = [False, False]  # the capture began inside a message
        self._state = [_HEAD, _HEAD]
        self._left = [0, 0]  # body bytes still to skip (fixed length or chunk)
        self._scan = [0, 0]  # header bytes already searched for the blank line
        self._methods: deque[str] = deque(maxlen=256)

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        pos = 0
        while pos < len(buf) and not self.done[direction]:
            state = self._state[direction]
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n", pos + max(0, self._scan[direction] - 3))
                if end < 0:
                    self._scan[direction] = len(buf) - pos
                    if len(buf) - pos > MAX_HEADER:
                        raise WireError(f"header block longer than {MAX_HEADER} bytes")
                    break
                self._scan[direction] = 0
                block = bytes(buf[pos:end])
                pos = end + 4
                try:
                    msg = parse_head(block, frame)
                except WireError:
                    if not any(self.counts):  # joined mid-message: nothing to learn here
                        self.unsynced[direction] = True
                        self.done[direction] = True
                        return pos
                    raise
                if msg.request != (direction == CLIENT_TO_SERVER):
                    raise WireError("a response from the client or a request from the server")
                self._message(direction, msg, ts_ns)
            elif state in (_FIXED, _CHUNK_DATA):
                n = min(self._left[direction], len(buf) - pos)
                pos += n
                self.ignored[direction] += n
                self._left[direction] -= n
                if not self._left[direction]:
                    self._state[direction] = _HEAD if state == _FIXED else _CHUNK_CRLF
            elif state == _TO_CLOSE:
                self.ignored[direction] += len(buf) - pos
                return len(buf)
            else:  # a chunk-size line, the CRLF after chunk data, or a trailer line
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    if len(buf) - pos > 4096:
                        raise WireError("chunk line longer than 4096 bytes")
                    break
                line = bytes(buf[pos:eol]).rstrip(b"\r")
                pos = eol + 1
                if state == _CHUNK_CRLF:
                    if line:
                        raise WireError("chunk data not followed by CRLF")
                    self._state[direction] = _CHUNK_SIZE
                elif state == _TRAILER:
                    if not line:
                        self._state[direction] = _HEAD
                else:
                    size_text = line.split(b";", 1)[0].strip()
                    try:
                        size = int(size_text, 16)
                    except ValueError:
                        raise WireError(f"chunk size {size_text[:20]!r}") from None
                    if size:
                        self._left[direction] = size
                        self._state[direction] = _CHUNK_DATA
                    else:
                        self._state[direction] = _TRAILER
        return pos

    def _message(self, direction: int, msg: HttpMessage, ts_ns: int) -> None:
        d = direction
        self.counts[d] += 1
        length = _content_length(msg)
        if msg.request:
            self._methods.append(msg.method)
            if msg.method == "PRI" and msg.target == "*":  # HTTP/2 prior knowledge
                self.done[d] = True
        else:
            method = self._methods.popleft() if self._methods and msg.status >= 200 else ""
            msg = HttpMessage(msg.frame, False, method, "", msg.status, msg.version, msg.headers)
            if msg.status == 101 or (method == "CONNECT" and 200 <= msg.status < 300):
                self.done = [True, True]  # no longer HTTP either way
        if len(self.messages) < MAX_KEPT:
            self.messages.append(msg)
        self._claims(msg, ts_ns)
        if self.done[d]:
            return
        no_body = not msg.request and (
            msg.method == "HEAD" or msg.status < 200 or msg.status in (204, 304)
        )
        if no_body:
            self._state[d] = _HEAD
        elif _chunked(msg):
            self._state[d] = _CHUNK_SIZE
        elif length is not None:
            self._left[d] = length
            self._state[d] = _FIXED if length else _HEAD
        else:
            self._state[d] = _HEAD if msg.request else _TO_CLOSE

    def _claims(self, msg: HttpMessage, ts_ns: int) -> None:
        ep = self.endpoints
        c = self.claims
        if msg.request:
            host = msg.header("Host")
            name = host_name(host) if host else None
            if name and usable_ip(ep.server_ip):
                c.add(
                    ip=ep.server_ip,
                    attribute=SERVER_NAME,
                    value=name,
                    source=SRC_HTTP,
                    confidence=0.6,
                    ts_ns=ts_ns,
                    evidence=f"HTTP {msg.method} Host: {host} from {ep.client_ip}",
                )
            ua = msg.header("User-Agent")
            if ua and usable_ip(ep.client_ip):
                evidence = f"HTTP User-Agent: {ua}"
                c.add(
                    ip=ep.client_ip,
                    attribute=USER_AGENT,
                    value=ua,
                    source=SRC_HTTP,
                    confidence=0.7,
                    ts_ns=ts_ns,
                    evidence=evidence,
                )
                for attribute, value in (
                    (OS, user_agent_os(ua)),
                    (BROWSER, user_agent_browser(ua)),
                ):
                    if value:
                        c.add(
                            ip=ep.client_ip,
                            attribute=attribute,
                            value=value,
                            source=SRC_HTTP,
                            confidence=0.5,
                            ts_ns=ts_ns,
                            evidence=evidence,
                        )
            return
        if not usable_ip(ep.server_ip):
            return
        c.add(
            ip=ep.server_ip,
            attribute=ROLE,
            value=WEB_SERVER,
            source=SRC_HTTP,
            confidence=0.8,
            ts_ns=ts_ns,
            evidence=f"answers HTTP on port {ep.server_port}",
        )
        server = msg.header("Server")
        if server:
            evidence = f"HTTP Server: {server}"
            c.add(
                ip=ep.server_ip,
                attribute=SOFTWARE,
                value=server,
                source=SRC_HTTP,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=evidence,
            )
            os_name = http_server_os(server)
            if os_name:
                c.add(
                    ip=ep.server_ip,
                    attribute=OS,
                    value=os_name,
                    source=SRC_HTTP,
                    confidence=0.5,
                    ts_ns=ts_ns,
                    evidence=evidence,
                )


def looks_like_request(data: bytes) -> bool:
    """The first bytes start an HTTP/1.x request line with a known method."""
    method, sep, rest = data[:24].partition(b" ")
    return bool(sep) and method.decode("latin-1") in METHODS and bool(rest)


def http_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """HTTP/1.x: a request line with a known method, or a status line from the server."""
    if client:
        if len(client) < 8 and b" " not in client:
            return None
        return looks_like_request(client)
    if server.startswith(b"HTTP/1."):
        return True
    return None
