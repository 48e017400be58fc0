"""Firmware versions as devices state them, and ranges as advisories write them."""

from __future__ import annotations

import pytest

from otconduit.advisories.versions import RangeKind, Version, parse_range, parse_version


@pytest.mark.parametrize(
    ("text", "main", "extra"),
    [
        ("V3.2.6", (3, 2, 6), ()),  # Siemens SZL
        ("2.003", (2, 3), ()),  # Rockwell revision: major 2, minor 3
        ("Rev 4.1", (4, 1), ()),
        ("v2.6", (2, 6), ()),  # Modbus 43/14 MajorMinorRevision
        ("4.3", (4, 3), ()),  # CIP identity revision
        ("V4.7 HF33", (4, 7), (33,)),
        ("V16 Update 2", (16,), (2,)),
        ("3.40 R5 build 571848", (3, 40), (5, 571848)),
        ("2.6A", (2, 6), (1,)),
        ("V3.X.17", (3, None, 17), ()),
        ("SV3.51", (3, 51), ()),
        ("V19_Update_2", (19,), (2,)),
    ],
)
def test_versions_parse(text: str, main: tuple[int | None, ...], extra: tuple[int, ...]) -> None:
    v = parse_version(text)
    assert v is not None and v.main == main and v.extra == extra


@pytest.mark.parametrize("text", ["", "FB", "the_first_5_digits_of_serial_number_24031", "June/20"])
def test_not_versions(text: str) -> None:
    assert parse_version(text) is None


def test_device_text_after_the_version_is_ignored_only_when_lenient() -> None:
    assert parse_version("V2.1.0 (build of 2019-03-01)") is None
    v = parse_version("V2.1.0 (build of 2019-03-01)", lenient=True)
    assert v is not None and v.main == (2, 1, 0)


def test_order() -> None:
    def v(t: str) -> Version:
        out = parse_version(t)
        assert out is not None
        return out

    assert v("2.003").compare(v("2.3")) == 0  # the same Rockwell revision
    assert v("V3.2.6").compare(v("V3.2.17")) < 0  # numbers, not text
    assert v("1.5.0.0").compare(v("1.5")) == 0
    assert v("V4.6").compare(v("V4.6 Patch 01")) < 0
    assert v("V3.2.6").compare(v("V3.X.17")) < 0  # X takes the device's own value
    assert v("8.1.7.2").compare(v("8.1.x")) == 0  # a trailing x covers the rest


@pytest.mark.parametrize(
    ("text", "constraints"),
    [
        ("vers:all/<V3.2.17", ["<V3.2.17"]),
        ("vers:all/>=V7.80<V9.40", [">=V7.80", "<V9.40"]),  # CISA leaves out the |
        ("vers:generic/>=1.0|<2.0", [">=1.0", "<2.0"]),
        ("All versions < V4.33", ["<V4.33"]),
        ("< V3.X.17", ["<V3.X.17"]),
        ("<= 3.07.11", ["<=3.07.11"]),
        ("prior to v2.3", ["<v2.3"]),
        ("1.5.0.1 and earlier", ["<=1.5.0.1"]),
        ("V2.0 and later", [">=V2.0"]),
        (">= 4.4 | <= 4.12", [">=4.4", "<=4.12"]),
        (">= V2.0 and < V2.1.3", [">=V2.0", "<V2.1.3"]),
        ("1.3.0 | 1.3.1 | 1.3.2", ["=1.3.0", "=1.3.1", "=1.3.2"]),
        ("V3.0 to V3.4", [">=V3.0", "<=V3.4"]),
        ("8.3", ["=8.3"]),
    ],
)
def test_ranges_parse(text: str, constraints: list[str]) -> None:
    r = parse_range(text)
    assert r.kind is RangeKind.constraints
    assert [str(c) for c in r.constraints] == constraints


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("vers:all/*", RangeKind.all),
        ("*", RangeKind.all),
        ("All versions", RangeKind.all),
        ("", RangeKind.unspecified),
        (None, RangeKind.unspecified),
        ("<=the_first_5_digits_of_serial_number_24031", RangeKind.unparsed),
        ("<June/20/2023", RangeKind.unparsed),
        ("All versions with Fortinet NGFW", RangeKind.unparsed),
    ],
)
def test_range_kinds(text: str | None, kind: RangeKind) -> None:
    assert parse_range(text).kind is kind


@pytest.mark.parametrize(
    ("rng", "fw", "inside", "beyond"),
    [
        ("vers:all/<V3.2.17", "V3.2.6", True, False),
        ("vers:all/<V3.2.17", "V3.2.16", True, False),
        ("vers:all/<V3.2.17", "V3.2.17", False, True),  # the fixed release
        ("vers:all/<V3.2.17", "V3.3.0", False, True),
        ("vers:all/>=V7.80<V9.40", "7.0", False, False),  # before the affected releases
        ("vers:all/>=V7.80<V9.40", "V8.1", True, False),
        ("vers:all/>=V7.80<V9.40", "9.40", False, True),
        ("< V3.X.17", "V3.2.6", True, False),
        ("< V3.X.17", "V3.3.17", False, True),
        ("<= 1.6", "1.6", True, False),
        ("1.3.0 | 1.3.1", "1.3.1", True, False),
        ("1.3.0 | 1.3.1", "1.2", False, False),
        ("1.3.0 | 1.3.1", "1.4", False, True),
        (">= V5.4", "V6", True, False),
        (">= V5.4", "V5.3", False, False),  # open at the top: never "fixed"
    ],
)
def test_contains_and_beyond(rng: str, fw: str, inside: bool, beyond: bool) -> None:
    r, v = parse_range(rng), parse_version(fw)
    assert r.contains(v) is inside
    assert r.beyond(v) is beyond


def test_unknown_versions_decide_nothing() -> None:
    assert parse_range("vers:all/<V3.2.17").contains(None) is None
    assert parse_range("<=FB").contains(parse_version("1.0")) is None
    assert parse_range("vers:all/*").contains(None) is True
