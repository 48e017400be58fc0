"""OEE per ISO 22400-2 from the gateway's historian.

Time elements (ISO 22400-2, 5.5), per machine and report bucket:

- planned operation time (POT): time inside a shift of the plan (all time without one);
- planned down time (PDOT): POT in a ``planned_stop`` state (breaks, planned maintenance);
- actual production time (APT): time in a ``producing`` state (also off-shift: a machine
  that produces outside its shifts is busy, so that output is not left without its time);
- actual unit down time (ADOT): POT in any other known state;
- planned busy time (PBT) = APT + ADOT = POT - PDOT - unknown time.

Unknown time (no good data from the machine, see :mod:`.series`) is reported apart and
left out of PBT: it is neither production nor down time. Quantities (PQ produced, GQ good,
SQ scrap) are counter increases observed in the bucket. KPIs (ISO 22400-2, 6.10.3/6.10.4/
6.10.9/6.10.11): availability = APT / PBT, effectiveness = PRI x PQ / APT with PRI the
planned run time per item (``planned_cycle_time``), quality rate = GQ / PQ, and the OEE
index = availability x effectiveness x quality rate. Ratios are fractions (0.85 = 85 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otconduit.production.calendar import Bucket, Span, intersect
from otconduit.production.plan import MachinePlan, OeePlan, ProductionPlan, TagPlan
from otconduit.production.report import Report, count, cut, ratio, seconds, window
from otconduit.production.series import CounterEvent, Held, as_number, increments, inside, overlap
from otconduit.production.series import held as held_values
from otconduit.production.source import HistorianReader
from otconduit.production.states import Category

COLUMNS = [
    "line",
    "machine",
    "shift",
    "start",
    "end",
    "planned_busy_time_s",
    "actual_production_time_s",
    "down_time_s",
    "unknown_time_s",
    "produced",
    "good",
    "scrap",
    "planned_cycle_time_s",
    "availability",
    "effectiveness",
    "quality_rate",
    "oee",
    "planned_down_time_s",
    "counter_resets",
    "counter_rollovers",
]
MAX_EVENT_NOTES = 10
State = tuple[str, Category]


@dataclass
class MachineData:
    """What the historian says about one machine's OEE model over the window."""

    states: list[Held[State]]
    quantities: dict[str, list[tuple[int, float]]]  # produced/good/scrap increments
    events: list[tuple[str, CounterEvent]]
    rejected: dict[str, float]


@dataclass
class Tally:
    """ISO 22400-2 time elements (ns) and quantities of one machine (or line) in one bucket."""

    pbt: int = 0
    apt: int = 0
    adot: int = 0
    pdot: int = 0
    unknown: int = 0
    produced: float = 0.0
    good: float = 0.0
    scrap: float = 0.0
    pri_pq: float = 0.0  # PRI x PQ in seconds, summed (a line's machines differ in PRI)
    resets: int = 0
    rollovers: int = 0
    pri: set[float] = field(default_factory=set)

    def add(self, o: Tally) -> None:
        for name in ("pbt", "apt", "adot", "pdot", "unknown", "resets", "rollovers"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        for name in ("produced", "good", "scrap", "pri_pq"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        self.pri |= o.pri

    def kpis(self) -> dict[str, Any]:
        avail = ratio(self.apt, self.pbt)
        # Parts counted while the production time known is under a second (the state
        # was unknown meanwhile): no meaningful rate, rather than a huge one.
        eff = ratio(self.pri_pq * 1e9, self.apt) if self.apt >= 1e9 else None
        qual = ratio(self.good, self.produced)
        oee = None
        if avail is not None and eff is not None and qual is not None:
            # from the unrounded parts: rounding each factor first would shift the product
            oee = round(
                (self.apt / self.pbt)
                * (self.pri_pq * 1e9 / self.apt)
                * (self.good / self.produced),
                4,
            )
        return {
            "planned_busy_time_s": seconds(self.pbt),
            "actual_production_time_s": seconds(self.apt),
            "down_time_s": seconds(self.adot),
            "unknown_time_s": seconds(self.unknown),
            "produced": count(self.produced),
            "good": count(self.good),
            "scrap": count(self.scrap),
            "planned_cycle_time_s": next(iter(self.pri)) if len(self.pri) == 1 else None,
            "availability": avail,
            "effectiveness": eff,
            "quality_rate": qual,
            "oee": oee,
            "planned_down_time_s": seconds(self.pdot),
            "counter_resets": self.resets,
            "counter_rollovers": self.rollovers,
        }


def read_machine(
    reader: HistorianReader, oee: OeePlan, start: int, end: int, *, states: bool = True
) -> MachineData:
    """Read one machine's state (unless ``states`` is False: counts only) and counters
    for [start, end)."""
    st = oee.state
    rejected: dict[str, float] = {}
    held: list[Held[State]] = []
    if states:
        held = held_values(
            reader.readings(st.path, start, end),
            start,
            end,
            st.max_gap_ns,
            oee.states.resolve,
            carry=reader.last_before(st.path, start, st.max_gap_ns),
            rejected=rejected,
        )
    quantities: dict[str, list[tuple[int, float]]] = {}
    events: list[tuple[str, CounterEvent]] = []
    for name in ("produced", "good", "scrap"):
        tag: TagPlan | None = getattr(oee, name)
        if tag is None:
            continue
        base = reader.last_good_before(tag.path, start)
        incs, evs = increments(
            reader.readings(tag.path, start, end),
            None if base is None else as_number(base.value),
            tag.rollover,
        )
        quantities[name] = incs
        events += [(name, e) for e in evs]
    return MachineData(held, quantities, events, rejected)


def tally(data: MachineData, oee: OeePlan, spans: Sequence[Span], planned: Sequence[Span]) -> Tally:
    """Sum one machine's time elements and quantities over ``spans`` (one bucket);
    ``planned`` is the plan's shift time within the window."""
    t = Tally(pri={oee.planned_cycle_time_s})
    in_plan = intersect(spans, planned)
    for h in data.states:
        total = overlap(h.start, h.end, spans)
        if not total:
            continue
        if h.value is None:
            t.unknown += total
            continue
        cat = h.value[1]
        if cat is Category.PRODUCING:
            t.apt += total
            t.pbt += total
            continue
        planned_ns = overlap(h.start, h.end, in_plan)
        if cat is Category.DOWN:
            t.adot += planned_ns
            t.pbt += planned_ns
        else:
            t.pdot += planned_ns
    q = {
        name: sum(d for ts, d in incs if inside(ts, spans))
        for name, incs in data.quantities.items()
    }
    if "produced" in q:
        t.produced = q["produced"]
        t.good = q["good"] if "good" in q else q["produced"] - q.get("scrap", 0.0)
        t.scrap = q["scrap"] if "scrap" in q else q["produced"] - t.good
    else:
        t.good, t.scrap = q.get("good", 0.0), q.get("scrap", 0.0)
        t.produced = t.good + t.scrap
    t.pri_pq = oee.planned_cycle_time_s * t.produced
    for _name, e in data.events:
        if inside(e.ts, spans):
            if e.kind == "reset":
                t.resets += 1
            else:
                t.rollovers += 1
    return t


def oee_report(
    plan: ProductionPlan,
    reader: HistorianReader,
    start: int | None = None,
    end: int | None = None,
    by: str = "machine",
) -> Report:
    """OEE rows for every machine with an OEE model, grouped ``by`` machine, line,
    shift (one row per machine and shift instance) or day (local calendar days)."""
    machines = [m for m in plan.machines if m.oee is not None]
    paths = [m.oee.state.path for m in machines if m.oee is not None]
    lo, hi = window(reader, paths, start, end)
    cal = plan.calendar
    cuts = cut(plan, by, lo, hi)
    planned = cal.planned(lo, hi)
    report = Report([], COLUMNS, start_ns=lo, end_ns=hi)
    data: dict[str, MachineData] = {}
    for m in machines:
        assert m.oee is not None
        data[m.name] = read_machine(reader, m.oee, lo, hi)
        _notes(report, m, data[m.name], cal.iso)
    for p in sorted(reader.missing):
        report.notes.append(f"the historian has no samples of {p}: its time counts as unknown")
    if by == "line":
        for line in plan.lines():
            members = [m for m in machines if m.line == line]
            if not members:
                continue
            total = Tally()
            for m in members:
                assert m.oee is not None
                total.add(tally(data[m.name], m.oee, cuts[0].spans, planned))
            report.rows.append(_row(line, None, cuts[0], total, cal.iso))
        return report
    for m in machines:
        assert m.oee is not None
        for b in cuts:
            t = tally(data[m.name], m.oee, b.spans, planned)
            if by == "shift" and _empty(t):
                continue
            report.rows.append(_row(m.line, m.name, b, t, cal.iso))
    return report


def _empty(t: Tally) -> bool:
    return not (t.pbt or t.pdot or t.unknown or t.produced or t.resets or t.rollovers)


def _row(line: str, machine: str | None, b: Bucket, t: Tally, iso: Any) -> dict[str, Any]:
    return {
        "line": line,
        "machine": machine,
        "shift": b.shift,
        "start": iso(b.start_ns),
        "end": iso(b.end_ns),
        **t.kpis(),
    }


def _notes(report: Report, m: MachinePlan, d: MachineData, iso: Any) -> None:
    for value, secs in sorted(d.rejected.items()):
        report.notes.append(
            f"{m.name}: state value {value} is not in the state map: {secs:.1f} s counted as "
            "unknown"
        )
    for name, e in d.events[:MAX_EVENT_NOTES]:
        report.notes.append(
            f"{m.name}: {name} counter {'wrapped' if e.kind == 'rollover' else 'was reset'} at "
            f"{iso(e.ts)} ({e.before:g} -> {e.after:g}): counted {e.counted:g}"
        )
    if len(d.events) > MAX_EVENT_NOTES:
        report.notes.append(
            f"{m.name}: {len(d.events) - MAX_EVENT_NOTES} more counter resets/roll-overs"
        )
