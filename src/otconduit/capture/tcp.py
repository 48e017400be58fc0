"""Per-direction TCP stream reassembly, sans-I/O.

Protocol decoders need each direction of a connection as one ordered byte stream. Captures
lose, reorder and duplicate segments, so the reassembler buffers out-of-order data (bounded)
and, when it must give up waiting, says how many bytes are missing with a :class:`StreamGap`
so the decoder downstream can resynchronise instead of misparsing.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass

from otconduit.capture.packet import TCP_SYN

# Out-of-order data held per direction before the oldest hole is declared a gap.
MAX_BUFFER_BYTES = 256 << 10
MAX_BUFFER_SEGMENTS = 128
# Data further ahead than the largest possible window (RFC 7323 §2.3) cannot be this stream's.
MAX_AHEAD = 1 << 30

_SEQ_MASK = 0xFFFFFFFF
_HALF = 1 << 31


@dataclass(frozen=True, slots=True)
class StreamData:
    """In-order stream bytes, available from ``frame`` on.

    From :meth:`TcpReassembler.feed` that is the frame fed, even for held bytes it releases:
    the moment, in capture order, the bytes could be read (as tshark reports reassembled
    PDUs), which keeps timestamps in order. From ``flush`` it is the frame that held them.
    """

    data: bytes
    frame: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class StreamGap:
    """``nbytes`` of the stream were never captured; ``frame`` as for :class:`StreamData`."""

    nbytes: int
    frame: int
    ts_ns: int


StreamEvent = StreamData | StreamGap


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space (RFC 9293 §3.4), in [-2**31, 2**31)."""
    d = (a - b) & _SEQ_MASK
    return d - (1 << 32) if d >= _HALF else d


def uncovered_spans(
    spans: Iterable[tuple[int, int]], start: int, end: int
) -> list[tuple[int, int]]:
    """The parts of [start, end) outside ``spans`` (sorted, disjoint [s, e) pairs)."""
    out = []
    cur = start
    for s, e in spans:
        if e <= cur:
            continue
        if s >= end:
            break
        if s > cur:
            out.append((cur, s))
        cur = e
        if cur >= end:
            break
    if cur < end:
        out.append((cur, end))
    return out


class TcpReassembler:
    """Reassemble one direction of a TCP connection from its segments.

    Positions are kept as unwrapped stream offsets (``_pos`` is the offset of ``next_seq``),
    so sequence wraparound only matters where a segment's 32-bit seq is placed.
    """

    def __init__(
        self, max_bytes: int = MAX_BUFFER_BYTES, max_segments: int = MAX_BUFFER_SEGMENTS
    ) -> None:
        self.max_bytes = max_bytes
        self.max_segments = max_segments
        self._next: int | None = None  # 32-bit sequence number expected next
        self._pos = 0  # stream offset of _next
        self._held: list[tuple[int, bytes, int, int]] = []  # (offset, data, frame, ts), sorted
        self._held_bytes = 0
        self.delivered_bytes = 0
        self.retransmitted = 0  # segments holding only data already delivered or held
        self.out_of_order = 0  # segments that arrived ahead of a hole
        self.overlaps = 0  # segments partly overlapping data already delivered or held
        self.gaps = 0
        self.gap_bytes = 0
        self.out_of_window = 0  # segments beyond any possible window, dropped

    @property
    def next_seq(self) -> int | None:
        """The sequence number expected next, or None before the first SYN or data."""
        return self._next

    @property
    def clean(self) -> bool:
        """True when nothing is buffered: every byte seen so far has been delivered."""
        return not self._held

    @property
    def buffered_bytes(self) -> int:
        return self._held_bytes

    def feed(
        self, seq: int, flags: int, payload: bytes, frame: int, ts_ns: int
    ) -> list[StreamEvent]:
        """Take one segment; return the stream data (and gaps) it makes deliverable."""
        seq &= _SEQ_MASK
        if flags & TCP_SYN:
            # SYN takes one sequence number (RFC 9293 §3.4); data on a SYN follows it.
            if self._next is None:
                self._next = (seq + 1) & _SEQ_MASK
            seq = (seq + 1) & _SEQ_MASK
        if not payload:
            return []
        if self._next is None:  # capture started mid-connection
            self._next = seq
        off = self._pos + seq_diff(seq, self._next)
        end = off + len(payload)
        if end <= self._pos:
            self.retransmitted += 1
            return []
        if off < self._pos:
            payload = payload[self._pos - off :]
            off = self._pos
            self.overlaps += 1
        now = (frame, ts_ns)
        if off == self._pos:
            events: list[StreamEvent] = [self._deliver(payload, frame, ts_ns)]
            self._drain(events, now)
            return events
        if off - self._pos > MAX_AHEAD:
            self.out_of_window += 1
            return []
        self.out_of_order += 1
        self._hold(off, payload, frame, ts_ns)
        events = []
        while self._held_bytes > self.max_bytes or len(self._held) > self.max_segments:
            self._skip_hole(events, now)
        return events

    def flush(self) -> list[StreamEvent]:
        """Give up on every hole (end of capture, FIN or RST): gaps and the held data."""
        events: list[StreamEvent] = []
        while self._held:
            self._skip_hole(events)
        return events

    def peer_ack(self, ack: int, frame: int, ts_ns: int) -> list[StreamEvent]:
        """The other side acknowledged up to ``ack``: bytes before it that we never saw
        were lost by the capture, not by the network, so waiting for them is pointless.

        Declares those holes as gaps at once (stamped with the acknowledging frame) and
        releases the held data behind them. Acknowledgements more than ``max_bytes`` ahead
        are ignored (fuzzed or from another connection).
        """
        if not self._held or self._next is None:
            return []
        ahead = seq_diff(ack & _SEQ_MASK, self._next)
        if ahead <= 0 or ahead > self.max_bytes:
            return []
        target = self._pos + ahead
        events: list[StreamEvent] = []
        while self._held and self._pos < target:
            missing = min(self._held[0][0], target) - self._pos
            if missing > 0:
                events.append(StreamGap(missing, frame, ts_ns))
                self.gaps += 1
                self.gap_bytes += missing
                self._advance(missing)
            # Held segments were whole when they arrived: they keep their own frames.
            self._drain(events)
        return events

    def sync_to(self, seq: int) -> list[StreamEvent]:
        """Expect ``seq`` next, after a bulk path consumed in-order data itself.

        Returns held data that this makes deliverable (none when the reassembler was clean).
        """
        seq &= _SEQ_MASK
        if self._next is not None:
            self._pos += seq_diff(seq, self._next)
        self._next = seq
        events: list[StreamEvent] = []
        self._drain(events)
        return events

    def _deliver(self, data: bytes, frame: int, ts_ns: int) -> StreamData:
        self._advance(len(data))
        self.delivered_bytes += len(data)
        return StreamData(data, frame, ts_ns)

    def _advance(self, n: int) -> None:
        self._pos += n
        self._next = ((self._next or 0) + n) & _SEQ_MASK

    def _hold(self, off: int, data: bytes, frame: int, ts_ns: int) -> None:
        """Buffer the parts of an out-of-order segment not already held (first data wins)."""
        end = off + len(data)
        spans = uncovered_spans(((o, o + len(d)) for o, d, _, _ in self._held), off, end)
        if spans != [(off, end)]:
            if not spans:
                self.retransmitted += 1
                return
            self.overlaps += 1
        for s, e in spans:
            insort(self._held, (s, data[s - off : e - off], frame, ts_ns), key=lambda h: h[0])
            self._held_bytes += e - s

    def _drain(self, events: list[StreamEvent], now: tuple[int, int] | None = None) -> None:
        """Deliver held segments that the stream has now reached, stamped ``now`` if given."""
        while self._held and self._held[0][0] <= self._pos:
            off, data, frame, ts_ns = self._held.pop(0)
            if now is not None:
                frame, ts_ns = now
            self._held_bytes -= len(data)
            if off + len(data) <= self._pos:
                continue
            if off < self._pos:
                data = data[self._pos - off :]
                self.overlaps += 1
            events.append(self._deliver(data, frame, ts_ns))

    def _skip_hole(self, events: list[StreamEvent], now: tuple[int, int] | None = None) -> None:
        """Declare the hole before the first held segment a gap, then deliver what follows."""
        off, _, frame, ts_ns = self._held[0]
        if now is not None:
            frame, ts_ns = now
        missing = off - self._pos
        if missing > 0:
            events.append(StreamGap(missing, frame, ts_ns))
            self.gaps += 1
            self.gap_bytes += missing
            self._advance(missing)
        self._drain(events, now)
