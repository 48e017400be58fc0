"""DNP3 transport function (1815 §8): segments of link user data into application
fragments, per association.

Every link frame that carries user data starts with one transport header octet
(1815 §8.2.1): bit 7 FIN (last segment of a fragment), bit 6 FIR (first segment), bits
0-5 a sequence number that increments modulo 64 from one segment to the next. The rest
of the frame's user data is a piece of the application fragment.

Receive rules followed here (1815 §8.2): a FIR segment starts a new fragment and
abandons an unfinished one; a non-FIR segment must carry the previous sequence number
plus one, otherwise the unfinished fragment is discarded; a non-FIR segment with no
fragment in progress is discarded. A segment repeating the last accepted one (same
number, same octets, as a link-layer retry produces) is dropped silently. Each discard
is reported as a problem string; nothing is raised.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

DEFAULT_MAX_FRAGMENT: Final = 4096  # 2048 is the usual fragment size; leave room for more
DEFAULT_MAX_ASSOCIATIONS: Final = 64


def segment_header(octet: int) -> tuple[bool, bool, int]:
    """(FIN, FIR, sequence) of a transport header octet (1815 §8.2.1)."""
    return bool(octet & 0x80), bool(octet & 0x40), octet & 0x3F


class TransportReassembler:
    """Reassembly for one direction of one (source, destination) association.

    Holds at most ``max_fragment`` octets.
    """

    __slots__ = ("_buf", "_last", "_seq", "_tainted", "duplicates", "max_fragment")

    def __init__(self, max_fragment: int = DEFAULT_MAX_FRAGMENT) -> None:
        self.max_fragment = max_fragment
        self._buf: bytearray | None = None  # None: no fragment in progress
        self._seq = 0  # sequence number of the last accepted segment
        self._last = b""  # last accepted segment, to drop retries
        self._tainted = False  # a segment of the fragment in progress had a bad CRC
        self.duplicates = 0

    @property
    def pending(self) -> int:
        """Octets of an unfinished fragment."""
        return 0 if self._buf is None else len(self._buf)

    @property
    def idle(self) -> bool:
        """No fragment in progress."""
        return self._buf is None

    def restore_last(self, seq: int, segment: bytes) -> None:
        """See :meth:`Transport.restore_last`."""
        self._buf = None
        self._tainted = False
        self._seq = seq
        self._last = segment

    def push(self, segment: bytes, bad_crc: bool = False) -> tuple[bytes | None, str | None, bool]:
        """Add one transport segment; returns (completed fragment, problem, whether a
        segment of the completed fragment came in a frame with a bad CRC)."""
        fragment, problem = self._push(segment, bad_crc)
        tainted = self._tainted if fragment is not None else False
        if fragment is not None or self._buf is None:
            self._tainted = False
        return fragment, problem, tainted

    def _push(self, segment: bytes, bad_crc: bool) -> tuple[bytes | None, str | None]:
        if not segment:
            return None, "transport: link frame with no transport header"
        fin, fir, seq = segment_header(segment[0])
        payload = segment[1:]
        problem = None
        if fir:
            if self._buf is not None:
                problem = (
                    f"transport: new first segment (seq {seq}) abandons "
                    f"{len(self._buf)} octets of an unfinished fragment"
                )
            self._buf = bytearray()
            self._tainted = False
        elif self._buf is None:
            if segment == self._last:
                self.duplicates += 1
                return None, None
            return None, f"transport: segment seq {seq} without a first segment discarded"
        elif seq != (self._seq + 1) & 0x3F:
            if seq == self._seq and segment == self._last:
                self.duplicates += 1
                return None, None
            expected = (self._seq + 1) & 0x3F
            lost = len(self._buf)
            self._buf = None
            return None, (
                f"transport: out-of-sequence segment (expected seq {expected}, got {seq}); "
                f"{lost} octets of the fragment discarded"
            )
        assert self._buf is not None
        if len(self._buf) + len(payload) > self.max_fragment:
            lost = len(self._buf) + len(payload)
            self._buf = None
            return None, f"transport: fragment exceeds {self.max_fragment} octets ({lost})"
        self._buf += payload
        self._tainted |= bad_crc
        self._seq = seq
        self._last = segment
        if not fin:
            return None, problem
        done = bytes(self._buf)
        self._buf = None
        return done, problem


class Transport:
    """Reassemblers keyed by association (any hashable key, e.g. (direction, src, dst)),
    at most ``max_associations`` of them: the least recently used one is dropped."""

    def __init__(
        self,
        max_associations: int = DEFAULT_MAX_ASSOCIATIONS,
        max_fragment: int = DEFAULT_MAX_FRAGMENT,
    ) -> None:
        self.max_associations = max_associations
        self.max_fragment = max_fragment
        self._rx: OrderedDict[object, TransportReassembler] = OrderedDict()

    def push(
        self, key: object, segment: bytes, bad_crc: bool = False
    ) -> tuple[bytes | None, str | None, bool]:
        rx = self._rx.get(key)
        if rx is None:
            rx = self._rx[key] = TransportReassembler(self.max_fragment)
            while len(self._rx) > self.max_associations:
                self._rx.popitem(last=False)
        else:
            self._rx.move_to_end(key)
        return rx.push(segment, bad_crc)

    @property
    def buffered(self) -> int:
        return sum(rx.pending for rx in self._rx.values())

    @property
    def idle(self) -> bool:
        """No association has a fragment in progress."""
        return all(rx.idle for rx in self._rx.values())

    def restore_last(self, key: object, seq: int, segment: bytes) -> None:
        """Make ``segment`` (transport sequence ``seq``) the last one association ``key``
        accepted, with no fragment in progress: where a reassembler stands after a
        segment with FIN that someone else took for it (its retries are then dropped)."""
        rx = self._rx.get(key)
        if rx is None:
            rx = self._rx[key] = TransportReassembler(self.max_fragment)
            while len(self._rx) > self.max_associations:
                self._rx.popitem(last=False)
        else:
            self._rx.move_to_end(key)
        rx.restore_last(seq, segment)
