"""Historian samples turned into what OEE and energy need: values held over time, with
the time nobody knows about marked as such, and counter increments with roll-overs and
resets handled. Pure functions over readings; :mod:`.source` reads the historian.

A historian sample says what the gateway saw at one moment. Between two samples of a
cyclic tag the value held if they are at most ``max_gap`` apart; a longer gap, a
bad or stale sample, a value the state map does not know, and the time before the
first sample are *unknown*: never silently counted as down or as zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Reading:
    """One historian sample: time (ns since the epoch), decoded value, good quality?"""

    ts: int
    value: object
    good: bool


@dataclass(frozen=True, slots=True)
class Held(Generic[T]):
    """A value that held over [start, end); ``value`` None: unknown."""

    start: int
    end: int
    value: T | None


def held(
    readings: Sequence[Reading],
    start: int,
    end: int,
    max_gap_ns: int | None,
    parse: Callable[[object], T | None],
    carry: Reading | None = None,
    rejected: dict[str, float] | None = None,
) -> list[Held[T]]:
    """The window [start, end) cut into spans of held values (adjacent equal values
    merged). ``carry`` is the last reading before ``start``. A good reading whose value
    ``parse`` rejects is unknown time, tallied in ``rejected`` (seconds per value)."""
    points = [r for r in readings if start <= r.ts < end]
    if carry is not None and carry.ts < start:
        points.insert(0, carry)
    out: list[Held[T]] = []

    def add(a: int, b: int, v: T | None) -> None:
        a, b = max(a, start), min(b, end)
        if b <= a:
            return
        if out and out[-1].end == a and out[-1].value == v:
            out[-1] = Held(out[-1].start, b, v)
        else:
            out.append(Held(a, b, v))

    if not points:
        add(start, end, None)
        return out
    add(start, points[0].ts, None)
    for i, r in enumerate(points):
        nxt = points[i + 1].ts if i + 1 < len(points) else end
        value: T | None = None
        if r.good and (max_gap_ns is None or nxt - r.ts <= max_gap_ns):
            value = parse(r.value)
            if value is None and rejected is not None:
                key = repr(r.value)
                span = max(min(nxt, end) - max(r.ts, start), 0)
                rejected[key] = rejected.get(key, 0.0) + span / 1e9
        add(r.ts, nxt, value)
    return out


def as_number(value: object) -> float | None:
    """A numeric reading (bools count as 0/1); None for text and missing values."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        f = float(value)
        return None if math.isnan(f) else f
    return None


@dataclass(frozen=True, slots=True)
class CounterEvent:
    """A counter that went down: it wrapped at its roll-over value, or was reset (to 0,
    by the PLC at a shift change or by an operator)."""

    kind: Literal["rollover", "reset"]
    ts: int
    before: float
    after: float
    counted: float  # what was added for this reading


def increments(
    readings: Iterable[Reading], baseline: float | None, rollover: float | None
) -> tuple[list[tuple[int, float]], list[CounterEvent]]:
    """(time, increase) at each good reading of a counter, from ``baseline`` (the last
    good value before the window; None: the first reading is the baseline).

    A drop is a roll-over when wrapping at ``rollover`` explains it with less than half
    a turn; otherwise a reset, and the new value is what was counted since the reset
    (as Prometheus' ``increase()`` does). Bad and stale readings are skipped: the next
    good one carries the whole increase, so no part is lost to a gap."""
    out: list[tuple[int, float]] = []
    events: list[CounterEvent] = []
    prev = baseline
    for r in readings:
        v = as_number(r.value) if r.good else None
        if v is None:
            continue
        if prev is None:
            prev = v
            continue
        d = v - prev
        if d < 0 and -d <= 1e-9 * max(abs(prev), 1.0):
            d = 0.0  # float noise, not a drop
        if d < 0:
            wrapped = (rollover - prev + v) if rollover else None
            if wrapped is not None and 0 <= wrapped < rollover / 2:  # type: ignore[operator]
                d = wrapped
                events.append(CounterEvent("rollover", r.ts, prev, v, d))
            else:
                d = max(v, 0.0)
                events.append(CounterEvent("reset", r.ts, prev, v, d))
        if d:
            out.append((r.ts, d))
        prev = v
    return out, events


def overlap(a: int, b: int, spans: Sequence[Span]) -> int:
    """Nanoseconds of [a, b) inside ``spans`` (sorted, disjoint)."""
    total = 0
    for s, e in spans:
        if e <= a:
            continue
        if s >= b:
            break
        total += min(b, e) - max(a, s)
    return total


def inside(ts: int, spans: Sequence[Span]) -> bool:
    return any(s <= ts < e for s, e in spans)
