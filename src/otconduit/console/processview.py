"""The alert page in process terms (console started with ``--gateway``): which tags the
alert's writes changed, each tag's trend around the write, and the machine events on the
same device that followed -- the network anomaly and the machine's answer on one
timeline.

The process entries are the alert's own (``process``, stored by ``conduit analyze
--gateway``) or, for an alert detected without the config, worked out here from its
evidence. Trends come from the gateway historian, ``TREND_BEFORE_S`` before the first
write to ``TREND_AFTER_S`` after the last.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from otconduit.console.causal import CAUSAL_WINDOW_S, MACHINE_EFFECTS, is_command
from otconduit.process.annotate import op_ts_ns
from otconduit.process.tagmap import TagMap

log = logging.getLogger("otconduit.console")
NS = 1_000_000_000
TREND_BEFORE_S = 300.0
TREND_AFTER_S = 300.0
MAX_TRENDS = 3  # tags charted per alert
MAX_POINTS = 600  # per chart: a browser draws a few hundred points in no time

_maps: dict[Path, TagMap] = {}
_lock = threading.Lock()


def tagmap_for(config: Path | None) -> TagMap | None:
    """The tag map of the console's gateway config (read once)."""
    if config is None:
        return None
    with _lock:
        if config not in _maps:
            _maps[config] = TagMap.load(config)[1]
        return _maps[config]


def thin(points: list[list[Any]], most: int = MAX_POINTS, stepped: bool = True) -> list[list[Any]]:
    """Every n-th point (and the last), so a chart stays light. For a ``stepped`` value
    (a setpoint, a state) every change is kept too, up to ``2 * most`` points: its one
    change must not vanish between two kept points."""
    if len(points) <= most:
        return points
    step = len(points) / most
    keep = {int(i * step) for i in range(most)} | {len(points) - 1}
    if stepped:
        changes = [i for i in range(1, len(points)) if points[i][1] != points[i - 1][1]]
        keep |= set(changes[:most])
    return [p for i, p in enumerate(points) if i in keep]


def enrich(ctx: Any, store: Any, a: dict[str, Any]) -> dict[str, Any]:
    """Add ``process`` (if missing), ``trends`` and ``machine_timeline`` to an alert detail
    (see the module doc); unchanged without a gateway config."""
    a.setdefault("process", [])
    a["trends"], a["machine_timeline"], a["chart_data"] = [], [], {}
    tagmap = tagmap_for(ctx.settings.gateway)
    if tagmap is None:
        return a
    from otconduit.process.alerts import process_of_writes, writes_in
    from otconduit.process.history import HistorianLookup

    with HistorianLookup(ctx.production.target) as history:
        if not a["process"]:
            writes = writes_in(a.get("operations") or [], tagmap)
            if writes:
                from otconduit.process.annotate import distinct

                a["process"] = distinct(process_of_writes(store, writes, tagmap, history))
        a["trends"] = _trends(a, tagmap, history)
    a["machine_timeline"] = _timeline(ctx, a)
    marks = [{"t": e["ts_ns"] // 1_000_000, "label": f"{e['title']} (+{e['after_s']:.1f} s)"}
             for e in a["machine_timeline"] if e["kind"] == "machine"]  # fmt: skip
    a["chart_data"] = {f"trend{i}": {**t, "events": marks} for i, t in enumerate(a["trends"])}
    return a


def _trends(a: dict[str, Any], tagmap: TagMap, history: Any) -> list[dict[str, Any]]:
    by_path: dict[str, list[int]] = {}
    for e in a["process"]:
        ts = op_ts_ns(e.get("ts"))
        if ts is not None:
            by_path.setdefault(str(e["path"]), []).append(ts)
    out = []
    for path, times in list(by_path.items())[:MAX_TRENDS]:
        tag = tagmap.by_path.get(path)
        lo, hi = min(times) - int(TREND_BEFORE_S * NS), max(times) + int(TREND_AFTER_S * NS)
        rows = history.trend(path, lo, hi)
        points = [
            [r["ts_ns"] // 1_000_000, _num(r["value"])]
            for r in rows
            if r["quality"] == "good" and _num(r["value"]) is not None
        ]
        out.append(
            {
                "path": path,
                "name": tag.short if tag else path,
                "unit": tag.unit_text if tag else "",
                "decimals": tag.decimals if tag else 2,
                "kind": "flag" if tag is not None and tag.tag.type == "bool" else "value",
                "states": {str(k): v for k, v in (tag.state_names or {}).items()} if tag else {},
                "writes": [
                    {"t": op_ts_ns(e.get("ts")) // 1_000_000, "label": e["text"]}  # type: ignore[operator]
                    for e in a["process"]
                    if e["path"] == path and op_ts_ns(e.get("ts")) is not None
                ],
                "points": thin(points),
                "from_ms": lo // 1_000_000,
                "to_ms": hi // 1_000_000,
            }
        )
    return out


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and v == v:  # not NaN
        return float(v)
    return None


def _timeline(ctx: Any, a: dict[str, Any]) -> list[dict[str, Any]]:
    """The alert and the machine events on its device from its first command to
    ``CAUSAL_WINDOW_S`` after its last, in time order."""
    device = a.get("dst_ip")
    first, last = op_ts_ns(a.get("first_seen")), op_ts_ns(a.get("last_seen"))
    if not device or first is None or last is None:
        return []
    try:
        events = ctx.production.machine_events()
    except Exception as exc:  # a historian that fails must not take the alert page down
        log.warning("machine events unavailable: %s", type(exc).__name__)
        return []
    end = last + int(CAUSAL_WINDOW_S * NS)
    out: list[dict[str, Any]] = [
        {"ts_ns": first, "kind": "network", "title": a.get("title"), "after_s": 0.0,
         "detail": "; ".join(str(e["text"]) for e in a["process"][:3]) or a.get("summary")},
    ]  # fmt: skip
    for m in events:
        if m.get("asset") != device or not first <= int(m["ts"]) <= end:
            continue
        out.append(
            {
                "ts_ns": int(m["ts"]),
                "kind": "machine",
                "event": m.get("event"),
                "title": m.get("title"),
                "tag": m.get("tag"),
                "after_s": round((int(m["ts"]) - first) / NS, 3),
                "causal": is_command(a.get("rule")) and m.get("event") in MACHINE_EFFECTS,
            }
        )
    out.sort(key=lambda e: e["ts_ns"])
    for e in out:
        e["ts"] = e["ts_ns"]
    return out
