"""Sans-I/O framer for one direction of an EtherNet/IP TCP connection.

Encapsulation messages on TCP are a 24-byte header plus ``length`` bytes (Vol 2 §2-3.1,
§2-2.1: "the encapsulation messages are framed by the length field"). Bytes go in with
:meth:`EncapStream.feed` (lost bytes are announced with :meth:`EncapStream.gap`); events
come out of :meth:`EncapStream.next_event`: an :class:`EncapMessage`, a
:class:`~otconduit.protocols.events.Malformed`, or ``NEED_DATA``. It never raises on any
byte content and never stalls: an invalid header is reported and framing resumes at the
next offset where a well-formed header starts.

Buffer bound: once ``next_event()`` has returned ``NEED_DATA`` the stream holds at most
one incomplete message (< 24 + 65535 bytes) or, while resynchronising, fewer than 24
undecided bytes, plus a run of skipped bytes that is reported as soon as it reaches
``max_skip``. Bytes passed to ``feed()`` are held until the caller drains them (h11).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from otconduit.protocols.enip.encap import (
    CIP_CARRIERS,
    COMMAND_NAMES,
    HEADER_SIZE,
    NOP,
    UNREGISTER_SESSION,
    EncapHeader,
    header_problem,
    parse_header,
    plausible_header,
    tolerable_unknown,
)
from otconduit.protocols.events import NEED_DATA, Malformed, NeedData

MAX_MESSAGE: Final = HEADER_SIZE + 0xFFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class EncapMessage:
    """One framed encapsulation message: its header and command-specific data.

    ``offset`` is the stream offset of the header, ``frame``/``ts_ns`` the capture frame
    that delivered its last byte.
    """

    header: EncapHeader
    body: bytes
    offset: int
    frame: int
    ts_ns: int


Event = EncapMessage | Malformed | NeedData


def resync_candidate(buf: bytes | bytearray, at: int) -> bool:
    """A header good enough to resume framing at after losing sync.

    Stricter than :func:`plausible_header`: runs of zero bytes parse as NOPs, so a NOP
    is never a resync point, and commands that need a session must carry one.
    """
    if not plausible_header(buf, at):
        return False
    command = buf[at]
    if command == NOP:
        return False
    return not (
        (command in CIP_CARRIERS or command == UNREGISTER_SESSION) and not any(buf[at + 4 : at + 8])
    )


class EncapStream:
    """Frames one direction of an EtherNet/IP TCP connection into events.

    Counters: ``messages`` (messages framed), ``malformed`` (Malformed events),
    ``resyncs`` (times framing was lost), ``bytes_skipped`` (bytes reported as
    Malformed, gap bytes excluded).
    """

    def __init__(self, max_skip: int = 4096) -> None:
        if max_skip < HEADER_SIZE:
            raise ValueError(f"max_skip must be at least {HEADER_SIZE}")
        self.max_skip = max_skip
        self._buf = bytearray()
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self._chunks: deque[tuple[int, int, int]] = deque()  # (end offset, frame, ts_ns)
        self._events: deque[EncapMessage | Malformed] = deque()
        self._resync: str | None = None
        self._skipped = bytearray()
        self._skipped_offset = 0
        self._skipped_at = (0, 0)
        self._ended = False
        self.messages = 0
        self.malformed = 0
        self.resyncs = 0
        self.bytes_skipped = 0

    # --- inputs ---------------------------------------------------------------------

    def feed(self, data: bytes, frame: int, ts_ns: int) -> None:
        """Append bytes that arrived in capture frame ``frame`` at ``ts_ns``."""
        if self._ended:
            raise RuntimeError("feed() after end()")
        if data:
            self._buf += data
            self._chunks.append((self._base + len(self._buf), frame, ts_ns))

    def gap(self, nbytes: int, frame: int, ts_ns: int) -> None:
        """Announce ``nbytes`` lost bytes before the next ``feed()``: complete messages
        already buffered are kept, a partial one is reported, framing resynchronises."""
        if self._ended:
            raise RuntimeError("gap() after end()")
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        self._drain()
        pending = bytes(self._buf[self._pos :])
        if self._resync is not None:
            self._skip_rest(at=(frame, ts_ns))
        elif pending:
            self._report(
                f"incomplete message before a gap: {len(pending)} bytes",
                self._base + self._pos,
                (frame, ts_ns),
                pending,
            )
        self._base += len(self._buf) + nbytes
        self._buf.clear()
        self._pos = 0
        self._chunks.clear()
        self._resync = "bytes before the first well-formed header after a gap"
        self.resyncs += 1

    def end(self) -> None:
        """The stream ended: leftover bytes become a Malformed event."""
        if self._ended:
            return
        self._drain()
        avail = len(self._buf) - self._pos
        if self._resync is not None:
            self._skip_rest()
        elif avail:
            data = bytes(self._buf[self._pos :])
            if avail >= HEADER_SIZE:
                expected = f"{avail} of {HEADER_SIZE + parse_header(data).length} bytes"
            else:
                expected = f"{avail} bytes of a {HEADER_SIZE}-byte header"
            self._report(
                f"truncated message at end of stream: {expected}",
                self._base + self._pos,
                self._frame_of(self._base + len(self._buf) - 1),
                data,
            )
            self._pos = len(self._buf)
        self._ended = True

    # --- outputs --------------------------------------------------------------------

    def next_event(self) -> Event:
        """The next message or Malformed event, or ``NEED_DATA``."""
        if self._events:
            return self._events.popleft()
        if self._ended:
            return NEED_DATA
        event = self._parse()
        return NEED_DATA if event is None else event

    def events(self) -> Iterator[EncapMessage | Malformed]:
        """Every event available now (stops at ``NEED_DATA``)."""
        while not isinstance(event := self.next_event(), NeedData):
            yield event

    @property
    def buffered(self) -> int:
        """Bytes held and not yet reported."""
        return len(self._buf) - self._pos + len(self._skipped)

    # --- internals ------------------------------------------------------------------

    def _drain(self) -> None:
        while (event := self._parse()) is not None:
            self._events.append(event)

    def _parse(self) -> EncapMessage | Malformed | None:
        buf = self._buf
        while True:
            avail = len(buf) - self._pos
            if self._resync is not None:
                if avail < HEADER_SIZE:
                    return None
                if resync_candidate(buf, self._pos):
                    skipped = self._take_skipped()
                    self._resync = None
                    if skipped is not None:
                        return skipped
                    continue
                target = self._next_candidate(self._pos + 1)
                if self._skip(target - self._pos):
                    return self._take_skipped()
                continue
            if avail < HEADER_SIZE:
                return None
            header = parse_header(buf, self._pos)
            problem = header_problem(header)
            total = HEADER_SIZE + header.length
            if problem is not None and tolerable_unknown(header):
                if avail < total:
                    return None
                start = self._pos
                data = bytes(buf[start : start + total])
                offset = self._base + start
                frame, ts_ns = self._frame_of(offset + total - 1)
                self._advance(total)
                self.malformed += 1
                self.bytes_skipped += total
                return Malformed(
                    reason=f"{problem}; framed by its length",
                    offset=offset,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=data,
                )
            if problem is not None:
                self._resync = f"invalid encapsulation header: {problem}"
                self.resyncs += 1
                if self._skip(1):
                    return self._take_skipped()
                continue
            if avail < total:
                return None
            start = self._pos
            frame, ts_ns = self._frame_of(self._base + start + total - 1)
            body = bytes(buf[start + HEADER_SIZE : start + total])
            offset = self._base + start
            self._advance(total)
            self.messages += 1
            return EncapMessage(header=header, body=body, offset=offset, frame=frame, ts_ns=ts_ns)

    def _next_candidate(self, start: int) -> int:
        """First index >= ``start`` where a resync candidate begins, or the first index
        whose 24 bytes are not all here yet (the rest stays undecided)."""
        buf = self._buf
        last = len(buf) - HEADER_SIZE
        i = start
        while i <= last:
            if buf[i + 1] == 0 and buf[i] in COMMAND_NAMES and resync_candidate(buf, i):
                return i
            i += 1
        return max(start, last + 1)

    def _skip(self, count: int) -> bool:
        """Move up to ``count`` bytes to the skipped run; True when the run is full."""
        count = min(count, self.max_skip - len(self._skipped))
        if count > 0:
            if not self._skipped:
                self._skipped_offset = self._base + self._pos
            self._skipped += self._buf[self._pos : self._pos + count]
            self._skipped_at = self._frame_of(self._base + self._pos + count - 1)
            self._advance(count)
        return len(self._skipped) >= self.max_skip

    def _take_skipped(self, at: tuple[int, int] | None = None) -> Malformed | None:
        if not self._skipped:
            return None
        frame, ts_ns = self._skipped_at if at is None else at
        event = Malformed(
            reason=f"{self._resync or 'resynchronised'}; skipped {len(self._skipped)} bytes",
            offset=self._skipped_offset,
            frame=frame,
            ts_ns=ts_ns,
            data=bytes(self._skipped),
        )
        self.malformed += 1
        self.bytes_skipped += len(self._skipped)
        self._skipped.clear()
        return event

    def _skip_rest(self, at: tuple[int, int] | None = None) -> None:
        while True:
            self._skip(len(self._buf) - self._pos)
            event = self._take_skipped(at)
            if event is None:
                return
            self._events.append(event)

    def _report(self, reason: str, offset: int, at: tuple[int, int], data: bytes) -> None:
        self.malformed += 1
        self.bytes_skipped += len(data)
        self._events.append(
            Malformed(reason=reason, offset=offset, frame=at[0], ts_ns=at[1], data=data)
        )

    def _advance(self, count: int) -> None:
        self._pos += count
        head = self._base + self._pos
        while self._chunks and self._chunks[0][0] <= head:
            self._chunks.popleft()
        if self._pos == len(self._buf) or self._pos > max(65536, len(self._buf) // 2):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0

    def _frame_of(self, offset: int) -> tuple[int, int]:
        """(frame, ts_ns) of the chunk that delivered the byte at stream ``offset``."""
        for end, frame, ts_ns in self._chunks:
            if offset < end:
                return frame, ts_ns
        return (self._chunks[-1][1], self._chunks[-1][2]) if self._chunks else (0, 0)
