"""The ``production:`` section of ``gateway.yaml``: per machine, its OEE model (state tag
and state map, part counters, planned cycle time) and its energy source, plus the plant's
shift calendar and CO2e factors.

Everything here names tags the gateway already reads, so a model cannot refer to data
that is never collected: :func:`otconduit.production.plan.resolve` checks each reference
against the devices' tags and reports a mistake at its own place in the file
(``file:line``), like every other gateway config error. Example:
``examples/gateway-plant.yaml``.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from otconduit.detect.config import parse_duration
from otconduit.production.calendar import DAYS, ShiftCalendar, ShiftDef, overlap, parse_hhmm
from otconduit.production.states import PACKML_STATES, StateMap, build_state_map

Loc = tuple[str | int, ...]
StateName = str | int


def err(loc: Loc, message: str, value: Any = None) -> ValidationError:
    """A validation error at ``loc`` (below the model raising it), so the loader can name
    the exact line; pydantic prefixes the location of the enclosing model."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}),
        loc=loc,
        input=value,
    )
    return ValidationError.from_exception_data("production", [detail])


def _duration(v: Any) -> Any:
    return v if v is None else parse_duration(v)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CounterRef(_Strict):
    """A counter tag. ``rollover`` is the value at which it wraps to 0 (default: the
    tag's unsigned type, e.g. 4294967296 for uint32; 0 = never wraps)."""

    tag: str
    rollover: float | None = Field(default=None, ge=0)


def _counter(v: Any) -> Any:
    return {"tag": v} if isinstance(v, str) else v


class StateModel(_Strict):
    """The state tag and what its values mean. ``names`` maps values to state names;
    without it, the tag's own ``states`` map, else PackML's 0-17 (Execute = producing).
    States in no list count as down time."""

    tag: str
    names: dict[int, str] | Literal["packml"] | None = None
    producing: list[StateName] = Field(default_factory=list)
    down: list[StateName] = Field(default_factory=list)
    planned_stop: list[StateName] = Field(default_factory=list)
    # Longest gap between two samples that still says the state held in between; default:
    # the tag's staleness limit (the tag must be `mode: cyclic`, see resolve()).
    max_gap: Annotated[float, Field(gt=0)] | None = None

    @field_validator("max_gap", mode="before")
    @classmethod
    def _gap(cls, v: Any) -> Any:
        return _duration(v)

    def state_map(self, tag_states: Any, at: Loc) -> StateMap:
        """The map for this tag (``tag_states``: the gateway tag's ``states``, if any);
        a state the map does not have is reported at its place in the list."""
        names = self.names if self.names is not None else tag_states
        table: dict[int, str] = (
            dict(PACKML_STATES) if names is None or names == "packml" else dict(names)
        )
        known = {n.casefold(): n for n in table.values()}
        for field in ("producing", "down", "planned_stop"):
            for i, item in enumerate(getattr(self, field)):
                text = str(item).strip()
                ok = int(text) in table if text.isdecimal() else text.casefold() in known
                if not ok:
                    close = difflib.get_close_matches(text, list(table.values()), n=1)
                    hint = f": did you mean {close[0]!r}?" if close else ""
                    raise err(
                        (*at, field, i),
                        f"state {item!r} is not in the state map{hint} "
                        f"(states: {', '.join(table.values())})",
                        item,
                    )
        try:
            return build_state_map(
                None if names is None or names == "packml" else table,
                [str(x) for x in self.producing],
                [str(x) for x in self.down],
                [str(x) for x in self.planned_stop],
            )
        except ValueError as exc:
            field, _, text = str(exc).partition(": ")
            if field in type(self).model_fields:
                raise err((*at, field), text) from None
            raise err(at, str(exc)) from None


class Counters(_Strict):
    """Part counters; give at least two of produced, good and scrap (the third follows)."""

    produced: CounterRef | None = None
    good: CounterRef | None = None
    scrap: CounterRef | None = None

    @field_validator("produced", "good", "scrap", mode="before")
    @classmethod
    def _as_ref(cls, v: Any) -> Any:
        return _counter(v)

    @model_validator(mode="after")
    def _two(self) -> Counters:
        given = [n for n in ("produced", "good", "scrap") if getattr(self, n) is not None]
        if len(given) < 2:
            raise ValueError(
                "give at least two of produced, good and scrap counters (the third is their "
                f"sum or difference); only {', '.join(given) or 'none'} given"
            )
        return self


class OeeModel(_Strict):
    """What ISO 22400-2's OEE index needs from one machine."""

    state: StateModel
    counters: Counters
    planned_cycle_time: Annotated[float, Field(gt=0)]  # PRI: planned run time per unit, s

    @field_validator("planned_cycle_time", mode="before")
    @classmethod
    def _pri(cls, v: Any) -> Any:
        return _duration(v)


class EnergyModel(_Strict):
    """Where a machine's energy comes from: a meter's cumulative ``kwh`` register
    (preferred: nothing is lost between readings) or a ``power`` tag integrated over time;
    with both, ``power`` only gives the peak. ``part_of`` names the machine whose meter
    already includes this one (a sub-meter), so line totals count it once."""

    kwh: CounterRef | None = None
    power: str | None = None
    max_gap: Annotated[float, Field(gt=0)] | None = None  # power integration, as for states
    part_of: str | None = None
    demand_period: Annotated[float, Field(gt=0)] = 900.0  # peak from kWh alone: 15-min mean

    @field_validator("kwh", mode="before")
    @classmethod
    def _as_ref(cls, v: Any) -> Any:
        return _counter(v)

    @field_validator("max_gap", "demand_period", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _duration(v)

    @model_validator(mode="after")
    def _source(self) -> EnergyModel:
        if self.kwh is None and self.power is None:
            raise ValueError("give 'kwh' (a cumulative energy tag) or 'power' (kW or W)")
        return self


class Machine(_Strict):
    """One machine; ``name`` and ``line`` default to the cell and line segments of its
    tags' ISA-95 paths (area/line/cell/tag)."""

    name: str | None = None
    line: str | None = None
    oee: OeeModel | None = None
    energy: EnergyModel | None = None
    line_output: bool = False  # its good parts are the line's (for kWh per good part)

    @model_validator(mode="after")
    def _something(self) -> Machine:
        if self.oee is None and self.energy is None:
            raise ValueError("a machine needs an 'oee' model, an 'energy' source, or both")
        return self


class Shift(_Strict):
    name: str
    start: str  # HH:MM local time
    end: str  # HH:MM; at or before start: the next day
    days: list[str] = Field(default_factory=lambda: list(DAYS))

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        if isinstance(v, int):  # YAML 1.1 reads 06:00 unquoted as 360 (sexagesimal)
            v = f"{v // 60:02d}:{v % 60:02d}"
        parse_hhmm(str(v))
        return str(v)

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        for i, d in enumerate(v):
            if d.strip().lower()[:3] not in DAYS:
                raise err((i,), f"{d!r} is not a weekday ({', '.join(DAYS)})", d)
        return v

    def definition(self) -> ShiftDef:
        days = frozenset(DAYS.index(d.strip().lower()[:3]) for d in self.days)
        return ShiftDef(self.name, parse_hhmm(self.start), parse_hhmm(self.end), days)


class Production(_Strict):
    """The ``production:`` section."""

    timezone: str = "UTC"  # IANA name of the plant's time zone, e.g. Europe/Berlin
    shifts: list[Shift] = Field(default_factory=list)
    grid_factor: float | None = Field(default=None, ge=0)  # kg CO2e/kWh, location-based
    market_factor: float | None = Field(default=None, ge=0)  # kg CO2e/kWh, market-based
    machines: list[Machine]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}: use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return v

    @model_validator(mode="after")
    def _plan(self) -> Production:
        names = [s.name for s in self.shifts]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise err(("shifts", i, "name"), f"shift name {n!r} is used twice", n)
        defs = [s.definition() for s in self.shifts]
        for i, s in enumerate(defs):
            if s.minutes <= 0 or s.start == s.end:
                raise err(("shifts", i), f"shift {s.name!r} starts when it ends")
        pair = overlap(defs)
        if pair is not None:
            i = defs.index(pair[1])
            raise err(
                ("shifts", i, "start"),
                f"shift {pair[1].name!r} overlaps shift {pair[0].name!r}: a moment belongs to "
                "one shift at most",
            )
        return self

    def calendar(self) -> ShiftCalendar:
        return ShiftCalendar(self.timezone, [s.definition() for s in self.shifts])
