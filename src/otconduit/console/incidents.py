"""Incidents: alerts and machine events on the same device, chained in time -- the
network anomaly next to the machine fault it may have caused.

Each event is about devices: an alert about its destination (the device it targets) and
its source, a machine event about the device its tag is read from (or, without the
gateway config, about its machine). Events are visited in time order; an event joins the
incident of an earlier event on one of its devices when it starts within ``window`` of
that device's last activity. So an alert's src -> dst links the two devices' incidents,
but only within the window; a shared zone or cell links nothing (it once lumped a whole
cell's alerts and machine events into one incident). Groups are connected components
(union-find). Within an incident, a command alert and a machine event on its device that
followed within minutes are named as such (``causal``, :mod:`otconduit.console.causal`).

Incidents are numbered INC-1, INC-2, ... in the order their first event happened, and
the numbers are kept in the store (``incidents``, migration 0006) with an owner and a
status (open / investigating / resolved) that analysts set; every change is kept in
``incident_history``. A number stays with its incident while it grows: a group that
holds the first event of a numbered incident keeps that number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otconduit.console.causal import links as causal_links
from otconduit.console.zoning import Zoning
from otconduit.detect.rules import Severity
from otconduit.store import Store
from otconduit.store import alerts as stored_alerts
from otconduit.store import incidents as stored
from otconduit.store.views import asset_name, iso

DEFAULT_WINDOW_S = 900.0
STATUSES = ("open", "investigating", "resolved")


class IncidentError(ValueError):
    """A change an incident cannot take (unknown incident, status or owner)."""


@dataclass(slots=True)
class Event:
    kind: str  # alert | machine
    start: int
    end: int
    severity: int
    title: str
    asset: str | None  # the device it is about (an alert's destination)
    cell: str | None  # the asset's zone, shown, never grouped on
    ref: dict[str, Any] = field(default_factory=dict)
    peer: str | None = None  # an alert's source: linked within the window too

    def group_keys(self) -> list[str]:
        return [f"device:{d}" for d in dict.fromkeys((self.asset, self.peer)) if d]

    @property
    def key(self) -> str:
        """Stable name of the event: what an incident's number is kept against."""
        if self.kind == "alert":
            return f"alert:{self.ref['alert_id']}"
        return f"machine:{self.ref.get('tag') or self.asset or self.title}@{self.start}"


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


def _alert_events(store: Store, zoning: Zoning) -> list[Event]:
    """Every alert, closed ones too: closing an alert must not renumber incidents."""
    out = []
    for r in stored_alerts.for_incidents(store):
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
                peer=r["src_ip"] if r["dst_ip"] else None,
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
        # Without the gateway config a tag has no device: its machine stands in for one.
        where = m.get("machine") and f"machine:{m.get('line') or ''}/{m['machine']}"
        out.append(
            Event(
                kind="machine",
                start=int(m["ts"]),
                end=int(m.get("end_ts", m["ts"])),
                severity=int(m.get("severity", Severity.MEDIUM)),
                title=str(m.get("title", "machine event")),
                asset=asset or where or None,
                cell=cell,
                ref={
                    k: v
                    for k, v in m.items()
                    if k not in {"ts", "end_ts", "title", "severity", "asset", "cell"}
                },
            )
        )
    return out


def _order(e: Event) -> tuple[int, str, str]:
    return (e.start, e.kind, e.title)


def group_events(events: list[Event], window_ns: int) -> list[list[Event]]:
    """Connected components of "same device, within ``window_ns`` of its last activity"."""
    events = sorted(events, key=_order)
    uf = _Union(len(events))
    last: dict[str, tuple[int, int]] = {}  # device key -> (latest end, event index)
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


def _is_ip(device: str) -> bool:
    return not device.startswith("machine:")


def _incident(evs: list[Event]) -> dict[str, Any]:
    evs = sorted(evs, key=_order)
    alerts = [e for e in evs if e.kind == "alert"]
    devices = {d for e in evs for d in (e.asset, e.peer) if d}
    causal = causal_links(evs)  # write -> machine event on the same device, said so
    effects = {(c["tag"], c["machine_title"]): c["alert_id"] for c in causal}
    return {
        "id": None,
        "number": None,
        "key": evs[0].key,
        "keys": [e.key for e in evs],
        "severity": Severity(max(e.severity for e in evs)).label,
        "first_ts": evs[0].start,
        "last_ts": max(e.end for e in evs),
        "first_seen": iso(evs[0].start),
        "last_seen": iso(max(e.end for e in evs)),
        "assets": sorted(d for d in devices if _is_ip(d)),
        "machines": sorted(d.split(":", 1)[1] for d in devices if not _is_ip(d)),
        "cells": sorted({e.cell for e in evs if e.cell}),
        "alerts": len(alerts),
        "machine_events": len(evs) - len(alerts),
        "open": any(e.ref.get("status") == "open" for e in alerts),
        "all_closed": bool(alerts) and all(e.ref.get("status") == "closed" for e in alerts),
        "causal": causal,
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
                **(
                    {"after_alert": effects[(e.ref.get("tag"), e.title)]}
                    if e.kind == "machine" and (e.ref.get("tag"), e.title) in effects
                    else {}
                ),
            }
            for e in evs
        ],
    }


def incidents(
    store: Store,
    zoning: Zoning,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    machine: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every incident (not yet numbered: :func:`number`), first event first.
    ``machine``: machine events from the gateway
    (:meth:`otconduit.console.production.Production.machine_events`)."""
    events = _alert_events(store, zoning) + _machine_events(zoning, machine or [])
    out = [_incident(evs) for evs in group_events(events, int(window_s * 1e9))]
    out.sort(key=lambda i: (i["first_ts"], i["key"]))
    return out


# -- numbers, owner and status (kept in the store) ------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def assign_numbers(store: Store, items: list[dict[str, Any]]) -> dict[str, int]:
    """Incident number per key of ``items`` (in first-event order), adding numbers for
    incidents not seen before. A writable store; safe to run twice (a key is unique)."""
    with store.transaction():
        known = stored.numbers(store)
        out: dict[str, int] = {}
        now = _now()
        for inc in items:
            have = [known[k] for k in inc["keys"] if k in known]
            if have:
                out[inc["key"]] = min(have)
                continue
            number = stored.add(store, inc["key"], inc["first_ts"], now)
            out[inc["key"]] = known[inc["key"]] = number
    return out


def known_numbers(store: Store) -> dict[str, int]:
    return stored.numbers(store)


def label(number: int) -> str:
    return f"INC-{number}"


def parse_id(text: str) -> int:
    """``INC-7`` or ``7`` -> 7."""
    body = text.strip().upper().removeprefix("INC-")
    # ASCII digits only: str.isdigit also accepts "²", which int() refuses.
    if not (body.isascii() and body.isdigit()) or not 1 <= int(body) < 2**62:
        raise IncidentError(f"no incident {text[:40]!r}: incident ids look like INC-7")
    return int(body)


def with_numbers(items: list[dict[str, Any]], numbers: dict[str, int]) -> list[dict[str, Any]]:
    """Copies of ``items`` with ``id``/``number`` from ``numbers`` (keys of the incidents'
    events; an incident not numbered yet is a draft: ``draft-N``)."""
    out = []
    drafts = 0
    for inc in items:
        n = numbers.get(inc["key"])
        if n is None:
            n = min((numbers[k] for k in inc["keys"] if k in numbers), default=None)
        if n is None:
            drafts += 1
        out.append({**inc, "number": n, "id": label(n) if n else f"draft-{drafts}"})
    return out


def states(store: Store) -> dict[int, dict[str, Any]]:
    """Owner and status of every numbered incident (read per request: cheap, and a
    change shows at once whatever the caches hold)."""
    return {
        r["id"]: {"owner": r["owner"], "status": r["status"], "updated_at": r["updated_at"]}
        for r in stored.states(store)
    }


def history(store: Store, number: int) -> list[dict[str, Any]]:
    return stored.history(store, number)


def change(
    store: Store,
    number: int,
    user: str,
    *,
    owner: str | None = None,
    status: str | None = None,
    comment: str = "",
) -> list[dict[str, Any]]:
    """Set the owner (``""`` clears it) and/or the status; each change that alters a
    value is written to ``incident_history`` (who, when, old -> new). Returns them."""
    if status is not None and status not in STATUSES:
        raise IncidentError(f"unknown status {status!r}: use {', '.join(STATUSES)}")
    with store.transaction():
        row = stored.current(store, number)
        if row is None:
            raise IncidentError(f"no incident {label(number)}")
        now = _now()
        made = []
        for name, old, new in (("owner", row[0], owner), ("status", row[1], status)):
            if new is None:
                continue
            value = new or None
            if value == old:
                continue
            stored.record_change(
                store, number, name, old, value, user=user, comment=comment or None, now=now
            )
            made.append({"field": name, "old": old, "new": value})
    return made


def present(
    items: list[dict[str, Any]], state: dict[int, dict[str, Any]], include_closed: bool
) -> list[dict[str, Any]]:
    """The list to show: owner and status filled in, newest activity first. Unless
    ``include_closed``, resolved incidents and those whose alerts are all closed are
    left out."""
    kept = []
    for inc in items:
        st = state.get(inc["number"]) if inc["number"] else None
        status = st["status"] if st else None
        if not include_closed and (status == "resolved" or inc["all_closed"]):
            continue
        kept.append((inc, st))
    kept.sort(key=lambda x: (-x[0]["last_ts"], -(x[0]["number"] or 0)))
    return [
        {
            **{k: v for k, v in inc.items() if k not in _INTERNAL},
            "owner": st["owner"] if st else None,
            "status": st["status"] if st else None,
        }
        for inc, st in kept
    ]


_INTERNAL = {"keys", "first_ts", "last_ts", "all_closed"}


def select(
    items: list[dict[str, Any]], *, asset: str | None = None, min_events: int = 1
) -> list[dict[str, Any]]:
    """Incidents with at least ``min_events`` events that involve ``asset`` (as a device
    an event is about, or an alert's source)."""
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
