"""The pure parts: state maps (PackML built in), the shift calendar (time zones, clock
changes, overlaps), held values with unknown time, and counters (roll-over, reset)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.production.calendar import (
    OFF_SHIFT,
    ShiftCalendar,
    ShiftDef,
    buckets,
    complement,
    intersect,
    overlap,
    parse_hhmm,
)
from otconduit.production.series import Reading, held, increments
from otconduit.production.states import PACKML_STATES, Category, build_state_map

NS = 1_000_000_000
ALL = frozenset(range(7))


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * NS


# -- states ---------------------------------------------------------------------------


def test_packml_built_in() -> None:
    m = build_state_map(None, [], [], ["Held"])
    assert len(PACKML_STATES) == 18
    assert m.resolve(6) == ("Execute", Category.PRODUCING)
    assert m.resolve(6.0) == ("Execute", Category.PRODUCING)  # the historian's float
    assert m.resolve("EXECUTE") == ("Execute", Category.PRODUCING)  # a StateName node
    assert m.resolve("11") == ("Held", Category.PLANNED_STOP)
    assert m.resolve(4) == ("Idle", Category.DOWN)  # in no list: down
    assert m.resolve(42) is None and m.resolve(6.5) is None and m.resolve(None) is None


def test_custom_map_errors() -> None:
    with pytest.raises(ValueError, match="producing: state 'Go'"):
        build_state_map({1: "Run"}, ["Go"], [], [])
    with pytest.raises(ValueError, match="producing: name the state"):
        build_state_map({1: "Run"}, [], [], [])
    m = build_state_map({1: "Run", 2: "Stop"}, ["1"], [], [])  # by number
    assert m.resolve(True) == ("Run", Category.PRODUCING)


# -- calendar -------------------------------------------------------------------------


def test_night_shift_across_the_clock_changes() -> None:
    """Europe/Berlin: the night into Sunday 2026-03-29 has 7 hours, into 2026-10-25 nine."""
    night = ShiftDef("night", parse_hhmm("22:00"), parse_hhmm("06:00"), ALL)
    cal = ShiftCalendar("Europe/Berlin", [night])
    spring = cal.instances(ns("2026-03-28T23:00:00+00:00"), ns("2026-03-29T02:00:00+00:00"))
    assert [(i.end_ns - i.start_ns) / 3600 / NS for i in spring] == [7.0]
    assert cal.iso(spring[0].start_ns) == "2026-03-28T22:00:00+01:00"
    assert cal.iso(spring[0].end_ns) == "2026-03-29T06:00:00+02:00"
    autumn = cal.instances(ns("2026-10-24T23:00:00+00:00"), ns("2026-10-25T02:00:00+00:00"))
    assert [(i.end_ns - i.start_ns) / 3600 / NS for i in autumn] == [9.0]


def test_weekdays_and_off_shift_buckets() -> None:
    early = ShiftDef("early", parse_hhmm("06:00"), parse_hhmm("14:00"), frozenset(range(5)))
    cal = ShiftCalendar("UTC", [early])
    fri, mon = ns("2026-03-06T00:00:00+00:00"), ns("2026-03-09T00:00:00+00:00")
    got = buckets("shift", cal, fri, mon)
    assert [b.shift for b in got] == ["early", OFF_SHIFT]  # none on Saturday or Sunday
    assert (got[0].end_ns - got[0].start_ns) == 8 * 3600 * NS
    assert sum(b - a for a, b in got[1].spans) == (72 - 8) * 3600 * NS
    days = buckets("day", cal, fri + 3600 * NS, mon)
    assert len(days) == 3 and days[0].start_ns == fri + 3600 * NS


def test_overlap_detection() -> None:
    a = ShiftDef("a", parse_hhmm("06:00"), parse_hhmm("14:00"), ALL)
    b = ShiftDef("b", parse_hhmm("14:00"), parse_hhmm("22:00"), ALL)
    c = ShiftDef("c", parse_hhmm("22:00"), parse_hhmm("06:00"), ALL)
    assert overlap([a, b, c]) is None
    late_night = ShiftDef("n", parse_hhmm("21:00"), parse_hhmm("07:00"), frozenset({6}))
    assert overlap([a, late_night]) == (a, late_night)  # Sunday night into Monday
    assert overlap([b, late_night]) == (b, late_night)


def test_span_helpers() -> None:
    assert complement([(2, 3), (5, 7)], 0, 10) == [(0, 2), (3, 5), (7, 10)]
    assert intersect([(0, 4), (6, 10)], [(3, 7)]) == [(3, 4), (6, 7)]


# -- held values ----------------------------------------------------------------------


def _n(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) else None


def test_held_marks_gaps_bad_and_the_start_unknown() -> None:
    rs = [Reading(10, 1, True), Reading(20, 2, True), Reading(60, 3, True), Reading(65, 4, False)]
    out = held(rs, 0, 80, 15, _n)
    got = [(h.start, h.end, h.value) for h in out]
    assert got == [(0, 10, None), (10, 20, 1.0), (20, 60, None), (60, 65, 3.0), (65, 80, None)]


def test_held_carries_in_and_tallies_rejected() -> None:
    rejected: dict[str, float] = {}
    rs = [Reading(5 * NS, "x", True), Reading(8 * NS, 2, True)]
    out = held(rs, 0, 10 * NS, 4 * NS, _n, carry=Reading(-1 * NS, 7, True), rejected=rejected)
    # the carried reading is 6 s before the next (beyond the gap), then "x" is no number
    assert [(h.start, h.end, h.value) for h in out] == [(0, 8 * NS, None), (8 * NS, 10 * NS, 2.0)]
    assert rejected == {"'x'": 3.0}
    out = held([Reading(2 * NS, 1, True)], 0, 4 * NS, 4 * NS, _n, carry=Reading(-1 * NS, 7, True))
    assert [h.value for h in out] == [7.0, 1.0]


# -- counters -------------------------------------------------------------------------


def test_counter_rollover_reset_and_bad_readings() -> None:
    rs = [Reading(1, 65530, True), Reading(2, 4, True), Reading(3, 0, False), Reading(4, 10, True)]
    rs += [Reading(5, 3, True), Reading(6, 3.0, True)]
    incs, events = increments(rs, 65500, 65536)
    assert incs == [(1, 30), (2, 10), (4, 6), (5, 3)]
    assert [(e.kind, e.before, e.after, e.counted) for e in events] == [
        ("rollover", 65530, 4, 10),
        ("reset", 10, 3, 3),
    ]
    incs, events = increments([Reading(1, 5, True), Reading(2, 9, True)], None, None)
    assert incs == [(2, 4)] and not events  # no baseline: the first reading is one


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=30_000), min_size=1, max_size=60),
    start=st.integers(min_value=0, max_value=65_535),
)
def test_counter_sum_survives_any_number_of_wraps(steps: list[int], start: int) -> None:
    """A uint16 counter read often enough (under half a turn between reads) loses nothing
    however often it wraps."""
    value, rs = start, []
    for i, d in enumerate(steps):
        value = (value + d) % 65536
        rs.append(Reading(i, value, True))
    incs, events = increments(rs, start, 65536)
    assert sum(v for _t, v in incs) == sum(steps)
    assert all(e.kind == "rollover" for e in events)


def test_iso_uses_the_plant_zone() -> None:
    cal = ShiftCalendar("America/New_York", [])
    t = int(datetime(2026, 7, 1, 12, tzinfo=UTC).timestamp()) * NS
    assert cal.iso(t) == "2026-07-01T08:00:00-04:00"
    assert cal.planned(0, 10) == [(0, 10)]  # no plan: always planned
