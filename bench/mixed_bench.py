"""The mixed real-traffic benchmark: the cyclic traffic of the newer protocols beside Modbus.

Issue [12] asks that PROFINET RT and IO-CM, IEC 104 and BACnet polling, OPC UA publish
and GOOSE keep the monitor fast: a mix of them analysed at no less than half the rate of
Modbus alone. Both sides are real corpus captures repeated with ``repeat_capture.py``
(client ports moved per repetition, times shifted) to the same number of packets; the
mix interleaves its parts by time (``mergecap``), as a mirror port would deliver them.
Each run is a fresh ``conduit analyze`` with every operation stored and detection on;
tshark reads the same mix for reference.

    python bench/mixed_bench.py [--packets-per-part 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import CORPUS, OUT, PY, _conduit_run, measure  # noqa: E402

MODBUS = "iti/ModbusTCP/ModbusTCP.pcap"
PARTS = (
    MODBUS,
    "icsnpp/profinet/profinet_io_cm_mixed_2/profinet_io_cm_mixed_2.pcapng",  # RT + IO-CM
    "iti/IEC60870-5-104/090813_diverse.pcap",
    "icsnpp/bacnet/bacnet_example/bacnet_example.pcap",
    "icsnpp/opcua/open62541_client-server_mainloop/open62541_client-server_mainloop.pcap",
    "iti/IEC61850/GOOSE/Sample_File_GOOSE.pcap",  # two ABB IEDs: repeats and state changes
)
TARGET = 0.5  # of the Modbus rate


def _repeat(rel: str, packets: int) -> Path:
    src = CORPUS / rel
    dst = OUT / f"mixpart_{src.stem}_{packets}.pcap"
    if not dst.exists():
        subprocess.run(
            [PY, str(HERE / "repeat_capture.py"), str(src), str(dst), "--packets", str(packets)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return dst


def build(per_part: int) -> tuple[Path, Path, int]:
    """The mix (every part, interleaved by time) and Modbus alone of the same size."""
    OUT.mkdir(exist_ok=True)
    parts = [p for p in PARTS if (CORPUS / p).exists()]
    missing = sorted(set(PARTS) - set(parts))
    if missing:
        print(f"mixed bench: not in the corpus, left out: {', '.join(missing)}")
    total = per_part * len(parts)
    # pcapng: the OPC UA capture is loopback (null link type) among Ethernet ones; Modbus
    # alone is written the same way so that the reader's format is no difference.
    mix = OUT / f"mixed_real_{total}.pcapng"
    if not mix.exists():
        files = [str(_repeat(p, per_part)) for p in parts]
        subprocess.run(["mergecap", "-F", "pcapng", "-w", str(mix), *files], check=True)
    alone = OUT / f"mixed_modbus_{total}.pcapng"
    if not alone.exists():
        src = _repeat(MODBUS, total)
        subprocess.run(["editcap", "-F", "pcapng", str(src), str(alone)], check=True)
    return mix, alone, total


def _per_part(packets: int, repeat: int) -> None:
    """Each protocol's repeated capture alone: conduit and tshark on the same file."""
    print(f"\nper protocol ({packets:,} packets each):")
    print(f"{'capture':<44} {'conduit pps':>12} {'tshark pps':>11} {'x':>5} {'peak MB':>8}")
    for rel in PARTS:
        if not (CORPUS / rel).exists():
            continue
        cap = _repeat(rel, packets)
        best, peak = float("inf"), 0.0
        for _ in range(repeat):
            secs, mb, _ops, _stats = _conduit_run(cap, detect=True)
            best, peak = min(best, secs), max(peak, mb)
        shark = float("nan")
        if shutil.which("tshark"):
            t, _mb, _ = measure(
                ["tshark", "-n", "-r", str(cap), "-T", "fields", "-e", "frame.number"]
            )
            shark = packets / t
        mine = packets / best
        name = Path(rel).name[:44]
        print(f"{name:<44} {mine:>12,.0f} {shark:>11,.0f} {mine / shark:>5.1f} {peak:>8.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets-per-part", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs per row; the best counts")
    ap.add_argument(
        "--per-part", action="store_true", help="also each part alone, beside tshark on it"
    )
    args = ap.parse_args(argv)
    if not CORPUS.exists():
        print(f"mixed bench: {CORPUS} not found: skipped")
        return 0
    if shutil.which("mergecap") is None:
        print("mixed bench: mergecap/editcap (wireshark-common) not installed: skipped")
        return 0
    mix, modbus, total = build(args.packets_per_part)
    rows = []
    for name, cap in (("modbus alone", modbus), ("mixed", mix)):
        best, peak, ops = float("inf"), 0.0, ""
        for _ in range(args.repeat):
            secs, mb, ops, _stats = _conduit_run(cap, detect=True)
            best, peak = min(best, secs), max(peak, mb)
        rows.append((name, best, peak, ops))
    shark = None
    if shutil.which("tshark"):
        secs, _mb, _ = measure(
            ["tshark", "-n", "-r", str(mix), "-T", "fields", "-e", "frame.number"]
        )
        shark = total / secs
    print(f"\nmixed real traffic: {total:,} packets ({len(PARTS)} corpus captures repeated)")
    print(f"{'run':<14} {'seconds':>8} {'packets/s':>12} {'peak MB':>8} {'operations':>11}")
    for name, secs, peak, ops in rows:
        print(f"{name:<14} {secs:>8.2f} {total / secs:>12,.0f} {peak:>8.0f} {ops:>11}")
    if args.per_part:
        _per_part(args.packets_per_part, args.repeat)
    ratio = rows[0][1] / rows[1][1]
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"mixed rate / Modbus rate: {ratio:.2f} ({verdict} the >= {TARGET:.0%} target)")
    if shark:
        print(
            f"tshark on the mix: {shark:,.0f} packets/s; conduit {total / rows[1][1] / shark:.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
