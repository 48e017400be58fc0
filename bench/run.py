"""`make bench`: conduit analyze beside tshark and a dpkt decoder, on the same captures.

Builds (once, cached in bench/out/) synthetic Modbus/TCP captures with bench/make_capture.py
and times, each in a fresh process, end to end:

- ``conduit analyze`` (every operation stored in SQLite),
- ``tshark`` extracting the Modbus fields of every packet (the decoding oracle),
- ``bench/dpkt_decoder.py`` (a straightforward pure-Python decoder doing the same job).

Reports packets/s, MB/s and peak resident memory, plus conduit on a capture ten times larger
(about 1.8 GB), to show that memory does not grow with capture size.

    python bench/run.py [--packets 2000000] [--skip-tshark] [--skip-dpkt]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable
CONDUIT = str(Path(PY).with_name("conduit"))


@dataclass
class Result:
    tool: str
    capture: Path
    packets: int
    seconds: float
    peak_mb: float
    note: str = ""

    @property
    def pps(self) -> float:
        return self.packets / self.seconds

    @property
    def mbps(self) -> float:
        return self.capture.stat().st_size / 1e6 / self.seconds


def measure(cmd: list[str], *, stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, str]:
    """Wall time, peak RSS (MB) of one child process, and its captured stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            cmd, stdout=out if stdout is None else stdout, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode}): {err[-500:]}")
        out.seek(0)
        text = out.read().decode(errors="replace")
    return elapsed, usage.ru_maxrss / 1024, text


def capture(packets: int, ops_per_session: int) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"modbus_{packets}_{ops_per_session}.pcap"
    if not path.exists():
        subprocess.run(
            [
                PY,
                str(HERE / "make_capture.py"),
                str(path),
                "--packets",
                str(packets),
                "--ops-per-session",
                str(ops_per_session),
            ],
            check=True,
        )
    return path


def run_conduit(cap: Path, packets: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        secs, peak, _ = measure([CONDUIT, "analyze", str(cap), "--db", str(db), "-q"])
        ops = subprocess.run(
            [
                PY,
                "-c",
                "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
                "'select sum(count) from op_chunks').fetchone()[0])",
                str(db),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return Result("conduit analyze", cap, packets, secs, peak, f"{ops} operations stored")


def run_tshark(cap: Path, packets: int) -> Result:
    secs, peak, _ = measure(
        [
            "tshark",
            "-n",
            "-r",
            str(cap),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "mbtcp.trans_id",
            "-e",
            "mbtcp.unit_id",
            "-e",
            "modbus.func_code",
            "-e",
            "modbus.reference_num",
            "-e",
            "modbus.word_cnt",
            "-e",
            "modbus.request_frame",
        ]
    )
    return Result("tshark -T fields (Modbus)", cap, packets, secs, peak, "fields to /dev/null")


def run_dpkt(cap: Path, packets: int) -> Result:
    secs, peak, text = measure([PY, str(HERE / "dpkt_decoder.py"), str(cap)], stdout=None)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return Result("dpkt decoder", cap, packets, secs, peak, first[:60])


def warm_up() -> None:
    """Compile the numba kernels into their on-disk cache, as a first run after install
    would; the timed runs then measure a fresh process that loads them."""
    small = capture(20_000, 32)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([CONDUIT, "analyze", str(small), "--db", f"{tmp}/w.db", "-q"], check=True)


def table(results: list[Result]) -> str:
    head = f"{'tool':28} {'capture':34} {'packets/s':>12} {'MB/s':>8} {'peak MB':>8}  note"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.tool:28} {r.capture.name:34} {r.pps:12,.0f} {r.mbps:8.1f} {r.peak_mb:8.0f}  "
            f"{r.note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--skip-tshark", action="store_true")
    ap.add_argument("--skip-dpkt", action="store_true")
    args = ap.parse_args(argv)
    print(
        f"bench: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"resource limit {resource.getrlimit(resource.RLIMIT_AS)[0]}"
    )
    warm_up()
    long_cap = capture(args.packets, 2048)  # HMI-style: connections stay open
    short_cap = capture(args.packets, 32)  # clients reconnecting every 32 transactions
    tenfold = capture(args.packets * 10, 2048)
    results = [run_conduit(long_cap, args.packets)]
    if not args.skip_tshark and shutil.which("tshark"):
        results.append(run_tshark(long_cap, args.packets))
    if not args.skip_dpkt:
        results.append(run_dpkt(long_cap, args.packets))
    results.append(run_conduit(short_cap, args.packets))
    big = run_conduit(tenfold, args.packets * 10)
    results.append(big)
    print(table(results))
    base = results[0]
    for r in results[1:]:
        if r.capture == base.capture and r.tool != base.tool:
            print(
                f"conduit vs {r.tool}: {base.pps / r.pps:.1f}x packets/s, "
                f"{r.peak_mb / base.peak_mb:.1f}x its memory"
            )
    print(
        f"memory against capture size: {base.peak_mb:.0f} MB at {base.packets:,} packets, "
        f"{big.peak_mb:.0f} MB at {big.packets:,} packets (10x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
