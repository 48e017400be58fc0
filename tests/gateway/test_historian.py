"""The historian contract, run against SQLite and against a real PostgreSQL server.

Every test takes the ``backend`` fixture, parametrized over both. PostgreSQL is a private
cluster these tests create themselves (initdb into a temporary directory, pg_ctl start on
a free 127.0.0.1 port, socket directory beside it, as an unprivileged user when running as
root); the PostgreSQL cases skip, saying why, when the server binaries are absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otconduit.gateway.historian import (
    HistorianError,
    HistorianSink,
    Policy,
    history,
    open_store,
    tags,
)
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.historian.store import NS, SqlHistorian
from otconduit.gateway.model import Quality, TagSample
from tests.pgcluster import PgCluster, pg_bindir, pg_cluster  # noqa: F401 (fixture)

T0 = 1_700_000_000 * NS  # 2023-11-14T22:13:20Z
REPO = Path(__file__).resolve().parents[2]


# -- the backend fixture: what every contract test runs against ----------------------
@dataclass
class Backend:
    kind: str
    target: str  # SQLite file or PostgreSQL DSN
    cluster: PgCluster | None = None

    def open(self, readonly: bool = False, **kw: Any) -> SqlHistorian:
        if self.kind == "sqlite":
            return SQLiteHistorian(self.target, readonly=readonly, **kw)
        from otconduit.gateway.historian.postgres import PostgresHistorian

        return PostgresHistorian(self.target, readonly=readonly)

    def sink(self, policy: Policy | None = None, **kw: Any) -> HistorianSink:
        store_kw = {k: kw.pop(k) for k in ("flush_rows", "busy_timeout") if k in kw}
        kw.setdefault("maintain_every", None)
        return HistorianSink(
            lambda: self.open(**(store_kw if self.kind == "sqlite" else {})),
            backend=self.kind,
            target=self.target,
            policy=policy,
            **kw,
        )

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """The database stops taking writes for a while: PostgreSQL crashes (immediate
        stop) and comes back; SQLite's file is held by another writer."""
        if self.cluster is not None:
            self.cluster.stop("immediate")
            try:
                yield
            finally:
                self.cluster.start()
            return
        conn = sqlite3.connect(self.target, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "historian.db"))
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"hist_{uuid.uuid4().hex[:12]}"
    cluster.admin(f"CREATE DATABASE {name}")
    try:
        yield Backend("postgresql", cluster.dsn(name), cluster)
    finally:
        with contextlib.suppress(Exception):
            cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


def sample(
    path: str,
    value: Any,
    t: int,
    quality: Quality = Quality.GOOD,
    **kw: Any,
) -> TagSample:
    return TagSample(path=path, value=value, quality=quality, recv_ts_ns=t, **kw)


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# -- round trip, ordering, ranges -----------------------------------------------------
VALUES: list[tuple[str, Any]] = [
    ("float", 21.5),
    ("float-neg", -1e-300),
    ("float-big", 1.7976931348623157e308),
    ("float-nan", float("nan")),
    ("float-inf", float("inf")),
    ("float-ninf", float("-inf")),
    ("int", 42),
    ("int-zero", 0),
    ("int-neg", -32768),
    ("int-exact-limit", 2**53),
    ("int-beyond-double", 2**53 + 1),
    ("int64-min", -(2**63)),
    ("uint64-max", 2**64 - 1),
    ("bool-true", True),
    ("bool-false", False),
    ("string", "Grüße ✓ 'quoted' \"and\" ;--"),
    ("string-empty", ""),
]


def test_round_trip_of_every_value_type(backend: Backend) -> None:
    batch = [
        sample(f"acme/site/a/{name}", v, T0 + i, unit="u" + name[:3])
        for i, (name, v) in enumerate(VALUES)
    ]
    batch += [
        sample("acme/site/a/bad", None, T0 + 100, Quality.BAD, reason="exception 02"),
        sample("acme/site/a/stale", None, T0 + 101, Quality.STALE, reason="no answer for 3 s"),
        sample("acme/site/a/src", 1.25, T0 + 102, source_ts_ns=T0 - 5 * NS),
        sample("acme/site/a/replayed", 7, T0 + 103, historical=True),
        sample("acme/site/a/bad-with-value", 3.0, T0 + 104, Quality.BAD, reason="clamped"),
    ]
    with backend.open() as store:
        assert store.write(batch) == len(batch)
    with backend.open(readonly=True) as store:  # a new, read-only connection
        for i, (name, v) in enumerate(VALUES):
            (row,) = history(store, f"acme/site/a/{name}")
            assert same(row["value"], v), (name, row["value"], v)
            assert row["quality"] == "good" and row["unit"] == "u" + name[:3]
            assert row["ts_ns"] == T0 + i and row["source_ts"] is None
            assert row["historical"] is False and row["reason"] == ""
        (bad,) = history(store, "acme/site/a/bad")
        assert bad["value"] is None and bad["quality"] == "bad"
        assert bad["reason"] == "exception 02"
        (stale,) = history(store, "acme/site/a/stale")
        assert stale["value"] is None and stale["quality"] == "stale"
        assert stale["reason"] == "no answer for 3 s"
        (src,) = history(store, "acme/site/a/src")
        assert src["ts_ns"] == T0 - 5 * NS and src["source_ts"] == src["ts"]
        assert src["ts"] == "2023-11-14T22:13:15.000000Z"
        (rep,) = history(store, "acme/site/a/replayed")
        assert rep["historical"] is True and same(rep["value"], 7)
        (bwv,) = history(store, "acme/site/a/bad-with-value")
        assert (bwv["value"], bwv["quality"], bwv["reason"]) == (3.0, "bad", "clamped")
        summary = {t["path"]: t for t in tags(store)}
    assert len(summary) == len(batch)
    types = {name: summary[f"acme/site/a/{name}"]["type"] for name, _ in VALUES}
    assert {types[n] for n in ("float", "float-nan")} == {"float"}
    assert types["int"] == types["uint64-max"] == "int"
    assert types["bool-true"] == "bool" and types["string-empty"] == "string"
    assert summary["acme/site/a/bad"]["type"] == ""  # no value seen yet
    assert same(summary["acme/site/a/uint64-max"]["value"], 2**64 - 1)
    assert summary["acme/site/a/stale"]["quality"] == "stale"
    assert list(summary) == sorted(summary)


def test_history_is_in_time_order_whatever_the_write_order(backend: Backend) -> None:
    times = list(range(0, 3000, 3))
    random.Random(7).shuffle(times)
    with backend.open(flush_rows=400) if backend.kind == "sqlite" else backend.open() as store:
        for i in range(0, len(times), 100):  # ten batches, some flushed, some buffered
            chunk = times[i : i + 100]
            store.write([sample("p/a", t, T0 + t * NS) for t in chunk])
            store.write([sample("p/b", -t, T0 + t * NS) for t in chunk[::2]])
        a = list(history(store, "p/a"))
        b = list(history(store, "p/b"))
    assert [r["ts_ns"] for r in a] == sorted(T0 + t * NS for t in times)
    assert [r["value"] for r in a] == sorted(times)
    assert all(r["value"] <= 0 for r in b) and len(b) == 500
    assert [r["ts_ns"] for r in b] == sorted(r["ts_ns"] for r in b)


def test_time_ranges_and_limits(backend: Backend) -> None:
    with backend.open() as store:
        store.write([sample("r/x", t, T0 + t * NS) for t in range(100)])
        store.write([sample("r/other", t, T0 + t * NS) for t in range(100)])

        def ts(start: int | None, end: int | None, limit: int | None = None) -> list[int]:
            lo = None if start is None else T0 + start * NS
            hi = None if end is None else T0 + end * NS
            return [r["value"] for r in history(store, "r/x", lo, hi, limit)]

        assert ts(10, 20) == list(range(10, 20))  # start inclusive, end exclusive
        assert ts(None, 3) == [0, 1, 2]
        assert ts(97, None) == [97, 98, 99]
        assert ts(None, None) == list(range(100))
        assert ts(10, 90, 5) == [10, 11, 12, 13, 14]
        assert ts(None, None, 0) == []
        assert ts(50, 50) == [] and ts(60, 50) == []
        assert ts(200, 300) == []
        with pytest.raises(HistorianError, match="no tag 'r/nope'"):
            history(store, "r/nope")


def test_same_tag_and_time_is_stored_once_last_write_wins(backend: Backend) -> None:
    with backend.open() as store:
        store.write([sample("d/x", 1, T0), sample("d/x", 2, T0), sample("d/x", 3, T0 + 1)])
        store.flush()
        store.write([sample("d/x", 4, T0 + 1)])  # replaces a stored row (buffered in SQLite)
        rows = [(r["ts_ns"], r["value"]) for r in history(store, "d/x")]
        assert rows == [(T0, 2), (T0 + 1, 4)]
        assert tags(store)[0]["samples"] == 2
        store.flush()
        assert [(r["ts_ns"], r["value"]) for r in history(store, "d/x")] == rows
        assert tags(store)[0]["samples"] == 2


def test_large_batches_keep_values_and_last_write_wins(backend: Backend) -> None:
    # Big batches take PostgreSQL's COPY path and SQLite's flush: same results.
    specials = [float("nan"), float("inf"), 2**64 - 1, None, "text", True, -7]
    big = [sample(f"big/t{i % 10}", float(i), T0 + i * NS) for i in range(3000)]
    big += [sample("big/t0", "first", T0 - NS), sample("big/t0", "second", T0 - NS)]
    big += [
        sample("big/special", v, T0 + k, Quality.BAD if v is None else Quality.GOOD, reason="r")
        for k, v in enumerate(specials)
    ]
    with backend.open() as store:
        store.write(big)
        store.flush()
        t0 = list(history(store, "big/t0"))
        special = [r["value"] for r in history(store, "big/special")]
        counts = {t["path"]: t["samples"] for t in tags(store)}
    assert t0[0]["value"] == "second" and len(t0) == 301
    assert [r["value"] for r in t0[1:]] == [float(i) for i in range(0, 3000, 10)]
    assert all(same(a, b) for a, b in zip(special, specials, strict=True)), special
    assert counts["big/t0"] == 301 and counts["big/t9"] == 300 and counts["big/special"] == 7


def test_tags_summary_counts_and_newest_sample(backend: Backend) -> None:
    with backend.open() as store:
        store.write([sample("s/t1", float(i), T0 + i * NS, unit="bar") for i in range(50)])
        store.flush()
        # An older sample written last is not the tag's last value.
        store.write([sample("s/t1", -1.0, T0 - NS, unit="bar"), sample("s/t2", "on", T0)])
        store.write([sample("s/t2", 5, T0 + NS, unit="rpm")])  # unit and type follow
        rows = tags(store)
    assert [r["path"] for r in rows] == ["s/t1", "s/t2"]
    t1, t2 = rows
    assert (t1["samples"], t1["value"], t1["unit"], t1["type"]) == (51, 49.0, "bar", "float")
    assert t1["last_ts"] == "2023-11-14T22:14:09.000000Z" and t1["quality"] == "good"
    assert (t2["samples"], t2["value"], t2["unit"], t2["type"]) == (2, 5, "rpm", "int")


# -- retention and downsampling --------------------------------------------------------
def test_retention_deletes_exactly_what_is_older(backend: Backend) -> None:
    now = T0 + 1000 * NS
    with backend.open() as store:
        store.write([sample("k/a", t, T0 + t * NS) for t in range(1000)])
        store.write([sample("k/b", t, T0 + t * NS) for t in range(0, 1000, 10)])
        report = store.maintain(now, Policy(retention_ns=100 * NS))
        assert report["retention_deleted"] == 900 + 90
        a = [r["value"] for r in history(store, "k/a")]
        assert a == list(range(900, 1000))  # cutoff (now - 100 s) itself is kept
        assert [r["value"] for r in history(store, "k/b")] == list(range(900, 1000, 10))
        again = store.maintain(now, Policy(retention_ns=100 * NS))
        assert again["retention_deleted"] == 0
        assert {t["path"]: t["samples"] for t in tags(store)} == {"k/a": 100, "k/b": 10}


def test_downsampling_keeps_the_last_sample_of_each_bucket(backend: Backend) -> None:
    policy = Policy(downsample_after_ns=120 * NS, downsample_every_ns=60 * NS)
    start = T0 - T0 % (60 * NS)  # a bucket boundary
    with backend.open() as store:
        store.write([sample("ds/f", float(i), start + i * NS) for i in range(600)])  # 1 Hz
        store.write([sample("ds/s", f"v{i}", start + i * NS) for i in range(0, 600, 7)])
        now = start + 600 * NS  # older than now-120 s = first 8 minutes get thinned
        report = store.maintain(now, policy)
        f = [(r["ts_ns"] - start) // NS for r in history(store, "ds/f")]
        assert f == [59, 119, 179, 239, 299, 359, 419, 479, *range(480, 600)]
        assert [r["value"] for r in history(store, "ds/f", None, start + 480 * NS)] == [
            59.0, 119.0, 179.0, 239.0, 299.0, 359.0, 419.0, 479.0,
        ]  # fmt: skip
        s = [(r["ts_ns"] - start) // NS for r in history(store, "ds/s")]
        kept_s = [max(i for i in range(0, 600, 7) if i // 60 == m) for m in range(8)]
        assert s == kept_s + [i for i in range(0, 600, 7) if i >= 480]
        assert report["downsample_deleted"] == (480 - 8) + (len(range(0, 480, 7)) - 8)
        # Idempotent; and a later run only thins what has crossed the line since.
        assert store.maintain(now, policy)["downsample_deleted"] == 0
        later = store.maintain(now + 60 * NS, policy)
        assert later["downsample_deleted"] == 59 + (len([i for i in range(480, 540, 7)]) - 1)
        f = [(r["ts_ns"] - start) // NS for r in history(store, "ds/f")]
        assert f == [59, 119, 179, 239, 299, 359, 419, 479, 539, *range(540, 600)]


def test_retention_and_downsampling_together(backend: Backend) -> None:
    start = T0 - T0 % (10 * NS)
    policy = Policy(
        retention_ns=300 * NS, downsample_after_ns=100 * NS, downsample_every_ns=10 * NS
    )
    with backend.open() as store:
        store.write([sample("rd/x", i, start + i * NS) for i in range(1000)])
        report = store.maintain(start + 1000 * NS, policy)
        kept = [(r["ts_ns"] - start) // NS for r in history(store, "rd/x")]
    assert kept == [*range(709, 900, 10), *range(900, 1000)]
    assert report["retention_deleted"] == 700
    assert report["downsample_deleted"] == 200 - 20


# -- lifecycle, concurrency, crashes ---------------------------------------------------
def test_start_is_idempotent_and_schema_is_named(backend: Backend) -> None:
    with backend.open() as store:
        first = store.schema_version()
        store.write([sample("i/x", 1, T0)])
    assert first == ["0001_historian"]
    errors: list[BaseException] = []

    def reopen() -> None:
        try:
            with backend.open() as s:
                assert s.schema_version() == first
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reopen) for _ in range(4)]  # racing starts
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with backend.open(readonly=True) as store:
        assert [r["value"] for r in history(store, "i/x")] == [1]
        assert store.schema_version() == first


def test_a_read_only_store_needs_an_existing_historian(backend: Backend, tmp_path: Path) -> None:
    if backend.kind == "sqlite":
        with pytest.raises(HistorianError, match="no historian database"):
            open_store(tmp_path / "missing.db")
        (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
        with pytest.raises(HistorianError, match="historian"):
            open_store(tmp_path / "junk.db")
    else:
        with pytest.raises(HistorianError, match="holds no Conduit historian"):
            open_store(backend.target)  # an empty database
    with backend.open() as store:
        store.write([sample("ro/x", 1, T0)])
    with open_store(backend.target) as ro:
        assert ro.readonly
        with pytest.raises(HistorianError, match="read-only"):
            ro.write([sample("ro/x", 2, T0 + 1)])


def test_concurrent_writes_and_reads_see_whole_batches(backend: Backend) -> None:
    batch, batches = 250, 60
    seen: list[int] = []
    problems: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            read()
        except BaseException as exc:
            problems.append(repr(exc))

    def read() -> None:
        while not stop.is_set():
            with backend.open(readonly=True) as store:
                rows = list(history(store, "c/x"))
                counts = {t["path"]: t["samples"] for t in tags(store)}
            n = len(rows)
            if n % batch:
                problems.append(f"saw {n} samples: part of a batch")
            if [r["value"] for r in rows] != list(range(n)):
                problems.append("samples out of order or missing")
            if counts.get("c/x", 0) < n:
                problems.append(f"tags() counted {counts.get('c/x')} after history saw {n}")
            seen.append(n)

    async def writer() -> None:
        sink = backend.sink(flush_rows=1000)  # SQLite: flushes while readers read
        await sink.start()
        t = threading.Thread(target=reader)
        try:
            for k in range(batches):
                await sink.write(
                    [sample("c/x", i, T0 + i * NS) for i in range(k * batch, (k + 1) * batch)]
                )
                if k == 0:
                    t.start()  # the tag exists from here on
                deadline = time.monotonic() + 5
                while len(seen) < k // 6 and not problems and time.monotonic() < deadline:
                    await asyncio.sleep(0.002)  # reads interleave, however fast writes are
        finally:
            await sink.close()
            stop.set()
            t.join()

    asyncio.run(writer())
    assert problems == []
    assert seen == sorted(seen) and len(seen) >= 9
    assert len(set(seen)) > 3  # reads saw the history grow, not just its end
    with backend.open(readonly=True) as store:
        assert tags(store)[0]["samples"] == batch * batches


CHILD = r"""
import sys
from otconduit.gateway.historian.postgres import PostgresHistorian
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample
kind, target, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = (SQLiteHistorian(target, flush_rows=3 * per) if kind == "sqlite"
         else PostgresHistorian(target))
k = 0
while True:
    store.write([TagSample(path=f"crash/t{i % 7}", value=k, quality=Quality.GOOD,
                           recv_ts_ns=1_700_000_000_000_000_000 + k * per + i)
                 for i in range(per)])
    print(k, flush=True)
    k += 1
"""


def test_a_crash_loses_nothing_committed_and_no_batch_is_partial(backend: Backend) -> None:
    per = 500
    with backend.open():
        pass  # schema in place before the child starts
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for run in range(3):  # killed at different moments (mid-write, mid-flush)
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, backend.kind, backend.target, str(per)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        committed = -1
        target_k = 10 + 7 * run
        while committed < target_k:
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
            committed = int(line)
        time.sleep(random.Random(run).random() * 0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        with backend.open(readonly=True) as store:
            per_batch: dict[int, int] = {}
            for i in range(7):
                for r in history(store, f"crash/t{i}"):
                    per_batch[r["value"]] = per_batch.get(r["value"], 0) + 1
        assert set(range(committed + 1)) <= set(per_batch), "a committed batch is missing"
        partial = {k: n for k, n in per_batch.items() if n != per}
        assert partial == {}, f"partial batches after kill #{run}: {partial}"
        # The next writer starts from scratch over the same keys: clean for the next run.
        with backend.open() as store:
            store.maintain(T0 + 10**6 * NS, Policy(retention_ns=1))


# -- the sink ---------------------------------------------------------------------------
def test_sink_writes_and_maintains_through_its_writer_thread(backend: Backend) -> None:
    async def main() -> dict[str, Any]:
        sink = backend.sink(Policy(retention_ns=60 * NS))
        await sink.start()
        await sink.start()  # idempotent
        await sink.write([sample("sk/x", i, T0 + i * NS) for i in range(120)])
        report = await sink.maintain(T0 + 120 * NS)
        summary = await sink.call(tags)
        status = sink.status()
        await sink.close()
        await sink.close()
        assert report["retention_deleted"] == 60
        assert summary[0]["samples"] == 60
        return status

    status = asyncio.run(main())
    assert status["state"] == "ok" and status["samples_written"] == 120
    assert status["backend"] == backend.kind and status["last_error"] is None
    assert status["last_commit"] is not None and status["pending_samples"] == 0


def test_sink_maintains_by_itself(backend: Backend) -> None:
    async def main() -> None:
        sink = backend.sink(Policy(retention_ns=3600 * NS), maintain_every=0.2)
        await sink.start()
        old = time.time_ns() - 7200 * NS
        await sink.write([sample("am/x", i, old + i * NS) for i in range(50)])
        await sink.write([sample("am/x", 1, time.time_ns())])
        summary = await sink.call(tags)
        for _ in range(100):  # nobody calls maintain(): the sink runs it every 0.2 s
            if summary[0]["samples"] == 1:
                break
            await asyncio.sleep(0.1)
            summary = await sink.call(tags)
        status = sink.status()
        await sink.close()
        assert summary[0]["samples"] == 1
        assert status["maintenance_runs"] >= 1, status
        assert status["last_maintenance"]["at"] is not None

    asyncio.run(main())


def test_sink_never_blocks_the_event_loop(backend: Backend) -> None:
    gaps: list[float] = []
    writes: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    batches = [  # built beforehand: building them would hold the loop, not the sink
        [sample(f"nb/t{i % 500}", i, T0 + k * 10**6 * NS + i) for i in range(60_000)]
        for k in range(3)
    ]

    async def main() -> None:
        sink = backend.sink()
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        await sink.start()
        for b in batches:
            t0 = time.perf_counter()
            await sink.write(b)
            writes.append(time.perf_counter() - t0)
        await sink.maintain(T0 + 10**7 * NS)
        await sink.close()
        stop.set()
        await tick

    # A full garbage collection over the 180,000 prepared samples pauses every thread at
    # once (0.4 s on a loaded machine): that is the process's pause, not the sink's.
    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()
    # Each write took long (encoding and committing 60,000 samples), yet the loop kept
    # ticking. What remains are whole-process pauses (the GIL), well under a commit; a
    # loop blocked by the sink would show whole commits as gaps.
    assert len(gaps) > 20
    assert max(gaps) < 0.25 and max(gaps) < max(writes) / 2, (sorted(gaps)[-3:], writes)


def test_sink_rides_out_an_outage_and_catches_up(backend: Backend) -> None:
    per, before, during, after = 100, 5, 8, 5

    def batch(k: int) -> list[TagSample]:
        return [sample(f"out/t{i % 4}", k, T0 + (k * per + i) * NS) for i in range(per)]

    async def main() -> dict[str, Any]:
        sink = backend.sink(busy_timeout=0.1, retry=(0.05, 0.3))
        await sink.start()
        for k in range(before):
            await sink.write(batch(k))
        with backend.outage():
            for k in range(before, before + during):
                # Returns although the database is down: held in the sink's buffer.
                await asyncio.wait_for(sink.write(batch(k)), timeout=10)
            down = sink.status()
        for k in range(before + during, before + during + after):
            await sink.write(batch(k))
        for _ in range(200):
            if sink.status()["pending_samples"] == 0:
                break
            await asyncio.sleep(0.05)
        await sink.close()
        return down

    down = asyncio.run(main())
    assert down["state"] == "down" and down["pending_samples"] >= per
    assert down["outages"] == 1 and down["last_error"]
    total = before + during + after
    with backend.open(readonly=True) as store:
        seen = [r["value"] for i in range(4) for r in history(store, f"out/t{i}")]
    assert sorted(set(seen)) == list(range(total)) and len(seen) == total * per
