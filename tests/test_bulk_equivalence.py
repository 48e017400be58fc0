"""The bulk (compiled) path must produce exactly what the per-packet path produces.

Every capture we have is analysed twice, with and without the bulk path, and with a
tiny read block so that connections are handed back and forth between the two paths
at many points. Operations, assets, conversations and problems must be identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.store import Store, views
from tests.conftest import CORPUS, DATA


def captures() -> list[Path]:
    found = sorted(DATA.glob("*.pcap"))
    if CORPUS.is_dir():
        found += sorted(CORPUS.rglob("*.pcap")) + sorted(CORPUS.rglob("*.pcapng"))
    return found


def _op_order(o: dict[str, Any]) -> tuple[Any, ...]:
    """Time order, ties (pipelined requests answered in one segment) broken by what
    tells the operations apart."""
    return (
        o["ts"], o["request_frame"] or 0, o["response_frame"] or 0, o["transaction_id"] or 0,
        o["function_code"] or 0, str(o["address"]), str(o["detail"]),
    )  # fmt: skip


def _snapshot(db: Path, cap: Path, *, bulk: bool, block_size: int) -> dict[str, Any]:
    with Store(db) as store:
        res = analyze_file(store, cap, bulk=bulk, block_size=block_size)
        ops = sorted(
            ({k: v for k, v in o.items() if k != "capture"} for o in views.operations(store)),
            key=_op_order,
        )
        return {
            "packets": res.packets,
            "operations": ops,
            "assets": views.assets(store),
            "conversations": views.conversations(store),
            "problems": views.problem_summary(store),
            "functions": views.function_summary(store),
        }


@pytest.mark.parametrize("cap", captures(), ids=lambda p: p.name)
def test_bulk_equals_per_packet(cap: Path, tmp_path: Path) -> None:
    slow = _snapshot(tmp_path / "slow.db", cap, bulk=False, block_size=8 << 20)
    for name, block in (("bulk", 8 << 20), ("bulk_small", 700)):
        fast = _snapshot(tmp_path / f"{name}.db", cap, bulk=True, block_size=block)
        for key in slow:
            assert fast[key] == slow[key], (name, key)


def _make_capture() -> Any:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "make_capture", Path(__file__).resolve().parents[1] / "bench" / "make_capture.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses in the module look themselves up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("protocol", "packets", "share"),
    [
        ("modbus", 30_000, 0.6),
        ("s7comm", 12_000, 0.6),
        ("enip", 12_000, 0.6),
        ("dnp3", 12_000, 0.6),
        ("mixed", 20_000, 0.5),
    ],
)
def test_bench_style_capture(tmp_path: Path, protocol: str, packets: int, share: float) -> None:
    """Many concurrent polling connections (the bench's traffic, own fixtures generated
    from the protocol specifications): records match, most packets take the bulk path."""
    import json
    import sqlite3

    cap = tmp_path / "bench.pcap"
    _make_capture().make_capture(cap, packets=packets, protocol=protocol)
    slow = _snapshot(tmp_path / "slow.db", cap, bulk=False, block_size=8 << 20)
    for name, block in (("fast", 1 << 20), ("fast_small", 3000)):
        fast = _snapshot(tmp_path / f"{name}.db", cap, bulk=True, block_size=block)
        for key in slow:
            assert fast[key] == slow[key], (name, key)
    stats = sqlite3.connect(tmp_path / "fast.db").execute("SELECT stats FROM captures").fetchone()
    assert json.loads(stats[0])["packets_bulk"] > share * packets


def _repeat_module() -> Any:
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "bench" / "repeat_capture.py"
    spec = importlib.util.spec_from_file_location("repeat_capture", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("cap", captures(), ids=lambda p: p.name)
def test_bulk_equals_per_packet_on_repeats(cap: Path, tmp_path: Path) -> None:
    """The capture three times over, as ``make bench`` repeats the real captures: each
    repetition's connections are new (client ports moved), so the kernel opens them
    itself where it can, mid-stream as the originals start, with the shapes it learned
    in the first repetition. Every record must be what the per-packet path makes."""
    rc = _repeat_module()
    try:
        packets, _ = rc.load(cap)
    except SystemExit:
        pytest.skip("capture mixes link types")
    rep = tmp_path / "rep.pcap"
    rc.repeat(cap, rep, 3 * len(packets))
    slow = _snapshot(tmp_path / "slow.db", rep, bulk=False, block_size=8 << 20)
    for name, block in (("bulk", 8 << 20), ("bulk_small", 2000)):
        fast = _snapshot(tmp_path / f"{name}.db", rep, bulk=True, block_size=block)
        for key in slow:
            assert fast[key] == slow[key], (name, key)
