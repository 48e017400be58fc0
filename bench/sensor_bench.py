"""The sensor under load, on loopback (root, dumpcap and tcpreplay needed).

    python bench/sensor_bench.py latency [--pps 50000] [--seconds 60] [--injections 30]
    python bench/sensor_bench.py soak [--minutes 60] [--pps 20000]

``latency``: ``conduit sense -i lo`` while tcpreplay sends real plant traffic (the
Modbus/TCP corpus capture repeated, client ports varied) at ``--pps``; every couple of
seconds a PLC STOP (the corpus's snap7 S7 stop session, with the PLC moved to a new
address each time so that each is a new alert) is replayed too. Reported: per alert,
detected_at minus the packet's time (p50, p99, max), the sensor's drops and its peak RSS.

``soak``: the same traffic for ``--minutes``; the sensor's RSS sampled every 30 s. Flat
means the last third's maximum is within 10 % of the first third's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from otconduit.capture.pcapwriter import write_pcap  # noqa: E402
from otconduit.capture.reader import open_capture  # noqa: E402

CONDUIT = str(Path(sys.executable).parent / "conduit")
CORPUS = ROOT.parent / "shared" / "corpus"
LOAD_SRC = CORPUS / "iti" / "ModbusTCP" / "ModbusTCP.pcap"
STOP_SRC = CORPUS / "iti" / "s7" / "snap7_s300_stop.pcapng"


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def stop_sessions(folder: Path, count: int) -> list[Path]:
    """The S7 stop capture with its PLC moved to 10.77.0.k (k = 1..count)."""
    with open_capture(STOP_SRC) as r:
        pkts = [(int(b.ts_ns[i]), b.data(i), int(b.linktypes[i])) for b in r for i in range(len(b))]
    plc = None
    for _, data, _ in pkts:  # the PLC answers from port 102
        if len(data) > 37 and data[12:14] == b"\x08\x00" and data[34:36] == b"\x00\x66":
            plc = data[26:30]
            break
    assert plc is not None, "no S7 server in the stop capture"
    out = []
    for k in range(1, count + 1):
        new = _ip(f"10.77.{k // 250}.{k % 250 + 1}")
        moved = [(ts, d.replace(plc, new)) for ts, d, _ in pkts]
        path = folder / f"stop{k}.pcap"
        write_pcap(path, moved, linktype=pkts[0][2], nanosecond=True)
        out.append(path)
    return out


def load_capture(folder: Path) -> Path:
    """Real Modbus traffic, repeated with client ports varied (bench/repeat_capture.py)."""
    out = folder / "load.pcap"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "repeat_capture.py"),
            str(LOAD_SRC),
            str(out),
            "--packets",
            "300000",
        ],
        check=True,
        capture_output=True,
    )
    return out


def status(db: Path) -> dict[str, object]:
    res = subprocess.run(
        [CONDUIT, "sensor", "status", "--db", str(db), "-f", "json"], capture_output=True, text=True
    )
    return json.loads(res.stdout) if res.returncode == 0 else {}


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """A process's resident memory now (``VmHWM``: its peak so far), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start_sensor(work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    db = work / "sensor.db"
    proc = subprocess.Popen(
        [
            CONDUIT,
            "sense",
            "-i",
            "lo",
            "--db",
            str(db),
            "--ring",
            str(work / "ring"),
            "--ring-size",
            "512",
            "--ring-files",
            "16",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.monotonic() + 120
    while status(db).get("state") != "running" and time.monotonic() < end:
        time.sleep(0.2)
    return proc, db


def start_load(load: Path, pps: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["tcpreplay", "-q", "-i", "lo", "--pps", str(pps), "--loop", "0", str(load)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def latency(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="conduit-sensor-bench-"))
    try:
        load = load_capture(work)
        stops = stop_sessions(work, args.injections)
        sensor, db = start_sensor(work)
        replay = start_load(load, args.pps)
        time.sleep(3)
        gap = max(args.seconds / max(len(stops), 1), 1.0)
        peak = 0.0
        for path in stops:
            subprocess.run(
                ["tcpreplay", "-q", "-i", "lo", "--topspeed", str(path)],
                capture_output=True,
                check=True,
            )
            peak = max(peak, rss_mb(sensor.pid))
            time.sleep(gap)
        time.sleep(3)
        peak = max(peak, rss_mb(sensor.pid, "VmHWM"))
        stop(replay)
        st = status(db)
        stop(sensor)
        final = status(db)
        res = subprocess.run(
            [CONDUIT, "alerts", "--db", str(db), "-f", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        lat = []
        for a in json.loads(res.stdout):
            if a["rule"] != "controller-stop":
                continue
            first = datetime.fromisoformat(a["first_seen"].replace("Z", "+00:00"))
            seen = datetime.fromisoformat(a["detected_at"].replace("Z", "+00:00"))
            lat.append((seen - first).total_seconds())
        lat.sort()
        pkts = int(final.get("packets", 0))
        print(
            f"sensor latency on lo: {args.pps} packets/s of real Modbus/TCP load, "
            f"{len(stops)} PLC stops injected, {len(lat)} alerts"
        )
        if lat:
            p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
            print(
                f"  detected_at - packet time: p50 {p(0.5):.2f} s, p99 {p(0.99):.2f} s, "
                f"max {lat[-1]:.2f} s (target p99 <= 2 s)"
            )
        print(
            f"  packets analysed {pkts:,}, drops kernel {final.get('drops_kernel')}, "
            f"capture {final.get('drops_capture')}, lag at end {st.get('lag_s')} s, "
            f"peak RSS {peak:.0f} MB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def soak(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="conduit-sensor-soak-"))
    try:
        load = load_capture(work)
        sensor, db = start_sensor(work)
        replay = start_load(load, args.pps)
        t0 = time.monotonic()
        samples: list[tuple[float, float, int]] = []
        while time.monotonic() - t0 < args.minutes * 60:
            time.sleep(min(30.0, args.minutes * 2))
            st = status(db)
            samples.append((time.monotonic() - t0, rss_mb(sensor.pid), int(st.get("packets", 0))))
            m, r, n = samples[-1]
            print(
                f"  {m / 60:6.1f} min  RSS {r:6.0f} MB  packets {n:,}  lag {st.get('lag_s')} s",
                flush=True,
            )
        stop(replay)
        stop(sensor)
        final = status(db)
        third = max(len(samples) // 3, 1)
        first = max(r for _, r, _ in samples[:third])
        last = max(r for _, r, _ in samples[-third:])
        verdict = "flat" if last <= first * 1.10 else "GROWING"
        print(
            f"sensor soak: {args.minutes} min at {args.pps} packets/s, "
            f"{final.get('packets', 0):,} packets, drops kernel {final.get('drops_kernel')} "
            f"capture {final.get('drops_capture')}; RSS first third max {first:.0f} MB, "
            f"last third max {last:.0f} MB: {verdict}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("latency")
    a.add_argument("--pps", type=int, default=50_000)
    a.add_argument("--seconds", type=float, default=60.0)
    a.add_argument("--injections", type=int, default=30)
    b = sub.add_parser("soak")
    b.add_argument("--minutes", type=float, default=60.0)
    b.add_argument("--pps", type=int, default=20_000)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("dumpcap") or not shutil.which("tcpreplay"):
        sys.exit("sensor bench: needs root, dumpcap and tcpreplay")
    if not LOAD_SRC.exists() or not STOP_SRC.exists():
        sys.exit(f"sensor bench: {CORPUS} not found")
    (latency if args.what == "latency" else soak)(args)


if __name__ == "__main__":
    main()
