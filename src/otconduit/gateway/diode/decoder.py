"""Receiver side of the diode protocol, sans-I/O: datagrams in, events out.

``feed(datagram, now)`` and ``tick(now)`` return events in the order they happened:
:class:`Samples` in sequence order, :class:`Gap` for DATA datagrams that neither
arrived nor could be rebuilt, :class:`Rejected` for every datagram not accepted,
:class:`SessionStarted` / :class:`SessionEnded` (with its totals) when a sender
(re)starts or the receiver stops, :class:`LinkUp` / :class:`LinkDown`,
and :class:`SenderDropped` when the sender reports that it shed samples.

How a hole is judged: DATA datagrams are delivered in ``seq`` order. A missing one is
waited for while its FEC group is still open at the sender; once the receiver has proof
that the group is closed (its parity, a datagram of a later group, or a heartbeat
saying so) it waits ``reorder_timeout`` more for reordered stragglers and then rebuilds
it from parity or declares it lost. A hole further than ``window`` datagrams behind the
newest is declared at once, which bounds memory.

Replay: a per-session counter window (RFC 4303 section 3.4.3). Every session seen is
kept in a :class:`~otconduit.gateway.diode.ledger.SessionLedger` (on disk when the
receiver gives it a file): a replaced session is refused outright, and a session resumed
after a receiver restart only above the last counter accepted. A new session is accepted
only if its clock is not older than the current one's, or the current one has gone
silent (a sender restarted with its clock stepped back). ``max_skew`` (default 300 s)
refuses datagrams whose sender clock is further than that from the receiver's: a
recording older than the bound is refused even by a receiver that never saw it, so the
two clocks must agree (NTP). ``require_encryption`` refuses datagrams not sealed.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from otconduit.gateway.diode import batch, fec, wire
from otconduit.gateway.diode.ledger import ENDED, SessionLedger
from otconduit.gateway.model import TagSample


@dataclass(frozen=True, slots=True, kw_only=True)
class Samples:
    session: str
    seq: int
    samples: tuple[TagSample, ...]
    recovered: bool  # rebuilt from parity


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """DATA datagrams ``first`` .. ``last`` (inclusive) are lost. ``samples_from`` ..
    ``samples_to`` is the range of sample ``seq`` they held, when the neighbours show it."""

    session: str
    first: int
    last: int
    reason: str
    samples_from: int | None = None
    samples_to: int | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("gap ends before it starts")

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    category: wire.Category
    reason: str
    size: int
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted:
    session: str
    first_seq: int
    previous: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded:
    """A sender session is over (it restarted, or the receiver stops): its totals."""

    session: str
    reason: str
    data: int  # DATA datagrams received
    delivered: int  # DATA datagrams delivered (received or rebuilt)
    recovered: int  # of which rebuilt from parity
    lost: int  # DATA datagrams reported in gaps
    gaps: int
    samples: int
    sender_sent: int  # datagrams the sender said it had sent (last heartbeat)
    sender_dropped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUp:
    session: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkDown:
    session: str
    silent_for: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderDropped:
    session: str
    dropped: int  # newly reported
    total: int


Event = Samples | Gap | Rejected | SessionStarted | SessionEnded | LinkUp | LinkDown | SenderDropped
_OLD_SESSION = "datagram of an ended or older session"
_TOTALS = ("data", "delivered", "recovered", "lost", "gaps", "samples", "sender_sent")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverSettings:
    reorder_timeout: float = 0.3  # s a hole is waited for once its group is closed
    window: int = 4096  # datagrams: replay window and furthest reordering
    link_timeout: float | None = None  # default: 3 heartbeat intervals + 0.5 s
    max_skew: float = 300.0  # s between sender and receiver clocks; 0: not checked
    require_encryption: bool = False  # refuse datagrams that are not sealed

    def __post_init__(self) -> None:
        if self.reorder_timeout < 0 or self.window < 64 or self.max_skew < 0:
            raise ValueError("reorder_timeout >= 0, window >= 64, max_skew >= 0")


@dataclass(slots=True)
class ReceiverStats:
    datagrams: int = 0  # accepted, any kind
    data: int = 0
    parity: int = 0
    heartbeats: int = 0
    delivered: int = 0  # DATA datagrams delivered (received or recovered)
    samples: int = 0
    recovered: int = 0  # DATA datagrams rebuilt from parity
    lost: int = 0  # DATA datagrams declared lost
    gaps: int = 0
    late: int = 0  # DATA for a seq already delivered, rebuilt or declared lost
    malformed: int = 0
    forged: int = 0
    replayed: int = 0
    skewed: int = 0  # of the replayed: sender clock beyond max_skew
    sessions: int = 0
    sender_dropped: int = 0
    sender_sent: int = 0  # datagrams the sender says it sent (last heartbeat)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Group:
    data: dict[int, bytes] = field(default_factory=dict)  # index -> payload
    parity: dict[int, bytes] = field(default_factory=dict)  # parity index -> block
    count: int | None = None
    parities: int = 0
    done: bool = False


@dataclass(slots=True)
class _Pending:
    samples: tuple[TagSample, ...]
    recovered: bool


class _Session:
    def __init__(self, sid: bytes, start_seq: int, now: float, window: int) -> None:
        self.sid = sid
        self.name = sid.hex()
        self.next_seq = start_seq
        self.known_end = start_seq  # every seq below it was sent
        self.closed: deque[tuple[int, float]] = deque()  # (closed_upto, when), increasing
        self.closed_upto = start_seq  # groups wholly below it are closed (parity sent)
        self.pending: dict[int, _Pending] = {}
        self.groups: OrderedDict[int, _Group] = OrderedDict()
        self.hole_at = -1
        self.hole_seen = 0.0
        self.newest_time_ms = 0
        self.last_valid = now
        self.top = -1  # replay window: highest counter, bitmap of the last `window`
        self.bits = 0
        self.window = window
        self.last_sample_seq: int | None = None
        self.totals = dict.fromkeys(_TOTALS, 0)
        self.sender_dropped = 0

    def replay_check(self, counter: int) -> str | None:
        if counter > self.top:
            shift = counter - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << self.window) - 1)
            self.top = counter
            return None
        back = self.top - counter
        if back >= self.window:
            return f"counter {counter} older than the replay window"
        if (self.bits >> back) & 1:
            return f"counter {counter} seen before"
        self.bits |= 1 << back
        return None

    def close_upto(self, upto: int, now: float) -> None:
        if upto > self.closed_upto:
            self.closed_upto = upto
            self.closed.append((upto, now))

    def extend(self, end: int) -> None:
        self.known_end = max(self.known_end, end)


class DiodeDecoder:
    def __init__(
        self, auth: wire.Authenticator, settings: ReceiverSettings | None = None,
        ledger: SessionLedger | None = None,
    ) -> None:  # fmt: skip
        self.auth = auth
        self.settings = settings or ReceiverSettings()
        self.stats = ReceiverStats()
        self.session: _Session | None = None
        self.ledger = ledger if ledger is not None else SessionLedger()
        self._link_up = False
        self._interval = 1.0  # sender heartbeat interval, from its heartbeats

    # -- public -------------------------------------------------------------------------

    @property
    def link_timeout(self) -> float:
        lt = self.settings.link_timeout
        return lt if lt is not None else 3 * self._interval + 0.5

    @property
    def link_up(self) -> bool:
        return self._link_up

    def feed(
        self, datagram: bytes, now: float, *, wall_ms: int | None = None,
        source: str | None = None,
    ) -> list[Event]:  # fmt: skip
        """Events from one datagram. ``now`` is a monotonic clock in seconds; ``wall_ms``
        the receiver's wall clock in ms, which ``max_skew`` is checked against (without
        it, as in tests of the protocol alone, the clock is not checked)."""
        out: list[Event] = []
        parsed = wire.parse(datagram, self.auth)
        if isinstance(parsed, wire.Invalid):
            self._reject(out, parsed.category, parsed.reason, parsed.size, source)
            return out
        h = parsed.header
        if self.settings.require_encryption and not h.sealed:
            clear = "not encrypted (this receiver requires encryption)"
            self._reject(out, "malformed", clear, len(datagram), source)
            return out
        skew = self.settings.max_skew
        if skew and wall_ms is not None and abs(wall_ms - h.time_ms) > skew * 1000:
            off = (wall_ms - h.time_ms) / 1000
            self.stats.skewed += 1
            self._reject(
                out, "replayed", f"sender clock {off:+.1f} s off (max skew {skew:g} s)",
                len(datagram), source,
            )  # fmt: skip
            return out
        s = self._session_for(parsed, now, out)
        if isinstance(s, str):
            self._reject(out, "replayed", s, len(datagram), source)
            return out
        why = s.replay_check(h.counter)
        if why:
            self._reject(out, "replayed", why, len(datagram), source)
            return out
        s.newest_time_ms = max(s.newest_time_ms, h.time_ms)
        s.last_valid = now
        self.stats.datagrams += 1
        if not self._link_up:
            self._link_up = True
            out.append(LinkUp(session=s.name))
        if isinstance(parsed, wire.Data):
            self._on_data(s, parsed, now, out)
        elif isinstance(parsed, wire.Parity):
            self._on_parity(s, parsed, now, out)
        else:
            self._on_heartbeat(s, parsed, now, out)
        self._advance(s, now, out)
        self.ledger.advance(s.sid, s.top, s.next_seq)
        return out

    def tick(self, now: float) -> list[Event]:
        """Timers: holes that waited long enough, and the link going silent."""
        out: list[Event] = []
        s = self.session
        if s is None:
            return out
        self._advance(s, now, out)
        silent = now - s.last_valid
        if self._link_up and silent > self.link_timeout:
            self._link_up = False
            out.append(LinkDown(session=s.name, silent_for=round(silent, 3)))
        return out

    def finish(self, now: float, reason: str = "receiver stopped") -> list[Event]:
        """Deliver everything held and report what is still missing (shutdown)."""
        out: list[Event] = []
        if self.session is not None:
            self._end(self.session, now, out, reason, resumable=True)
            self.session = None
        return out

    def status(self) -> dict[str, Any]:
        s = self.session
        return {
            "session": s.name if s else None,
            "link": "up" if self._link_up else "down",
            "next_seq": s.next_seq if s else None,
            "held": len(s.pending) if s else 0,
            **self.stats.as_dict(),
        }

    # -- internals ----------------------------------------------------------------------

    def _reject(
        self, out: list[Event], category: wire.Category, reason: str, size: int,
        source: str | None,
    ) -> None:  # fmt: skip
        if category == "malformed":
            self.stats.malformed += 1
        elif category == "forged":
            self.stats.forged += 1
        else:
            self.stats.replayed += 1
        out.append(Rejected(category=category, reason=reason, size=size, source=source))

    def _session_for(self, d: wire.Datagram, now: float, out: list[Event]) -> _Session | str:
        """The datagram's session (started or resumed if need be), or why it is refused."""
        h = d.header
        cur = self.session
        if cur is not None and h.session == cur.sid:
            return cur
        floor = self.ledger.floor(h.session)
        if floor == ENDED:
            return _OLD_SESSION
        if floor is not None and h.counter <= floor:
            return f"counter {h.counter} accepted before the receiver restarted"
        if cur is not None:
            newer = h.time_ms >= cur.newest_time_ms
            silent = now - cur.last_valid > self.link_timeout
            if not (newer or silent):
                return _OLD_SESSION
            self._end(cur, now, out, "sender restarted (new session)")
        start = d.next_seq if isinstance(d, wire.Heartbeat) else d.group
        if floor is not None:  # resumed after a restart: from where it was delivered up to
            start = max(start, self.ledger.next_seq(h.session))
        s = _Session(h.session, start, now, self.settings.window)
        if floor is not None and floor >= 0:
            s.top, s.bits = floor, (1 << s.window) - 1
        self.ledger.started(s.sid, s.top, start)
        self.session = s
        self.stats.sessions += 1
        out.append(
            SessionStarted(session=s.name, first_seq=start, previous=cur.name if cur else None)
        )
        return s

    def _end(
        self, s: _Session, now: float, out: list[Event], reason: str, *, resumable: bool = False
    ) -> None:
        """Close a session; a resumable one (the receiver stops, the sender may not) may
        continue above its last counter, any other is refused from now on."""
        self._advance(s, now, out, final=reason)
        if resumable:
            self.ledger.advance(s.sid, s.top, s.next_seq)
        else:
            self.ledger.end(s.sid)
        out.append(
            SessionEnded(session=s.name, reason=reason, sender_dropped=s.sender_dropped, **s.totals)
        )

    def _decode(self, payload: bytes, out: list[Event]) -> tuple[TagSample, ...]:
        try:
            return tuple(batch.decode(payload))
        except batch.BatchError as exc:
            self._reject(out, "malformed", f"payload: {exc}", len(payload), None)
            return ()

    def _on_data(self, s: _Session, d: wire.Data, now: float, out: list[Event]) -> None:
        self.stats.data += 1
        s.totals["data"] += 1
        s.extend(d.seq + 1)
        s.close_upto(d.group, now)
        if d.seq < s.next_seq or d.seq in s.pending:
            self.stats.late += 1
            return
        s.pending[d.seq] = _Pending(self._decode(d.payload, out), False)
        g = s.groups.get(d.group)
        if g is None:
            g = s.groups[d.group] = _Group()
        if not g.done:
            g.data[d.index] = d.payload
            self._recover(s, d.group, g, out)

    def _on_parity(self, s: _Session, p: wire.Parity, now: float, out: list[Event]) -> None:
        self.stats.parity += 1
        end = p.group + p.count
        s.extend(end)
        s.close_upto(end, now)
        if end <= s.next_seq:
            return
        g = s.groups.get(p.group)
        if g is None:
            g = s.groups[p.group] = _Group()
        if g.done:
            return
        g.count, g.parities = p.count, p.parities
        g.parity[p.index] = p.block
        self._recover(s, p.group, g, out)

    def _on_heartbeat(self, s: _Session, h: wire.Heartbeat, now: float, out: list[Event]) -> None:
        self.stats.heartbeats += 1
        s.extend(h.next_seq)
        s.close_upto(h.next_seq - h.open, now)
        if h.interval_ms:
            self._interval = h.interval_ms / 1000
        self.stats.sender_sent = s.totals["sender_sent"] = h.sent
        if h.dropped > s.sender_dropped:  # cumulative per session; a late one is older
            new = h.dropped - s.sender_dropped
            s.sender_dropped = h.dropped
            self.stats.sender_dropped += new
            out.append(SenderDropped(session=s.name, dropped=new, total=h.dropped))

    def _recover(self, s: _Session, base: int, g: _Group, out: list[Event]) -> None:
        k = g.count
        if k is None:
            return
        if len([i for i in g.data if i < k]) >= k:
            g.done = True
            return
        if len(g.data) + len(g.parity) < k or not g.parity:
            return
        width = len(next(iter(g.parity.values())))
        blocks: dict[int, bytes] = {}
        for i, payload in g.data.items():
            if i < k and len(payload) + 2 <= width:
                blocks[i] = wire.frame(payload, width)
        for j, block in g.parity.items():
            if len(block) == width and j < g.parities:
                blocks[k + j] = block
        try:
            rebuilt = fec.decode(k, g.parities, blocks)
        except fec.FecError as exc:
            self._reject(out, "malformed", f"parity of group {base}: {exc}", width, None)
            g.done = True
            return
        g.done = True
        for i, block in rebuilt.items():
            seq = base + i
            raw = wire.unframe(block)
            if seq < s.next_seq or seq in s.pending or raw is None:
                continue
            s.pending[seq] = _Pending(self._decode(raw, out), True)
            self.stats.recovered += 1
            s.totals["recovered"] += 1

    def _advance(self, s: _Session, now: float, out: list[Event], final: str = "") -> None:
        window = self.settings.window
        while True:
            while s.next_seq in s.pending:
                item = s.pending.pop(s.next_seq)
                self._deliver(s, s.next_seq, item, out)
                s.next_seq += 1
            self._purge(s)
            if s.known_end <= s.next_seq and not s.pending:
                return
            if s.hole_at != s.next_seq:
                s.hole_at, s.hole_seen = s.next_seq, now
            while s.closed and s.closed[0][0] <= s.next_seq:
                s.closed.popleft()
            # When the hole's FEC group was known to be closed (its parity sent), if yet.
            closed_at = s.closed[0][1] if s.closed else None
            reason = final
            if not reason and s.known_end - s.next_seq > window:
                reason = f"more than {window} datagrams behind the newest"
            if (
                not reason
                and closed_at is not None
                and now - closed_at >= self.settings.reorder_timeout
            ):
                reason = "lost beyond the FEC budget"
            if not reason and now - s.hole_seen >= max(self.link_timeout, 1.0):
                reason = "lost (its group never closed)"
            if not reason:
                return
            upto = min(s.pending) if s.pending else s.known_end
            self._gap(s, s.next_seq, upto - 1, reason, out)
            s.next_seq = upto
            if not s.pending and s.known_end <= s.next_seq:
                return

    def _deliver(self, s: _Session, seq: int, item: _Pending, out: list[Event]) -> None:
        self.stats.delivered += 1
        s.totals["delivered"] += 1
        if not item.samples:
            return
        self.stats.samples += len(item.samples)
        s.totals["samples"] += len(item.samples)
        s.last_sample_seq = item.samples[-1].seq
        out.append(Samples(session=s.name, seq=seq, samples=item.samples, recovered=item.recovered))

    def _gap(self, s: _Session, first: int, last: int, reason: str, out: list[Event]) -> None:
        after = s.pending.get(last + 1)
        lo = s.last_sample_seq + 1 if s.last_sample_seq is not None else None
        hi = after.samples[0].seq - 1 if after and after.samples else None
        if lo is not None and hi is not None and hi < lo:  # sample seqs not contiguous
            lo = hi = None
        self.stats.lost += last - first + 1
        self.stats.gaps += 1
        s.totals["lost"] += last - first + 1
        s.totals["gaps"] += 1
        out.append(
            Gap(
                session=s.name, first=first, last=last, reason=reason, samples_from=lo,
                samples_to=hi,
            )
        )  # fmt: skip

    def _purge(self, s: _Session) -> None:
        """Forget FEC groups wholly delivered (a group spans at most 128 datagrams)."""
        groups = s.groups
        while groups:
            base, g = next(iter(groups.items()))
            end = base + (g.count if g.count is not None else fec.MAX_DATA)
            if end > s.next_seq and len(groups) <= self.settings.window:
                return
            groups.popitem(last=False)
