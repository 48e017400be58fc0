"""The historian's parts that need no database server: value encoding, policy and
configuration, target detection, and the sink's behaviour around a store that fails."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otconduit.gateway.config import parse_gateway
from otconduit.gateway.historian import (
    HistorianError,
    HistorianSink,
    HistorianUnavailable,
    Policy,
    historian_sinks,
    history,
    open_store,
    tags,
)
from otconduit.gateway.historian.bench import throughput
from otconduit.gateway.historian.postgres import redact
from otconduit.gateway.historian.queries import _DSN
from otconduit.gateway.historian.schema import (
    POSTGRES_MIGRATIONS,
    QUALITY_CODE,
    QUALITY_OF_CODE,
    SQLITE_MIGRATIONS,
    decode_reason,
    decode_value,
    encode,
    encode_many,
)
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.historian.store import NS, TagSummary
from otconduit.gateway.model import Quality, TagSample

T0 = 1_700_000_000 * NS
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)


@given(
    value=values,
    quality=st.sampled_from(list(Quality)),
    reason=st.text(max_size=10),
    source=st.booleans(),
    historical=st.booleans(),
)
def test_every_value_survives_encoding(
    value: Any, quality: Quality, reason: str, source: bool, historical: bool
) -> None:
    s = TagSample(
        path="a/b",
        value=value,
        quality=quality,
        recv_ts_ns=T0,
        source_ts_ns=T0 - 1 if source else None,
        reason=reason,
        historical=historical,
    )
    tag_id, ts, num, text, q, flags = encode(3, s)
    assert (tag_id, ts, QUALITY_OF_CODE[q]) == (3, s.ts_ns, quality)
    back = decode_value(num, text, flags)
    assert type(back) is type(value)
    assert back == value or (isinstance(value, float) and math.isnan(value) and math.isnan(back))
    if not isinstance(value, str) and not (isinstance(value, int) and abs(value) > 2**53):
        assert decode_reason(num, text, flags) == reason
    assert bool(flags & 0x08) == source and bool(flags & 0x10) == historical


@given(
    st.lists(
        st.tuples(
            values, st.sampled_from(list(Quality)), st.sampled_from(["", "timeout"]),
            st.booleans(), st.booleans(),
        ),
        max_size=20,
    )
)  # fmt: skip
def test_batch_encoding_matches_the_per_sample_encoding(
    items: list[tuple[Any, Quality, str, bool, bool]],
) -> None:
    batch = [
        TagSample(path=f"a/{i}", value=v, quality=q, recv_ts_ns=T0 + i, reason=r,
                  source_ts_ns=T0 - i if src else None, historical=h)
        for i, (v, q, r, src, h) in enumerate(items)
    ]  # fmt: skip
    ids = {s.path: 100 + i for i, s in enumerate(batch)}
    fast, slow = encode_many(ids, batch), [encode(ids[s.path], s) for s in batch]
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):  # NaN != NaN: compare by representation
        assert repr(a) == repr(b) and [type(x) for x in a] == [type(x) for x in b]


def test_every_quality_has_a_stored_code() -> None:
    assert set(QUALITY_CODE) == set(Quality)
    assert {QUALITY_OF_CODE[c] for c in QUALITY_CODE.values()} == set(Quality)


def test_a_value_a_sample_cannot_hold_is_refused() -> None:
    s = TagSample(path="a/b", value=b"raw", quality=Quality.GOOD, recv_ts_ns=T0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot store a bytes"):
        encode(1, s)


def test_both_dialects_have_the_same_named_migrations() -> None:
    assert [n for n, _ in SQLITE_MIGRATIONS] == [n for n, _ in POSTGRES_MIGRATIONS]
    for (_, lite), (_, pg) in zip(SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS, strict=True):
        for table in ("CREATE TABLE tags", "CREATE TABLE samples", "CREATE TABLE meta"):
            assert table in lite and table in pg
        for column in ("tag_id", "ts_ns", "value_text", "quality", "flags", "path", "unit"):
            assert column in lite and column in pg


def test_policy_from_configuration() -> None:
    cfg = parse_gateway(
        "enterprise: acme\nsite: plant\ndevices: []\nsinks:\n"
        "  historian: {path: h.db, retention: 30d, downsample_after: 1d,"
        " downsample_every: 5m, maintain_every: 15m, synchronous: full}\n"
        "  postgres: {dsn: 'host=db dbname=hist', retention: 7d}\n"
    )
    h, pg = cfg.sinks.historian, cfg.sinks.postgres
    assert h is not None and pg is not None
    assert Policy.from_config(h) == Policy(30 * 86400 * NS, 86400 * NS, 300 * NS)
    assert h.maintain_every == 900.0 and h.synchronous == "full"
    assert Policy.from_config(pg) == Policy(retention_ns=7 * 86400 * NS)
    sinks = historian_sinks(cfg)
    assert [(s.name, s.backend) for s in sinks] == [
        ("historian", "sqlite"),
        ("postgres", "postgresql"),
    ]
    assert sinks[0].maintain_every == 900.0 and sinks[1].target == "postgresql://db/hist"
    with pytest.raises(ValueError, match="positive"):
        Policy(downsample_every_ns=0)
    with pytest.raises(ValueError, match="retention"):
        Policy(retention_ns=-1)


@pytest.mark.parametrize("bad", ["retention: -1d", "downsample_every: 0", "synchronous: off"])
def test_bad_historian_settings_are_refused(bad: str) -> None:
    with pytest.raises(Exception, match=bad.split(":")[0]):
        parse_gateway(f"enterprise: a\nsite: b\ndevices: []\nsinks:\n  historian: {{{bad}}}\n")


def test_targets_and_redaction() -> None:
    for dsn in ("postgresql://u:secret@h:5432/db", "postgres://h/db", "host=h dbname=db"):
        assert _DSN.search(dsn)
    for path in ("gateway.db", "/var/lib/conduit/hostname=x.db", "dbname.db"):
        assert not _DSN.search(path)
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
    assert "secret" not in redact("host=h user=u password=secret dbname=db")
    assert redact("this is = not a dsn ''") == "<unparsable DSN>"


def test_queries_through_a_path(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "h.db"  # parent directories are created
    with open_store(db, readonly=False) as store:
        store.write([TagSample(path="q/x", value=1, quality=Quality.GOOD, recv_ts_ns=T0)])
    with open_store(str(db)) as store:
        assert store.readonly and [r["value"] for r in history(store, "q/x")] == [1]
        assert tags(store)[0]["samples"] == 1


def test_a_busy_database_is_an_outage_not_a_failure(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "h.db"
    SQLiteHistorian(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistorianUnavailable, match="SQLITE_BUSY"):
            SQLiteHistorian(db, busy_timeout=0.05)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with SQLiteHistorian(db, busy_timeout=0.05) as store:  # and it passes
        assert store.schema_version() == ["0001_historian"]


# -- the sink around a store that misbehaves ---------------------------------------------
class FakeStore:
    """Keeps samples in a list; fails as told."""

    backend, target, readonly = "fake", "memory", False

    def __init__(self, world: dict[str, Any]) -> None:
        self.world = world

    def write(self, samples: Sequence[TagSample]) -> int:
        if self.world.get("down"):
            raise HistorianUnavailable("fake store down")
        if any(s.value == "poison" for s in samples):
            raise HistorianError("poisoned batch")
        if any(s.value == "bug" for s in samples):
            raise ZeroDivisionError("a bug in the writer")
        self.world["samples"].extend(samples)
        return len(samples)

    def flush(self) -> int:
        return 0

    def summaries(self) -> list[TagSummary]:
        return []

    def rows(self, path: str, *a: Any) -> tuple[str, Iterator[Any]]:
        return "", iter(())

    def maintenance(self, now_ns: int, policy: Policy) -> Generator[None, None, dict[str, int]]:
        yield
        return {"steps": 1}

    def maintain(self, now_ns: int, policy: Policy) -> dict[str, int]:
        return {"steps": 1}

    def schema_version(self) -> list[str]:
        return []

    def close(self) -> None:
        self.world["closed"] = self.world.get("closed", 0) + 1


def batch(value: Any, n: int = 10) -> list[TagSample]:
    return [
        TagSample(path="f/x", value=value, quality=Quality.GOOD, recv_ts_ns=T0 + i)
        for i in range(n)
    ]


def fake_sink(world: dict[str, Any], **kw: Any) -> HistorianSink:
    world.setdefault("samples", [])

    def opener() -> FakeStore:
        if world.get("down"):
            raise HistorianUnavailable("fake store down")
        return FakeStore(world)

    kw.setdefault("maintain_every", None)
    return HistorianSink(opener, backend="fake", **kw)


def test_a_rejected_batch_fails_alone() -> None:
    world: dict[str, Any] = {}

    async def main() -> list[Any]:
        sink = fake_sink(world)
        await sink.start()
        # Queued together, committed as a group: the bad one is found and fails alone.
        results = await asyncio.gather(
            sink.write(batch(1)), sink.write(batch("poison")), sink.write(batch(3)),
            return_exceptions=True,
        )  # fmt: skip
        await sink.close()
        return results

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], HistorianError)
    assert sorted({s.value for s in world["samples"]}) == [1, 3]


def test_while_down_writes_return_and_the_buffer_is_bounded() -> None:
    world: dict[str, Any] = {"down": True}

    async def main() -> dict[str, Any]:
        sink = fake_sink(world, max_pending=35, retry=(0.02, 0.05))
        await sink.start()  # an unreachable store is an outage, not a start failure
        assert sink.status()["state"] == "down"
        for k in range(6):
            await asyncio.wait_for(sink.write(batch(k)), 5)
        await asyncio.sleep(0.1)
        held = sink.status()
        world["down"] = False
        for _ in range(100):
            if sink.status()["pending_samples"] == 0:
                break
            await asyncio.sleep(0.02)
        await sink.close()
        return held

    held = asyncio.run(main())
    assert held["pending_samples"] == 30 and held["samples_dropped"] == 30
    assert [s.value for s in world["samples"][::10]] == [3, 4, 5]  # oldest dropped


def test_a_bug_in_the_writer_fails_writes_instead_of_hanging() -> None:
    async def main() -> None:
        sink = fake_sink({})
        await sink.start()
        with pytest.raises(ZeroDivisionError):
            await asyncio.wait_for(sink.write(batch("bug")), 5)
        await sink.write(batch(1))  # an error in one batch is not the end of the sink
        await sink.close()

    asyncio.run(main())


def test_sink_lifecycle_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"x" * 4096)

    async def main() -> None:
        sink = fake_sink({})
        with pytest.raises(RuntimeError, match="start"):
            await sink.write(batch(1))
        await sink.close()  # never started: nothing to do
        await sink.start()
        await sink.write([])
        await sink.close()
        with pytest.raises(RuntimeError, match="closed"):
            await sink.write(batch(1))
        bad = HistorianSink(lambda: SQLiteHistorian(tmp_path / "junk.db"), maintain_every=None)
        with pytest.raises(HistorianError, match="Conduit historian"):
            await bad.start()
        for s in (sink, bad):
            assert s._thread is not None and not s._thread.is_alive()

    asyncio.run(main())


def test_throughput_reports_samples_per_second(tmp_path: Path) -> None:
    r = throughput(samples=20_000, batch=1000, tags=100, path=tmp_path, show=False)
    assert r["end_to_end_per_s"] > 1000 and r["store_per_s"] > 1000
    assert 10 < r["bytes_per_sample"] < 200
