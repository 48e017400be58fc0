"""Sans-I/O framer for one direction of an OPC UA TCP connection (UA TCP, UACP).

Every UA TCP message chunk starts with the header of OPC 10000-6 §7.1.2.2: MessageType
(3 ASCII bytes: HEL, ACK, ERR, RHE, OPN, CLO, MSG), ChunkType (1 byte: F final,
C intermediate, A abort), MessageSize (UInt32, little-endian, the whole chunk including
these 8 bytes). The framer cuts the stream into :class:`Chunk` events along those sizes;
what is inside (secure channel headers, service bodies) is for the layers above.

A header is accepted when its type is known, its chunk type is allowed for that type
(HEL/ACK/ERR/RHE are always final), and its size lies between the smallest such message
and ``max_chunk``. Anything else is reported as :class:`Malformed` and framing resumes
at the next offset where an acceptable header starts; so does an oversized chunk (its
bytes are reported in runs, never held).

Buffer bound: once ``next_event()`` has returned ``NEED_DATA`` the framer holds at most
one incomplete chunk (< ``max_chunk`` bytes) or, while resynchronising, fewer than 8
undecided bytes, plus a skipped run shorter than ``skip_limit``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final

from otconduit.protocols.events import Malformed
from otconduit.protocols.framing import Resync, StreamFramer

HEADER: Final = 8
DEFAULT_MAX_CHUNK: Final = 4 * 1024 * 1024
HEL, ACK, ERR, RHE = b"HEL", b"ACK", b"ERR", b"RHE"
OPN, CLO, MSG = b"OPN", b"CLO", b"MSG"
FINAL, INTERMEDIATE, ABORT = ord("F"), ord("C"), ord("A")
# Smallest chunk of each type: HEL 5 UInt32 + an empty String, ACK 5 UInt32, ERR and
# RHE a UInt32/String + a String, OPN channel id + three empty ByteStrings, MSG/CLO
# channel id + token id + sequence header.
MIN_SIZE: Final = {HEL: 32, ACK: 28, ERR: 16, RHE: 16, OPN: 24, CLO: 24, MSG: 24}
# Largest chunk of the connection-level types: strings are at most 4096 bytes (§7.1.2.3).
MAX_CONTROL: Final = {HEL: 32 + 4096, ACK: 28, ERR: 16 + 4096, RHE: 16 + 2 * 4096}
SECURE_TYPES: Final = frozenset({OPN, CLO, MSG})
_TYPES: Final = re.compile(b"HEL|ACK|ERR|RHE|OPN|CLO|MSG")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message chunk, header included; ``frame``/``ts_ns`` are the capture frame
    that completed it, ``offset`` its position in the direction's byte stream."""

    msg_type: bytes
    chunk_type: int
    data: bytes
    offset: int
    frame: int
    ts_ns: int

    @property
    def size(self) -> int:
        return len(self.data)


def header_problem(buf: bytes | bytearray, at: int, max_chunk: int) -> str | None:
    """Why the 8 bytes at ``buf[at]`` are not an acceptable chunk header (None: they are)."""
    problem, _ = _check_header(buf, at, max_chunk)
    return problem


def _check_header(buf: bytes | bytearray, at: int, max_chunk: int) -> tuple[str | None, bool]:
    """(problem or None, whether the only problem is a secure-channel chunk above
    ``max_chunk``: such a chunk is well framed and can be skipped by its size)."""
    msg_type = bytes(buf[at : at + 3])
    floor = MIN_SIZE.get(msg_type)
    if floor is None:
        return f"unknown message type {msg_type!r}", False
    chunk_type = buf[at + 3]
    if chunk_type != FINAL and (
        msg_type not in SECURE_TYPES or chunk_type not in (ABORT, INTERMEDIATE)
    ):
        return f"chunk type {chunk_type:#04x} not allowed for {msg_type.decode()}", False
    size = int.from_bytes(buf[at + 4 : at + 8], "little")
    ceiling = min(MAX_CONTROL.get(msg_type, max_chunk), max_chunk)
    if size < floor:
        return f"{msg_type.decode()} size {size} below {floor}", False
    if size > ceiling:
        return f"{msg_type.decode()} size {size} above {ceiling}", msg_type in SECURE_TYPES
    return None, False


class ChunkStream(StreamFramer[Chunk]):
    """Frames one direction of a UA TCP connection into :class:`Chunk` events.

    A secure-channel chunk larger than ``max_chunk`` is skipped along its declared size
    and reported once (its first ``KEEP`` bytes kept), without holding its bytes.

    Counters: ``chunks`` (framed), ``malformed``, ``resyncs``, ``bytes_skipped``.
    """

    resync_window = HEADER
    gap_incomplete = "incomplete OPC UA chunk before a gap"
    gap_resync = "bytes before the first OPC UA chunk header after a gap"
    KEEP: ClassVar[int] = 256

    def __init__(self, *, max_chunk: int = DEFAULT_MAX_CHUNK, skip_limit: int = 4096) -> None:
        if skip_limit < HEADER:
            raise ValueError(f"skip_limit must be at least {HEADER}")
        super().__init__(skip_limit=skip_limit)
        self.max_chunk = max(max_chunk, max(MIN_SIZE.values()))
        self.chunks = 0
        self._discard = 0  # bytes of an oversized chunk still to skip
        self._discard_reason = ""
        self._discard_offset = 0
        self._discard_head = bytearray()  # its first KEEP bytes
        self._discard_at = (0, 0)  # (frame, ts_ns) of the last byte skipped

    @property
    def idle(self) -> bool:
        return super().idle and not self._discard

    def gap(self, nbytes: int, frame: int, ts_ns: int) -> None:
        self._check_gap(nbytes)
        self._drain()
        if self._discard:
            self._events.append(self._discard_report("cut by a gap", (frame, ts_ns)))
        super().gap(nbytes, frame, ts_ns)

    def end(self) -> None:
        if self._ended:
            return
        self._drain()
        if self._discard:
            self._events.append(
                self._discard_report("cut by the end of the stream", self._discard_at)
            )
        super().end()

    def _discard_report(self, how: str, at: tuple[int, int]) -> Malformed:
        self._discard = 0
        self.malformed += 1
        return Malformed(
            reason=f"{self._discard_reason}, {how}",
            offset=self._discard_offset,
            frame=at[0],
            ts_ns=at[1],
            data=bytes(self._discard_head),
        )

    def _resync_start(self, at: int) -> bool:
        return _check_header(self._buf, at, self.max_chunk)[0] is None

    def _truncated(self, data: bytes) -> str:
        if len(data) >= HEADER:
            return f"{len(data)} of {int.from_bytes(data[4:8], 'little')} bytes"
        return f"{len(data)} bytes of an {HEADER}-byte header"

    def _frame_at(self, avail: int) -> Chunk | Malformed | Resync | None:
        if self._discard:
            return self._discarding(avail)
        if avail < HEADER:
            return None
        buf, start = self._buf, self._pos
        problem, oversized = _check_header(buf, start, self.max_chunk)
        size = int.from_bytes(buf[start + 4 : start + 8], "little")
        if oversized:
            self._discard_reason = (
                f"OPC UA chunk of {size} bytes above the {self.max_chunk}-byte limit; skipped"
            )
            self._discard_offset = self._base + start
            self._discard_head = bytearray()
            self._discard = size
            return self._discarding(avail)
        if problem is not None:
            return Resync(f"invalid OPC UA chunk header: {problem}")
        if avail < size:
            return None
        offset = self._base + start
        frame, ts_ns = self._completing_frame(offset, offset + size)
        chunk = Chunk(
            bytes(buf[start : start + 3]),
            buf[start + 3],
            bytes(buf[start : start + size]),
            offset,
            frame,
            ts_ns,
        )
        self._advance(size)
        self.chunks += 1
        return chunk

    def _discarding(self, avail: int) -> Malformed | None:
        n = min(avail, self._discard)
        if n:
            at = self._frame_of(self._base + self._pos + n - 1)
            self._discard_at = at
            keep = self.KEEP - len(self._discard_head)
            if keep > 0:
                self._discard_head += self._buf[self._pos : self._pos + min(n, keep)]
            self._advance(n)
            self._discard -= n
            self.bytes_skipped += n
            if not self._discard:
                return self._discard_report("skipped", at)
        return None

    def _next_candidate(self) -> int:
        """First index after the read position where an acceptable header starts, or
        the first index whose 8 bytes are not all here yet. One call looks at most
        ``skip_limit`` bytes ahead (the skipped run is reported at that size anyway), so
        a long run of garbage costs linear time, not a rescan per report."""
        buf, limit = self._buf, self.max_chunk
        start = self._pos + 1
        last = len(buf) - HEADER
        end = min(last, start + self._skip_limit)
        i = start
        while i <= end:
            m = _TYPES.search(buf, i, end + 3)
            if m is None:
                break
            i = m.start()
            if _check_header(buf, i, limit)[0] is None:
                return i
            i += 1
        return max(start, min(last, end) + 1)
