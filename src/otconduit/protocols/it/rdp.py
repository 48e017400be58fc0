"""RDP connection setup (MS-RDPBCGR §2.2.1.1-2.2.1.2): the X.224 Connection Request a
client sends inside TPKT (RFC 1006) with its routing token or ``Cookie: mstshash=``
user name and the RDP Negotiation Request, and the server's Connection Confirm with the
Negotiation Response (or Failure). What follows is MCS, usually inside TLS or CredSSP,
and only counted.

:class:`RdpDecoder` claims ``role = rdp_server`` for a server that confirms, and the
``user`` of an ``mstshash`` cookie for the client (mstsc truncates it to 9 characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.base import CLIENT_TO_SERVER, Endpoints
from otconduit.protocols.it._base import StreamDecoder
from otconduit.protocols.it._wire import Reader, WireError, text, usable_ip
from otconduit.protocols.it.claims import RDP_SERVER, ROLE, SRC_RDP, USER

PORT: Final = 3389
TPKT_VERSION: Final = 3
X224_CR: Final = 0xE0
X224_CC: Final = 0xD0
NEG_REQ, NEG_RSP, NEG_FAILURE = 0x01, 0x02, 0x03
PROTOCOLS: Final = {0: "RDP", 1: "TLS", 2: "CredSSP", 4: "RDSTLS", 8: "CredSSP-EX", 0x10: "RDSAAD"}
_COOKIE: Final = b"Cookie: mstshash="


@dataclass(frozen=True, slots=True)
class ConnectionPdu:
    """An X.224 Connection Request (client) or Confirm (server)."""

    code: int  # X224_CR or X224_CC
    token: str = ""  # the routing token or cookie line, without CR LF
    neg_type: int | None = None  # NEG_REQ / NEG_RSP / NEG_FAILURE
    neg_flags: int = 0
    protocols: int | None = None  # requested (REQ), selected (RSP) or failure code

    @property
    def user(self) -> str | None:
        """The user name of an ``mstshash`` cookie."""
        prefix = _COOKIE.decode()
        return self.token[len(prefix) :] if self.token.startswith(prefix) else None


def protocol_names(mask: int) -> list[str]:
    """Names of the security protocols in a requestedProtocols mask."""
    return [name for bit, name in PROTOCOLS.items() if bit and mask & bit] or ["RDP"]


def parse_tpdu(data: bytes) -> ConnectionPdu:
    """Decode one TPKT packet holding an X.224 CR or CC TPDU."""
    r = Reader(data)
    if r.u8("TPKT version") != TPKT_VERSION:
        raise WireError("not TPKT")
    r.skip(1)
    length = r.u16("TPKT length")
    if length < 11 or length > len(data):
        raise WireError(f"TPKT length {length}")
    li = r.u8("length indicator")
    if li + 5 > length or li < 6:
        raise WireError(f"X.224 length indicator {li} in a {length}-byte packet")
    code = r.u8("TPDU code") & 0xF0
    if code not in (X224_CR, X224_CC):
        raise WireError(f"X.224 TPDU code 0x{code:02x}, not CR or CC")
    r.skip(5, "references and class")
    end = 5 + li
    rest = data[r.pos : end]
    token = ""
    if code == X224_CR and rest.startswith(b"Cookie: "):
        eol = rest.find(b"\r\n")
        if eol < 0:
            raise WireError("routing token or cookie without CR LF")
        token = text(rest[:eol], "latin-1")
        rest = rest[eol + 2 :]
    if len(rest) < 8:
        return ConnectionPdu(code, token)
    neg = Reader(rest)
    neg_type, flags, neg_len = neg.u8(), neg.u8(), neg.u16le()
    if neg_len != 8 or neg_type not in (NEG_REQ, NEG_RSP, NEG_FAILURE):
        raise WireError(f"RDP negotiation type {neg_type} of length {neg_len}")
    return ConnectionPdu(code, token, neg_type, flags, neg.u32le())


class RdpDecoder(StreamDecoder):
    """The connection request and confirm of one RDP connection."""

    protocol = "rdp"
    limit = 4096

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints)
        self.pdus: list[tuple[int, ConnectionPdu]] = []  # (frame, pdu)
        self.unsynced = [False, False]

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        if len(buf) < 4:
            return 0
        if buf[0] != TPKT_VERSION or buf[1] != 0:
            self.unsynced[direction] = True  # not the start of an RDP connection
            self.done[direction] = True
            return 0
        length = (buf[2] << 8) | buf[3]
        if len(buf) < length:
            return 0
        pdu = parse_tpdu(bytes(buf[:length]))
        expected = X224_CR if direction == CLIENT_TO_SERVER else X224_CC
        if pdu.code != expected:
            raise WireError(f"X.224 code 0x{pdu.code:02x} in the wrong direction")
        self.pdus.append((frame, pdu))
        self.done[direction] = True
        ep = self.endpoints
        if pdu.code == X224_CC and usable_ip(ep.server_ip):
            selected = (
                ", ".join(protocol_names(pdu.protocols or 0))
                if pdu.neg_type == NEG_RSP
                else "negotiation failure"
                if pdu.neg_type == NEG_FAILURE
                else "standard RDP security"
            )
            self.claims.add(
                ip=ep.server_ip,
                attribute=ROLE,
                value=RDP_SERVER,
                source=SRC_RDP,
                confidence=0.9,
                ts_ns=ts_ns,
                evidence=f"confirms an RDP connection on port {ep.server_port} ({selected})",
            )
        user = pdu.user
        if user and usable_ip(ep.client_ip):
            self.claims.add(
                ip=ep.client_ip,
                attribute=USER,
                value=user,
                source=SRC_RDP,
                confidence=0.5,
                ts_ns=ts_ns,
                evidence=f"RDP connection request to {ep.server_ip}: {pdu.token}",
            )
        return length


def rdp_verdict(client: bytes, server: bytes, on_known_port: bool) -> bool | None:
    """RDP: a TPKT X.224 Connection Request with an RDP cookie or negotiation request
    (or any CR on port 3389)."""
    if len(client) < 11:
        return None
    length = (client[2] << 8) | client[3]
    if client[0] == TPKT_VERSION and len(client) < length <= 512:
        return None  # the request is not all there yet
    try:
        pdu = parse_tpdu(client[:length])
    except WireError:
        return False
    if pdu.code != X224_CR:
        return False
    return bool(pdu.token) or pdu.neg_type == NEG_REQ or on_known_port
