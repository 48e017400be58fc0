"""The map in real chromium: its legend names every node and edge style the map draws
(in the colour it is drawn in), and a click on a zone opens that zone, as the legend says
-- on the whole-plant view too, not only when zones stand in for too many assets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.server import BackgroundServer
from tests.console.conftest import Env, make_env
from tests.console.test_browser import _login, browser, needs_chromium  # noqa: F401
from tests.console.test_map_filters import crowded_db  # noqa: F401

pytestmark = pytest.mark.browser

ELEMENTS = """window.conduitMap.elements().map(e => ({
  edge: e.isEdge(), kind: e.data('kind'), source: e.data('level_source'),
  verdict: e.data('verdict'),
  colour: e.isEdge() ? e.style('line-color') : e.style('background-color')}))"""
LEGEND = """Array.from(document.querySelectorAll('#legend [data-legend]')).map(k => ({
  key: k.dataset.legend, colour: getComputedStyle(k.querySelector('i')).backgroundColor}))"""


def _key(e: dict[str, Any]) -> str:
    if e["edge"]:
        return f"edge-{e['verdict']}"
    if e["kind"] == "asset":
        return "asset" if e["source"] == "policy" else f"asset-{e['source']}"
    return str(e["kind"])


def _rgb(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _check_legend(page: Any) -> set[str]:
    page.wait_for_selector("#map[data-ready=true]", timeout=15000)
    drawn = page.evaluate(ELEMENTS)
    legend = {k["key"]: _rgb(k["colour"]) for k in page.evaluate(LEGEND)}
    used = {_key(e) for e in drawn}
    missing = used - set(legend)
    assert not missing, f"drawn but not in the legend: {missing}"
    for e in drawn:
        assert _rgb(e["colour"]) == legend[_key(e)], (_key(e), e["colour"])
    return used


@pytest.fixture
def crowded_server(
    crowded_db: Path,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[Env, BackgroundServer]]:
    e = make_env(crowded_db, tmp_path)
    with BackgroundServer(e.app, e.ctx) as srv:
        yield e, srv


@needs_chromium
def test_legend_lists_every_style_and_group_click_opens_it(
    browser: Any,  # noqa: F811
    live: tuple[Env, BackgroundServer],
) -> None:
    _, srv = live
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _login(page, srv.url, "viewer")
    page.goto(srv.url + "/map")
    used = _check_legend(page)
    # The fixture's hosts are in no zone of the policy: their levels are inferred (purple).
    assert {"asset-inferred", "zone", "unzoned", "level", "edge-violation"} <= used
    page.evaluate("window.conduitMap.getElementById('unzoned:1').emit('tap')")
    page.wait_for_url("**/map?zone=unzoned%3A1")
    page.wait_for_selector("#map[data-ready=true]", timeout=15000)
    assert "no zone, level 1" in page.inner_text("h1")
    assert page.evaluate("window.conduitMap.$id('unzoned:1').children().length") == 2
    page.close()


@needs_chromium
def test_zone_and_subnet_clicks_open_them(
    browser: Any,  # noqa: F811
    crowded_server: tuple[Env, BackgroundServer],
) -> None:
    _, srv = crowded_server
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _login(page, srv.url, "viewer")
    page.goto(srv.url + "/map")
    used = _check_legend(page)
    assert {"asset", "subnet", "edge-violation", "edge-allowed"} <= used
    ips = "window.conduitMap.nodes('[kind = \"asset\"]').map(n => n.data('ip'))"
    assert "127.0.30.10" in page.evaluate(ips)  # the MES, which never talks to the cell
    # A zone opens on a click, in the whole-plant view (assets drawn, not zones).
    page.evaluate("window.conduitMap.$id('zone:cell-1').emit('tap')")
    page.wait_for_url("**/map?zone=zone%3Acell-1")
    page.wait_for_selector("#map[data-ready=true]", timeout=15000)
    assert "zone cell-1" in page.inner_text("h1")
    assert "127.0.30.10" not in page.evaluate(ips)  # only the zone and its peers
    _check_legend(page)
    page.evaluate("window.conduitMap.nodes('[kind = \"subnet\"]')[0].emit('tap')")
    page.wait_for_url("**/map?zone=subnet%3A127.0.10.0%2F24")
    page.wait_for_selector("#map[data-ready=true]", timeout=15000)
    assert len(page.evaluate(ips)) > 60
    # The filters are controls on the page: "violations only" keeps red edges only.
    page.check("#f-violations")
    page.click("#map-filters button")
    page.wait_for_url("**violations=true**")
    page.wait_for_selector("#map[data-ready=true]", timeout=15000)
    verdicts = page.evaluate("window.conduitMap.edges().map(e => e.data('verdict'))")
    assert verdicts and set(verdicts) == {"violation"}
    _check_legend(page)
    page.close()
