"""SKAB accuracy of `conduit maintenance detect`: F1, FAR and MAR per folder and overall.

    python bench/maintenance_bench.py [SKAB_ROOT] [--folders valve1,anomaly-free] [--files]
                                      [--lofo]

SKAB's protocol: the first 400 rows of each file train the detector, every later row is
scored; confusion counts are summed over the scored rows of all files (FAR = false alarms
/ normal rows, MAR = missed / anomalous rows). The detector's hyper-parameters are the
fixed defaults of ``otconduit.maintenance.changes.ChangeParams``; nothing here tunes them.

``--lofo`` is the honest check on those defaults: each file is scored with the grid point
(below) that does best on the *other* files (best F1 with FAR <= 15 % there), as if it
were a file we did not have; the held-out counts are summed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from otconduit.maintenance.changes import ChangeParams
from otconduit.maintenance.scoring import Confusion, evaluate, leave_one_out, skab_files

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "skab"
# the parameters the result is most sensitive to, each around its default
LOFO_GRID = [
    ChangeParams(allowance=k, evidence=h, release=r, hold=hold)
    for k, h, r, hold in itertools.product((3.0, 4.0, 5.0), (50.0, 100.0, 150.0),
                                           (1 / 4, 1 / 3, 1 / 2), (15, 30))
]  # fmt: skip


def _line(name: str, c: Confusion) -> str:
    return (
        f"{name:<28} {c.f1:6.3f} {c.far:7.1%} {c.mar:7.1%} "
        f"{c.tp + c.fp + c.fn + c.tn:7d} {c.tp + c.fn:9d}"
    )


def _changed(p: ChangeParams) -> str:
    d, default = asdict(p), asdict(ChangeParams())
    return ", ".join(f"{k}={v:.3g}" for k, v in d.items() if v != default[k]) or "defaults"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--folders", default="", help="comma-separated (default: every folder)")
    ap.add_argument("--files", action="store_true", help="also print each file")
    ap.add_argument("--lofo", action="store_true", help="also leave-one-file-out validation")
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
        print(_line(name, c))
    print(f"{len(files)} files scored in {took:.2f} s")
    if args.lofo:
        t = time.perf_counter()
        lo = leave_one_out(files, LOFO_GRID)
        print(_line(f"leave-one-file-out ({len(LOFO_GRID)})", lo.overall))
        for choice, n in Counter(_changed(p) for p in lo.chosen.values()).most_common():
            print(f"  chosen for {n} of {len(lo.chosen)} files: {choice}")
        print(f"validated in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
