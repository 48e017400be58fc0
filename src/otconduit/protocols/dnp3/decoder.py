"""DNP3 over TCP or UDP as a :class:`~otconduit.protocols.base.ConnectionDecoder`.

Per direction a :class:`LinkFramer`; one :class:`Transport` keyed by (direction, link
source, link destination); one :class:`Dnp3Session` for the whole connection, which
works out roles from function codes rather than from the connection's direction.

Malformed events come from every layer: link framing and CRCs ("bad CRC ..."), link
frames whose user data cannot be used, transport discards ("transport: ..."), and
application fragments that are cut short or hold an object that cannot be sized
("application layer: ..."). A fragment with a problem still reaches the session, so
the operation it belongs to is reported with status ``malformed``.

Buffer bounds per connection: each framer holds less than one link frame (292 octets)
plus a skipped run of at most ``max_skip`` octets; the transport holds at most
``max_associations`` unfinished fragments of ``max_fragment`` octets; the session holds
at most 1024 open requests and one partial response and one transaction awaiting a
confirm per address pair, for at most 64 pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from otconduit.model import IdentityClaim
from otconduit.protocols.base import DecoderEvent, Endpoints, Pending
from otconduit.protocols.dnp3.app import parse_fragment
from otconduit.protocols.dnp3.functions import LINK_USER_DATA, link_function_name
from otconduit.protocols.dnp3.link import LinkFrame, LinkFramer, frame_octets
from otconduit.protocols.dnp3.ops import identity_claims, transaction_to_operation
from otconduit.protocols.dnp3.session import Dnp3Message, Dnp3Session, Dnp3Transaction
from otconduit.protocols.dnp3.transport import Transport
from otconduit.protocols.events import Malformed


@dataclass(frozen=True, slots=True)
class TransportSegment:
    """The last transport segment an association accepted: TCP direction, link source
    and destination, transport sequence number and the segment (header octet included)."""

    direction: int
    src: int
    dst: int
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Dnp3Export:
    """What a fast path takes on with a connection: the unsolicited response awaiting a
    confirm (its octets as on the wire, the direction, frame and time it came in)."""

    direction: int
    data: bytes
    frame: int
    ts_ns: int
    master: int
    outstation: int
    link_src: int
    link_dst: int
    seq: int  # its application sequence number


@dataclass(frozen=True, slots=True)
class Dnp3Resume:
    """What a fast path changed: the last segment each association it served accepted,
    least recently used first."""

    segments: tuple[TransportSegment, ...]


class Dnp3ConnectionDecoder:
    """Both directions of one DNP3 connection (TCP) or flow (UDP).

    Counters: ``link_only_frames`` (frames without user data: link resets, status,
    acknowledgements), ``fragments`` (application fragments decoded); the framers,
    transport and session keep their own.
    """

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.framers = (LinkFramer(), LinkFramer())
        self.transport = Transport()
        self.session = Dnp3Session()
        self.link_only_frames = 0
        self.fragments = 0
        self._datagrams = endpoints.transport == "udp"
        self._out: list[DecoderEvent] = []
        self._claimed: set[tuple[str, str, str]] = set()

    # -- ConnectionDecoder ---------------------------------------------------------------
    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        framer = self.framers[direction]
        framer.feed(data, frame, ts_ns)
        if self._datagrams:  # a datagram holds whole frames: nothing carries over
            framer.cut("truncated link frame at end of datagram", frame, ts_ns)
        self._drain(direction)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        self.framers[direction].gap(nbytes, frame, ts_ns)
        self._drain(direction)

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        for d in (0, 1):
            self.framers[d].end()
            self._drain(d)
        self._emit(self.session.flush())
        return self.events()

    @property
    def bad_crc_frames(self) -> int:
        return sum(f.bad_crc_frames for f in self.framers)

    # -- Resumable (TCP) -------------------------------------------------------------
    def quiescent(self) -> bool:
        return (
            not self._datagrams
            and not self._out
            and all(f.idle for f in self.framers)
            and self.transport.idle
            and self.session.idle
        )

    def exportable(self) -> bool:
        """Quiescent but for one unsolicited response awaiting a confirm, which
        :meth:`export_state` can hand over (a master that never confirms)."""
        return (
            not self._datagrams
            and not self._out
            and all(f.idle for f in self.framers)
            and self.transport.idle
            and self.session.lone_unsolicited() is not None
        )

    def export_state(self) -> Dnp3Export | None:
        """What is in flight, handed over (the decoder forgets it; :meth:`resume` feeds it
        again when it comes back): nothing when quiescent, else the lone unsolicited
        response awaiting a confirm."""
        msg = self.session.lone_unsolicited()
        if msg is None or msg.link is None:
            return None
        self.session.hand_over(msg)
        return Dnp3Export(
            direction=msg.direction, data=frame_octets(msg.link), frame=msg.frame,
            ts_ns=msg.ts_ns, master=msg.master, outstation=msg.outstation,
            link_src=msg.link_src, link_dst=msg.link_dst, seq=msg.fragment.seq,
        )  # fmt: skip

    def resume(self, state: Dnp3Resume | None, pending: Sequence[Pending]) -> None:
        if state is not None:
            for seg in state.segments:
                self.transport.restore_last((seg.direction, seg.src, seg.dst), seg.seq, seg.data)
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def fork(self) -> Self:
        return type(self)(self.endpoints)

    # -- internals -----------------------------------------------------------------------
    def _drain(self, direction: int) -> None:
        for event in self.framers[direction].events():
            if isinstance(event, Malformed):
                self._out.append(event)
            else:
                self._link(direction, event)

    def _malformed(self, reason: str, link: LinkFrame, data: bytes) -> None:
        self._out.append(
            Malformed(
                reason=reason, offset=link.offset, frame=link.frame, ts_ns=link.ts_ns, data=data
            )
        )

    def _link(self, direction: int, link: LinkFrame) -> None:
        if not link.data:
            self.link_only_frames += 1
            return
        if not (link.prm and link.function in LINK_USER_DATA):
            name = link_function_name(link.prm, link.function)
            self._malformed(f"user data in a link frame with function {name}", link, link.data)
            return
        key = (direction, link.src, link.dst)
        fragment, problem, tainted = self.transport.push(key, link.data, not link.crc_ok)
        if problem is not None:
            self._malformed(problem, link, link.data)
        if fragment is None:
            return
        app = parse_fragment(fragment)
        if app is None:
            self._malformed(
                f"application layer: fragment of {len(fragment)} octets has no header",
                link,
                fragment,
            )
            return
        self.fragments += 1
        if app.problem is not None:
            self._malformed(f"application layer: {app.problem}", link, fragment)
        msg = Dnp3Message(
            fragment=app,
            direction=direction,
            link_src=link.src,
            link_dst=link.dst,
            link_dir=link.dir,
            bad_crc=tainted,
            frame=link.frame,
            ts_ns=link.ts_ns,
            offset=link.offset,
            link=link if link.crc_ok and link.data[0] & 0xC0 == 0xC0 else None,
        )
        self._emit(self.session.message(msg))

    def _emit(self, txs: list[Dnp3Transaction]) -> None:
        for tx in txs:
            self._out.append(transaction_to_operation(tx, self.endpoints))
            for claim in identity_claims(tx, self.endpoints):
                self._claim(claim)

    def _claim(self, claim: IdentityClaim) -> None:
        key = (claim.ip, claim.attribute, claim.value)
        if key not in self._claimed and len(self._claimed) < 1024:
            self._claimed.add(key)
            self._out.append(claim)
