"""Bounded byte reading and text clean-up shared by the IT-side decoders.

Every read is checked against the end of the buffer; running past it raises
:class:`Truncated` (a :class:`WireError`), which each decoder turns into a
:class:`~otconduit.protocols.events.Malformed` event at its boundary. Nothing here
loops over attacker-controlled counts without a bound.
"""

from __future__ import annotations

import ipaddress
from typing import Final

MAX_TEXT: Final = 256  # longest text a claim carries (names, banners, descriptions)


class WireError(ValueError):
    """The bytes break the protocol's rules (decoders report it as Malformed)."""


class Truncated(WireError):
    """A field runs past the end of the bytes that hold it."""


class Reader:
    """A cursor over ``data[start:end]`` that never reads past ``end``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else min(end, len(data))

    @property
    def left(self) -> int:
        return self.end - self.pos

    def need(self, n: int, what: str = "field") -> None:
        if n < 0 or self.pos + n > self.end:
            raise Truncated(f"{what}: needs {n} bytes at offset {self.pos}, {self.left} left")

    def u8(self, what: str = "u8") -> int:
        self.need(1, what)
        v = self.data[self.pos]
        self.pos += 1
        return v

    def u16(self, what: str = "u16") -> int:
        self.need(2, what)
        v = int.from_bytes(self.data[self.pos : self.pos + 2], "big")
        self.pos += 2
        return v

    def u16le(self, what: str = "u16") -> int:
        self.need(2, what)
        v = int.from_bytes(self.data[self.pos : self.pos + 2], "little")
        self.pos += 2
        return v

    def u32(self, what: str = "u32") -> int:
        self.need(4, what)
        v = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        self.pos += 4
        return v

    def u32le(self, what: str = "u32") -> int:
        self.need(4, what)
        v = int.from_bytes(self.data[self.pos : self.pos + 4], "little")
        self.pos += 4
        return v

    def take(self, n: int, what: str = "bytes") -> bytes:
        self.need(n, what)
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def skip(self, n: int, what: str = "bytes") -> None:
        self.need(n, what)
        self.pos += n


def text(raw: bytes, encoding: str = "utf-8", limit: int = MAX_TEXT) -> str:
    """Printable text of a wire string: decoding errors replaced, control characters
    (NUL padding, line breaks) turned into spaces and runs of them collapsed, trimmed,
    at most ``limit`` characters."""
    s = raw.decode(encoding, "replace")
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    return " ".join(s.split())[:limit]


def ipv4(raw: bytes) -> str:
    if len(raw) != 4:
        raise WireError(f"IPv4 address of {len(raw)} bytes")
    return str(ipaddress.IPv4Address(raw))


def ipv6(raw: bytes) -> str:
    if len(raw) != 16:
        raise WireError(f"IPv6 address of {len(raw)} bytes")
    return str(ipaddress.IPv6Address(raw))


def mac(raw: bytes) -> str:
    """Lower-case colon-separated MAC, the form :class:`~otconduit.capture.packet.Packet`
    uses."""
    return raw.hex(":")


def usable_ip(ip: str) -> bool:
    """An address that names one host: not unspecified, broadcast or multicast."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if a.is_unspecified or a.is_multicast:
        return False
    return not (a.version == 4 and int(a) == 0xFFFFFFFF)
