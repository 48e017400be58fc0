"""Shared mechanics of the sans-I/O stream framers (Modbus/TCP, EtherNet/IP, TPKT, DNP3).

Why this exists: every length-framed TCP protocol decoder needs the same machinery
around its header checks, and it is easy to get subtly wrong (frame attribution after
reordering, amortised compaction, a skipped run that can neither grow without bound nor
stall the stream). :class:`StreamFramer` holds that machinery once:

- a ``bytearray`` buffer with a read position and the stream offset of its first byte,
  compacted once the consumed prefix dominates (amortised linear in bytes fed);
- a deque of ``(end offset, frame, ts_ns)`` chunks, so each event is attributed to the
  capture frame that delivered (:meth:`_frame_of`) or completed
  (:meth:`_completing_frame`) its bytes;
- ``feed`` / ``gap`` / ``end`` inputs and ``next_event`` / ``events`` / ``buffered``
  outputs, where ``next_event`` returns a message, a :class:`Malformed` or ``NEED_DATA``;
- a resynchronisation state that moves bytes into a bounded *skipped run*, reported as
  one :class:`Malformed` when framing is found again or the run reaches ``skip_limit``.

A subclass supplies the protocol: :meth:`_frame_at` (frame one message at the read
position, ask for more bytes, or say the header there is invalid with :class:`Resync`),
:meth:`_resync_start` / :meth:`_next_candidate` (where framing may resume) and
:meth:`_truncated` (describe a tail cut by the end of the stream). Framers whose event
loop or resync policy differs (TPKT/COTP reassembly, DNP3's CRC-checked link frames)
override ``_parse``/``gap``/``end`` and use only the buffer, chunk and skip primitives.

Buffer bound: once ``next_event()`` has returned ``NEED_DATA`` the framer holds at most
one incomplete message (what :meth:`_frame_at` waits for) or, while resynchronising,
fewer than ``resync_window`` undecided bytes, plus a skipped run shorter than
``skip_limit``. Bytes passed to ``feed()`` are held until the caller drains them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import ClassVar, Generic, NamedTuple, TypeVar

from otconduit.protocols.events import NEED_DATA, Malformed, NeedData

M = TypeVar("M")


class Resync(NamedTuple):
    """Returned by :meth:`StreamFramer._frame_at`: the header at the read position is
    invalid for ``reason``; skip it and search for the next plausible start."""

    reason: str


class StreamFramer(Generic[M]):
    """Buffer, chunk attribution and resynchronisation for one direction of a stream."""

    #: bytes needed at the read position before :meth:`_resync_start` can decide.
    resync_window: ClassVar[int] = 1
    #: reason of the Malformed reporting a partial message cut by a gap.
    gap_incomplete: ClassVar[str] = "incomplete message before a gap"
    #: resynchronisation reason after a gap.
    gap_resync: ClassVar[str] = "bytes before the first plausible message after a gap"
    #: word for the units of a skipped run in its Malformed reason.
    unit: ClassVar[str] = "bytes"
    #: consumed bytes kept before compaction when the buffer is not fully read.
    compact_floor: ClassVar[int] = 65536

    def __init__(self, skip_limit: int) -> None:
        self._skip_limit = skip_limit
        self._buf = bytearray()
        self._pos = 0  # read position in _buf
        self._base = 0  # stream offset of _buf[0]
        self._chunks: deque[tuple[int, int, int]] = deque()  # (end offset, frame, ts_ns)
        self._events: deque[M | Malformed] = deque()
        self._resync: str | None = None  # set while searching for a header
        self._skipped = bytearray()
        self._skipped_offset = 0
        self._skipped_at = (0, 0)  # (frame, ts_ns) of the last skipped byte
        self._ended = False
        self.malformed = 0
        self.resyncs = 0
        self.bytes_skipped = 0

    # --- protocol hooks -------------------------------------------------------------

    def _frame_at(self, avail: int) -> M | Malformed | Resync | None:
        """Frame one message at the read position (``avail`` unread bytes), advancing
        past it; None when more bytes are needed."""
        raise NotImplementedError

    def _resync_start(self, at: int) -> bool:
        """Whether framing may resume at ``_buf[at]`` (``resync_window`` bytes there)."""
        raise NotImplementedError

    def _next_candidate(self) -> int:
        """Index after the read position to skip to while resynchronising."""
        raise NotImplementedError

    def _truncated(self, data: bytes) -> str:
        """How much of a message ``data``, cut by the end of the stream, holds."""
        raise NotImplementedError

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
        already buffered are kept, a partial one is reported, framing resynchronises.
        Events made here carry the gap's ``frame``/``ts_ns``: when the loss was known."""
        self._check_gap(nbytes)
        self._drain()
        pending = bytes(self._buf[self._pos :])
        if self._resync is not None:
            self._skip_rest(at=(frame, ts_ns))
        elif pending:
            self._report(
                f"{self.gap_incomplete}: {len(pending)} bytes",
                self._base + self._pos,
                (frame, ts_ns),
                pending,
            )
        self._drop(nbytes)
        self._resync = self.gap_resync
        self.resyncs += 1

    def end(self) -> None:
        """The stream ended: leftover bytes become Malformed events."""
        if self._ended:
            return
        self._drain()
        if self._resync is not None:
            self._skip_rest()
        elif self._pos < len(self._buf):
            data = bytes(self._buf[self._pos :])
            self._report(
                f"truncated message at end of stream: {self._truncated(data)}",
                self._base + self._pos,
                self._frame_of(self._base + len(self._buf) - 1),
                data,
            )
            self._pos = len(self._buf)
        self._ended = True

    # --- outputs --------------------------------------------------------------------

    def next_event(self) -> M | Malformed | NeedData:
        """The next message or Malformed event, or ``NEED_DATA``."""
        if self._events:
            return self._events.popleft()
        if self._ended:
            return NEED_DATA
        event = self._parse()
        return NEED_DATA if event is None else event

    def events(self) -> Iterator[M | Malformed]:
        """Every event available now (stops at ``NEED_DATA``)."""
        while not isinstance(event := self.next_event(), NeedData):
            yield event

    @property
    def buffered(self) -> int:
        """Bytes held and not yet reported (undrained input included)."""
        return len(self._buf) - self._pos + len(self._skipped)

    @property
    def idle(self) -> bool:
        """At a message boundary with nothing pending: the next byte starts a message.

        A fast path may take over the direction from here and hand it back later
        without either side seeing a difference.
        """
        return not self._events and self.buffered == 0 and self._resync is None and not self._ended

    # --- framing loop ---------------------------------------------------------------

    def _drain(self) -> None:
        while (event := self._parse()) is not None:
            self._events.append(event)

    def _parse(self) -> M | Malformed | None:
        """One event from the buffer, or None when more bytes are needed."""
        while True:
            if self._resync is not None:
                if len(self._buf) - self._pos < self.resync_window:
                    return None
                if self._resync_start(self._pos):
                    skipped = self._take_skipped()
                    self._resync = None
                    if skipped is not None:
                        return skipped
                    continue
                if self._skip(self._next_candidate() - self._pos):
                    return self._take_skipped()
                continue
            result = self._frame_at(len(self._buf) - self._pos)
            if not isinstance(result, Resync):
                return result
            self._resync = result.reason
            self.resyncs += 1
            if self._skip(1):
                return self._take_skipped()

    # --- primitives -----------------------------------------------------------------

    def _check_gap(self, nbytes: int) -> None:
        if self._ended:
            raise RuntimeError("gap() after end()")
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")

    def _drop(self, nbytes: int) -> None:
        """Forget the whole buffer and ``nbytes`` lost bytes after it (a gap)."""
        self._base += len(self._buf) + nbytes
        self._buf.clear()
        self._pos = 0
        self._chunks.clear()

    def _skip(self, count: int) -> bool:
        """Move up to ``count`` unread bytes to the skipped run; True when it is full."""
        count = min(count, self._skip_limit - len(self._skipped))
        if count > 0:
            if not self._skipped:
                self._skipped_offset = self._base + self._pos
            self._skipped += self._buf[self._pos : self._pos + count]
            self._skipped_at = self._frame_of(self._base + self._pos + count - 1)
            self._advance(count)
        return len(self._skipped) >= self._skip_limit

    def _take_skipped(self, at: tuple[int, int] | None = None) -> Malformed | None:
        """Report the skipped run (if any) as one Malformed event."""
        if not self._skipped:
            return None
        frame, ts_ns = self._skipped_at if at is None else at
        event = Malformed(
            reason=f"{self._resync or 'resynchronised'}; skipped {len(self._skipped)} {self.unit}",
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
        """Report every unread byte as skipped (the stream is cut by a gap or the end)."""
        while True:
            self._skip(len(self._buf) - self._pos)
            event = self._take_skipped(at)
            if event is None:
                return
            self._events.append(event)

    def _report(self, reason: str, offset: int, at: tuple[int, int], data: bytes) -> None:
        """Queue a Malformed event for ``data``, counting its bytes as skipped."""
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
        # Compact once the consumed prefix dominates: amortised linear in bytes fed.
        if self._pos == len(self._buf) or self._pos > max(self.compact_floor, len(self._buf) // 2):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0

    def _completing_frame(self, begin: int, end: int) -> tuple[int, int]:
        """(frame, ts_ns) that completed the bytes ``[begin, end)``: the latest frame among
        the chunks holding them (after reordering, not the one holding the last byte),
        as Wireshark attributes a reassembled PDU."""
        best = self._frame_of(end - 1)
        for chunk_end, frame, ts_ns in self._chunks:
            if chunk_end <= begin:
                continue
            if frame > best[0]:
                best = (frame, ts_ns)
            if chunk_end >= end:
                break
        return best

    def _frame_of(self, offset: int) -> tuple[int, int]:
        """(frame, ts_ns) of the chunk that delivered the byte at stream ``offset``."""
        for end, frame, ts_ns in self._chunks:
            if offset < end:
                return frame, ts_ns
        return (self._chunks[-1][1], self._chunks[-1][2]) if self._chunks else (0, 0)
