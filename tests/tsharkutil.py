"""Run tshark as a decoding oracle and read its field output."""

from __future__ import annotations

import subprocess
from pathlib import Path


def tshark_fields(
    capture: Path, fields: list[str], display_filter: str, *, extra: list[str] | None = None
) -> list[list[list[str]]]:
    """Rows of field values; each field is a list (tshark joins repeats with ',')."""
    cmd = [
        "tshark",
        "-n",
        "-r",
        str(capture),
        "-Y",
        display_filter,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    cmd += extra or []
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(fields) - len(cols))
        rows.append([c.split(",") if c else [] for c in cols])
    return rows
