"""Write ``tests/data/store_<commit>.sql``: a monitor store made by an older release, as
an SQL dump, for the test that today's Store upgrades it (tests/store/test_upgrade.py).

The older release's own code does the work -- its ``conduit analyze`` (with a policy),
``baseline learn``, ``alert ack|close``, ``export`` and ``sense --follow`` -- so the rows,
the op-chunk blobs and ``schema_migrations`` are what that release really wrote. The
source is taken with ``git archive`` (read-only: no checkout, no worktree) into a
temporary folder and run with ``PYTHONPATH`` pointing there. The temporary folder is
written ``/old-release`` in the dump (captures under ``/old-release/captures``, the
sensor's ring ``/old-release/ring``), so no machine's folders leak into it; the test
finds the capture files again with ``--capture-dir``.

    .venv/bin/python scripts/make_old_store.py [--commit fa6d50c]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
CAPTURES = ["modbus_all_functions.pcap", "enip_cpppo.pcap"]
FOLLOWED = "modbus_nonstandard.pcap"  # what the old sensor reads from its ring folder
PLACEHOLDER = "/old-release"


def _extract(commit: str, into: Path) -> None:
    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "src", "examples"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as tf:
        tf.extractall(into, filter="data")


def _conduit(src: Path, *args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "from otconduit.cli.main import main; main()"
    res = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(f"old conduit {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")


def _dump(db: Path, work: Path, commit: str) -> str:
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    lines = [
        f"-- A Conduit monitor store written by release {commit} (migrations: {', '.join(names)}).",
        "-- Made by scripts/make_old_store.py with that release's own commands; do not edit.",
    ]
    body = "\n".join(conn.iterdump())
    conn.close()
    return "\n".join(lines) + "\n" + body.replace(str(work), PLACEHOLDER) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", default="fa6d50c")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = work / "release"
        _extract(args.commit, old)
        caps = work / "captures"
        caps.mkdir()
        for name in CAPTURES:
            shutil.copy(DATA / name, caps / name)
        ring = work / "ring"
        ring.mkdir()
        shutil.copy(DATA / FOLLOWED, ring / FOLLOWED)
        db = work / "conduit.db"
        src, policy = old / "src", old / "examples" / "plant-policy.yaml"
        first, second = (str(caps / n) for n in CAPTURES)
        run = lambda *a: _conduit(src, *a, "--db", str(db), cwd=work)  # noqa: E731
        run("analyze", first, "--policy", str(policy), "-q")
        run("baseline", "learn")
        run("analyze", second, "--policy", str(policy), "-q")
        run("alert", "ack", "1", "--user", "fixture", "--comment", "looking")
        run("alert", "close", "2", "--user", "fixture", "--comment", "expected")
        run("export", "--sink", "fixture-siem", "--output", str(work / "siem.jsonl"))
        run("sense", "--follow", str(ring), "--duration", "5")
        out = DATA / f"store_{args.commit}.sql"
        out.write_text(_dump(db, work, args.commit), encoding="utf-8")
        print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
