"""The ``production`` section checked against the gateway's tags and resolved into
what the reports compute with: full historian paths, unit factors to kWh/kW, the gap a
held value may bridge, counter roll-over values, state maps and the shift calendar.

:func:`resolve` runs when the gateway config is loaded, so a model that names a tag the
gateway does not read, a counter without a known roll-over, an energy tag without a unit,
or an on-change state tag fails there with ``file:line`` like any other config error.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otconduit.production.calendar import ShiftCalendar
from otconduit.production.model import CounterRef, Loc, err
from otconduit.production.states import StateMap

if TYPE_CHECKING:
    from otconduit.gateway.config import Device, GatewayConfig, Tag

NS = 1_000_000_000
# Units the energy model understands, as factors to kWh and kW (matched in any case).
ENERGY_UNITS = {"wh": 0.001, "kwh": 1.0, "mwh": 1000.0}
POWER_UNITS = {"w": 0.001, "kw": 1.0, "mw": 1000.0}
_ROLLOVER_BITS = {"uint16": 16, "uint32": 32, "uint64": 64}


@dataclass(frozen=True, slots=True)
class TagPlan:
    """A tag the model reads: full historian path, unit factor, gap and roll-over."""

    path: str
    factor: float = 1.0  # to kWh or kW
    max_gap_ns: int | None = None
    rollover: float | None = None


@dataclass(frozen=True, slots=True)
class OeePlan:
    state: TagPlan
    states: StateMap
    produced: TagPlan | None
    good: TagPlan | None
    scrap: TagPlan | None
    planned_cycle_time_s: float


@dataclass(frozen=True, slots=True)
class EnergyPlan:
    kwh: TagPlan | None
    power: TagPlan | None
    part_of: str | None
    demand_period_s: float


@dataclass(frozen=True, slots=True)
class MachinePlan:
    name: str
    line: str
    oee: OeePlan | None
    energy: EnergyPlan | None
    line_output: bool


@dataclass(frozen=True, slots=True)
class ProductionPlan:
    """The production model ready to compute with (see :func:`resolve`)."""

    calendar: ShiftCalendar
    machines: tuple[MachinePlan, ...]
    grid_factor: float | None
    market_factor: float | None

    def lines(self) -> list[str]:
        return list(dict.fromkeys(m.line for m in self.machines))

    def output_of(self, line: str) -> MachinePlan | None:
        """The machine whose good parts are the line's: marked ``line_output``, else the
        line's only machine with an OEE model."""
        ms = [m for m in self.machines if m.line == line]
        marked = [m for m in ms if m.line_output]
        if marked:
            return marked[0]
        counted = [m for m in ms if m.oee is not None]
        return counted[0] if len(counted) == 1 else None


class _Tags:
    """The gateway's tags by relative and full path, for lookups with suggestions."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.prefix = f"{cfg.enterprise}/{cfg.site}/"
        self.by_path: dict[str, tuple[Tag, Device]] = {}
        for d in cfg.devices:
            for t in d.tags:
                self.by_path[t.path] = (t, d)

    def find(self, ref: str, loc: Loc) -> tuple[Tag, Device]:
        rel = ref.strip().strip("/")
        rel = rel.removeprefix(self.prefix)
        hit = self.by_path.get(rel)
        if hit is None:
            close = difflib.get_close_matches(rel, list(self.by_path), n=1, cutoff=0.6)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise err(loc, f"no tag {ref!r} in the gateway's devices{hint}", ref)
        return hit

    def full(self, tag: Tag) -> str:
        return self.prefix + tag.path


def _stale_ns(tag: Tag, device: Device) -> int:
    return round((tag.stale_after or 3 * (tag.interval or device.interval)) * NS)


def _gap(tag: Tag, device: Device, given: float | None, loc: Loc, what: str) -> int:
    """The longest gap a held value bridges: ``given``, else the tag's staleness limit
    when the tag is cyclic. An on-change tag without ``max_gap`` is refused: its
    historian cannot tell a value that did not change from a gateway that was down."""
    if given is not None:
        return round(given * NS)
    if tag.mode != "cyclic":
        raise err(
            loc,
            f"{what} tag {tag.path!r} is reported on change, so the historian cannot tell a "
            "steady value from a gateway that was not running: set 'mode: cyclic' on the "
            "tag (recommended) or give 'max_gap' here",
            tag.path,
        )
    return _stale_ns(tag, device)


def _rollover(tag: Tag, given: float | None) -> float | None:
    if given is not None:
        return given or None
    bits = _ROLLOVER_BITS.get(tag.type)
    if bits is None:
        return None
    scale = tag.scale
    if scale is None:
        return float(2**bits)
    if scale.raw is not None or scale.offset != 0.0:
        return None
    return float(2**bits) * scale.factor


def _unit_factor(tag: Tag, table: dict[str, float], loc: Loc, what: str, units: str) -> float:
    f = table.get(tag.unit.strip().casefold())
    if f is None:
        raise err(
            loc,
            f"{what} tag {tag.path!r} has unit {tag.unit!r}: set the tag's 'unit' to {units}",
            tag.path,
        )
    return f


def _segments(path: str) -> tuple[str, str] | None:
    """(line, cell) of an area/line/cell/tag path, None for shorter paths."""
    parts = path.split("/")
    return (parts[1], parts[2]) if len(parts) == 4 else None


def resolve(cfg: GatewayConfig) -> ProductionPlan | None:
    """Check the production section against the gateway's tags and turn it into a plan.
    Raises a pydantic ``ValidationError`` located in the file (the config loader turns it
    into ``file:line: ...``)."""
    prod = cfg.production
    if prod is None:
        return None
    tags = _Tags(cfg)
    plans: list[MachinePlan] = []
    for i, m in enumerate(prod.machines):
        at: Loc = ("production", "machines", i)
        first_tag: Tag | None = None
        oee_plan: OeePlan | None = None
        energy_plan: EnergyPlan | None = None
        if m.oee is not None:
            o = m.oee
            st, dev = tags.find(o.state.tag, (*at, "oee", "state", "tag"))
            first_tag = st
            gap = _gap(st, dev, o.state.max_gap, (*at, "oee", "state", "tag"), "state")
            counters: dict[str, TagPlan | None] = {}
            for name in ("produced", "good", "scrap"):
                ref: CounterRef | None = getattr(o.counters, name)
                if ref is None:
                    counters[name] = None
                    continue
                ct, _ = tags.find(ref.tag, (*at, "oee", "counters", name, "tag"))
                counters[name] = TagPlan(tags.full(ct), rollover=_rollover(ct, ref.rollover))
            oee_plan = OeePlan(
                TagPlan(tags.full(st), max_gap_ns=gap),
                o.state.state_map(getattr(st, "states", None), (*at, "oee", "state")),
                counters["produced"],
                counters["good"],
                counters["scrap"],
                o.planned_cycle_time,
            )
        if m.energy is not None:
            e = m.energy
            kwh_plan = power_plan = None
            if e.kwh is not None:
                loc = (*at, "energy", "kwh", "tag")
                kt, _ = tags.find(e.kwh.tag, loc)
                first_tag = first_tag or kt
                kwh_plan = TagPlan(
                    tags.full(kt),
                    factor=_unit_factor(kt, ENERGY_UNITS, loc, "energy", "Wh, kWh or MWh"),
                    rollover=_rollover(kt, e.kwh.rollover),
                )
            if e.power is not None:
                loc = (*at, "energy", "power")
                pt, pdev = tags.find(e.power, loc)
                first_tag = first_tag or pt
                # Integrated only without a kWh register; then gaps matter.
                gap_ns = _gap(pt, pdev, e.max_gap, loc, "power") if kwh_plan is None else None
                power_plan = TagPlan(
                    tags.full(pt),
                    factor=_unit_factor(pt, POWER_UNITS, loc, "power", "W, kW or MW"),
                    max_gap_ns=gap_ns,
                )
            energy_plan = EnergyPlan(kwh_plan, power_plan, e.part_of, e.demand_period)
        assert first_tag is not None  # Machine._something
        seg = _segments(first_tag.path)
        machine = m.name or (seg[1] if seg else None)
        line = m.line or (seg[0] if seg else None)
        if not machine or not line:
            raise err(
                at,
                f"give 'name' and 'line': tag path {first_tag.path!r} is not area/line/cell/tag",
            )
        plans.append(MachinePlan(machine, line, oee_plan, energy_plan, m.line_output))
    _check_machines(plans)
    return ProductionPlan(prod.calendar(), tuple(plans), prod.grid_factor, prod.market_factor)


def _check_machines(plans: Sequence[MachinePlan]) -> None:
    seen: dict[str, int] = {}
    for i, p in enumerate(plans):
        at: Loc = ("production", "machines", i)
        if p.name in seen:
            raise err((*at, "name"), f"machine name {p.name!r} is used twice", p.name)
        seen[p.name] = i
    outputs: dict[str, str] = {}
    for i, p in enumerate(plans):
        at = ("production", "machines", i)
        if p.line_output:
            if p.line in outputs:
                raise err(
                    (*at, "line_output"),
                    f"line {p.line!r} already has its output machine {outputs[p.line]!r}",
                )
            if p.oee is None:
                raise err((*at, "line_output"), "a line's output machine needs an 'oee' model")
            outputs[p.line] = p.name
        if p.energy is None or p.energy.part_of is None:
            continue
        parent: str | None = p.energy.part_of
        hops = 0
        while parent is not None:
            j = seen.get(parent)
            target = plans[j] if j is not None else None
            if target is None or target.energy is None:
                raise err(
                    (*at, "energy", "part_of"),
                    f"part_of {parent!r} names no machine with an energy source",
                    parent,
                )
            hops += 1
            if target.name == p.name or hops > len(plans):
                raise err((*at, "energy", "part_of"), "part_of goes round in a circle", parent)
            parent = target.energy.part_of
