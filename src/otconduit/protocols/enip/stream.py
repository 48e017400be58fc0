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
from otconduit.protocols.events import Malformed, NeedData
from otconduit.protocols.framing import Resync, StreamFramer

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


class EncapStream(StreamFramer[EncapMessage]):
    """Frames one direction of an EtherNet/IP TCP connection into events.

    Counters: ``messages`` (messages framed), ``malformed`` (Malformed events),
    ``resyncs`` (times framing was lost), ``bytes_skipped`` (bytes reported as
    Malformed, gap bytes excluded).
    """

    resync_window = HEADER_SIZE
    gap_incomplete = "incomplete message before a gap"
    gap_resync = "bytes before the first well-formed header after a gap"

    def __init__(self, max_skip: int = 4096) -> None:
        if max_skip < HEADER_SIZE:
            raise ValueError(f"max_skip must be at least {HEADER_SIZE}")
        super().__init__(skip_limit=max_skip)
        self.max_skip = max_skip
        self.messages = 0

    # --- protocol hooks -------------------------------------------------------------

    def _resync_start(self, at: int) -> bool:
        return resync_candidate(self._buf, at)

    def _truncated(self, data: bytes) -> str:
        if len(data) >= HEADER_SIZE:
            return f"{len(data)} of {HEADER_SIZE + parse_header(data).length} bytes"
        return f"{len(data)} bytes of a {HEADER_SIZE}-byte header"

    def _frame_at(self, avail: int) -> EncapMessage | Malformed | Resync | None:
        if avail < HEADER_SIZE:
            return None
        buf = self._buf
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
            return Resync(f"invalid encapsulation header: {problem}")
        if avail < total:
            return None
        start = self._pos
        frame, ts_ns = self._frame_of(self._base + start + total - 1)
        body = bytes(buf[start + HEADER_SIZE : start + total])
        offset = self._base + start
        self._advance(total)
        self.messages += 1
        return EncapMessage(header=header, body=body, offset=offset, frame=frame, ts_ns=ts_ns)

    def _next_candidate(self) -> int:
        """First index after the read position where a resync candidate begins, or the
        first index whose 24 bytes are not all here yet (the rest stays undecided)."""
        buf = self._buf
        start = self._pos + 1
        last = len(buf) - HEADER_SIZE
        i = start
        while i <= last:
            if buf[i + 1] == 0 and buf[i] in COMMAND_NAMES and resync_candidate(buf, i):
                return i
            i += 1
        return max(start, last + 1)
