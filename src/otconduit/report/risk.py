"""Per-asset risk for the report, from :mod:`otconduit.risk` (``conduit risk``) when that
package is installed.

The risk package is built beside the report: when it cannot be imported, or fails, the
risk table is left out with one sentence saying why, never the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOP = 15


class _IndexedPolicy:
    """The policy with ``zone_of`` answered by the console's :class:`ZoneIndex` (the
    same answers -- ``tests/console/test_zoning.py`` holds them equal -- about 30 times
    faster). Scoring asks for the zone of every asset and every client it serves, and
    ``Policy.zone_of`` parses the address again for each zone: on 10,000 assets that alone
    took 7.4 s of the report's 10 s budget; through the index, 0.9 s with identical rows.
    Every other attribute is the policy's own."""

    def __init__(self, policy: Any) -> None:
        from otconduit.console.zoning import ZoneIndex

        self._policy = policy
        self._index = ZoneIndex(policy)

    def zone_of(self, ip: str | None, mac: str | None = None, vlan: int | None = None) -> Any:
        return self._index.zone_of(ip, mac, vlan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)


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
        indexed: Any = _IndexedPolicy(policy) if policy is not None else None
        rows = risk_rows(store, indexed)
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
