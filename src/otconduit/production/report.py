"""What the OEE and energy reports share: the window, the grouping, rows and notes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from otconduit.production.calendar import Bucket, ShiftCalendar, buckets
from otconduit.production.plan import ProductionPlan
from otconduit.production.source import HistorianReader

NS = 1_000_000_000
GROUPINGS = ("machine", "line", "shift", "day")


class ProductionError(Exception):
    """A report cannot be made as asked (no data, no shift plan for --by shift ...);
    the message says why in one line."""


@dataclass
class Report:
    """Rows (plain dicts, ready for a table, JSON or CSV) and notes on what was found
    in the data: counter resets and roll-overs, unknown state values, missing tags."""

    rows: list[dict[str, Any]]
    columns: list[str]
    notes: list[str] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0


def window(
    reader: HistorianReader, paths: Iterable[str], start: int | None, end: int | None
) -> tuple[int, int]:
    """[start, end) in ns: as given, else from the first to (just after) the last sample
    of ``paths``."""
    if start is None or end is None:
        extent = reader.extent(paths)
        if extent is None:
            raise ProductionError(
                f"the historian ({reader.store.target}) has no samples of the production "
                "model's tags: is the gateway running with this config?"
            )
        start = extent[0] if start is None else start
        end = extent[1] + 1 if end is None else end  # the last sample belongs in
    if end <= start:
        raise ProductionError("the report window is empty: --from must be before --to")
    return start, end


def cut(plan: ProductionPlan, by: str, start: int, end: int) -> list[Bucket]:
    """The window's buckets for ``--by``."""
    if by not in GROUPINGS:
        raise ProductionError(f"--by {by!r}: use one of {', '.join(GROUPINGS)}")
    if by == "shift" and plan.calendar.always:
        raise ProductionError(
            "--by shift needs a shift plan: add production.shifts to the gateway config"
        )
    return buckets(by, plan.calendar, start, end)


def seconds(ns: float) -> float:
    return round(ns / NS, 3)


def count(x: float) -> int | float:
    """Counts are whole parts; a scaled counter may not be."""
    r = round(x)
    return int(r) if abs(x - r) < 1e-6 else round(x, 3)


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den > 0 else None


def when(cal: ShiftCalendar, ns: int) -> str:
    return cal.iso(ns)
