"""Hostile input and crashes: nothing already stored is lost, nothing escapes as a traceback."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.analysis.run import analyze_file
from otconduit.capture.reader import CaptureError
from otconduit.store import Store, views
from tests.conftest import DATA

CONDUIT = Path(sys.executable).with_name("conduit")
BASE = (DATA / "modbus_all_functions.pcap").read_bytes()


def _bench_capture(path: Path, packets: int) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_capture", Path(__file__).resolve().parents[1] / "bench" / "make_capture.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    mod.make_capture(path, packets=packets, ops_per_session=2048)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(24, len(BASE) - 1), st.integers(0, 255)), max_size=40),
    st.integers(24, len(BASE)),
)
def test_mutated_captures_never_crash_the_pipeline(
    tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(BASE[:cut])
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    tmp = tmp_path_factory.mktemp("fuzz")
    cap = tmp / "m.pcap"
    cap.write_bytes(bytes(data))
    with Store(tmp / "c.db") as store:
        try:
            res = analyze_file(store, cap)
        except CaptureError:
            return
        assert res.status in ("complete", "partial", "empty")
        (row,) = store.captures()
        assert row["status"] in ("complete", "partial")
        ops = list(views.operations(store))
        assert all(o["protocol"] == "modbus" for o in ops)
        assert len(ops) <= 2 * 51 + 40  # nothing invented out of thin air


def test_killed_analysis_loses_nothing_stored(tmp_path: Path) -> None:
    """SIGKILL in the middle of an analysis: the database stays consistent, earlier
    captures are intact, and analysing the file again gives a clean, complete result."""
    db = tmp_path / "c.db"
    first = DATA / "modbus_all_functions.pcap"
    subprocess.run([str(CONDUIT), "analyze", str(first), "--db", str(db), "-q"], check=True)
    with Store(db, readonly=True) as store:
        before = list(views.operations(store))
    big = tmp_path / "big.pcap"
    _bench_capture(big, 600_000)
    proc = subprocess.Popen([str(CONDUIT), "analyze", str(big), "--db", str(db), "-q"])
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            n = con.execute(
                "SELECT count(*) FROM op_chunks k JOIN captures c ON c.id = k.capture_id "
                "WHERE c.status = 'running'"
            ).fetchone()[0]
            con.close()
        except sqlite3.Error:
            n = 0
        if n:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    proc.wait()
    if not killed:
        pytest.skip("analysis finished before it could be interrupted on this machine")
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    statuses = dict(con.execute("SELECT path, status FROM captures").fetchall())
    con.close()
    assert statuses[str(first)] == "complete" and statuses[str(big)] == "running"
    with Store(db, readonly=True) as store:
        mine = [o for o in views.operations(store) if o["capture"] == str(first)]
    assert mine == before
    # Again, to the end: the interrupted run is replaced, not added to.
    subprocess.run([str(CONDUIT), "analyze", str(big), "--db", str(db), "-q"], check=True)
    clean = tmp_path / "clean.db"
    subprocess.run([str(CONDUIT), "analyze", str(big), "--db", str(clean), "-q"], check=True)
    count = (
        "SELECT sum(count) FROM op_chunks k JOIN captures c ON c.id = k.capture_id WHERE c.path = ?"
    )
    got = sqlite3.connect(db).execute(count, (str(big),)).fetchone()[0]
    want = sqlite3.connect(clean).execute(count, (str(big),)).fetchone()[0]
    assert got == want and want > 0
    with Store(db, readonly=True) as store:
        assert {c["status"] for c in store.captures()} == {"complete"}


def _snap(data: bytes, snaplen: int) -> bytes:
    """Rewrite a little-endian microsecond pcap as if captured with ``-s snaplen``."""
    out = bytearray(data[:16] + snaplen.to_bytes(4, "little") + data[20:24])
    pos = 24
    while pos + 16 <= len(data):
        incl = int.from_bytes(data[pos + 8 : pos + 12], "little")
        keep = min(incl, snaplen)
        out += data[pos : pos + 8] + keep.to_bytes(4, "little") + data[pos + 12 : pos + 16]
        out += data[pos + 16 : pos + 16 + keep]
        pos += 16 + incl
    return bytes(out)


def test_snaplen_truncated_capture_decodes_as_far_as_it_goes(tmp_path: Path) -> None:
    """Cut at 80 bytes, every 12-byte request is still whole; longer PDUs are not."""
    assert BASE[:4] == b"\xd4\xc3\xb2\xa1"
    cap = tmp_path / "snap.pcap"
    cap.write_bytes(_snap(BASE, 80))
    with Store(tmp_path / "c.db") as store:
        res = analyze_file(store, cap)
        ops = list(views.operations(store))
        problems = views.problem_summary(store)
    assert res.status == "complete" and res.packets == 126
    whole = [o for o in ops if o["request_frame"] is not None]
    assert len(whole) >= 30  # the short requests survive the cut
    assert {o["function_code"] for o in whole} >= {1, 2, 3, 4, 5, 6}
    # and what was cut off is reported, not silently dropped
    reasons = {(p["layer"], p["reason"]) for p in problems}
    assert ("capture", "snap length") in reasons


def test_datagram_flows_are_folded_so_memory_stays_flat(tmp_path: Path) -> None:
    """A long capture of one-off UDP pairs (think DNS, scans) must not keep every pair in
    memory: quiet pairs are folded into their conversation, and the totals stay right."""
    from otconduit.analysis.engine import Analyzer
    from otconduit.capture.pcapwriter import build_udp_ipv4_frame, write_pcap

    second = 1_000_000_000
    frames = []
    for i in range(600):  # one datagram pair per 10 s over 100 minutes, 600 client ports
        ts = 1_700_000_000 * second + i * 10 * second
        port = 30000 + i
        frames.append(
            (
                ts,
                build_udp_ipv4_frame(
                    "02:00:00:00:00:01", "02:00:00:00:00:02", "10.1.1.1", "10.1.1.2", port, 53, b"q"
                ),
            )
        )
        frames.append(
            (
                ts + 1000,
                build_udp_ipv4_frame(
                    "02:00:00:00:00:02", "02:00:00:00:00:01", "10.1.1.2", "10.1.1.1", 53, port, b"a"
                ),
            )
        )
    cap = tmp_path / "udp.pcap"
    write_pcap(cap, frames)
    peak = 0
    original = Analyzer.sweep

    def watch(self: Analyzer, now_ts: int) -> None:
        nonlocal peak
        original(self, now_ts)
        peak = max(peak, len(self.udp))

    Analyzer.sweep = watch  # type: ignore[method-assign]
    try:
        with Store(tmp_path / "c.db") as store:
            analyze_file(store, cap, block_size=4096)
            convs = views.conversations(store)
    finally:
        Analyzer.sweep = original  # type: ignore[method-assign]
    assert peak < 100  # about 5 minutes' worth of pairs, not all 600
    udp = [c for c in convs if c["transport"] == "udp"]
    assert len(udp) == 1 and udp[0]["server_port"] == 53
    assert udp[0]["connections"] == 600
    assert (udp[0]["packets_c2s"], udp[0]["packets_s2c"]) == (600, 600)
