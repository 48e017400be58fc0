"""Report benchmark: `conduit report` on the console benchmark's store (10,000 assets,
1,000,000 operations, 2,000 findings, violations) against the issue's target of 10 s.

Each run is a fresh `conduit` process (imports and all), HTML then PDF; the figure is
the best of ``--runs``.

    python bench/report_bench.py [--assets 10000] [--operations 1000000] [--runs 3]
                                 [--db bench/out/console.db] [--reuse]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from console_bench import POLICY, fill  # noqa: E402

TARGET_S = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--operations", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", type=Path, default=HERE / "out" / "console.db")
    ap.add_argument("--reuse", action="store_true", help="keep an existing --db")
    args = ap.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    if not (args.reuse and args.db.exists()):
        for p in (args.db, args.db.with_name(args.db.name + "-wal")):
            p.unlink(missing_ok=True)
        fill(args.db, args.assets, args.operations)
    with tempfile.TemporaryDirectory() as tmp:
        return _time(args, Path(tmp))


def _time(args: argparse.Namespace, out: Path) -> int:
    policy = out / "policy.yaml"
    policy.write_text(POLICY)
    conduit = Path(sys.executable).with_name("conduit")
    slow = 0
    for kind in ("html", "pdf"):
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run(
                [
                    str(conduit),
                    "report",
                    "--db",
                    str(args.db),
                    "--policy",
                    str(policy),
                    "-o",
                    str(out / f"report.{kind}"),
                ],
                check=True,
            )
            times.append(time.perf_counter() - t)
        size = (out / f"report.{kind}").stat().st_size
        best = min(times)
        slow += best >= TARGET_S
        print(
            f"{kind}: best {best:.1f} s of {args.runs} ({', '.join(f'{x:.1f}' for x in times)}),"
            f" {size:,} bytes{'  > target' if best >= TARGET_S else ''}"
        )
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
