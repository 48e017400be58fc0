"""ATT&CK for ICS coverage of the rule catalogue (``conduit attack``, README table)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.detect.attack import attack_table
from otconduit.detect.rules import RULES


@dataclass(slots=True)
class Coverage:
    version: str
    total: int
    detected: int
    rows: list[dict[str, Any]]


def coverage() -> Coverage:
    table = attack_table()
    by_tech: dict[str, list[str]] = {}
    for r in RULES.values():
        for t in r.techniques:
            by_tech.setdefault(t, []).append(r.id)
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "tactics": [table.tactic_name(x) for x in t.tactics],
            "rules": sorted(by_tech.get(t.id, [])),
            "url": t.url,
        }
        for t in sorted(table.techniques.values(), key=lambda t: t.id)
    ]
    detected = sum(1 for r in rows if r["rules"])
    return Coverage(table.version, len(rows), detected, rows)
