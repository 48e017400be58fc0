"""Chart data for the Production page: per machine its gauges' trends and its state
timeline (with state names), per line OEE and energy per shift -- drawn by the browser
with the vendored Chart.js (``static/charts.js``), times in the plant's zone.

Trends cover the last ``TREND_NS`` before the historian's newest sample; OEE and energy
the last ``KPI_NS``, computed by :mod:`otconduit.production` (ISO 22400-2 OEE; energy
from meters or integrated power) from the gateway config's ``production`` section. A
config without one, or a historian these cannot read, is said in one line on the page.
Results are cached until the historian gets new samples.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from otconduit.console.processview import thin
from otconduit.console.timefmt import parse

log = logging.getLogger("otconduit.console")
NS = 1_000_000_000
TREND_NS = 3600 * NS
KPI_NS = 24 * 3600 * NS
MAX_SERIES = 6  # gauges charted per machine (the table lists them all)
MAX_ROWS = 20_000

_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_lock = threading.Lock()


def _ms(value: Any) -> int | None:
    dt = parse(value)
    return None if dt is None else int(dt.timestamp() * 1000)


def production_charts(
    production: Any, gateway: Path | None, status: dict[str, Any]
) -> dict[str, Any]:
    """``{"data": {key: chart spec}, "kpi": {line: {...}}, "kpi_note": str | None}``;
    ``status`` is :meth:`Production.status`, whose machines get ``chart_keys``."""
    if not status.get("available"):
        return {"data": {}, "kpi": {}, "kpi_note": None}
    # The site filter changes which machines are charted: part of the key.
    key = (str(production.target), str(gateway), status.get("site"), *production.signature())
    with _lock:
        cached = _cache.get(key)
    if cached is None:
        cached = _build(production, gateway, status)
        with _lock:
            _cache.clear()  # one historian per console: keep the newest only
            _cache[key] = cached
    for line in status["lines"]:
        for m in line["machines"]:
            m["chart_keys"] = cached["keys"].get((line["line"], m["machine"]), {})
        # The production model names a line by its ISA-95 line segment ("line1"), and
        # it is the gateway config's site's: another site's "line1" is another line.
        name = next(
            (
                k
                for k in cached["kpi"]
                if _of_site(line["line"], cached.get("kpi_site"))
                and (line["line"].split("/")[-1] == k or line["line"] == k)
            ),
            None,
        )
        line["kpi"] = {"name": name, **cached["kpi"][name]} if name else None
    if status.get("multi_site") and cached.get("kpi"):
        site = str(cached.get("kpi_site")).split("/")[-1]
        note = f"OEE and energy: site {site} only (the gateway config's production section)"
        return {**cached, "kpi_note": note}
    return cached


def _build(production: Any, gateway: Path | None, status: dict[str, Any]) -> dict[str, Any]:
    from otconduit.gateway.historian import HistorianError, history, open_store

    data: dict[str, Any] = {}
    keys: dict[tuple[str, str], dict[str, str]] = {}
    store = open_store(str(production.target), readonly=True)
    try:
        sums = store.summaries()
        newest = max((s.last[0] for s in sums if s.last is not None), default=0)
        lo, hi = newest - TREND_NS, newest + 1
        # OEE and energy over the last day, or from the first sample when the data is
        # younger: shifts before it would be all unknown time.
        firsts = [r["ts_ns"] for s in sums if s.samples
                  for r in history(store, s.path, newest - KPI_NS, None, 1)]  # fmt: skip
        kpi_start = min(firsts, default=newest - KPI_NS)
        n = 0
        for line in status["lines"]:
            for m in line["machines"]:
                mine: dict[str, str] = {}
                series = []
                gauges = [
                    t
                    for t in m["tags"]
                    if t["kind"] == "gauge"
                    and isinstance(t["value"], int | float)
                    and not isinstance(t["value"], bool)
                ]
                for t in gauges[:MAX_SERIES]:
                    try:
                        rows = list(history(store, t["path"], lo, hi, MAX_ROWS))
                    except HistorianError:
                        continue
                    points = [
                        [r["ts_ns"] // 1_000_000, float(r["value"])]
                        for r in rows
                        if r["quality"] == "good" and isinstance(r["value"], int | float)
                    ]
                    if points:
                        series.append(
                            {
                                "name": t["name"],
                                "unit": t["unit"] or "",
                                "decimals": t["decimals"],
                                "points": thin(points, 400, False),
                            }
                        )
                if series:
                    n += 1
                    data[f"lines{n}"] = {
                        "series": series,
                        # the hour, or less when the data is younger
                        "from_ms": min(x["points"][0][0] for x in series),
                        "to_ms": hi // 1_000_000,
                    }
                    mine["trends"] = f"lines{n}"
                if m["timeline"] and m["state"]:
                    segs: list[dict[str, Any]] = []
                    for s in m["timeline"]:
                        a, b = _ms(s["from"]), _ms(s["to"])
                        if a is not None and b is not None:
                            name = s.get("name") or str(s["value"])
                            if s.get("quality") not in (None, "good"):
                                name = f"{name} ({s['quality']})"
                            segs.append({"from": a, "to": b, "name": name})
                    if segs:
                        n += 1
                        data[f"states{n}"] = {
                            "label": m["state"]["tag"],
                            "segments": segs,
                            "from_ms": segs[0]["from"],
                            "to_ms": max(segs[-1]["to"], segs[0]["from"] + 1000),
                        }
                        mine["states"] = f"states{n}"
                keys[(line["line"], m["machine"])] = mine
    finally:
        store.close()
    kpi, note, kpi_site = _kpis(production, gateway, kpi_start, newest)
    for line_name, charts in kpi.items():
        for kind in ("oee", "energy"):
            if charts.get(kind):
                data[f"{kind}:{line_name}"] = charts[kind]
    return {"data": data, "kpi": kpi, "kpi_note": note, "keys": keys, "kpi_site": kpi_site}


def _of_site(line: str, prefix: str | None) -> bool:
    """Whether the line path ``line`` is under ``enterprise/site`` ``prefix`` (None: any)."""
    return prefix is None or line.startswith(prefix + "/")


def _kpis(
    production: Any, gateway: Path | None, start: int, newest: int
) -> tuple[dict[str, Any], str | None, str | None]:
    """OEE and energy per line and shift from ``start`` to ``newest``, or why not, and
    the ``enterprise/site`` they belong to (the gateway config's)."""
    if gateway is None:
        note = "OEE and energy need the gateway config (--gateway) with a production section"
        return {}, note, None
    try:
        from otconduit.production.api import (
            ProductionError,
            load_plan,
            oee_report,
            open_reader,
            sustainability_report,
        )
        from otconduit.yamlconf import ConfigError
    except ImportError:  # the production package is not installed with this console
        return {}, "OEE and energy: not available in this installation", None
    try:
        cfg, plan = load_plan(gateway)
    except ConfigError as exc:
        return {}, str(exc).split(": ", 1)[-1], None
    site = f"{cfg.enterprise}/{cfg.site}"
    by = "machine" if plan.calendar.always else "shift"
    out: dict[str, Any] = defaultdict(dict)
    try:
        with open_reader(str(production.target)) as reader:
            oee = oee_report(plan, reader, start, newest, by=by).rows
            energy = sustainability_report(plan, reader, start, newest)
    except (ProductionError, ValueError) as exc:
        log.warning("OEE/energy for the Production page: %s", exc)
        return {}, f"OEE and energy could not be computed: {exc}", site
    for line, chart in _oee_by_line(oee).items():
        out[line]["oee"] = chart
    rows = energy["by_shift"] or energy["by_line"]
    for line, chart in _energy_by_line(rows).items():
        out[line]["energy"] = chart
    return dict(out), None, site


def _bucket(row: dict[str, Any]) -> str:
    start = str(row.get("start") or "")[:16].replace("T", " ")
    shift = row.get("shift")
    return f"{shift} {start}" if shift and shift != "-" else start


def _oee_by_line(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """ISO 22400 factors per line and shift, summed over the line's machines (times and
    counts add; the ratios are taken of the sums, never averaged)."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0] * 5))
    for r in rows:
        a = acc[str(r["line"])][_bucket(r)]
        a[0] += r.get("planned_busy_time_s") or 0.0
        a[1] += r.get("actual_production_time_s") or 0.0
        a[2] += (r.get("planned_cycle_time_s") or 0.0) * (r.get("produced") or 0)
        a[3] += r.get("produced") or 0
        a[4] += r.get("good") or 0
    out = {}
    for line, buckets in acc.items():
        labels = list(buckets)
        avail, perf, qual, oee = [], [], [], []
        for pbt, apt, ideal, produced, good in buckets.values():
            av = apt / pbt if pbt else None
            pe = ideal / apt if apt else None
            qu = good / produced if produced else None
            avail.append(_pct(av))
            perf.append(_pct(pe))
            qual.append(_pct(qu))
            oee.append(_pct(av * pe * qu) if None not in (av, pe, qu) else None)  # type: ignore[operator]
        out[line] = {
            "labels": labels,
            "unit": "%",
            "decimals": 1,
            "max": None,
            "series": [
                {"name": "availability", "values": avail},
                {"name": "effectiveness", "values": perf},
                {"name": "quality rate", "values": qual},
                {"name": "OEE", "values": oee},
            ],
            "rows": [
                {"bucket": b, "availability": av, "effectiveness": pe, "quality_rate": qu, "oee": o}
                for b, av, pe, qu, o in zip(labels, avail, perf, qual, oee, strict=True)
            ],
        }
    return out


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100.0 * v, 1)


def _energy_by_line(rows: list[dict[str, Any]]) -> dict[str, Any]:
    acc: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        line = str(r.get("line"))
        if line == "total" or r.get("kwh") is None:
            continue
        b = _bucket(r)
        acc[line][b] = acc[line].get(b, 0.0) + float(r["kwh"])
    return {
        line: {
            "labels": list(b),
            "unit": "kWh",
            "decimals": 2,
            "series": [{"name": "energy", "values": [round(v, 3) for v in b.values()]}],
            "rows": [{"bucket": k, "kwh": round(v, 3)} for k, v in b.items()],
        }
        for line, b in acc.items()
    }
