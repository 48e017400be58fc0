"""The diode protocol without I/O: encoder -> (loss, reordering, forgery) -> decoder.

Losses are drawn from seeded generators, and what the decoder must recover or report
is computed independently from the loss pattern: a group of ``count`` DATA and ``m``
PARITY datagrams is rebuilt whole when at most ``m`` of them are lost, and otherwise
its lost DATA datagrams are exactly the reported gaps.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from otconduit.gateway.diode import batch, wire
from otconduit.gateway.diode.decoder import (
    DiodeDecoder,
    Event,
    Gap,
    LinkDown,
    LinkUp,
    ReceiverSettings,
    Rejected,
    Samples,
    SenderDropped,
    SessionEnded,
    SessionStarted,
)
from otconduit.gateway.diode.encoder import DiodeEncoder, FecParams
from otconduit.gateway.model import Quality, TagSample

KEY = bytes.fromhex("6e39702aad98730eb59be727e79c89b9ea68637df042047c08f9e9625a12f5ec")
AUTH = wire.Authenticator(KEY)
PER_DATAGRAM = 4  # samples per DATA datagram in these streams


def _samples(n: int, start: int = 1) -> list[TagSample]:
    return [
        TagSample(path=f"acme/s1/a/l/c/t{i % 7}", value=i, quality=Quality.GOOD,
                  recv_ts_ns=1_700_000_000_000_000_000 + i, seq=i)
        for i in range(start, start + n)
    ]  # fmt: skip


@dataclass
class Stream:
    datagrams: list[bytes]
    parsed: list[wire.Datagram]
    samples: list[TagSample]
    k: int
    m: int
    groups: dict[int, int] = field(default_factory=dict)  # base -> count

    def expected_unrecoverable(self, lost: set[int]) -> set[int]:
        """DATA seqs that FEC cannot rebuild when the datagrams at ``lost`` are dropped."""
        lost_data: dict[int, set[int]] = {}
        lost_parity: dict[int, int] = {}
        for i in lost:
            d = self.parsed[i]
            if isinstance(d, wire.Data):
                lost_data.setdefault(d.group, set()).add(d.seq)
            elif isinstance(d, wire.Parity):
                lost_parity[d.group] = lost_parity.get(d.group, 0) + 1
        out: set[int] = set()
        for base, seqs in lost_data.items():
            if len(seqs) + lost_parity.get(base, 0) > self.m:
                out |= seqs
        return out


def make_stream(n_data: int, k: int = 8, m: int = 2, *, session: bytes | None = None,
                time_ms: int = 1000, first_sample: int = 1) -> Stream:  # fmt: skip
    enc = DiodeEncoder(AUTH, fec_params=FecParams(k=k, m=m), session=session)
    samples = _samples(n_data * PER_DATAGRAM, first_sample)
    out = [enc.heartbeat(time_ms, interval_ms=1000, dropped=0)]
    for i in range(n_data):
        chunk = samples[i * PER_DATAGRAM : (i + 1) * PER_DATAGRAM]
        out += enc.data(batch.encode(chunk), time_ms)
    out += enc.flush(time_ms)
    out.append(enc.heartbeat(time_ms, interval_ms=1000, dropped=0))
    parsed = []
    for d in out:
        p = wire.parse(d, AUTH)
        assert not isinstance(p, wire.Invalid)
        parsed.append(p)
    s = Stream(out, parsed, samples, k, m)
    for p in parsed:
        if isinstance(p, wire.Parity):
            s.groups[p.group] = p.count
    return s


@dataclass
class Outcome:
    events: list[Event]
    dec: DiodeDecoder

    @property
    def delivered(self) -> list[int]:
        return [e.seq for e in self.events if isinstance(e, Samples)]

    @property
    def samples(self) -> list[TagSample]:
        return [s for e in self.events if isinstance(e, Samples) for s in e.samples]

    @property
    def gaps(self) -> list[Gap]:
        return [e for e in self.events if isinstance(e, Gap)]

    @property
    def gap_seqs(self) -> set[int]:
        return {q for g in self.gaps for q in range(g.first, g.last + 1)}

    def of(self, kind: type) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def run(
    datagrams: list[bytes],
    *,
    dec: DiodeDecoder | None = None,
    step: float = 0.001,
    settle: float = 5.0,
    start: float = 100.0,
    tick_each: bool = False,
) -> Outcome:
    dec = dec or DiodeDecoder(AUTH)
    events: list[Event] = []
    now = start
    for d in datagrams:
        now += step
        if tick_each:
            events += dec.tick(now)
        events += dec.feed(d, now)
    events += dec.tick(now + settle)
    return Outcome(events, dec)


def drop(items: list[bytes], lost: set[int]) -> list[bytes]:
    return [d for i, d in enumerate(items) if i not in lost]


def test_clean_stream_in_order_with_nothing_to_report() -> None:
    s = make_stream(100)
    out = run(s.datagrams)
    assert out.delivered == list(range(100))
    assert out.samples == s.samples
    assert not out.gaps and out.dec.stats.recovered == 0
    assert [type(e) for e in out.events[:2]] == [SessionStarted, LinkUp]
    st = out.dec.stats
    assert (st.data, st.parity, st.heartbeats, st.lost) == (100, 26, 2, 0)  # 12x8 + 1x4


@pytest.mark.parametrize(("k", "m"), [(8, 2), (4, 1), (10, 4), (1, 1)])
@pytest.mark.parametrize("seed", range(5))
def test_losses_within_the_budget_are_all_recovered(k: int, m: int, seed: int) -> None:
    s = make_stream(300, k, m)
    rng = random.Random(seed)
    # Per group, drop up to m of its k + m datagrams (DATA or PARITY), chosen at random.
    members: dict[int, list[int]] = {}
    for i, p in enumerate(s.parsed):
        if isinstance(p, wire.Data | wire.Parity):
            members.setdefault(p.group, []).append(i)
    lost = {i for idx in members.values() for i in rng.sample(idx, rng.randint(0, m))}
    lost_data = {s.parsed[i].seq for i in lost if isinstance(s.parsed[i], wire.Data)}  # type: ignore[union-attr]
    out = run(drop(s.datagrams, lost))
    assert out.delivered == list(range(300))
    assert out.samples == s.samples
    assert not out.gaps
    assert out.dec.stats.recovered == len(lost_data) > 0


@pytest.mark.parametrize(("k", "m", "rate"), [(8, 2, 0.15), (8, 2, 0.30), (4, 1, 0.2), (1, 0, 0.1)])
@pytest.mark.parametrize("seed", range(4))
def test_losses_beyond_the_budget_are_reported_exactly(
    k: int, m: int, rate: float, seed: int
) -> None:
    s = make_stream(400, k, m)
    rng = random.Random(1000 + seed)
    lost = {i for i in range(1, len(s.datagrams) - 1) if rng.random() < rate}
    expected = s.expected_unrecoverable(lost)
    out = run(drop(s.datagrams, lost))
    assert expected, "the seed should cost something"
    assert out.gap_seqs == expected
    assert out.delivered == sorted(set(range(400)) - expected)
    n_lost_data = sum(isinstance(s.parsed[i], wire.Data) for i in lost)
    assert out.dec.stats.recovered == n_lost_data - len(expected)
    assert out.dec.stats.lost == len(expected)
    # Gaps are maximal runs, and the sample ranges they name are exactly the missing ones.
    missing_samples = {x.seq for x in s.samples} - {x.seq for x in out.samples}
    top = s.samples[-1].seq
    for g in out.gaps:  # only a gap at the very end cannot know where its samples end
        assert g.samples_from is not None
        assert g.samples_to is not None or g.last == 399
    named = {q for g in out.gaps for q in range(g.samples_from or 0, (g.samples_to or top) + 1)}
    assert named == missing_samples
    for g in out.gaps:
        assert g.first - 1 not in expected and g.last + 1 not in expected
        assert g.reason == "lost beyond the FEC budget"


def test_reordering_within_the_window_is_undone() -> None:
    s = make_stream(500)
    rng = random.Random(3)
    shuffled: list[bytes] = []
    body = s.datagrams[1:-1]
    for i in range(0, len(body), 12):
        chunk = body[i : i + 12]
        rng.shuffle(chunk)
        shuffled += chunk
    out = run([s.datagrams[0], *shuffled, s.datagrams[-1]])
    assert out.delivered == list(range(500)) and not out.gaps


def test_reordering_plus_loss() -> None:
    s = make_stream(400)
    rng = random.Random(11)
    lost = {i for i in range(1, len(s.datagrams) - 1) if rng.random() < 0.1}
    expected = s.expected_unrecoverable(lost)
    kept = drop(s.datagrams, lost)
    for i in range(1, len(kept) - 6, 3):  # swap neighbours here and there
        if rng.random() < 0.5:
            kept[i], kept[i + 5] = kept[i + 5], kept[i]
    out = run(kept)
    assert out.gap_seqs == expected
    assert out.delivered == sorted(set(range(400)) - expected)


def test_a_slow_sender_is_waited_for_until_its_group_closes() -> None:
    """At 5 datagrams/s a group of 8 takes 1.6 s; the hole is rebuilt from the parity
    that comes after, not declared lost after the 0.3 s reorder timeout."""
    s = make_stream(16)
    lost = {2}  # DATA seq 1
    out = run(drop(s.datagrams, lost), step=0.2, tick_each=True)
    assert out.delivered == list(range(16)) and not out.gaps
    assert out.dec.stats.recovered == 1


def test_tail_loss_is_reported_from_the_heartbeat() -> None:
    s = make_stream(8, k=8, m=2)  # one group: 8 DATA, 2 PARITY
    lost = set(range(6, 11))  # DATA 5..7 and both PARITY
    assert isinstance(s.parsed[-1], wire.Heartbeat)
    out = run(drop(s.datagrams, lost))
    (gap,) = out.gaps
    assert (gap.first, gap.last, gap.count) == (5, 7, 3)
    assert (gap.samples_from, gap.samples_to) == (21, None)  # the end is not known


def test_window_overflow_declares_at_once() -> None:
    s = make_stream(300, k=1, m=0)
    dec = DiodeDecoder(AUTH, ReceiverSettings(window=64, reorder_timeout=60))
    lost = {5}
    out = run(drop(s.datagrams, lost), dec=dec, settle=0.0)
    (gap,) = out.gaps
    assert (gap.first, gap.last) == (4, 4) and "behind the newest" in gap.reason


# -- authentication and replay ----------------------------------------------------------


def test_forged_garbled_and_replayed_are_rejected_and_counted() -> None:
    s = make_stream(20)
    evil = make_stream(20, session=s.parsed[0].header.session)  # same session id
    forger = DiodeEncoder(
        wire.Authenticator(bytes.fromhex("e2afcf17140433d6e39f24cf0ba2cc32")), session=b"\0" * 8
    )
    forged = forger.data(batch.encode(_samples(3, 900)), 1000)
    garbage = [b"", b"\xcd\x1d", bytes(200), random.Random(1).randbytes(300)]
    stream = list(s.datagrams)
    stream[5:5] = forged + garbage + [s.datagrams[3], s.datagrams[4]]  # replays
    stream += evil.datagrams[1:3]  # a captured datagram from an older run, same session
    out = run(stream)
    st = out.dec.stats
    assert (st.forged, st.malformed) == (1, 4)
    assert st.replayed == 4
    assert out.delivered == list(range(20)) and out.samples == s.samples
    reasons = {e.reason for e in out.of(Rejected)}  # type: ignore[attr-defined]
    assert "MAC does not verify" in reasons
    assert any("seen before" in r for r in reasons)


def test_counter_older_than_the_window_is_replay() -> None:
    s = make_stream(150, k=1, m=0)
    dec = DiodeDecoder(AUTH, ReceiverSettings(window=64))
    out = run([*s.datagrams, s.datagrams[10]], dec=dec)
    (rej,) = out.of(Rejected)
    assert rej.category == "replayed" and "older than the replay window" in rej.reason  # type: ignore[attr-defined]


def test_sender_restart_new_session_and_old_session_replay() -> None:
    a = make_stream(10, time_ms=1000, first_sample=1)
    b = make_stream(10, time_ms=2000, first_sample=41)
    lost = {4}  # a hole in the first session, pending when the sender restarts
    stream = drop(a.datagrams[:-1], lost)[:5] + b.datagrams + [a.datagrams[6]]
    out = run(stream)
    started = out.of(SessionStarted)
    assert len(started) == 2 and started[1].previous == started[0].session  # type: ignore[attr-defined]
    assert any(g.reason.startswith("sender restarted") for g in out.gaps)
    ended = out.of(SessionEnded)
    assert ended == [
        SessionEnded(
            session=started[0].session, reason="sender restarted (new session)", data=4,  # type: ignore[attr-defined]
            delivered=4, recovered=0, lost=1, gaps=1, samples=16, sender_sent=0,
            sender_dropped=0,
        )
    ]  # fmt: skip
    assert out.of(Rejected)[-1].reason == "datagram of an ended or older session"  # type: ignore[attr-defined]
    assert [x.seq for x in out.samples][-40:] == list(range(41, 81))


def test_an_older_session_cannot_take_over_a_live_one() -> None:
    live = make_stream(5, time_ms=5000)
    old = make_stream(5, time_ms=1000)
    out = run([*live.datagrams[:3], *old.datagrams[:3], *live.datagrams[3:]])
    assert len(out.of(SessionStarted)) == 1
    assert out.dec.stats.replayed == 3 and out.delivered == list(range(5))
    # ... but it may once the live one has gone silent (a sender whose clock stepped back).
    dec = DiodeDecoder(AUTH)
    run(live.datagrams, dec=dec, start=0)
    later = run(old.datagrams, dec=dec, start=100)
    assert len(later.of(SessionStarted)) == 1 and later.delivered == list(range(5))


def test_max_skew() -> None:
    s = make_stream(2, time_ms=1_000_000)
    dec = DiodeDecoder(AUTH, ReceiverSettings(max_skew=30))
    ok = dec.feed(s.datagrams[0], 1.0, wall_ms=1_010_000)
    assert not any(isinstance(e, Rejected) for e in ok)
    bad = dec.feed(s.datagrams[1], 1.0, wall_ms=1_100_000)
    assert isinstance(bad[0], Rejected) and "+100.0 s off" in bad[0].reason


# -- link status ------------------------------------------------------------------------


def test_link_up_down_from_heartbeats() -> None:
    enc = DiodeEncoder(AUTH)
    dec = DiodeDecoder(AUTH)
    ev = dec.feed(enc.heartbeat(1, interval_ms=500, dropped=0), 10.0)
    assert [type(e) for e in ev] == [SessionStarted, LinkUp]
    assert dec.link_timeout == pytest.approx(2.0)
    assert dec.tick(11.9) == []
    (down,) = dec.tick(12.1)
    assert isinstance(down, LinkDown) and down.silent_for == pytest.approx(2.1)
    assert not dec.link_up
    ev = dec.feed(enc.heartbeat(2, interval_ms=500, dropped=7), 13.0)
    assert [type(e) for e in ev] == [LinkUp, SenderDropped]
    assert ev[1] == SenderDropped(session=enc.session.hex(), dropped=7, total=7)


def test_finish_reports_what_is_still_missing() -> None:
    s = make_stream(16)
    dec = DiodeDecoder(AUTH)
    events: list[Event] = []
    for d in drop(s.datagrams[:12], {3, 4, 5}):  # DATA 2..4 lost, group not yet closed
        events += dec.feed(d, 1.0)
    fin = dec.finish(1.0)
    gaps = [e for e in fin if isinstance(e, Gap)]
    assert [(g.first, g.last, g.reason) for g in gaps] == [(2, 4, "receiver stopped")]


Mutator = Callable[[bytes, random.Random], bytes]


def test_fuzz_mutated_datagrams_only_documented_outcomes() -> None:
    s = make_stream(60)
    rng = random.Random(5)
    dec = DiodeDecoder(AUTH)
    now = 0.0
    for _ in range(3000):
        d = bytearray(rng.choice(s.datagrams))
        for _ in range(rng.randint(1, 4)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        if rng.random() < 0.2:
            d = d[: rng.randrange(len(d) + 1)]
        now += 0.001
        for e in dec.feed(bytes(d), now):
            assert isinstance(e, Rejected | Samples | SessionStarted | LinkUp | Gap)
            assert not isinstance(e, Samples) or e.samples[0].path.startswith("acme/")
