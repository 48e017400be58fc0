"""What the detection scan keeps per conversation: addresses counted up (memory bounded by
the address space, not by the operations), poll timestamps only when asked, and the
grouping of a chunk's rows by one packed key equal to the grouping by its columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from otconduit.analysis.run import analyze_file
from otconduit.detect import scan as scan_mod
from otconduit.detect.scan import AddressTally, _groups, _row_keys, scan_capture
from otconduit.store import views
from otconduit.store.sqlite import Store
from tests.conftest import SHARED, needs_shared


def test_address_tally_counts_as_the_operations_do() -> None:
    rng = np.random.default_rng(7)
    tally = AddressTally()
    given = []
    for _ in range(40):  # more than FOLD_AT in all: folded on the way
        part = rng.integers(0, 300, size=int(rng.integers(1, 5000)))
        given.append(part)
        tally.add(part)
    everything = np.concatenate(given)
    assert len(everything) > AddressTally.FOLD_AT
    uniq, counts = np.unique(everything, return_counts=True)
    got_uniq, got_counts = tally.counts()
    assert got_uniq.tolist() == uniq.tolist()
    assert got_counts.tolist() == counts.tolist()
    assert tally.total == len(everything)
    # what it holds is the distinct addresses and what came since the last fold
    held = sum(len(v) for v, _ in tally._parts)
    assert held < AddressTally.FOLD_AT + len(uniq)


@pytest.mark.parametrize("spread", [300, 1 << 40])  # counted by offset; sorted
def test_address_tally_dense_and_sparse_ranges(spread: int) -> None:
    rng = np.random.default_rng(11)
    tally = AddressTally()
    given = []
    for _ in range(6):
        part = 1_000 + rng.integers(0, spread, size=int(rng.integers(1, 3000)))
        given.append(part)
        tally.add(part)
    tally.add(np.zeros(0, np.int64))
    everything = np.concatenate(given)
    uniq, counts = np.unique(everything, return_counts=True)
    got_uniq, got_counts = tally.counts()
    assert got_uniq.tolist() == uniq.tolist()
    assert got_counts.tolist() == counts.tolist()
    assert got_counts.dtype == np.int64


def test_packed_row_keys_group_as_the_columns_do() -> None:
    rng = np.random.default_rng(3)
    cols = [rng.integers(0, n, size=5000) for n in (2, 9, 40, 3, 7)]
    packed = _row_keys(*cols)
    assert packed.ndim == 1
    by_packed = _groups(packed)
    by_columns = _groups(np.stack(cols, 1))
    assert [g.tolist() for g in by_packed] == [g.tolist() for g in by_columns]
    # a value beyond 12 bits keeps the columns
    wide = _row_keys(cols[0], np.full(5000, 1 << 13))
    assert wide.ndim == 2


@needs_shared
def test_poll_timestamps_only_when_asked(tmp_path: Path) -> None:
    cap = SHARED / "corpus/iti/ModbusTCP/ModbusTCP.pcap"
    with Store(tmp_path / "m.db") as store:
        res = analyze_file(store, cap)
        assert res.capture_id is not None
        plain = scan_capture(store, res.capture_id)
        asked = scan_capture(store, res.capture_id, polls=True)
    assert not any(st.polls for st in plain.stats.values())
    polled = [st for st in asked.stats.values() if st.polls]
    assert polled
    # every read request's timestamp is in exactly one poll series
    for st in polled:
        reads = sum(n for (fn, *_), parts in st.polls.items() for n in map(len, parts))
        assert reads <= st.ops
    # addresses alike either way, counted once per operation that names one
    for key, st in plain.stats.items():
        other = asked.stats[key]
        assert st.addresses.keys() == other.addresses.keys()
        for k, tally in st.addresses.items():
            assert tally.counts()[0].tolist() == other.addresses[k].counts()[0].tolist()
            assert tally.total <= st.ops


@needs_shared
@pytest.mark.parametrize(
    "rel", ["iti/EthernetIP/EthernetIP-CIP.pcap", "iti/ModbusTCP/ModbusTCP.pcap"]
)
def test_many_chunks_decode_only_the_samples_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rel: str
) -> None:
    """Operations stored in many small chunks: the scan decodes the evidence samples
    its findings keep (and one operation per kind of group to classify), and finds
    exactly what decoding every chunk's samples as it went found."""
    from otconduit.analysis import engine

    monkeypatch.setattr(engine, "CHUNK_MIN_OPS", 16)
    monkeypatch.setattr(engine, "MAX_PENDING_OPS", 64)
    monkeypatch.setattr(engine, "OPS_BATCH", 32)
    with Store(tmp_path / "c.db") as store:
        res = analyze_file(store, SHARED / "corpus" / rel)
        assert res.capture_id is not None
        chunks = store.conn.execute("SELECT count(*) FROM op_chunks").fetchone()[0]
        assert chunks > 20
        decoded: list[int] = []
        real_row = views.CaptureChunk.row

        def counting(self: views.CaptureChunk, i: int) -> dict[str, Any]:
            decoded.append(i)
            return real_row(self, i)

        monkeypatch.setattr(views.CaptureChunk, "row", counting)
        now = scan_capture(store, res.capture_id)
        rows_now = len(decoded)
        # as before: every chunk's samples decoded while scanning it (no chunk id)
        real_chunks = scan_mod.capture_chunks

        def anonymous(*a: Any, **k: Any) -> Any:
            for c in real_chunks(*a, **k):
                c.chunk_id = 0
                yield c

        monkeypatch.setattr(scan_mod, "capture_chunks", anonymous)
        before = scan_capture(store, res.capture_id)
    assert now.findings
    assert rows_now < len(decoded) - rows_now
    assert [_shown(f) for f in now.findings] == [_shown(f) for f in before.findings]


def _shown(f: Any) -> tuple[Any, ...]:
    return (
        f.rule, f.count, f.src_ip, f.dst_ip, f.operation, f.note, f.first_ts, f.last_ts,
        [(e.frames, e.ts, e.record) for e in f.evidence],
    )  # fmt: skip
