"""The console shows each asset's risk: a column on the assets page, the reasons on the
asset page (the synthetic plant store, the console started with the plant policy)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import POLICY, Env, make_env
from tests.risk.plantstore import PRESS
from tests.risk.plantstore import build as build_plant


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(build_plant(tmp_path / "c.db"), tmp_path, policy=POLICY)
    yield e
    e.ctx.close()


def test_assets_page_has_a_risk_column(env: Env) -> None:
    r = env.client("viewer").get("/assets")
    assert r.status_code == 200
    assert "<th title=" in r.text and ">Risk</th>" in r.text
    cell = re.search(rf'href="/assets/{re.escape(PRESS)}#risk" title="([^"]*)">(\d+)</a>', r.text)
    assert cell is not None
    assert cell.group(2) == "74"
    assert "+24 1 advisory affects its firmware" in html.unescape(cell.group(1))


def test_asset_page_lists_the_reasons(env: Env) -> None:
    r = env.client("viewer").get(f"/assets/{PRESS}")
    assert r.status_code == 200
    assert 'id="risk"' in r.text and "74 / 100, critical" in r.text
    table = r.text.split('id="risk-reasons"', 1)[1].split("</table>", 1)[0]
    factors = re.findall(r"<tr><td>([a-z ]+)</td><td class=\"num\">(\d+)</td>", table)
    assert factors == [
        ("criticality", "15"),
        ("it reachability", "10"),
        ("dangerous operations", "5"),
        ("cleartext control", "5"),
        ("vulnerabilities", "24"),
        ("alerts", "15"),
    ]


def test_without_policy_the_missing_factors_are_shown(tmp_path: Path) -> None:
    e = make_env(build_plant(tmp_path / "c.db"), tmp_path, policy=None)
    try:
        r = e.client("viewer").get(f"/assets/{PRESS}")
    finally:
        e.ctx.close()
    assert "54 / 100, high" in r.text
    assert "not scored: needs a policy (--policy): zones and conduits" in r.text
