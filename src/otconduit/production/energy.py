"""Energy, peak demand, energy per good part and CO2e (GHG Protocol scope 2) from the
gateway's historian: the sustainability pilot.

Energy comes from a meter's cumulative kWh register where there is one: the increase
between readings (roll-overs and resets handled as for part counters) loses nothing to a
gap in the data. Otherwise a power tag is integrated over the time its value is known
(sample and hold, as :func:`.series.held`); unknown time is reported, not guessed.
Peak demand is the highest power sample, or, with a kWh register alone, the highest mean
over ``demand_period`` (15 minutes, the usual billing interval).

CO2e: scope 2 location-based = kWh x the grid's average emission factor
(``grid_factor``, kg CO2e/kWh); market-based = kWh x the factor of the contracts the plant
buys (``market_factor``), reported beside it when given, as the GHG Protocol's scope 2
guidance asks for both.

For the console: :func:`sustainability_report` returns one JSON-ready dict (totals, per
line, per machine, per shift, a daily trend) for a page or a report sent upward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otconduit.production.calendar import Bucket, Span
from otconduit.production.oee import MachineData, read_machine, tally
from otconduit.production.plan import EnergyPlan, MachinePlan, ProductionPlan
from otconduit.production.report import Report, cut, seconds, window
from otconduit.production.series import (
    CounterEvent,
    Held,
    as_number,
    increments,
    inside,
    overlap,
)
from otconduit.production.series import held as held_values
from otconduit.production.source import HistorianReader

COLUMNS = [
    "line",
    "machine",
    "shift",
    "start",
    "end",
    "kwh",
    "peak_kw",
    "kwh_per_good_part",
    "co2e_kg",
    "source",
    "unknown_time_s",
]
TOTAL = "total"
KW_NS_PER_KWH = 3600 * 1e9


@dataclass
class EnergyData:
    """One machine's energy over the window, before it is cut into buckets."""

    source: str  # "meter" (cumulative kWh) or "power" (integrated)
    ticks: list[tuple[int, float]] = field(default_factory=list)  # meter: (ts, cumulative kWh)
    increases: list[tuple[int, float]] = field(default_factory=list)  # meter: (ts, kWh)
    power: list[Held[float]] = field(default_factory=list)  # integrated: kW held over spans
    samples: list[tuple[int, float]] = field(default_factory=list)  # good power readings, kW
    events: list[CounterEvent] = field(default_factory=list)
    demand_period_ns: int = 900 * 1_000_000_000


def read_energy(reader: HistorianReader, e: EnergyPlan, start: int, end: int) -> EnergyData:
    """Read one machine's energy source for [start, end)."""
    d = EnergyData("meter" if e.kwh is not None else "power")
    d.demand_period_ns = round(e.demand_period_s * 1e9)
    if e.kwh is not None:
        f = e.kwh.factor
        base = reader.last_good_before(e.kwh.path, start)
        rows = reader.readings(e.kwh.path, start, end)
        incs, d.events = increments(
            rows, None if base is None else as_number(base.value), e.kwh.rollover
        )
        d.increases = [(ts, v * f) for ts, v in incs]
        by_ts = dict(d.increases)
        cum = 0.0
        for r in rows:
            if r.good and as_number(r.value) is not None:
                cum += by_ts.get(r.ts, 0.0)
                d.ticks.append((r.ts, cum))
    if e.power is not None:
        p = e.power
        rows = reader.readings(p.path, start, end)
        for r in rows:
            v = as_number(r.value) if r.good else None
            if v is not None:
                d.samples.append((r.ts, v * p.factor))
        if e.kwh is None:

            def kw(v: object) -> float | None:
                x = as_number(v)
                return None if x is None else x * p.factor

            carry = reader.last_before(p.path, start, p.max_gap_ns)
            d.power = held_values(rows, start, end, p.max_gap_ns, kw, carry=carry)
    return d


def energy_in(d: EnergyData, spans: Sequence[Span]) -> tuple[float, int | None]:
    """(kWh, unknown ns) within ``spans``; unknown is None for a meter (it counts on)."""
    if d.source == "meter":
        return sum(v for ts, v in d.increases if inside(ts, spans)), None
    kwh, unknown = 0.0, 0
    for h in d.power:
        ns = overlap(h.start, h.end, spans)
        if h.value is None:
            unknown += ns
        else:
            kwh += h.value * ns / KW_NS_PER_KWH
    return kwh, unknown


def peak_in(d: EnergyData, spans: Sequence[Span]) -> float | None:
    """Highest power sample in ``spans``; from kWh alone, the highest demand-period mean."""
    vals = [v for ts, v in d.samples if inside(ts, spans)]
    if vals:
        return max(vals)
    if d.source != "meter":
        return None
    best: float | None = None
    anchor: tuple[int, float] | None = None
    for ts, cum in d.ticks:
        if not inside(ts, spans):
            anchor = None
            continue
        if anchor is None:
            anchor = (ts, cum)
            continue
        dt = ts - anchor[0]
        if dt >= d.demand_period_ns:
            kw = (cum - anchor[1]) * KW_NS_PER_KWH / dt
            best = kw if best is None else max(best, kw)
            anchor = (ts, cum)
    return best


def coincident_peak(series: Sequence[EnergyData], spans: Sequence[Span]) -> float | None:
    """Highest sum of several machines' power at the same moment (each held from its
    last sample); None unless every one has power samples."""
    if not series or any(not d.samples for d in series):
        return None
    events = sorted(
        (ts, i, v) for i, d in enumerate(series) for ts, v in d.samples if inside(ts, spans)
    )
    now: dict[int, float] = {}
    best: float | None = None
    for _ts, i, v in events:
        now[i] = v
        if len(now) == len(series):
            total = sum(now.values())
            best = total if best is None else max(best, total)
    return best


def _r(x: float | None, nd: int = 6) -> float | None:  # kWh to the mWh: small meters too
    return None if x is None else round(x, nd)


@dataclass
class _Inputs:
    """Everything the energy rows need, read once for several groupings."""

    lo: int
    hi: int
    energy: dict[str, EnergyData]
    counts: dict[str, MachineData]
    notes: list[str]


def _read(
    plan: ProductionPlan, reader: HistorianReader, start: int | None, end: int | None
) -> _Inputs:
    machines = [m for m in plan.machines if m.energy is not None]
    paths = [p.path for m in machines if m.energy for p in (m.energy.kwh, m.energy.power) if p]
    lo, hi = window(reader, paths, start, end)
    energy = {m.name: read_energy(reader, m.energy, lo, hi) for m in machines if m.energy}
    counts = {
        m.name: read_machine(reader, m.oee, lo, hi, states=False)
        for m in plan.machines
        if m.oee is not None
    }
    notes = []
    for m in machines:
        for e in energy[m.name].events:
            notes.append(
                f"{m.name}: energy register {'wrapped' if e.kind == 'rollover' else 'was reset'}"
                f" at {plan.calendar.iso(e.ts)} ({e.before:g} -> {e.after:g})"
            )
    notes += [f"the historian has no samples of {p}" for p in sorted(reader.missing)]
    return _Inputs(lo, hi, energy, counts, notes)


class _Rows:
    """Energy rows from read inputs, for one grid and market factor."""

    def __init__(
        self, plan: ProductionPlan, inp: _Inputs, grid: float | None, market: float | None
    ) -> None:
        self.plan, self.inp, self.grid, self.market = plan, inp, grid, market
        self.machines = [m for m in plan.machines if m.energy is not None]

    def good(self, m: MachinePlan | None, spans: Sequence[Span]) -> float | None:
        if m is None or m.oee is None:
            return None
        return tally(self.inp.counts[m.name], m.oee, spans, spans).good

    def row(
        self,
        line: str,
        machine: str | None,
        b: Bucket,
        kwh: float,
        peak: float | None,
        parts: float | None,
        source: str | None = None,
        unknown: int | None = None,
    ) -> dict[str, Any]:
        cal = self.plan.calendar
        out: dict[str, Any] = {
            "line": line,
            "machine": machine,
            "shift": b.shift,
            "start": cal.iso(b.start_ns),
            "end": cal.iso(b.end_ns),
            "kwh": _r(kwh),
            "peak_kw": _r(peak, 3),
            "kwh_per_good_part": float(f"{kwh / parts:.6g}") if parts else None,
            "co2e_kg": _r(kwh * self.grid) if self.grid is not None else None,
        }
        if self.market is not None:
            out["co2e_market_kg"] = _r(kwh * self.market)
        out["source"] = source
        out["unknown_time_s"] = None if unknown is None else seconds(unknown)
        return out

    def machine(self, m: MachinePlan, b: Bucket) -> dict[str, Any]:
        d = self.inp.energy[m.name]
        kwh, unknown = energy_in(d, b.spans)
        parts = self.good(m, b.spans)
        return self.row(m.line, m.name, b, kwh, peak_in(d, b.spans), parts, d.source, unknown)

    def line(self, line: str | None, b: Bucket) -> dict[str, Any] | None:
        """A line's row (None: the whole site, as line ``total``); sub-meters are not
        added again, and parts are the good output of each line's output machine."""
        top = [m for m in self.machines if m.energy and m.energy.part_of is None]
        top = [m for m in top if line is None or m.line == line]
        if not top:
            return None
        data = [self.inp.energy[m.name] for m in top]
        kwh = sum(energy_in(d, b.spans)[0] for d in data)
        peak = peak_in(data[0], b.spans) if len(data) == 1 else coincident_peak(data, b.spans)
        lines = [line] if line is not None else self.plan.lines()
        outs = [self.good(self.plan.output_of(x), b.spans) for x in lines]
        parts = None if any(o is None for o in outs) else sum(o or 0.0 for o in outs)
        return self.row(TOTAL if line is None else line, None, b, kwh, peak, parts)

    def rows(self, cuts: Sequence[Bucket], per_line: bool, totals: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for b in cuts:
            if per_line:
                out += [r for x in self.plan.lines() if (r := self.line(x, b)) is not None]
            else:
                out += [self.machine(m, b) for m in self.machines]
            if totals and (r := self.line(None, b)) is not None:
                out.append(r)
        if totals and len(cuts) > 1:
            whole = Bucket(None, self.inp.lo, self.inp.hi, ((self.inp.lo, self.inp.hi),))
            if (r := self.line(None, whole)) is not None:
                out.append(r)
        return out


def _columns(market: float | None) -> list[str]:
    cols = list(COLUMNS)
    if market is not None:
        cols.insert(cols.index("co2e_kg") + 1, "co2e_market_kg")
    return cols


def energy_report(
    plan: ProductionPlan,
    reader: HistorianReader,
    start: int | None = None,
    end: int | None = None,
    by: str = "machine",
    *,
    grid_factor: float | None = None,
    market_factor: float | None = None,
    totals: bool = False,
) -> Report:
    """Energy rows per machine with an energy source (``by`` machine: the window; shift:
    per shift instance; day: per local day) or per line (``by="line"``: its meters,
    sub-meters counted once). ``totals`` adds the site (line ``total``) per bucket and,
    with several buckets, overall. Factors given here win over the config's."""
    grid = grid_factor if grid_factor is not None else plan.grid_factor
    market = market_factor if market_factor is not None else plan.market_factor
    inp = _read(plan, reader, start, end)
    cuts = cut(plan, by, inp.lo, inp.hi)
    rows = _Rows(plan, inp, grid, market).rows(cuts, by == "line", totals)
    report = Report(rows, _columns(market), list(inp.notes), inp.lo, inp.hi)
    if grid is None:
        report.notes.append(NO_GRID_FACTOR)
    return report


NO_GRID_FACTOR = (
    "no grid emission factor: co2e_kg is empty (give --grid-factor KG_PER_KWH or "
    "production.grid_factor)"
)


def sustainability_report(
    plan: ProductionPlan,
    reader: HistorianReader,
    start: int | None = None,
    end: int | None = None,
    *,
    grid_factor: float | None = None,
    market_factor: float | None = None,
) -> dict[str, Any]:
    """The energy pilot's report as one JSON-ready dict, for the console's page and for
    sending upward: ``period`` (plant-local start and end, time zone), ``scope2``
    (method, factors), ``totals`` (site kWh, peak kW, kWh per good part, CO2e),
    ``by_line``, ``by_machine``, ``by_shift`` (per line and shift instance, with the
    site per shift; empty without a shift plan), ``trend`` (per line and local day) and
    ``notes``. Rows have the columns of ``conduit energy``. Reads the historian once."""
    grid = grid_factor if grid_factor is not None else plan.grid_factor
    market = market_factor if market_factor is not None else plan.market_factor
    inp = _read(plan, reader, start, end)
    rows = _Rows(plan, inp, grid, market)
    whole = cut(plan, "machine", inp.lo, inp.hi)
    site = rows.line(None, whole[0])
    shifts = (
        []
        if plan.calendar.always
        else rows.rows(cut(plan, "shift", inp.lo, inp.hi), per_line=True, totals=True)
    )
    cal = plan.calendar
    return {
        "period": {"start": cal.iso(inp.lo), "end": cal.iso(inp.hi), "timezone": str(cal.tz)},
        "scope2": {
            "method": "location-based" + (" and market-based" if market is not None else ""),
            "grid_factor_kg_per_kwh": grid,
            "market_factor_kg_per_kwh": market,
        },
        "columns": _columns(market),
        "totals": site,
        "by_line": rows.rows(whole, per_line=True, totals=False),
        "by_machine": rows.rows(whole, per_line=False, totals=False),
        "by_shift": shifts,
        "trend": rows.rows(cut(plan, "day", inp.lo, inp.hi), per_line=True, totals=False),
        "notes": inp.notes + ([] if grid is not None else [NO_GRID_FACTOR]),
    }
