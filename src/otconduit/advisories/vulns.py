"""The rows of ``conduit vulns``: one per asset and advisory that concerns it.

Confirmed rows (``affected``, ``fixed``) come first, most severe first; ``version_unknown``
candidates (the asset never stated its firmware, or the advisory's range could not be
read) follow, kept apart. Assets whose identity matched nothing are listed separately, so
"no rows" never hides "could not tell".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otconduit.advisories.match import STATUS_RANK, Match, identity_of, match_identity
from otconduit.store import advisories as db
from otconduit.store import views
from otconduit.store.sqlite import Store

COLUMNS = [
    "ip",
    "name",
    "advisory",
    "title",
    "cves",
    "cvss",
    "vector",
    "product",
    "matched_on",
    "confidence",
    "status",
    "remediation",
]
STATUSES = ("affected", "fixed", "version_unknown")


@dataclass(slots=True)
class VulnReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)  # identity, nothing found
    no_identity: int = 0  # assets that state no vendor and model to match on
    advisories: int = 0


def row(asset: dict[str, Any], m: Match) -> dict[str, Any]:
    """One output row (the README's ``conduit vulns`` keys, then the extras)."""
    r = m.record
    return {
        "ip": asset["ip"],
        "name": asset.get("name"),
        "advisory": r.advisory,
        "title": r.title,
        "cves": list(r.cves),
        "cvss": r.cvss,
        "vector": r.vector,
        "product": r.full_name,
        "matched_on": m.matched_on,
        "confidence": m.confidence,
        "status": m.status,
        "remediation": r.remediation,
        "match": m.how,
        "product_id": r.product_id,
        "version_range": r.version,
        "vendor": asset.get("vendor"),
        "model": asset.get("model"),
        "firmware": asset.get("firmware"),
        "url": r.url,
    }


def vulnerabilities(
    store: Store,
    *,
    ip: str | None = None,
    min_cvss: float | None = None,
    statuses: tuple[str, ...] = STATUSES,
) -> VulnReport:
    """Match every confirmed asset (or those in ``ip``, an address or CIDR) against the
    stored advisories."""
    rep = VulnReport(advisories=db.count(store))
    assets = views.assets(store, views.AssetFilter(ip=ip, confirmed_only=True))
    if rep.advisories == 0:
        return rep
    idx = db.index(store)
    for a in assets:
        ident = identity_of(a)
        if not ident.usable:
            if a.get("model") or a.get("order_number"):
                rep.unmatched.append(a)
            else:
                rep.no_identity += 1
            continue
        matches = match_identity(ident, idx)
        if not matches:
            rep.unmatched.append(a)
        for m in matches:
            if m.status not in statuses:
                continue
            if min_cvss is not None and (m.record.cvss is None or m.record.cvss < min_cvss):
                continue
            rep.rows.append(row(a, m))
    rep.rows.sort(
        key=lambda r: (
            r["status"] == "version_unknown",
            STATUS_RANK[r["status"]],
            -(r["cvss"] or 0.0),
            r["ip"],
            r["advisory"],
        )
    )
    return rep


__all__ = ["COLUMNS", "STATUSES", "VulnReport", "row", "vulnerabilities"]
