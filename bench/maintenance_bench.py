"""SKAB accuracy of `conduit maintenance detect`: F1, FAR and MAR per folder and overall.

    python bench/maintenance_bench.py [SKAB_ROOT] [--folders valve1,anomaly-free] [--files]

SKAB's protocol: the first 400 rows of each file train the detector, every later row is
scored; confusion counts are summed over the scored rows of all files (FAR = false alarms
/ normal rows, MAR = missed / anomalous rows). The detector's hyper-parameters are the
fixed defaults of ``otconduit.maintenance.model.Params``; nothing here tunes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from otconduit.maintenance.scoring import evaluate, skab_files

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "skab"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--folders", default="", help="comma-separated (default: every folder)")
    ap.add_argument("--files", action="store_true", help="also print each file")
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        print(f"no SKAB data at {args.root}: skipped", file=sys.stderr)
        return 0
    folders = [f for f in args.folders.split(",") if f] or None
    files = skab_files(args.root, folders)
    t = time.perf_counter()
    ev = evaluate(files)
    took = time.perf_counter() - t
    rows = list(ev.per_file.items()) if args.files else []
    rows += [*ev.per_folder.items(), ("overall", ev.overall)]
    print(f"{'SKAB':<28} {'F1':>6} {'FAR':>7} {'MAR':>7} {'rows':>7} {'anomalous':>9}")
    for name, c in rows:
        print(
            f"{name:<28} {c.f1:6.3f} {c.far:7.1%} {c.mar:7.1%} "
            f"{c.tp + c.fp + c.fn + c.tn:7d} {c.tp + c.fn:9d}"
        )
    print(f"{len(files)} files scored in {took:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
