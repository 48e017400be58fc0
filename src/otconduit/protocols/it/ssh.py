"""SSH identification strings (RFC 4253 §4.2): ``SSH-protoversion-softwareversion
[SP comments] CR LF``, the only clear text of an SSH connection.

A server may send other lines first; they are skipped (at most :data:`MAX_PRE_LINES`,
each at most :data:`MAX_LINE` bytes). Everything after the identification is the binary
packet protocol and only counted.

:class:`SshDecoder` claims for the server ``role = ssh_server`` and ``software``, for
either side an ``os`` when the software or comments state one (``OpenSSH_8.9p1
Ubuntu-3ubuntu0.1`` -> Ubuntu 22.04, ``OpenSSH_for_Windows_8.1`` -> Windows), the
identification string as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import SERVER_TO_CLIENT, Endpoints
from otconduit.protocols.it._base import StreamDecoder
from otconduit.protocols.it._wire import WireError, text, usable_ip
from otconduit.protocols.it.claims import OS, ROLE, SOFTWARE, SRC_SSH, SSH_SERVER
from otconduit.protocols.it.hints import ssh_os

MAX_LINE: Final = 1024  # RFC 4253 allows 255; real servers send longer pre-banner lines
MAX_PRE_LINES: Final = 32


@dataclass(frozen=True, slots=True)
class Identification:
    line: str  # without CR LF, as tshark's ssh.protocol shows it
    proto_version: str
    software: str
    comments: str


def parse_identification(line: bytes) -> Identification:
    """Decode one ``SSH-`` line (CR LF removed)."""
    if not line.startswith(b"SSH-"):
        raise WireError("not an SSH identification string")
    body = text(line, "utf-8", MAX_LINE)
    head, _, comments = body[4:].partition(" ")
    proto, sep, software = head.partition("-")
    if not sep or not proto or not software:
        raise WireError(f"identification string without a software version: {body[:60]!r}")
    return Identification(body, proto, software, comments)


def _texty(data: bytes) -> bool:
    return all(0x20 <= b < 0x7F or b in (9, 10, 13) for b in data)


class SshDecoder(StreamDecoder):
    """The identification strings of one SSH connection (both directions)."""

    protocol = "ssh"
    limit = MAX_LINE

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints)
        self.identifications: list[tuple[int, int, Identification]] = []  # dir, frame
        self._lines = [0, 0]  # lines before the identification
        self.unsynced = [False, False]  # the capture began after the identification

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        d = direction
        # Only a server may say something else first, and only in text lines; other
        # bytes mean the capture joined the connection after the identification.
        foreign = self._lines[d] == 0 and len(buf) >= 4 and not buf.startswith(b"SSH-")
        if foreign and (d != SERVER_TO_CLIENT or not _texty(bytes(buf[:64]))):
            self.unsynced[d] = True
            self.done[d] = True
            return 0
        pos = 0
        while True:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                return pos
            line = bytes(buf[pos:eol]).rstrip(b"\r")
            pos = eol + 1
            if line.startswith(b"SSH-"):
                ident = parse_identification(line)
                self.identifications.append((d, frame, ident))
                self._claims(d, ident, ts_ns)
                self.done[d] = True
                return pos
            self._lines[d] += 1
            if self._lines[d] > MAX_PRE_LINES:
                raise WireError(f"no SSH identification in the first {MAX_PRE_LINES} lines")

    def _claims(self, direction: int, ident: Identification, ts_ns: int) -> None:
        ep = self.endpoints
        ip = ep.server_ip if direction == SERVER_TO_CLIENT else ep.client_ip
        if not usable_ip(ip):
            return
        c = self.claims
        evidence = ident.line
        if direction == SERVER_TO_CLIENT:
            c.add(
                ip=ip,
                attribute=ROLE,
                value=SSH_SERVER,
                source=SRC_SSH,
                confidence=0.9,
                ts_ns=ts_ns,
                evidence=f"SSH server on port {ep.server_port}: {evidence}",
            )
            c.add(
                ip=ip,
                attribute=SOFTWARE,
                value=ident.software,
                source=SRC_SSH,
                confidence=0.8,
                ts_ns=ts_ns,
                evidence=evidence,
            )
        os_name = ssh_os(ident.software, ident.comments)
        if os_name:
            c.add(
                ip=ip,
                attribute=OS,
                value=os_name,
                source=SRC_SSH,
                confidence=0.7,
                ts_ns=ts_ns,
                evidence=evidence,
            )


def ssh_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """SSH: either side starts with ``SSH-`` (a server may send other lines first)."""
    if client.startswith(b"SSH-") or server.startswith(b"SSH-"):
        return True
    if b"\nSSH-" in server[:4096]:
        return True
    if len(client) >= 4 or len(server) >= 4096:
        return False
    return None
