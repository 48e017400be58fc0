"""Risk per asset, explained: the store's assets, alerts, conversations and advisory
matches, and (when given) the policy's zones and conduits, turned into a 0-100 score
whose every point comes with its reason (see :mod:`otconduit.risk.factors`).

Without a policy there are no zones or conduits: exposure cannot be judged and the
criticality falls back to the level the asset's roles suggest; the result lists what is
missing instead of pretending it is zero.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from typing import Any

from otconduit.detect.rules import Severity
from otconduit.policy.check import ROLE_LEVELS
from otconduit.policy.model import Policy
from otconduit.risk import factors
from otconduit.risk.exposure import PolicyExposure
from otconduit.store import Store, views
from otconduit.store import advisories as adb
from otconduit.store.risk import Served, served, unresolved_alerts

GROUPS = ("criticality", "exposure", "vulnerabilities", "alerts")
EXPOSURE_FACTORS = ("it_reachability", "dangerous_operations", "cleartext_control")
COLUMNS = [
    "ip",
    "name",
    "zone",
    "score",
    "rating",
    "criticality",
    "exposure",
    "vulnerabilities",
    "alerts",
    "why",
]


# One policy's graph and IT paths, kept while the same policy object is in use (the
# console scores every page it shows against the policy it was started with).
_EXPOSURES: dict[int, tuple[Policy, PolicyExposure]] = {}


def _exposure(policy: Policy) -> PolicyExposure:
    hit = _EXPOSURES.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    found = PolicyExposure(policy)
    if len(_EXPOSURES) >= 4:
        _EXPOSURES.clear()
    _EXPOSURES[id(policy)] = (policy, found)
    return found


class RiskModel:
    """What scoring needs from the store, read once for a set of assets."""

    def __init__(self, store: Store, policy: Policy | None, ips: list[str] | None = None) -> None:
        self.store = store
        self.policy = policy
        self.exposure = _exposure(policy) if policy is not None else None
        self.advisories_imported = adb.count(store) > 0
        self.alerts: dict[str, Counter[str]] = defaultdict(Counter)
        self.acknowledged: Counter[str] = Counter()
        for a in unresolved_alerts(store, ips):
            if a.status == "open":
                self.alerts[a.ip][Severity(a.severity).label] += a.count
            else:
                self.acknowledged[a.ip] += a.count
        self.served: dict[str, list[Served]] = defaultdict(list)
        if self.exposure is not None:
            for s in served(store, ips):
                self.served[s.server_ip].append(s)

    def score(self, asset: dict[str, Any]) -> dict[str, Any]:
        """``{score, rating, reasons, missing, groups}`` for one asset row (the shape of
        ``views.assets``; its ``advisories`` are matched here when the row has none)."""
        reasons: list[factors.Reason] = []
        missing: list[dict[str, str]] = []
        ip = asset["ip"]
        zone = None
        if self.exposure is not None:
            zone = self.exposure.zone_of(ip, asset.get("mac"), asset.get("vlan"))
        roles = [ROLE_LEVELS[r] for r in asset.get("roles", []) if r in ROLE_LEVELS]
        if zone is not None:
            level, source = zone.level, "policy"
        elif roles:
            level, source = min(roles), "inferred"
        else:
            level, source = None, "unknown"
        own = (asset.get("identity", {}).get("criticality") or {}).get("value")
        if own and str(own).lower() in factors.CRITICALITY_POINTS:
            stated, where = str(own).lower(), "the asset's own criticality"
        elif zone is not None and zone.criticality:
            stated, where = zone.criticality, f"zone {zone.name} criticality"
        else:
            stated, where = None, ""
        reasons.append(factors.criticality(stated, where, level, source))
        if self.policy is None:
            missing.append(
                {
                    "factor": "criticality",
                    "detail": "zone criticality needs a policy (--policy)",
                }
            )
        if self.exposure is None:
            for f in EXPOSURE_FACTORS:
                missing.append(
                    {"factor": f, "detail": "needs a policy (--policy): zones and conduits"}
                )
        else:
            in_it = zone.name if zone is not None and zone.level >= 4 else None
            path, via_idmz = self.exposure.it_path(ip, zone)
            in_idmz = zone is not None and zone.is_idmz
            reasons.append(factors.reachability(path, via_idmz, in_it, in_idmz))
            reasons.append(factors.dangerous_operations(self.exposure.grants(ip, zone)))
            reasons.append(
                factors.cleartext_control(self.exposure.crossings(zone, self.served.get(ip, [])))
            )
        if self.advisories_imported:
            advisories = asset.get("advisories")
            if advisories is None:
                copy = dict(asset)
                adb.attach(self.store, [copy])
                advisories = copy["advisories"]
            reasons += factors.vulnerabilities(advisories)
        else:
            missing.append(
                {
                    "factor": "vulnerabilities",
                    "detail": "no advisories imported (conduit advisories import)",
                }
            )
        reasons.append(factors.alerts(dict(self.alerts.get(ip, {})), self.acknowledged[ip]))
        total = min(100, sum(r.points for r in reasons))
        groups = {g: sum(r.points for r in reasons if r.group == g) for g in GROUPS}
        return {
            "score": total,
            "rating": factors.rating(total),
            "reasons": [r.to_dict() for r in reasons],
            "missing": missing,
            "groups": groups,
        }


def attach(store: Store, assets: list[dict[str, Any]], policy: Policy | None) -> None:
    """Add ``risk`` to asset rows (assets JSON, the console's asset pages)."""
    if not assets:
        return
    model = RiskModel(store, policy, [a["ip"] for a in assets] if len(assets) < 2000 else None)
    for a in assets:
        a["risk"] = model.score(a)


def _ip_key(ip: str) -> tuple[int, int | str]:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return (9, ip)
    return (a.version, int(a))


def why(risk: dict[str, Any]) -> str:
    """The reasons that added points, one line: ``+15 zone cell-1 criticality: high; ...``."""
    parts = [f"+{r['points']} {r['detail']}" for r in risk["reasons"] if r["points"]]
    return "; ".join(parts) if parts else "nothing adds to it"


def risk_rows(store: Store, policy: Policy | None, ip: str | None = None) -> list[dict[str, Any]]:
    """The rows of ``conduit risk``: every confirmed asset (or those in ``ip``, an address
    or CIDR), riskiest first."""
    assets = views.assets(store, views.AssetFilter(ip=ip, confirmed_only=True))
    model = RiskModel(store, policy, [a["ip"] for a in assets] if ip else None)
    rows = []
    for a in assets:
        risk = model.score(a)
        zone = model.exposure.zone_of(a["ip"], a["mac"], a["vlan"]) if model.exposure else None
        rows.append(
            {
                "ip": a["ip"],
                "name": a.get("name"),
                "zone": zone.name if zone is not None else None,
                "score": risk["score"],
                "rating": risk["rating"],
                **risk["groups"],
                "why": why(risk),
                "vendor": a.get("vendor"),
                "model": a.get("model"),
                "firmware": a.get("firmware"),
                "reasons": risk["reasons"],
                "missing": risk["missing"],
            }
        )
    rows.sort(key=lambda r: (-r["score"], _ip_key(r["ip"])))
    return rows


__all__ = ["COLUMNS", "GROUPS", "RiskModel", "attach", "risk_rows", "why"]
