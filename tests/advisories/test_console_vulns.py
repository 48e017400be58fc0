"""The console's vulnerabilities page and each asset's list, on the hand-built store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.advisories.handstore import build
from tests.console.conftest import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(build(tmp_path / "c.db"), tmp_path, policy=None)
    yield e
    e.ctx.close()


def rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr class="vuln-([a-z_]+)">', body)


def test_page_sorted_by_risk(env: Env) -> None:
    c = env.client("viewer")
    r = c.get("/vulnerabilities")
    assert r.status_code == 200
    # affected first, then the candidates, fixed last
    assert rows(r.text) == ["affected", "version_unknown", "version_unknown", "fixed"]
    assert "2 advisories imported" in r.text
    assert 'href="https://example.org/EX-HIGH.json"' in r.text  # the advisory's own link
    assert 'href="/assets/10.0.0.1"' in r.text
    assert "Identities no imported advisory names" in r.text and "Widget 3000" in r.text
    assert rows(c.get("/vulnerabilities?status=fixed").text) == ["fixed"]
    assert rows(c.get("/vulnerabilities?min_cvss=9").text) == ["affected", "version_unknown"]
    assert rows(c.get("/vulnerabilities?q=ex-low").text) == ["version_unknown", "fixed"]
    assert c.get("/vulnerabilities?min_cvss=11").status_code in (400, 422)


def test_asset_list(env: Env) -> None:
    c = env.client("viewer")
    r = c.get("/assets/10.0.0.2/vulnerabilities")
    assert r.status_code == 200 and rows(r.text) == ["version_unknown", "version_unknown"]
    r = c.get("/assets/10.0.0.3/vulnerabilities")
    assert "No imported advisory names this device" in r.text and rows(r.text) == []


def test_needs_a_login(env: Env) -> None:
    r = env.client().get("/vulnerabilities", follow_redirects=False)
    assert r.status_code in (303, 401)
