"""Shared plumbing of the IT-side connection decoders: one datagram per ``feed`` for UDP,
a bounded per-direction buffer for TCP, and the conversion of :class:`WireError` into
:class:`~otconduit.protocols.events.Malformed` at the decoder boundary."""

from __future__ import annotations

from typing import Final

from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.it._wire import WireError
from otconduit.protocols.it.claims import ClaimSet

MAX_MALFORMED_DATA: Final = 512  # bytes of a bad message kept on its Malformed event
MAX_MALFORMED_EVENTS: Final = 256  # per decoder; later problems are only counted


class DecoderBase:
    """Events, claims and problem reporting common to every IT-side decoder."""

    protocol: str = ""

    def __init__(self) -> None:
        self.claims = ClaimSet()
        self.malformed = 0  # problems seen (reported or not)
        self._out: list[DecoderEvent] = []

    def _problem(self, reason: str, offset: int, frame: int, ts_ns: int, data: bytes) -> None:
        self.malformed += 1
        if self.malformed <= MAX_MALFORMED_EVENTS:
            self._out.append(
                Malformed(
                    reason=f"{self.protocol}: {reason}",
                    offset=offset,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=bytes(data[:MAX_MALFORMED_DATA]),
                )
            )

    def _flush_claims(self) -> None:
        self._out.extend(self.claims.take())

    def events(self) -> list[DecoderEvent]:
        """Events completed so far (each returned once)."""
        self._flush_claims()
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        """Nothing is held back between messages: the pending events."""
        return self.events()


class DatagramDecoder(DecoderBase):
    """A UDP flow: each ``feed`` is one whole datagram, decoded on its own."""

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__()
        self.endpoints = endpoints
        self.datagrams = 0
        self._offsets = [0, 0]

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        offset = self._offsets[direction]
        self._offsets[direction] += len(data)
        if not data:
            return
        self.datagrams += 1
        data = bytes(data)
        try:
            self._datagram(direction, data, frame, ts_ns)
        except WireError as exc:
            self._problem(str(exc), offset, frame, ts_ns, data)
        self._flush_claims()

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        """UDP datagrams are never partial: nothing to do."""

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        raise NotImplementedError


class StreamDecoder(DecoderBase):
    """A TCP connection whose interesting part is at the start of each direction (or in
    length-framed messages): bytes are buffered up to ``limit`` per direction, a
    direction stops being decoded after a gap, a problem, or when the protocol says
    nothing more is to be learnt (``done``); what follows is only counted."""

    limit: int = 65536

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__()
        self.endpoints = endpoints
        self._buf = [bytearray(), bytearray()]
        self._base = [0, 0]  # stream offset of _buf[d][0]
        self.done = [False, False]
        self.gaps = 0
        self.ignored = [0, 0]  # bytes not decoded (after done, gaps, skipped bodies)

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        if self.done[direction]:
            self.ignored[direction] += len(data)
            return
        buf = self._buf[direction]
        buf += data
        try:
            consumed = self._parse(direction, buf, frame, ts_ns)
        except WireError as exc:
            self._problem(str(exc), self._base[direction], frame, ts_ns, bytes(buf))
            self._stop(direction, len(buf))
        else:
            if consumed:
                del buf[:consumed]
                self._base[direction] += consumed
            if self.done[direction]:
                self._stop(direction, len(buf))
            elif len(buf) > self.limit:
                self._problem(
                    f"message longer than {self.limit} bytes",
                    self._base[direction],
                    frame,
                    ts_ns,
                    bytes(buf),
                )
                self._stop(direction, len(buf))
        self._flush_claims()

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        """Bytes lost by the capture: this direction can no longer be framed."""
        self.gaps += 1
        if not self.done[direction]:
            self._stop(direction, len(self._buf[direction]))
        self.ignored[direction] += nbytes

    def _stop(self, direction: int, dropped: int) -> None:
        self.done[direction] = True
        self.ignored[direction] += dropped
        self._base[direction] += len(self._buf[direction])
        self._buf[direction] = bytearray()

    def _parse(self, direction: int, buf: bytearray, frame: int, ts_ns: int) -> int:
        """Decode what ``buf`` holds; return how many bytes were used. Set
        ``self.done[direction]`` when the rest of the direction is of no interest."""
        raise NotImplementedError


class FrameDecoder(DecoderBase):
    """Layer-2 frames of one protocol (LLDP, CDP), whichever port they come from: each
    ``feed_frame`` is the payload after the EtherType (or the 802.2 LLC header) of one
    frame and the frame's source MAC. There are no connections and no endpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def feed_frame(self, src_mac: str, payload: bytes, frame: int, ts_ns: int) -> None:
        self.frames += 1
        payload = bytes(payload)
        try:
            self._frame(src_mac, payload, frame, ts_ns)
        except WireError as exc:
            self._problem(str(exc), 0, frame, ts_ns, payload)
        self._flush_claims()

    def _frame(self, src_mac: str, payload: bytes, frame: int, ts_ns: int) -> None:
        raise NotImplementedError
