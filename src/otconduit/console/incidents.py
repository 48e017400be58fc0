"""Incidents: alerts and machine events that touch the same asset or the same cell
within a time window, grouped into one timeline -- the network anomaly next to the
machine fault it may have caused.

Each event has keys: the asset it is about (an alert's destination, the device it
targets; its source when it has none) and the cell (the asset's zone in the policy).
Events are visited in time order; an event joins the group of an earlier event that
shares a key when it starts within ``window`` of that key's last activity. Groups are
connected components (union-find), so A-B on one asset and B-C on one cell make one
incident A-B-C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otconduit.console.zoning import Zoning
from otconduit.detect.rules import Severity
from otconduit.store import Store
from otconduit.store.views import asset_name, iso

DEFAULT_WINDOW_S = 900.0


@dataclass(slots=True)
class Event:
    kind: str  # alert | machine
    start: int
    end: int
    severity: int
    title: str
    asset: str | None
    cell: str | None
    ref: dict[str, Any] = field(default_factory=dict)

    def group_keys(self) -> list[str]:
        out = []
        if self.asset:
            out.append(f"asset:{self.asset}")
        if self.cell:
            out.append(f"cell:{self.cell}")
        return out


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _alert_events(store: Store, zoning: Zoning, include_closed: bool) -> list[Event]:
    sql = (
        "SELECT id, rule, title, severity, status, src_ip, dst_ip, protocol, operation, "
        "first_seen, last_seen, count FROM alerts"
    )
    if not include_closed:
        sql += " WHERE status != 'closed'"
    out = []
    for r in store.query(sql):
        asset = r["dst_ip"] or r["src_ip"]
        zone = zoning.zone(asset) if asset else None
        out.append(
            Event(
                kind="alert",
                start=r["first_seen"],
                end=r["last_seen"],
                severity=r["severity"],
                title=r["title"],
                asset=asset,
                cell=zone.name if zone else None,
                ref={
                    "alert_id": r["id"],
                    "rule": r["rule"],
                    "status": r["status"],
                    "src_ip": r["src_ip"],
                    "dst_ip": r["dst_ip"],
                    "src_name": asset_name(store, r["src_ip"]),
                    "dst_name": asset_name(store, r["dst_ip"]),
                    "protocol": r["protocol"],
                    "operation": r["operation"],
                    "count": r["count"],
                },
            )
        )
    return out


def _machine_events(zoning: Zoning, machine: list[dict[str, Any]]) -> list[Event]:
    out = []
    for m in machine:
        asset = m.get("asset")
        cell = m.get("cell") or (z.name if asset and (z := zoning.zone(asset)) else None)
        out.append(
            Event(
                kind="machine",
                start=int(m["ts"]),
                end=int(m.get("end_ts", m["ts"])),
                severity=int(m.get("severity", Severity.MEDIUM)),
                title=str(m.get("title", "machine event")),
                asset=asset,
                cell=cell,
                ref={
                    k: v
                    for k, v in m.items()
                    if k not in {"ts", "end_ts", "title", "severity", "asset", "cell"}
                },
            )
        )
    return out


def group_events(events: list[Event], window_ns: int) -> list[list[Event]]:
    events = sorted(events, key=lambda e: (e.start, e.kind, e.title))
    uf = _Union(len(events))
    last: dict[str, tuple[int, int]] = {}  # key -> (latest end, event index)
    for i, ev in enumerate(events):
        for k in ev.group_keys():
            prev = last.get(k)
            if prev is not None and ev.start - prev[0] <= window_ns:
                uf.join(prev[1], i)
            end = max(ev.end, prev[0]) if prev is not None else ev.end
            last[k] = (end, i)
    groups: dict[int, list[Event]] = {}
    for i, ev in enumerate(events):
        groups.setdefault(uf.find(i), []).append(ev)
    return list(groups.values())


def _incident(evs: list[Event]) -> dict[str, Any]:
    alert_ids = [e.ref["alert_id"] for e in evs if e.kind == "alert"]
    first = min(e.start for e in evs)
    last = max(e.end for e in evs)
    sev = max(e.severity for e in evs)
    return {
        "id": f"INC-{min(alert_ids)}" if alert_ids else f"INC-M{first}",
        "severity": Severity(sev).label,
        "first_seen": iso(first),
        "last_seen": iso(last),
        "assets": sorted({e.asset for e in evs if e.asset}),
        "cells": sorted({e.cell for e in evs if e.cell}),
        "alerts": len(alert_ids),
        "machine_events": sum(1 for e in evs if e.kind == "machine"),
        "open": any(e.ref.get("status") == "open" for e in evs),
        "timeline": [
            {
                "ts": iso(e.start),
                "end": iso(e.end),
                "kind": e.kind,
                "severity": Severity(e.severity).label,
                "title": e.title,
                "asset": e.asset,
                "cell": e.cell,
                **e.ref,
            }
            for e in sorted(evs, key=lambda e: (e.start, e.kind))
        ],
    }


def incidents(
    store: Store,
    zoning: Zoning,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    include_closed: bool = False,
    machine: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every incident, newest activity first. ``machine``: machine events from the
    gateway (:meth:`otconduit.console.production.Production.machine_events`)."""
    events = _alert_events(store, zoning, include_closed) + _machine_events(zoning, machine or [])
    out = [
        (max(e.end for e in evs), _incident(evs))
        for evs in group_events(events, int(window_s * 1e9))
    ]
    out.sort(key=lambda x: (-x[0], x[1]["id"]))
    return [inc for _, inc in out]


def select(
    items: list[dict[str, Any]], *, asset: str | None = None, min_events: int = 1
) -> list[dict[str, Any]]:
    """Incidents with at least ``min_events`` events that involve ``asset`` (as the
    asset an event is about, or an alert's source)."""
    return [
        inc
        for inc in items
        if len(inc["timeline"]) >= min_events
        and (
            asset is None
            or asset in inc["assets"]
            or any(e.get("src_ip") == asset for e in inc["timeline"])
        )
    ]
