"""Historian throughput, for ``make bench``: samples/s into the store in batches.

End to end means what the gateway runtime does: an asyncio task awaits
``HistorianSink.write(batch)`` for each batch, the writer thread encodes and commits it
and the await returns after the commit; the clock stops after ``close()``, which moves
the last buffered rows into place. Samples are built before the clock starts (they are
the collectors' work, not the historian's).

    python -m otconduit.gateway.historian.bench [--samples N] [--batch N] [--tags N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from otconduit.gateway.historian.sink import HistorianSink
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample

T0 = 1_700_000_000_000_000_000


def make_batches(samples: int, batch: int, tags: int) -> list[list[TagSample]]:
    """``samples`` float samples of ``tags`` tags, one per tag per 100 ms, in batches."""
    paths = [f"acme/plant/area{t % 10}/line{t % 7}/tag{t}" for t in range(tags)]
    out: list[list[TagSample]] = []
    cur: list[TagSample] = []
    for i in range(samples):
        cur.append(
            TagSample(
                path=paths[i % tags],
                value=float(i % 1000) * 0.5,
                quality=Quality.GOOD,
                recv_ts_ns=T0 + (i // tags) * 100_000_000,
                unit="degC",
                seq=i,
            )
        )
        if len(cur) == batch:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


async def _through_sink(sink: HistorianSink, batches: list[list[TagSample]]) -> tuple[float, float]:
    await sink.start()
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        await sink.write(b)
    await sink.close()
    return time.perf_counter() - t0, time.process_time() - c0


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def throughput(
    samples: int = 500_000,
    batch: int = 1000,
    tags: int = 1000,
    path: str | Path | None = None,
    show: bool = True,
) -> dict[str, Any]:
    """Measure and (with ``show``) print samples/s into a fresh SQLite historian:
    end to end through the sink, and straight into the store (no event loop)."""
    batches = make_batches(samples, batch, tags)
    with tempfile.TemporaryDirectory(prefix="conduit-hist-bench-") as tmp:
        base = Path(path) if path is not None else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        e2e_db, raw_db = base / "bench-sink.db", base / "bench-store.db"
        for db in (e2e_db, raw_db):
            for p in db.parent.glob(db.name + "*"):
                p.unlink()
        sink = HistorianSink(lambda: SQLiteHistorian(e2e_db), maintain_every=None)
        e2e, e2e_cpu = asyncio.run(_through_sink(sink, batches))
        store = SQLiteHistorian(raw_db)
        t0 = time.perf_counter()
        for b in batches:
            store.write(b)
        store.close()
        raw = time.perf_counter() - t0
        size = _db_bytes(e2e_db)
    result = {
        "samples": samples,
        "batch": batch,
        "tags": tags,
        "end_to_end_per_s": round(samples / e2e),
        # CPU seconds of the whole process (both threads): what the figure would be on an
        # otherwise idle machine, were the disk not the limit.
        "end_to_end_per_cpu_s": round(samples / max(e2e_cpu, 1e-9)),
        "store_per_s": round(samples / raw),
        "bytes_per_sample": round(size / samples, 1),
        "cpus": os.cpu_count(),
    }
    if show:
        print(
            f"historian (SQLite): {result['end_to_end_per_s']:,} samples/s end to end "
            f"({result['end_to_end_per_cpu_s']:,} per CPU second), "
            f"{result['store_per_s']:,} samples/s into the store alone "
            f"({samples:,} samples, {tags:,} tags, batches of {batch:,}; "
            f"{result['bytes_per_sample']} bytes/sample on disk)"
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=500_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=None, help="where the databases go")
    a = ap.parse_args()
    throughput(a.samples, a.batch, a.tags, a.dir)


if __name__ == "__main__":
    main()
