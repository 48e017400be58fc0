"""NTLMSSP messages (MS-NLMP §2.2.1) as they travel in clear inside SMB session setups
(and HTTP ``Authorization: NTLM``): the names hosts give each other while
authenticating.

- NEGOTIATE (type 1): the client's domain and workstation when it supplies them;
- CHALLENGE (type 2): the server's target name and target information (NetBIOS and
  DNS computer and domain names, MS-NLMP §2.2.2.1), and its OS version when sent;
- AUTHENTICATE (type 3): the client's domain, user and workstation names, its version.

Only names and versions are read; challenges and responses are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from otconduit.protocols.it._wire import Reader, WireError, text

SIGNATURE: Final = b"NTLMSSP\x00"
NEGOTIATE, CHALLENGE, AUTHENTICATE = 1, 2, 3
FLAG_UNICODE: Final = 0x00000001
FLAG_DOMAIN_SUPPLIED: Final = 0x00001000
FLAG_WORKSTATION_SUPPLIED: Final = 0x00002000
FLAG_VERSION: Final = 0x02000000
AV_EOL: Final = 0
AV_NAMES: Final = {
    1: "nb_computer",
    2: "nb_domain",
    3: "dns_computer",
    4: "dns_domain",
    5: "dns_tree",
}
MAX_AV_PAIRS: Final = 64


@dataclass(frozen=True, slots=True)
class NtlmMessage:
    kind: int
    flags: int
    domain: str = ""
    user: str = ""
    workstation: str = ""
    target_name: str = ""
    target_info: dict[str, str] = field(default_factory=dict)  # AV_NAMES values -> name
    version: tuple[int, int, int] | None = None  # major, minor, build


def find(blob: bytes) -> bytes | None:
    """The NTLMSSP message inside a security blob (raw or SPNEGO-wrapped), or None."""
    at = blob.find(SIGNATURE)
    return blob[at:] if at >= 0 else None


def _field(msg: bytes, at: int, what: str) -> bytes:
    r = Reader(msg, at)
    length, _max, offset = r.u16le(what), r.u16le(what), r.u32le(what)
    if length == 0:
        return b""
    return Reader(msg, offset).take(length, what)


def _string(raw: bytes, unicode: bool) -> str:
    return text(raw, "utf-16-le" if unicode else "latin-1")


def _version(msg: bytes, at: int) -> tuple[int, int, int] | None:
    if len(msg) < at + 8:
        return None
    major, minor = msg[at], msg[at + 1]
    build = int.from_bytes(msg[at + 2 : at + 4], "little")
    return (major, minor, build) if major else None


def _target_info(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    r = Reader(raw)
    for _ in range(MAX_AV_PAIRS):
        if r.left < 4:
            return out
        av_id, length = r.u16le("AV id"), r.u16le("AV length")
        value = r.take(length, f"AV pair {av_id}")
        if av_id == AV_EOL:
            return out
        name = AV_NAMES.get(av_id)
        if name:
            out[name] = _string(value, True)
    raise WireError(f"more than {MAX_AV_PAIRS} AV pairs")


def parse(msg: bytes) -> NtlmMessage:
    """Decode one NTLMSSP message (starting at its signature)."""
    r = Reader(msg)
    if r.take(8, "signature") != SIGNATURE:
        raise WireError("not NTLMSSP")
    kind = r.u32le("message type")
    if kind == NEGOTIATE:
        flags = r.u32le("flags")
        domain = _field(msg, 16, "domain") if flags & FLAG_DOMAIN_SUPPLIED else b""
        station = _field(msg, 24, "workstation") if flags & FLAG_WORKSTATION_SUPPLIED else b""
        version = _version(msg, 32) if flags & FLAG_VERSION else None
        return NtlmMessage(
            kind,
            flags,
            domain=_string(domain, False),
            workstation=_string(station, False),
            version=version,
        )
    if kind == CHALLENGE:
        flags = Reader(msg, 20).u32le("flags")
        unicode = bool(flags & FLAG_UNICODE)
        target = _string(_field(msg, 12, "target name"), unicode)
        info = _target_info(_field(msg, 40, "target info")) if len(msg) >= 48 else {}
        version = _version(msg, 48) if flags & FLAG_VERSION else None
        return NtlmMessage(kind, flags, target_name=target, target_info=info, version=version)
    if kind == AUTHENTICATE:
        flags = Reader(msg, 60).u32le("flags") if len(msg) >= 64 else 0
        unicode = bool(flags & FLAG_UNICODE) if flags else True
        # The version sits before the payload only when the payload starts after it.
        offsets = [
            int.from_bytes(msg[at + 4 : at + 8], "little")
            for at in range(12, 60, 8)
            if len(msg) >= at + 8 and msg[at : at + 2] != b"\x00\x00"
        ]
        first = min(offsets, default=len(msg))
        version = _version(msg, 64) if flags & FLAG_VERSION and first >= 72 else None
        return NtlmMessage(
            kind,
            flags,
            domain=_string(_field(msg, 28, "domain"), unicode),
            user=_string(_field(msg, 36, "user"), unicode),
            workstation=_string(_field(msg, 44, "workstation"), unicode),
            version=version,
        )
    raise WireError(f"NTLMSSP message type {kind}")
