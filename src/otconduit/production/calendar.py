"""Shifts in the plant's time zone, and the buckets a report is cut into.

A shift is a daily (or weekday-only) span of local time, e.g. 22:00-06:00, so its length
in real seconds changes on the nights the clocks change; instances are computed from
local dates with :mod:`zoneinfo` and kept as UTC nanoseconds. Time that falls in no shift
is not planned operation time (ISO 22400-2: POT comes from the shift plan).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NS = 1_000_000_000
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFF_SHIFT = "off-shift"

Span = tuple[int, int]  # [start_ns, end_ns)


@dataclass(frozen=True, slots=True)
class ShiftDef:
    """One shift of the plan: local start and end (end <= start: ends the next day)."""

    name: str
    start: time
    end: time
    days: frozenset[int]  # weekdays (0 = Monday) on which the shift *starts*

    @property
    def minutes(self) -> int:
        a = self.start.hour * 60 + self.start.minute
        b = self.end.hour * 60 + self.end.minute
        return b - a if b > a else b - a + 1440


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    name: str
    day: date  # local date the shift starts on
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """A slice of the report window: one row's time (possibly several spans).
    ``shift`` names the shift for ``--by shift`` buckets (else None)."""

    shift: str | None
    start_ns: int
    end_ns: int
    spans: tuple[Span, ...]


def parse_hhmm(text: str) -> time:
    """``HH:MM`` (24 h); 24:00 is not a time of day, use 00:00."""
    try:
        hh, mm = str(text).strip().split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day: use HH:MM (06:00, 22:30)") from None


def overlap(shifts: Sequence[ShiftDef]) -> tuple[ShiftDef, ShiftDef] | None:
    """The first pair of shifts that overlap on some weekday (local clock minutes)."""
    week = 7 * 1440
    spans: list[tuple[int, int, ShiftDef]] = []
    for s in shifts:
        a = s.start.hour * 60 + s.start.minute
        for d in sorted(s.days):
            lo = d * 1440 + a
            hi = lo + s.minutes
            spans.append((lo, min(hi, week), s))
            if hi > week:  # Sunday night into Monday morning
                spans.append((0, hi - week, s))
    spans.sort(key=lambda x: x[0])
    for i, (_lo, hi, s) in enumerate(spans):
        for lo2, _hi2, s2 in spans[i + 1 :]:
            if lo2 >= hi:
                break
            if s2 is not s:
                return (s, s2) if shifts.index(s) < shifts.index(s2) else (s2, s)
    return None


class ShiftCalendar:
    """The plan's shifts in one time zone; an empty plan means 'always planned'."""

    def __init__(self, tz: str, shifts: Sequence[ShiftDef]) -> None:
        self.tz = ZoneInfo(tz)
        self.shifts = tuple(shifts)

    @property
    def always(self) -> bool:
        return not self.shifts

    def local(self, ns: int) -> datetime:
        return datetime.fromtimestamp(ns / NS, UTC).astimezone(self.tz)

    def iso(self, ns: int) -> str:
        """A time as the plant reads it: local ISO 8601 with the UTC offset."""
        return self.local(ns).isoformat(timespec="seconds")

    def _ns(self, d: date, t: time) -> int:
        dt = datetime.combine(d, t, tzinfo=self.tz)
        return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000

    def instances(self, start_ns: int, end_ns: int) -> list[ShiftInstance]:
        """Shift instances that overlap [start, end), in time order (not clipped)."""
        out = []
        first = self.local(start_ns).date() - timedelta(days=1)
        last = self.local(end_ns).date()
        d = first
        while d <= last:
            for s in self.shifts:
                if d.weekday() not in s.days:
                    continue
                a = self._ns(d, s.start)
                end_day = d if s.end > s.start else d + timedelta(days=1)
                b = self._ns(end_day, s.end)
                if b > start_ns and a < end_ns and b > a:
                    out.append(ShiftInstance(s.name, d, a, b))
            d += timedelta(days=1)
        out.sort(key=lambda i: i.start_ns)
        return out

    def planned(self, start_ns: int, end_ns: int) -> list[Span]:
        """The spans of [start, end) inside some shift (all of it with no plan)."""
        if self.always:
            return [(start_ns, end_ns)] if end_ns > start_ns else []
        spans = [
            (max(i.start_ns, start_ns), min(i.end_ns, end_ns))
            for i in self.instances(start_ns, end_ns)
        ]
        return merge(spans)

    def day_starts(self, start_ns: int, end_ns: int) -> Iterator[tuple[date, int, int]]:
        """Local calendar days overlapping [start, end): (date, day start, day end)."""
        d = self.local(start_ns).date()
        while True:
            a = self._ns(d, time(0))
            b = self._ns(d + timedelta(days=1), time(0))
            if a >= end_ns:
                return
            yield d, a, b
            d += timedelta(days=1)


def merge(spans: Sequence[Span]) -> list[Span]:
    """Sorted, non-empty, non-overlapping spans covering the same time."""
    out: list[Span] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def complement(spans: Sequence[Span], start_ns: int, end_ns: int) -> list[Span]:
    """The parts of [start, end) that ``spans`` (merged) do not cover."""
    out: list[Span] = []
    at = start_ns
    for a, b in merge(spans):
        if a > at:
            out.append((at, min(a, end_ns)))
        at = max(at, b)
        if at >= end_ns:
            break
    if at < end_ns:
        out.append((at, end_ns))
    return [s for s in out if s[1] > s[0]]


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The time both span lists cover (each sorted and disjoint)."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def buckets(by: str, cal: ShiftCalendar, start_ns: int, end_ns: int) -> list[Bucket]:
    """The window cut as ``by`` asks: ``machine``/``line`` one bucket, ``shift`` one per
    shift instance (clipped) plus the off-shift time, ``day`` one per local day."""
    if by == "shift":
        out = []
        for i in cal.instances(start_ns, end_ns):
            a, b = max(i.start_ns, start_ns), min(i.end_ns, end_ns)
            out.append(Bucket(i.name, a, b, ((a, b),)))
        off = complement([(b.start_ns, b.end_ns) for b in out], start_ns, end_ns)
        if off:
            out.append(Bucket(OFF_SHIFT, off[0][0], off[-1][1], tuple(off)))
        return out
    if by == "day":
        out = []
        for _d, a, b in cal.day_starts(start_ns, end_ns):
            lo, hi = max(a, start_ns), min(b, end_ns)
            out.append(Bucket(None, lo, hi, ((lo, hi),)))
        return out
    return [Bucket(None, start_ns, end_ns, ((start_ns, end_ns),))]
