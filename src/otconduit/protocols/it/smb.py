"""SMB over TCP (445, direct; 139, NetBIOS session service RFC 1002 §4.3): dialect
negotiation (MS-CIFS/MS-SMB NEGOTIATE, MS-SMB2 §2.2.3-2.2.4) and session setup, where
hosts name themselves in clear text.

Messages are framed by the four-byte session header; only the first
:data:`HEAD_LIMIT` bytes of each are looked at (reads and writes are skipped, not
buffered). Decoded: NetBIOS session requests (called and calling names), SMB1
NEGOTIATE (dialect strings; the selected one, and the domain and server names of a
non-extended-security response), SMB1 SESSION_SETUP_ANDX (native OS and LAN manager
strings, the security blob), SMB2 NEGOTIATE (dialects offered, dialect selected) and
SESSION_SETUP (security buffers), compounded SMB2 messages included. NTLMSSP messages
in security blobs are read by :mod:`.ntlmssp`. Encrypted SMB3 (transform headers) ends
decoding of the direction.

:class:`SmbDecoder` claims ``role = file_server`` for a server that answers a
negotiation, ``hostname``/``domain``/``os`` from NTLM challenges (server) and
authentications (client, with ``user``), ``os`` from native OS strings, and the
NetBIOS names of a session request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Endpoints
from otconduit.protocols.it import dns, ntlmssp
from otconduit.protocols.it._base import StreamDecoder
from otconduit.protocols.it._wire import Reader, WireError, text, usable_ip
from otconduit.protocols.it.claims import (
    DOMAIN,
    FILE_SERVER,
    HOSTNAME,
    OS,
    ROLE,
    SRC_NTLM,
    SRC_SMB,
    USER,
)
from otconduit.protocols.it.hints import smb_native_os, windows_version
from otconduit.protocols.it.netbios import decode_name

PORTS: Final = frozenset({445, 139})
HEAD_LIMIT: Final = 65536
MAX_KEPT: Final = 256
MAX_COMPOUND: Final = 32
SMB1: Final = b"\xffSMB"
SMB2: Final = b"\xfeSMB"
SMB3_TRANSFORM: Final = b"\xfdSMB"
SMB2_COMPRESSED: Final = b"\xfcSMB"
NBSS_MESSAGE, NBSS_REQUEST, NBSS_POSITIVE, NBSS_NEGATIVE = 0x00, 0x81, 0x82, 0x83
NBSS_RETARGET, NBSS_KEEPALIVE = 0x84, 0x85
SMB1_NEGOTIATE, SMB1_SESSION_SETUP = 0x72, 0x73
SMB2_NEGOTIATE, SMB2_SESSION_SETUP = 0x0000, 0x0001
FLAGS2_UNICODE: Final = 0x8000
FLAGS2_EXTENDED_SECURITY: Final = 0x0800
DIALECTS: Final = {
    0x0202: "2.0.2",
    0x0210: "2.1",
    0x02FF: "2.???",
    0x0300: "3.0",
    0x0302: "3.0.2",
    0x0311: "3.1.1",
}


@dataclass(frozen=True, slots=True)
class Negotiate:
    """One NEGOTIATE: the dialects offered (request) or the one selected (response)."""

    version: int  # 1 or 2
    response: bool
    dialects: tuple[str, ...]  # SMB1: dialect strings; SMB2: revision numbers (0x0311)
    domain: str = ""  # SMB1 non-extended-security response
    server: str = ""


@dataclass(frozen=True, slots=True)
class NativeStrings:
    native_os: str
    native_lanman: str
    primary_domain: str = ""


@dataclass(frozen=True, slots=True)
class SmbMessage:
    """What one SMB message (or SMB2 compound element) holds of interest."""

    version: int
    command: int
    response: bool
    negotiate: Negotiate | None = None
    native: NativeStrings | None = None
    blob: bytes = b""
    andx: tuple[int, ...] = ()  # SMB1: the chained AndX commands, 0xFF ending the chain


# SMB1 commands whose parameters start with an AndX block (MS-CIFS 2.2.3.4).
ANDX_COMMANDS: Final = frozenset({0x24, 0x2D, 0x2E, 0x2F, 0x73, 0x74, 0x75, 0xA2})
MAX_ANDX: Final = 8


def _andx_chain(data: bytes, command: int) -> tuple[int, ...]:
    """The AndX commands chained after ``command`` (each block: next command, reserved,
    offset of the next block from the SMB header), as far as the message holds them."""
    out: list[int] = []
    pos = 32
    for _ in range(MAX_ANDX):
        if command not in ANDX_COMMANDS or pos >= len(data) or data[pos] < 2:
            break
        if pos + 5 > len(data):
            raise WireError("truncated AndX block")
        command = data[pos + 1]
        out.append(command)
        offset = int.from_bytes(data[pos + 3 : pos + 5], "little")
        if command == 0xFF:
            break
        if offset <= pos:
            raise WireError(f"AndX offset {offset} does not move forward")
        pos = offset
    return tuple(out)


def _smb1_string(data: bytes, pos: int, unicode: bool) -> tuple[str, int]:
    """A NUL-terminated SMB1 string at ``pos`` (Unicode ones aligned to 2 bytes from the
    SMB header), and the position after it."""
    if unicode:
        if pos % 2:
            pos += 1
        end = pos
        while end + 1 < len(data) and data[end : end + 2] != b"\x00\x00":
            end += 2
        return text(data[pos:end], "utf-16-le"), end + 2
    end = data.find(b"\x00", pos)
    end = len(data) if end < 0 else end
    return text(data[pos:end], "latin-1"), end + 1


def _native(data: bytes, pos: int, unicode: bool, with_domain: bool) -> NativeStrings:
    os_name, pos = _smb1_string(data, pos, unicode)
    lanman, pos = _smb1_string(data, pos, unicode)
    domain = _smb1_string(data, pos, unicode)[0] if with_domain and pos < len(data) else ""
    return NativeStrings(os_name, lanman, domain)


def parse_smb1(data: bytes, last_dialects: tuple[str, ...] = ()) -> SmbMessage:
    """Decode the parts of interest of one SMB1 message."""
    r = Reader(data)
    r.need(33, "SMB1 header")
    command = data[4]
    response = bool(data[9] & 0x80)
    flags2 = int.from_bytes(data[10:12], "little")
    unicode = bool(flags2 & FLAGS2_UNICODE)
    wct = data[32]
    words = Reader(data, 33, 33 + 2 * wct)
    words.need(2 * wct, "SMB1 parameter words")
    r.pos = 33 + 2 * wct
    bcc = r.u16le("byte count")
    bytes_start = r.pos
    body = data[bytes_start : bytes_start + bcc]
    andx = _andx_chain(data, command)
    if command == SMB1_NEGOTIATE and not response:
        dialects = tuple(
            text(d[1:], "latin-1") for d in body.split(b"\x00") if d.startswith(b"\x02")
        )
        return SmbMessage(1, command, False, Negotiate(1, False, dialects))
    if command == SMB1_NEGOTIATE:
        index = words.u16le("dialect index") if wct else 0xFFFF
        chosen = last_dialects[index] if index < len(last_dialects) else ""
        domain = server = ""
        if wct == 17 and not flags2 & FLAGS2_EXTENDED_SECURITY:
            challenge_len = data[33 + 33]
            pos = bytes_start + challenge_len
            domain, pos = _smb1_string(data, pos, unicode)
            if pos < bytes_start + bcc:
                server = _smb1_string(data, pos, unicode)[0]
        return SmbMessage(1, command, True, Negotiate(1, True, (chosen,), domain, server))
    if command == SMB1_SESSION_SETUP:
        blob = b""
        if not response and wct == 12:
            words.skip(14)
            blob_len = words.u16le("security blob length")
            blob = Reader(data, bytes_start).take(blob_len, "security blob")
            native = _native(data, bytes_start + blob_len, unicode, False)
        elif not response and wct == 13:
            words.skip(14)
            oem, uni = words.u16le(), words.u16le()
            pos = bytes_start + oem + uni
            _account, pos = _smb1_string(data, pos, unicode)
            _domain, pos = _smb1_string(data, pos, unicode)
            native = _native(data, pos, unicode, False)
        elif response and wct == 4:
            words.skip(6)
            blob_len = words.u16le("security blob length")
            blob = Reader(data, bytes_start).take(blob_len, "security blob")
            native = _native(data, bytes_start + blob_len, unicode, True)
        elif response and wct == 3:
            native = _native(data, bytes_start, unicode, True)
        else:
            return SmbMessage(1, command, response, andx=andx)
        return SmbMessage(1, command, response, native=native, blob=blob, andx=andx)
    return SmbMessage(1, command, response, andx=andx)


def parse_smb2(data: bytes) -> list[SmbMessage]:
    """Decode the parts of interest of one SMB2 message and its compounded followers."""
    out: list[SmbMessage] = []
    base = 0
    for _ in range(MAX_COMPOUND):
        r = Reader(data, base)
        r.need(64, "SMB2 header")
        if data[base : base + 4] != SMB2:
            raise WireError("compounded message without the SMB2 signature")
        command = int.from_bytes(data[base + 12 : base + 14], "little")
        response = bool(data[base + 16] & 1)
        next_command = int.from_bytes(data[base + 20 : base + 24], "little")
        end = base + next_command if next_command else len(data)
        if next_command and (next_command < 64 or end > len(data)):
            raise WireError(f"NextCommand {next_command}")
        body = Reader(data, base + 64, end)
        if command == SMB2_NEGOTIATE and not response:
            body.skip(2, "structure size")
            count = body.u16le("dialect count")
            body.skip(32, "negotiate request fields")
            dialects = tuple(f"0x{body.u16le('dialect'):04x}" for _ in range(count))
            out.append(SmbMessage(2, command, False, Negotiate(2, False, dialects)))
        elif command == SMB2_NEGOTIATE and body.left >= 6:
            body.skip(4, "structure size and security mode")
            dialect = f"0x{body.u16le('dialect'):04x}"
            blob = _smb2_buffer(data, base, base + 64 + 56)
            out.append(SmbMessage(2, command, True, Negotiate(2, True, (dialect,)), blob=blob))
        elif command == SMB2_SESSION_SETUP and body.left >= 8:
            at = base + 64 + (12 if not response else 4)
            out.append(SmbMessage(2, command, response, blob=_smb2_buffer(data, base, at)))
        else:
            out.append(SmbMessage(2, command, response))
        if not next_command:
            return out
        base = end
    raise WireError(f"more than {MAX_COMPOUND} compounded messages")


def _smb2_buffer(data: bytes, base: int, at: int) -> bytes:
    """A security buffer given by (offset from the SMB2 header, length) at ``at``; only
    what was captured of it (the message may have been cut at HEAD_LIMIT)."""
    r = Reader(data, at)
    if r.left < 4:
        return b""
    offset, length = r.u16le(), r.u16le()
    if not length:
        return b""
    if offset < 64:
        raise WireError(f"security buffer offset {offset}")
    return data[base + offset : base + offset + length]


class SmbDecoder(StreamDecoder):
    """Both directions of one SMB connection (port 445 or 139)."""

    protocol = "smb"
    limit = HEAD_LIMIT + 4

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints)
        self.messages: list[tuple[int, int, SmbMessage]] = []  # (direction, frame, msg)
        self.ntlm: list[tuple[int, int, ntlmssp.NtlmMessage]] = []
        self.session_names: list[tuple[str, str]] = []  # (called, calling)
        self.counts = [0, 0]
        self.unsynced = [False, False]
        self.encrypted = [0, 0]
        self._skip = [0, 0]
        self._dialects: tuple[str, ...] = ()

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        d = direction
        pos = 0
        while pos < len(buf) and not self.done[d]:
            if self._skip[d]:
                n = min(self._skip[d], len(buf) - pos)
                self._skip[d] -= n
                self.ignored[d] += n
                pos += n
                continue
            if len(buf) - pos < 4:
                break
            kind = buf[pos]
            if kind == NBSS_MESSAGE:
                length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            elif kind in (NBSS_REQUEST, NBSS_POSITIVE, NBSS_NEGATIVE, NBSS_RETARGET):
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big") | (buf[pos + 1] & 1) << 16
            elif kind == NBSS_KEEPALIVE:
                length = 0
            else:
                if not any(self.counts):
                    self.unsynced[d] = True  # joined mid-message: nothing to learn
                    self.done[d] = True
                    return pos
                raise WireError(f"session message type 0x{kind:02x}")
            head = min(length, HEAD_LIMIT)
            if len(buf) - pos - 4 < head:
                break
            message = bytes(buf[pos + 4 : pos + 4 + head])
            pos += 4 + head
            self._skip[d] = length - head
            self.counts[d] += 1
            if kind == NBSS_REQUEST:
                self._session_request(message, ts_ns)
            elif kind == NBSS_MESSAGE and message:
                self._message(d, message, frame, ts_ns)
        return pos

    def _session_request(self, message: bytes, ts_ns: int) -> None:
        called_raw, pos = dns.read_name(message, 0)
        calling_raw = dns.read_name(message, pos)[0]
        called, calling = decode_name(called_raw), decode_name(calling_raw)
        self.session_names.append((str(called), str(calling)))
        ep = self.endpoints
        for ip, name in ((ep.server_ip, called), (ep.client_ip, calling)):
            host = name.text.strip()
            if usable_ip(ip) and host and host != "*SMBSERVER" and name.suffix in (0, 0x20):
                self.claims.add(
                    ip=ip,
                    attribute=HOSTNAME,
                    value=host,
                    source=SRC_SMB,
                    confidence=0.7,
                    ts_ns=ts_ns,
                    evidence=f"NetBIOS session request from {calling} to {called}",
                )

    def _message(self, d: int, message: bytes, frame: int, ts_ns: int) -> None:
        sig = message[:4]
        if sig == SMB1:
            msgs = [parse_smb1(message, self._dialects)]
        elif sig == SMB2:
            msgs = parse_smb2(message)
        elif sig in (SMB3_TRANSFORM, SMB2_COMPRESSED):
            self.encrypted[d] += 1
            return
        else:
            raise WireError(f"session message is not SMB: {sig.hex()}")
        for m in msgs:
            if len(self.messages) < MAX_KEPT:
                self.messages.append((d, frame, m))
            if m.negotiate is not None and not m.negotiate.response:
                self._dialects = m.negotiate.dialects
            self._claims(d, m, frame, ts_ns)

    def _claims(self, d: int, m: SmbMessage, frame: int, ts_ns: int) -> None:
        ep = self.endpoints
        ip = ep.server_ip if d == SERVER_TO_CLIENT else ep.client_ip
        if not usable_ip(ip):
            ip = ""  # decoded all the same; claims about nobody are dropped
        c = self.claims
        neg = m.negotiate
        if neg is not None and neg.response and d == SERVER_TO_CLIENT:
            dialect = DIALECTS.get(int(neg.dialects[0], 16), "") if neg.version == 2 else ""
            c.add(
                ip=ip,
                attribute=ROLE,
                value=FILE_SERVER,
                source=SRC_SMB,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=f"answers SMB{neg.version} NEGOTIATE on port {ep.server_port}"
                + (f" (dialect {dialect or neg.dialects[0]})" if neg.dialects[0] else ""),
            )
            for attribute, value in ((DOMAIN, neg.domain), (HOSTNAME, neg.server)):
                c.add(
                    ip=ip,
                    attribute=attribute,
                    value=value,
                    source=SRC_SMB,
                    confidence=0.8,
                    ts_ns=ts_ns,
                    evidence=f"SMB1 NEGOTIATE response: domain {neg.domain!r}, server "
                    f"{neg.server!r}",
                )
        if m.native is not None:
            os_name = smb_native_os(m.native.native_os, m.native.native_lanman)
            if os_name:
                c.add(
                    ip=ip,
                    attribute=OS,
                    value=os_name,
                    source=SRC_SMB,
                    confidence=0.7,
                    ts_ns=ts_ns,
                    evidence=f"SMB1 session setup: native OS {m.native.native_os!r}, LAN "
                    f"manager {m.native.native_lanman!r}",
                )
        inner = ntlmssp.find(m.blob) if m.blob else None
        if inner is not None:
            self._ntlm(d, ip, ntlmssp.parse(inner), frame, ts_ns)

    def _ntlm(self, d: int, ip: str, n: ntlmssp.NtlmMessage, frame: int, ts_ns: int) -> None:
        if len(self.ntlm) < MAX_KEPT:
            self.ntlm.append((d, frame, n))
        c = self.claims
        kind = {1: "NEGOTIATE", 2: "CHALLENGE", 3: "AUTHENTICATE"}[n.kind]
        evidence = f"NTLMSSP {kind}"

        def add(attribute: str, value: str, confidence: float, what: str) -> None:
            c.add(
                ip=ip,
                attribute=attribute,
                value=value,
                source=SRC_NTLM,
                confidence=confidence,
                ts_ns=ts_ns,
                evidence=f"{evidence} {what}: {value}",
            )

        if n.kind == ntlmssp.CHALLENGE and d == SERVER_TO_CLIENT:
            info = n.target_info
            add(HOSTNAME, info.get("nb_computer", ""), 0.8, "NetBIOS computer name")
            add(HOSTNAME, info.get("dns_computer", ""), 0.8, "DNS computer name")
            add(DOMAIN, info.get("dns_domain", "") or info.get("nb_domain", ""), 0.8, "domain")
        elif n.kind == ntlmssp.AUTHENTICATE and d == CLIENT_TO_SERVER:
            add(HOSTNAME, n.workstation, 0.7, "workstation")
            add(DOMAIN, n.domain, 0.5, "domain")
            if n.user:
                add(USER, f"{n.domain}\\{n.user}" if n.domain else n.user, 0.6, "user")
        elif n.kind == ntlmssp.NEGOTIATE and d == CLIENT_TO_SERVER:
            add(HOSTNAME, n.workstation, 0.6, "workstation")
            add(DOMAIN, n.domain, 0.5, "domain")
        if n.version is not None and n.version[2]:
            # Windows always states its build; Samba sends 6.1 with build 0.
            major, minor, build = n.version
            name = windows_version(major, minor, build)
            if name:
                add(OS, name, 0.5, f"version {major}.{minor} build {build}")


def smb_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """SMB: a session message holding an SMB1/SMB2 header, or a NetBIOS session request."""
    if len(client) < 8:
        return None
    if client[0] == NBSS_REQUEST:
        return on_known_port or client[4] == 0x20
    return client[0] == NBSS_MESSAGE and client[4:8] in (SMB1, SMB2)
