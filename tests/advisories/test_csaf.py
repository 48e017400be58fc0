"""Reading CSAF documents: what is kept, and what bad input becomes (one CsafError)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.advisories.csaf import CsafError, parse
from otconduit.advisories.tree import cpe_parts, flatten, purl_parts
from tests.advisories.csafdocs import NAMESPACE, document, dumps, product


def _doc() -> dict[str, Any]:
    return document(
        "EX-2024-001",
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
                "SIMATIC S7-300 CPU 315-2 PN/DP",
                "V3.2.17",
                category="product_version",
            ),
        ],
        {"known_affected": ["P1"], "fixed": ["P2"]},
        remediations=[
            {"category": "mitigation", "details": "Restrict network access", "product_ids": ["P1"]},
            {
                "category": "vendor_fix",
                "details": "Update to V3.2.17 or later",
                "url": "https://example.org/fw",
                "product_ids": ["P1"],
            },
        ],
    )


def test_document_is_read() -> None:
    adv = parse(dumps(_doc()))
    assert (adv.namespace, adv.tracking_id, adv.version) == (NAMESPACE, "EX-2024-001", "1")
    assert adv.cves == ["CVE-2099-0001"] and adv.cvss == 7.5
    assert adv.url == "https://example.org/EX-2024-001.json"
    assert adv.vendors == ["Siemens"]
    p1 = adv.products["P1"]
    assert p1.version == "vers:all/<V3.2.17" and p1.version_source == "product_version_range"
    assert p1.part_numbers == ("6ES7315-2EH14-0AB0",)
    by = {(s.product_id, s.status): s for s in adv.statuses}
    assert set(by) == {("P1", "known_affected"), ("P2", "fixed")}
    # The vendor fix is chosen over a mitigation, with its link.
    assert by["P1", "known_affected"].remediation == (
        "vendor_fix: Update to V3.2.17 or later (https://example.org/fw)"
    )
    assert by["P1", "known_affected"].cvss == 7.5


def test_integer_tracking_version_and_missing_scores() -> None:
    doc = _doc()
    doc["document"]["tracking"]["version"] = 3
    doc["vulnerabilities"][0].pop("scores")
    adv = parse(doc)
    assert adv.version == "3" and adv.cvss is None


def test_tree_variants() -> None:
    """Families, full_product_names with CPE/PURL, relationships and product groups."""
    tree = {
        "branches": [
            {
                "category": "vendor",
                "name": "Acme",
                "branches": [
                    {
                        "category": "product_family",
                        "name": "Line 5",
                        "branches": [
                            {
                                "category": "product_name",
                                "name": "Acme PLC 5",
                                "branches": [
                                    {
                                        "category": "product_version",
                                        "name": "2.1",
                                        "product": {"name": "Acme PLC 5 2.1", "product_id": "FW"},
                                    },
                                    # CISA sometimes files a model under product_version.
                                    {
                                        "category": "product_version",
                                        "name": "M221",
                                        "product": {"name": "Acme M221", "product_id": "HW"},
                                    },
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
        "full_product_names": [
            {
                "name": "Other Gateway 1.0",
                "product_id": "CPE",
                "product_identification_helper": {
                    "cpe": "cpe:2.3:h:other:gateway_x:1.0:*:*:*:*:*:*:*"
                },
            },
            {
                "name": "lib",
                "product_id": "PURL",
                "product_identification_helper": {"purl": "pkg:generic/acme/libfoo@4.2"},
            },
        ],
        "relationships": [
            {
                "category": "installed_on",
                "full_product_name": {"name": "FW 2.1 on M221", "product_id": "REL"},
                "product_reference": "FW",
                "relates_to_product_reference": "HW",
            }
        ],
    }
    got = flatten(tree)
    assert got["FW"].family == "Line 5" and got["FW"].version == "2.1"
    assert got["HW"].product == "Acme PLC 5 M221" and got["HW"].version is None
    assert got["CPE"].vendor == "other" and got["CPE"].product == "gateway x"
    assert got["CPE"].version == "1.0" and got["CPE"].version_source == "cpe"
    assert (got["PURL"].vendor, got["PURL"].version) == ("acme", "4.2")
    assert got["REL"].vendor == "Acme" and got["REL"].version == "2.1"
    assert cpe_parts("cpe:/h:siemens:s7-300:-") == ("siemens", "s7-300", None)
    assert purl_parts("pkg:pypi/requests") == (None, "requests", None)


def test_remediation_through_a_product_group() -> None:
    doc = _doc()
    doc["product_tree"]["product_groups"] = [{"group_id": "G", "product_ids": ["P2"]}]
    doc["vulnerabilities"][0]["remediations"] = [
        {"category": "workaround", "details": "Block port 102", "group_ids": ["G"]}
    ]
    by = {(s.product_id, s.status): s for s in parse(doc).statuses}
    assert by["P2", "fixed"].remediation == "workaround: Block port 102"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"a": 1}', "no 'document'"),
        (b'{"document": {"csaf_version": "1.2"}}', "csaf_version"),
        (b'{"document": {"csaf_version": "2.0"}}', "tracking"),
        (b'{"document": {"csaf_version": "2.0", "tracking": {"id": "X"}}}', "no version"),
        (
            b'{"document": {"csaf_version": "2.0", "tracking": {"id": "X", "version": "1"}}}',
            "publisher",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
)
def test_bad_documents(data: bytes, reason: str) -> None:
    with pytest.raises(CsafError, match=reason):
        parse(data)


def test_deep_product_tree_is_refused() -> None:
    doc = _doc()
    deep: dict[str, Any] = {"category": "vendor", "name": "x"}
    node = deep
    for _ in range(200):
        child: dict[str, Any] = {"category": "product_name", "name": "y"}
        node["branches"] = [child]
        node = child
    doc["product_tree"]["branches"].append(deep)
    with pytest.raises(CsafError, match="deeper"):
        parse(doc)


def _mutate(value: Any, data: st.DataObject) -> Any:
    """Replace random parts of a valid document with random JSON values."""
    junk = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=6,
    )
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k] = data.draw(junk) if data.draw(st.integers(0, 9)) == 0 else _mutate(v, data)
        return out
    if isinstance(value, list):
        return [_mutate(v, data) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_documents_give_a_document_or_a_csaf_error(data: st.DataObject) -> None:
    """The one invariant: whatever the input, parse returns or raises CsafError."""
    doc = _mutate(_doc(), data)
    with contextlib.suppress(CsafError):
        parse(json.dumps(doc).encode())
