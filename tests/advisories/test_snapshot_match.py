"""Matching real identity claims against the real CISA advisories of the snapshot.

The golden is the advisory document itself: each test reads the raw CSAF JSON out of the
archive, finds the product entry naming the device (by model number or name) and its
version range with plain string handling of its own, and checks Conduit's verdict
against it. Identities are those the shared corpus captures state (s7ident: a CPU 315-2
PN/DP 6ES7 315-2EH14-0AB0 with V3.2.6; enip_cip_example: a 1756-ENBT/A revision 4.3;
s7comm_reading_setting_plc_time: an IM151-8 PN/DP CPU that never states its firmware)
and a Modicon M340 as its Modbus 43/14 answer reads (BMX P34 2020, v2.6).
"""

from __future__ import annotations

import json
import re
import tarfile
from functools import cache
from typing import Any

import pytest

from otconduit.advisories.match import Match, match_asset
from otconduit.store import Store
from otconduit.store import advisories as adb
from tests.advisories.conftest import SNAPSHOT, Imported, needs_csaf

pytestmark = needs_csaf


@cache
def raw_documents() -> dict[str, dict[str, Any]]:
    """Tracking id -> the document as CISA published it."""
    out = {}
    with tarfile.open(SNAPSHOT) as tar:
        for m in tar:
            if m.isfile() and re.search(r"/icsm?a-[\w-]+\.json$", m.name):
                f = tar.extractfile(m)
                assert f is not None
                d = json.loads(f.read())
                out[d["document"]["tracking"]["id"]] = d
    return out


def leaves(doc: dict[str, Any]) -> list[tuple[list[str], dict[str, Any]]]:
    """(branch names from the vendor down, product) for every product of a document."""
    out = []

    def walk(branches: list[dict[str, Any]], path: list[str]) -> None:
        for b in branches:
            here = [*path, b.get("name", "")]
            if "product" in b:
                out.append((here, b["product"]))
            walk(b.get("branches", []), here)

    walk(doc["product_tree"].get("branches", []), [])
    return out


def affected_ids(doc: dict[str, Any]) -> set[str]:
    return {
        i for v in doc["vulnerabilities"] for i in v["product_status"].get("known_affected", [])
    }


def entries_for_model(model: str) -> dict[str, str]:
    """Advisory id -> the version range of its known_affected product with this model
    number, read straight from the documents."""
    out = {}
    for tid, doc in raw_documents().items():
        for path, prod in leaves(doc):
            models = prod.get("product_identification_helper", {}).get("model_numbers", [])
            if model in models and prod["product_id"] in affected_ids(doc):
                out[tid] = path[-1]
    return out


def simple_upper(rng: str) -> tuple[int, ...] | None:
    """The upper bound of a plain ``vers:all/<Va.b.c`` range, else None."""
    m = re.fullmatch(r"vers:all/<V(\d+(?:\.\d+)*)", rng)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def asset(*claims: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "ip": "192.0.2.1",
        "identity_claims": [{"attribute": a, "value": v, "source": s} for a, v, s in claims],
    }


def cpu315(firmware: str) -> dict[str, Any]:
    """What s7ident.pcap's SZL answers state (see tests/test_inventory_identity.py)."""
    return asset(
        ("vendor", "Siemens", "s7_szl"),
        ("model", "6ES7 315-2EH14-0AB0", "s7_szl"),
        ("product_name", "CPU 315-2 PN/DP", "s7_szl"),
        ("module_name", "CPU 315-2 PN/DP", "s7_szl"),
        ("firmware", firmware, "s7_szl"),
        ("vendor", "XEROX CORPORATION", "oui"),
    )


@pytest.fixture(scope="module")
def matcher(snapshot_db: Imported) -> Any:
    with Store(snapshot_db.db, readonly=True) as store:
        idx = adb.index(store)

    def run(a: dict[str, Any]) -> dict[str, Match]:
        return {m.record.advisory: m for m in match_asset(a, idx)}

    return run


@pytest.mark.parametrize("firmware", ["V3.2.6", "V3.2.17", "V3.2.19"])
def test_s7_300_cpu_against_every_advisory_naming_its_order_number(
    matcher: Any, firmware: str
) -> None:
    got = matcher(cpu315(firmware))
    fw = tuple(int(x) for x in firmware[1:].split("."))
    golden = entries_for_model("6ES7315-2EH14-0AB0")
    assert {"ICSA-19-283-02", "ICSA-20-105-08", "ICSA-22-104-06"} <= set(golden)
    checked = 0
    for tid, rng in golden.items():
        m = got.get(tid)
        assert m is not None, f"{tid} names 6ES7315-2EH14-0AB0 ({rng}) but did not match"
        if rng == "vers:all/*":
            assert m.status == "affected", (tid, m)
        elif (top := simple_upper(rng)) is not None:
            want = "affected" if fw < top else "fixed"
            assert m.status == want, (tid, rng, firmware, m)
            checked += 1
        if m.how == "order_number":
            assert m.confidence == "high" and "6ES7315-2EH14-0AB0" in m.matched_on
    assert checked >= 6
    # Precision: every order-number match is in a document that names this order number.
    for tid, m in got.items():
        if m.how == "order_number":
            assert "6ES7315-2EH14-0AB0" in json.dumps(raw_documents()[tid]), tid


def test_s7_300_family_entries(matcher: Any) -> None:
    """ICSA-17-339-01 names the whole 'SIMATIC S7-300 CPU family' with '< V3.X.16'."""
    doc = raw_documents()["ICSA-17-339-01"]
    ranges = [p[-1] for p, _ in leaves(doc) if "S7-300 CPU family" in p[-2]]
    assert ranges == ["< V3.X.16"]
    m = matcher(cpu315("V3.2.6"))["ICSA-17-339-01"]
    assert (m.status, m.how, m.confidence) == ("affected", "family", "low")
    assert matcher(cpu315("V3.2.16"))["ICSA-17-339-01"].status == "fixed"


def test_unknown_firmware_gives_candidates(matcher: Any) -> None:
    """The IM151-8 PN/DP CPU of s7comm_reading_setting_plc_time.pcap states no firmware."""
    im151 = asset(
        ("vendor", "Siemens", "s7_szl"),
        ("model", "6ES7 151-8AB01-0AB0", "s7_szl"),
        ("module_name", "IM151-8 PN/DP CPU", "s7_szl"),
        ("hardware_version", "3", "s7_szl"),
    )
    got = matcher(im151)
    golden = entries_for_model("6ES7151-8AB01-0AB0")
    assert golden["ICSA-19-283-02"] == "vers:all/<V3.2.17"
    assert golden["ICSA-20-105-08"] == "vers:all/*"
    assert got["ICSA-19-283-02"].status == "version_unknown"
    assert got["ICSA-20-105-08"].status == "affected"  # every version is affected
    for tid, rng in golden.items():
        assert got[tid].status == ("affected" if rng == "vers:all/*" else "version_unknown")


def test_rockwell_1756_enbt(matcher: Any) -> None:
    """enip_cip_example.pcap: CIP identity 1756-ENBT/A, revision 4.3."""
    doc = raw_documents()["ICSA-18-310-02"]
    names = [(p, prod) for p, prod in leaves(doc) if p[-2].endswith("1756-ENBT")]
    assert len(names) == 1 and names[0][0][-1] == "vers:all/*"
    enbt = asset(
        ("vendor", "Rockwell Automation/Allen-Bradley", "cip_identity"),
        ("product_name", "1756-ENBT/A", "cip_identity"),
        ("product_code", "58", "cip_identity"),
        ("revision", "4.3", "cip_identity"),
        ("device_type", "Communications Adapter", "cip_identity"),
    )
    got = matcher(enbt)
    m = got["ICSA-18-310-02"]
    assert (m.status, m.how, m.record.product_id) == (
        "affected",
        "order_number",
        names[0][1]["product_id"],
    )
    assert m.record.cvss == 8.6 and m.record.cves == ("CVE-2018-17924",)
    for tid in got:  # nothing without 1756-ENBT or ControlLogix in it
        text = json.dumps(raw_documents()[tid])
        assert "1756-ENBT" in text or "ControlLogix" in text, tid


def test_schneider_modicon_m340(matcher: Any) -> None:
    m340 = asset(
        ("vendor", "Schneider Electric", "modbus_43_14"),
        ("product_code", "BMX P34 2020", "modbus_43_14"),
        ("revision", "v2.6", "modbus_43_14"),
    )
    docs = raw_documents()
    pattern = [p for p, _ in leaves(docs["ICSA-23-201-01"]) if "BMXP34*" in p[-2]]
    assert pattern and pattern[0][-1] == "< SV3.51"
    fam = [p for p, _ in leaves(docs["ICSA-19-183-01"]) if p[-2] == "Modicon M340"]
    assert fam and fam[0][-1] == "< 3.01"
    got = matcher(m340)
    assert (got["ICSA-23-201-01"].status, got["ICSA-23-201-01"].how) == ("affected", "order_number")
    assert (got["ICSA-19-183-01"].status, got["ICSA-19-183-01"].how) == ("affected", "family")
    assert got["ICSA-21-194-02"].status == "affected"  # BMXP34*, all versions
    m340["identity_claims"][2]["value"] = "v3.60"
    got = matcher(m340)
    assert got["ICSA-23-201-01"].status == "fixed" and got["ICSA-19-183-01"].status == "fixed"
    assert got["ICSA-21-194-02"].status == "affected"
