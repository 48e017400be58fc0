"""Matching hand-written advisories against assets built from identity claims."""

from __future__ import annotations

from typing import Any

from otconduit.advisories.csaf import parse
from otconduit.advisories.match import (
    Match,
    ProductIndex,
    ProductRecord,
    identity_of,
    match_asset,
)
from otconduit.advisories.normalise import vendor_keys
from tests.advisories.csafdocs import document, product


def records(*docs: dict[str, Any]) -> ProductIndex:
    """What the store would give the matcher for these documents."""
    out = []
    for d in docs:
        adv = parse(d)
        for s in adv.statuses:
            p = adv.products[s.product_id]
            for key in sorted(vendor_keys(p.vendor)) or [""]:
                out.append(
                    ProductRecord(
                        advisory=adv.tracking_id,
                        title=adv.title,
                        url=adv.url,
                        product_id=p.product_id,
                        status=s.status,
                        vendor_key=key,
                        vendor=p.vendor,
                        family=p.family,
                        product=p.product,
                        version=p.version,
                        version_source=p.version_source,
                        full_name=p.full_name,
                        part_numbers=p.part_numbers,
                        cves=s.cves,
                        cvss=s.cvss,
                        vector=s.vector,
                        remediation=s.remediation,
                    )
                )
    return ProductIndex(out)


def asset(*claims: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "ip": "10.0.0.1",
        "identity_claims": [{"attribute": a, "value": v, "source": s} for a, v, s in claims],
    }


def s7(firmware: str | None) -> dict[str, Any]:
    claims = [
        ("vendor", "Siemens", "s7_szl"),
        ("model", "6ES7 315-2EH14-0AB0", "s7_szl"),
        ("product_name", "CPU 315-2 PN/DP", "s7_szl"),
        ("vendor", "XEROX CORPORATION", "oui"),
    ]
    if firmware is not None:
        claims.append(("firmware", firmware, "s7_szl"))
    return asset(*claims)


S7_DOC = document(
    "EX-S7",
    [
        product(
            "P1",
            "Siemens",
            "SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0)",
            "vers:all/<V3.2.17",
            models=["6ES7315-2EH14-0AB0"],
        ),
        product(
            "P2",
            "Siemens",
            "SIMATIC S7-300 CPU 315F-2 PN/DP (6ES7315-2FJ14-0AB0)",
            "vers:all/*",
            models=["6ES7315-2FJ14-0AB0"],
        ),
    ],
    {"known_affected": ["P1", "P2"]},
)


def one(ms: list[Match]) -> Match:
    assert len(ms) == 1, ms
    return ms[0]


def test_inside_the_range_is_affected() -> None:
    m = one(match_asset(s7("V3.2.6"), records(S7_DOC)))
    assert (m.status, m.confidence, m.how) == ("affected", "high", "order_number")
    assert m.record.product_id == "P1"  # not the fail-safe variant, affected in all versions
    assert "model '6ES7 315-2EH14-0AB0' (s7_szl)" in m.matched_on
    assert "6ES7315-2EH14-0AB0" in m.matched_on and "V3.2.6" in m.matched_on


def test_past_the_range_is_fixed() -> None:
    m = one(match_asset(s7("V3.2.17"), records(S7_DOC)))
    assert m.status == "fixed"


def test_unknown_firmware_is_a_candidate() -> None:
    m = one(match_asset(s7(None), records(S7_DOC)))
    assert m.status == "version_unknown" and "firmware unknown" in m.matched_on


def test_before_the_range_is_no_match() -> None:
    doc = document(
        "EX-RANGE",
        [product("P1", "Siemens", "CPU 315-2 PN/DP", ">= V3.2.0 < V3.2.17")],
        {"known_affected": ["P1"]},
    )
    assert match_asset(s7("V3.1.9"), records(doc)) == []
    assert one(match_asset(s7("V3.2.8"), records(doc))).how == "model"


def test_fixed_product_status() -> None:
    doc = document(
        "EX-FIXED",
        [
            product("A", "Siemens", "CPU 315-2 PN/DP", "< V3.2.17"),
            product("F", "Siemens", "CPU 315-2 PN/DP", "V3.2.17", category="product_version"),
        ],
        {"known_affected": ["A"], "fixed": ["F"]},
    )
    m = one(match_asset(s7("V3.2.17"), records(doc)))
    assert m.status == "fixed" and m.record.product_id == "F"


def test_known_not_affected_clears_the_advisory() -> None:
    doc = document(
        "EX-NA",
        [
            product("A", "Siemens", "SIMATIC S7-300 CPU family", "vers:all/*"),
            product(
                "N",
                "Siemens",
                "SIMATIC S7-300 CPU 315-2 PN/DP",
                "vers:all/*",
                models=["6ES7315-2EH14-0AB0"],
            ),
        ],
        {"known_affected": ["A"], "known_not_affected": ["N"]},
    )
    assert match_asset(s7("V3.2.6"), records(doc)) == []


def test_another_vendor_or_variant_never_matches() -> None:
    other = asset(
        ("vendor", "Rockwell Automation/Allen-Bradley", "cip_identity"),
        ("product_name", "CPU 315-2 PN/DP", "cip_identity"),
        ("revision", "3.1", "cip_identity"),
    )
    assert match_asset(other, records(S7_DOC)) == []
    variant = s7("V3.2.6")
    variant["identity_claims"][1]["value"] = "6ES7 315-2EH13-0AB0"  # an older hardware
    assert match_asset(variant, records(S7_DOC)) == []  # part numbers disagree: no name match


def test_rockwell_catalog_number_with_series() -> None:
    doc = document(
        "EX-RA",
        [
            product(
                "P1",
                "Rockwell Automation",
                "1756 ControlLogix EtherNet/IP Communications Modules 1756-ENBT",
                "<= 6.005",
            )
        ],
        {"known_affected": ["P1"]},
    )
    enbt = asset(
        ("vendor", "Rockwell Automation/Allen-Bradley", "cip_identity"),
        ("product_name", "1756-ENBT/A", "cip_identity"),
        ("product_code", "58", "cip_identity"),
        ("revision", "4.3", "cip_identity"),
    )
    m = one(match_asset(enbt, records(doc)))
    assert (m.status, m.how) == ("affected", "order_number")
    assert "1756-ENBT/A" in m.matched_on and "4.3" in m.matched_on
    enbt["identity_claims"][3]["value"] = "6.6"  # 6.006 > 6.005
    assert one(match_asset(enbt, records(doc))).status == "fixed"


def test_schneider_reference_wildcard_and_family() -> None:
    doc = document(
        "EX-SE",
        [
            product(
                "W", "Schneider Electric", "Modicon M340 CPU (part numbers BMXP34*)", "< SV3.51"
            ),
            product("F", "Schneider Electric", "Modicon M580", "vers:all/*"),
        ],
        {"known_affected": ["W", "F"]},
    )
    m340 = asset(
        ("vendor", "Schneider Electric", "modbus_43_14"),
        ("product_code", "BMX P34 2020", "modbus_43_14"),
        ("revision", "v2.6", "modbus_43_14"),
    )
    m = one(match_asset(m340, records(doc)))
    assert (m.status, m.confidence, m.record.product_id) == ("affected", "medium", "W")
    fam = document(
        "EX-SE2",
        [product("F", "Schneider Electric", "Modicon M340", "< 3.01")],
        {"known_affected": ["F"]},
    )
    m = one(match_asset(m340, records(fam)))
    assert (m.how, m.confidence, m.status) == ("family", "low", "affected")


def test_strongest_entry_wins_within_an_advisory() -> None:
    doc = document(
        "EX-TWO",
        [
            product("FAM", "Siemens", "SIMATIC S7-300 CPU family", "< V3.X.99"),
            product(
                "ONE",
                "Siemens",
                "SIMATIC S7-300 CPU 315-2 PN/DP",
                "< V3.2.1",
                models=["6ES7315-2EH14-0AB0"],
            ),
        ],
        {"known_affected": ["FAM", "ONE"]},
    )
    m = one(match_asset(s7("V3.2.6"), records(doc)))
    assert (m.record.product_id, m.status) == ("ONE", "fixed")  # the precise entry decides


def test_identity_without_vendor_or_model_matches_nothing() -> None:
    assert not identity_of(asset(("vendor", "Siemens", "s7_szl"))).usable
    assert not identity_of(asset(("model", "6ES7 315-2EH14-0AB0", "s7_szl"))).usable
    assert match_asset(asset(("vendor", "Siemens", "s7_szl")), records(S7_DOC)) == []


def test_oui_vendor_is_used_only_when_nothing_else_says() -> None:
    a = asset(
        ("vendor", "Siemens AG", "oui"),
        ("model", "6ES7 315-2EH14-0AB0", "s7_szl"),
        ("firmware", "V3.2.6", "s7_szl"),
    )
    assert one(match_asset(a, records(S7_DOC))).status == "affected"


def test_cpe_names_vendor_product_and_version() -> None:
    """A product known only by its CPE (no branches): vendor, name and version from it."""
    doc = document(
        "EX-CPE",
        [],
        {"known_affected": ["C"]},
        extra_tree={
            "full_product_names": [
                {
                    "name": "Acme Widget 3000 firmware",
                    "product_id": "C",
                    "product_identification_helper": {
                        "cpe": "cpe:2.3:h:acme:widget_3000:2.1:*:*:*:*:*:*:*"
                    },
                }
            ]
        },
    )
    widget = asset(
        ("vendor", "ACME Inc.", "modbus_43_14"),
        ("product_code", "Widget 3000", "modbus_43_14"),
        ("revision", "2.1", "modbus_43_14"),
    )
    m = one(match_asset(widget, records(doc)))
    assert (m.status, m.how) == ("affected", "model") and "in 2.1" in m.matched_on
    widget["identity_claims"][2]["value"] = "2.0"
    assert match_asset(widget, records(doc)) == []  # not the version the CPE names
