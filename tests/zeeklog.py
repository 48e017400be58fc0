"""Read Zeek TSV logs (the ICSNPP baselines) into dicts."""

from __future__ import annotations

from pathlib import Path


def read_zeek_log(path: Path) -> list[dict[str, str | None]]:
    fields: list[str] = []
    rows: list[dict[str, str | None]] = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if not line or line.startswith("#"):
            continue
        vals = line.split("\t")
        rows.append({k: (None if v == "-" else v) for k, v in zip(fields, vals, strict=True)})
    return rows
