"""The overview: counts and health at a glance, and what changed last."""

from __future__ import annotations

from collections import Counter
from typing import Any

from otconduit.console.alertsview import alert_counts, violation_counts
from otconduit.console.netmap import MapAsset
from otconduit.console.timefmt import zulu
from otconduit.console.zoning import LEVEL_NAMES, Zoning
from otconduit.detect.rules import Severity
from otconduit.store import Store
from otconduit.store import alerts as stored_alerts
from otconduit.store.counts import totals
from otconduit.store.views import iso


def _level_label(level: float | None) -> str:
    if level is None:
        return "unknown"
    return f"{level:g} {LEVEL_NAMES.get(level, '')}".strip()


def newest_alerts(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    """The alerts whose events happened last (packet time, ``last_seen``), not the ones
    analysed or changed last: re-analysing an old capture must not look like news.
    ``updated_at`` (the last change, e.g. an acknowledgement) rides along."""
    return [
        {
            "id": r["id"],
            "title": r["title"],
            "severity": Severity(r["severity"]).label,
            "status": r["status"],
            "src_ip": r["src_ip"],
            "dst_ip": r["dst_ip"],
            "first_seen": iso(r["first_seen"]),
            "last_seen": iso(r["last_seen"]),
            "updated_at": zulu(r["updated_at"]),
        }
        for r in stored_alerts.newest(store, limit)
    ]


def sensors(store: Store) -> list[dict[str, Any]]:
    """Each sensor's health (``conduit sense``): a sensor that drops or lags is seeing
    less than the plant sends, and the overview says so."""
    from otconduit.store.sensing import sensor_rows

    try:
        rows = sensor_rows(store)
    except Exception:
        return []
    out = []
    for r in rows:
        h = r["health"]
        drops = int(h.get("drops_kernel") or 0) + int(h.get("drops_capture") or 0)
        out.append(
            {
                "name": r["name"],
                "state": r["state"],
                "packets": int(h.get("packets") or 0),
                "drops": drops,
                "lag_s": h.get("lag_s"),
                "restarts": int(h.get("engine_restarts") or 0),
                "updated_at": r["updated_at"],
                "healthy": r["state"] == "running" and not drops and not h.get("lag_s"),
            }
        )
    return out


def _production_summary(prod: dict[str, Any]) -> dict[str, Any]:
    """Lines and machines at a glance: how many run, how many are faulted."""
    machines = [m for line in prod.get("lines", []) for m in line["machines"]]
    return {
        "available": prod["available"],
        "message": prod["message"],
        "lines": len(prod.get("lines", [])),
        "machines": len(machines),
        "faulted": sum(1 for m in machines if m.get("faulted")),
        "states": [
            {"machine": m["machine"], "device": m.get("device"),
             "state": (m.get("state") or {}).get("value"),
             "state_name": (m.get("state") or {}).get("name"), "faulted": m.get("faulted")}
            for m in machines
        ],
    }  # fmt: skip


def overview(
    store: Store, zoning: Zoning, assets: list[MapAsset], prod: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``assets``: every asset placed in its zone/level (the console caches them). Hosts
    only ever seen as scan targets are counted apart, not in the plant's totals."""
    unconfirmed = sum(1 for a in assets if not a.confirmed)
    assets = [a for a in assets if a.confirmed]
    by_level = Counter(_level_label(a.place.level) for a in assets)
    by_zone = Counter(a.place.zone or "(no zone)" for a in assets)
    t = totals(store)
    change = stored_alerts.change_counter(store)
    if prod is None:
        prod = {"available": False, "message": "no gateway data yet"}
    return {
        "assets": {
            "total": len(assets),
            "unconfirmed": unconfirmed,
            "by_level": dict(sorted(by_level.items())),
            "by_zone": dict(sorted(by_zone.items())),
        },
        "conversations": t.conversations,
        "operations": t.operations,
        "captures": {"count": t.captures, "last_analysed": zulu(t.last_analysed)},
        "alerts": alert_counts(store),
        "violations": violation_counts(store, zoning.plant),
        "policy": zoning.plant,
        "production": _production_summary(prod),
        "newest_alerts": newest_alerts(store),
        "sensors": sensors(store),
        "change": change,
    }
