"""Bounds-checked little-endian reads for the EtherNet/IP and CIP parsers.

CIP and the encapsulation layer are little-endian throughout (CIP Vol 1 §C-1.4.1,
Vol 2 §2-3.1), except the socket address item, which keeps network byte order (Vol 2
§2-6.3.2). Every read checks the remaining length and raises :class:`Truncated`, which
the parsers of this package catch and turn into a problem string: no ``struct.error`` or
``IndexError`` ever leaves them.
"""

from __future__ import annotations


class Truncated(ValueError):
    """A field runs past the end of the bytes it is read from (package-internal)."""


class Reader:
    """A cursor over ``data``; reads advance it or raise :class:`Truncated`."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _need(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > len(self.data):
            raise Truncated(f"{what}: need {n} bytes at offset {self.pos}, have {self.remaining}")
        start = self.pos
        self.pos += n
        return start

    def u8(self, what: str = "byte") -> int:
        return self.data[self._need(1, what)]

    def u16(self, what: str = "UINT") -> int:
        at = self._need(2, what)
        return int.from_bytes(self.data[at : at + 2], "little")

    def u32(self, what: str = "UDINT") -> int:
        at = self._need(4, what)
        return int.from_bytes(self.data[at : at + 4], "little")

    def u16be(self, what: str = "UINT (network order)") -> int:
        at = self._need(2, what)
        return int.from_bytes(self.data[at : at + 2], "big")

    def take(self, n: int, what: str = "bytes") -> bytes:
        at = self._need(n, what)
        return self.data[at : at + n]

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out
