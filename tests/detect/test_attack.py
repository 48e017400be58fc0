"""The shipped ATT&CK table, the rule catalogue and the README coverage table agree."""

from __future__ import annotations

import json
import re

from otconduit.detect.attack import attack_table
from otconduit.detect.coverage import coverage
from otconduit.detect.rules import CATEGORIES, RULES
from otconduit.detect.runbooks import runbooks
from scripts.build_attack_table import build
from tests.conftest import REPO, SHARED, needs_shared

BUNDLE = SHARED / "reference" / "mitre-ics-attack.json"


def test_every_rule_maps_to_live_techniques() -> None:
    table = attack_table()
    for r in RULES.values():
        # The sensor's own health and a machine's wear are no adversary technique; every
        # other rule is.
        assert r.techniques or r.category in ("sensor-health", "predictive-maintenance"), r.id
        for t in r.techniques:
            assert t in table.techniques, (r.id, t)
        assert r.category in CATEGORIES, r.id


def test_every_category_has_a_complete_runbook() -> None:
    books = runbooks()
    assert set(books) == set(CATEGORIES)
    for b in books.values():
        assert b.involve and b.it_steps and b.ot_steps and b.do_not, b.category
    # The one thing never to do on a live process is in the controller runbook.
    assert any("PLC" in s and "power-cycle" in s for s in books["controller-state"].do_not)


@needs_shared
def test_shipped_table_is_what_the_script_derives_from_the_bundle() -> None:
    shipped = json.loads((REPO / "src/otconduit/detect/data/attack_ics.json").read_text())
    derived = build(json.loads(BUNDLE.read_text()))
    assert derived == shipped
    # Spot facts from the bundle itself, independent of our script.
    raw = json.loads(BUNDLE.read_text())
    names = {
        ref["external_id"]: o["name"]
        for o in raw["objects"]
        if o["type"] == "attack-pattern" and not o.get("revoked")
        for ref in o.get("external_references", [])
        if ref.get("source_name") == "mitre-attack"
    }
    for tid, tech in attack_table().techniques.items():
        assert names[tid] == tech.name


def test_readme_coverage_table_is_current() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- attack-coverage:start", 1)[1].split("<!-- attack-coverage:end", 1)[0]
    cov = coverage()
    assert f"**{cov.detected} of {cov.total} techniques**" in block
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| (T\d{4}) \|.*\| ([^|]+) \|$", block, re.M)
    }
    expected = {r["id"]: ", ".join(r["rules"]) for r in cov.rows if r["rules"]}
    assert {k: v.strip() for k, v in rows.items()} == expected
    assert cov.detected >= 30
