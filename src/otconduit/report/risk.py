"""Per-asset risk for the report, from :mod:`otconduit.risk` (``conduit risk``) when that
package is installed.

The risk package is built beside the report: when it cannot be imported, or fails, the
risk table is left out with one sentence saying why, never the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOP = 15


@dataclass(slots=True)
class RiskEvidence:
    available: bool
    reason: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # ip, name, zone, score, rating
    ratings: dict[str, int] = field(default_factory=dict)  # assets per rating
    missing: list[str] = field(default_factory=list)  # factors not scored, with why


def asset_risks(store: Any, policy: Any, ips: set[str] | None = None) -> RiskEvidence:
    """The riskiest assets (of ``ips`` when given: the report's window) with the reasons
    that add to each score, or why there are none."""
    try:
        from otconduit.risk import risk_rows
    except ImportError as exc:
        return RiskEvidence(False, f"per-asset risk scoring is not available ({exc})")
    try:
        rows = risk_rows(store, policy)
    except Exception as exc:  # the package is young: its failure must not stop the report
        return RiskEvidence(False, f"per-asset risk scoring failed: {exc}")
    if ips is not None:
        rows = [r for r in rows if r.get("ip") in ips]
    ev = RiskEvidence(True)
    for r in rows:
        ev.ratings[str(r.get("rating"))] = ev.ratings.get(str(r.get("rating")), 0) + 1
    notes = {m["factor"]: m["detail"] for r in rows for m in r.get("missing", [])}
    ev.missing = [f"{k}: {v}" for k, v in sorted(notes.items())]
    for r in rows[:TOP]:
        reasons = [f"+{x['points']} {x['detail']}" for x in r.get("reasons", []) if x.get("points")]
        ev.rows.append(
            {
                "ip": r["ip"],
                "name": r.get("name"),
                "zone": r.get("zone"),
                "score": r.get("score"),
                "rating": r.get("rating"),
                "reasons": reasons or [str(r.get("why") or "")],
            }
        )
    return ev
