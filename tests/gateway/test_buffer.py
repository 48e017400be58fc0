"""The store-and-forward buffer: order across the memory and disk tiers, acks, the byte
and age caps (oldest dropped first, counted), and durability across a restart."""

from __future__ import annotations

from pathlib import Path

from otconduit.gateway.buffer import (
    ROW_OVERHEAD,
    SampleBuffer,
    buffer_path,
    decode_sample,
    encode_sample,
)
from otconduit.gateway.config import Buffer
from otconduit.gateway.model import Quality, TagSample

T0 = 1_700_000_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def sample(i: int, t: int | None = None, **kw: object) -> TagSample:
    return TagSample(
        path=f"acme/site/area/line/cell/t{i % 3}",
        value=i,
        quality=Quality.GOOD,
        recv_ts_ns=T0 + i * 1000 if t is None else t,
        seq=i,
        **kw,  # type: ignore[arg-type]
    )


def values(buf: SampleBuffer) -> list[object]:
    return [q.sample.value for q in buf.samples()]


def make(tmp_path: Path, clock: Clock | None = None, **cfg: object) -> SampleBuffer:
    b = Buffer(disk_path=tmp_path / "buf.db", **cfg)  # type: ignore[arg-type]
    return SampleBuffer(b, buffer_path(b.disk_path, "uns"), clock_ns=clock or Clock())


def test_sample_encoding_round_trips_every_field() -> None:
    s = TagSample(
        path="a/b/c",
        value=1.0,
        quality=Quality.STALE,
        recv_ts_ns=T0,
        unit="bar",
        source_ts_ns=T0 - 5,
        reason="timeout",
        historical=True,
        seq=99,
    )
    assert decode_sample(encode_sample(s)) == s
    for v in (1, True, "x", None, float("nan")):
        back = decode_sample(encode_sample(TagSample(**{**_fields(s), "value": v})))  # type: ignore[arg-type]
        assert type(back.value) is type(v)


def _fields(s: TagSample) -> dict[str, object]:
    return {f: getattr(s, f) for f in s.__slots__}  # type: ignore[attr-defined]


def test_memory_then_disk_in_order(tmp_path: Path) -> None:
    buf = make(tmp_path, memory_samples=10)
    buf.put([sample(i) for i in range(1, 36)], session=0)
    assert buf.disk_count > 0 and buf.memory_count <= 10
    assert len(buf) == 35
    assert values(buf) == list(range(1, 36))
    # the sender reads in chunks across the tier boundary
    got, last = [], buf.head_bid
    while chunk := buf.after(last, 7):
        got += [q.sample.value for q in chunk]
        last = chunk[-1].bid
    assert got == list(range(1, 36))


def test_ack_removes_the_head_only(tmp_path: Path) -> None:
    buf = make(tmp_path, memory_samples=10)
    buf.put([sample(i) for i in range(1, 31)], session=0)
    first = buf.after(buf.head_bid, 12)
    assert buf.ack(first[-1].bid) == 12
    assert values(buf) == list(range(13, 31))
    buf.put([sample(i) for i in range(31, 41)], session=5)
    assert values(buf) == list(range(13, 41))
    assert {q.session for q in buf.samples() if q.sample.value >= 31} == {5}
    buf.ack(buf.last_bid)
    assert len(buf) == 0 and buf.disk_count == 0 and buf.disk_bytes == 0


def test_disk_byte_cap_drops_oldest_and_counts(tmp_path: Path) -> None:
    one = len(encode_sample(sample(100))) + ROW_OVERHEAD
    cap = 1 << 16  # the smallest cap the config allows
    buf = make(tmp_path, memory_samples=4, disk_max_bytes=cap)
    n = 3 * cap // one
    buf.put([sample(i) for i in range(100, 100 + n)], session=0)
    kept = values(buf)
    assert buf.disk_bytes <= cap
    assert buf.dropped_cap > 0 and buf.dropped_cap + len(kept) == n
    # what was dropped is the oldest; what is kept is contiguous and in order
    assert kept == list(range(100 + buf.dropped_cap, 100 + n))
    assert buf.stats()["dropped_cap"] == buf.dropped_cap
    # the file stays near the cap (pages are reused, not grown without bound)
    buf.close()
    assert buf.path.stat().st_size < 3 * cap


def test_age_cap_drops_oldest_from_both_tiers(tmp_path: Path) -> None:
    clock = Clock()
    buf = make(tmp_path, clock, memory_samples=5, max_age=60)
    buf.put([sample(i, t=T0 + i * 1_000_000_000) for i in range(20)], session=0)  # 0..19 s
    assert buf.disk_count and len(buf) == 20
    clock.now = T0 + 70 * 1_000_000_000  # now 70 s: samples older than 10 s are too old
    buf.put([sample(20, t=clock.now)], session=0)
    assert buf.dropped_age == 10
    assert values(buf) == list(range(10, 21))
    clock.now += 120 * 1_000_000_000  # everything is too old, disk and memory
    assert buf.after(buf.head_bid, 100) == []
    assert buf.dropped_age == 21 and len(buf) == 0


def test_restart_keeps_everything_in_order(tmp_path: Path) -> None:
    buf = make(tmp_path, memory_samples=8)
    buf.put([sample(i) for i in range(1, 26)], session=7)
    sent = buf.after(buf.head_bid, 5)
    buf.ack(sent[-1].bid)
    last_bid = buf.last_bid
    buf.close()  # the memory tier goes to disk

    again = make(tmp_path, memory_samples=8)
    assert len(again) == 20 and again.memory_count == 0
    assert values(again) == list(range(6, 26))
    assert [q.session for q in again.samples()] == [7] * 20
    again.put([sample(26)], session=0)
    assert again.last_bid == last_bid + 1  # bids keep increasing across restarts
    assert values(again) == list(range(6, 27))
    again.close()
    third = make(tmp_path)
    assert values(third) == list(range(6, 27))
    third.close()


def test_each_sink_has_its_own_disk_tier(tmp_path: Path) -> None:
    base = tmp_path / "gateway-buffer.db"
    assert buffer_path(base, "uns") == tmp_path / "gateway-buffer.uns.db"
    assert buffer_path(base, "sparkplug") == tmp_path / "gateway-buffer.sparkplug.db"
