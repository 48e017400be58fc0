"""Vendors, order/catalog numbers and names written the ways devices and advisories do."""

from __future__ import annotations

import pytest

from otconduit.advisories import normalise as nz


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Rockwell Automation/Allen-Bradley", "Rockwell Automation"),  # CIP vs advisory
        ("Allen-Bradley", "Rockwell Automation "),
        ("Siemens AG", "Siemens"),
        ("Schneider Electric Software, LLC", "Schneider Electric"),
        ("General Electric (GE)", "GE Digital"),
        ("Mitsubishi Electric Corporation", " Mitsubishi Electric"),
    ],
)
def test_vendor_keys_agree(a: str, b: str) -> None:
    assert nz.vendor_keys(a) == nz.vendor_keys(b) != frozenset()


def test_vendor_keys_differ_and_split() -> None:
    assert nz.vendor_keys("Siemens") != nz.vendor_keys("Siemens Healthineers")
    assert nz.vendor_keys("Phoenix Contact") != nz.vendor_keys("Phoenix Broadband Technologies")
    assert nz.vendor_keys("ABB, Phoenix Contact, Schneider Electric, Siemens, and WAGO") == {
        "abb",
        "phoenix contact",
        "schneider electric",
        "siemens",
        "wago",
    }


@pytest.mark.parametrize(
    ("device", "advisory"),
    [
        ("6ES7 315-2EH14-0AB0", "6ES7315-2EH14-0AB0"),  # SZL vs advisory spacing
        ("6es7315-2eh14-0ab0", "6ES7 315-2EH14-0AB0"),
        ("1756-ENBT/A", "1756-ENBT"),  # Rockwell series letter
        ("1756-EN2T Series D", "1756-EN2T"),
        ("BMX P34 2020", "BMXP34*"),  # Schneider reference vs wildcard
        ("BMX P34 2020", "BMX P34x"),  # lower-case x is a wildcard in advisories
        ("1756-L83E", "1756-L8x"),
    ],
)
def test_part_numbers_match(device: str, advisory: str) -> None:
    assert nz.part_matches(nz.part_key(device), nz.part_pattern(advisory))


@pytest.mark.parametrize(
    ("device", "advisory"),
    [
        ("6ES7 315-2EH14-0AB0", "6ES7315-2FJ14-0AB0"),  # the F (fail-safe) variant
        ("6ES7 315-2EH14-0AB0", "6AG1315-2EH14-7AB0"),  # the SIPLUS variant
        ("1756-ENBT/A", "1756-EN2T"),
        ("BMX P34 2020", "BMEP58*"),
    ],
)
def test_part_numbers_differ(device: str, advisory: str) -> None:
    assert not nz.part_matches(nz.part_key(device), nz.part_pattern(advisory))


def test_part_numbers_found_in_names() -> None:
    found = nz.find_part_numbers
    assert found("SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0)") == ["6ES7315-2EH14-0AB0"]
    assert found("1756 ControlLogix EtherNet/IP Communications Modules 1756-ENBT") == ["1756-ENBT"]
    assert found("Modicon M340 CPU (part numbers BMXP34*)") == ["BMXP34*"]
    assert found("M340 CPUs BMX P34x") == ["BMX P34x"]
    assert found("Versions released 2018-2019") == []  # a year span is no catalog number
    assert found("SIMATIC S7-300 CPU family") == []


def test_phrases_match_at_word_boundaries() -> None:
    hay = nz.tokens("SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0)")
    assert nz.phrase_in(nz.tokens("CPU 315-2 PN/DP"), hay)
    assert nz.phrase_in(nz.tokens("S7 300"), hay)
    assert not nz.phrase_in(nz.tokens("CPU 315-2F PN/DP"), hay)
    assert not nz.phrase_in(nz.tokens("CPU 31"), hay)  # not inside a word
    assert nz.phrase_in(nz.tokens("BMX P34 2020"), nz.tokens("Modicon BMXP342020 CPU"))


def test_model_like() -> None:
    assert nz.model_like("CPU 315-2 PN/DP") and nz.model_like("M340")
    assert not nz.model_like("PLC") and not nz.model_like("58")  # a CIP product code


def test_families() -> None:
    assert nz.families("siemens", [nz.part_key("6ES7 315-2EH14-0AB0")]) == ["S7-300"]
    assert nz.families("siemens", [nz.part_key("6ES7 151-8AB01-0AB0")]) == ["S7-300"]  # ET 200
    assert nz.families("siemens", ["CPU 1214C DC/DC/DC"]) == ["S7-1200"]
    assert nz.families("rockwell automation", ["1756ENBT"]) == ["ControlLogix"]
    assert "Modicon M340" in nz.families("schneider electric", [nz.part_key("BMX P34 2020")])
    assert nz.families("rockwell automation", ["6ES73152EH140AB0"]) == []


def test_family_entries() -> None:
    family = "SIMATIC S7-300 CPU family (incl. related ET200 CPUs and SIPLUS variants)"
    assert nz.is_family_entry(family, "S7-300")
    assert nz.is_family_entry("Modicon M340", "M340")
    assert not nz.is_family_entry("SIMATIC S7-300 CPU 314C-2 PN/DP", "S7-300")  # one member
    assert not nz.is_family_entry("SIMATIC S7-1500 CPU family", "S7-300")
