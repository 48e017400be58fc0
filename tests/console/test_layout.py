"""Every page fits a 1280 px wide screen and long lists page: real chromium at 1280 x 800
checks that no page scrolls sideways (wide tables scroll inside their own box), and that
an asset with hundreds of conversations still has a page of bounded height."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.server import BackgroundServer
from tests.console.conftest import Env, make_env
from tests.console.synth import write_plant
from tests.console.test_browser import _login, browser, needs_chromium  # noqa: F401
from tests.console.test_production_view import plant  # noqa: F401

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 800
PAGES = [
    "/", "/assets", "/assets?all=true", "/assets/127.0.5.10", "/assets/127.0.5.100",
    "/assets/127.0.7.10", "/conversations", "/operations", "/alerts", "/alerts/1", "/alerts/2",
    "/violations", "/incidents", "/incidents?include_closed=true", "/map", "/production",
    "/users", "/audit",
]  # fmt: skip
HUB = "10.20.0.5"  # the synthetic attacker: talks to hundreds of hosts


def _overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the window (0: it fits)."""
    width: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


@needs_chromium
def test_every_page_fits_1280(browser: Any, live: tuple[Env, BackgroundServer]) -> None:  # noqa: F811
    _, srv = live
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    _login(page, srv.url, "admin")
    nav = page.eval_on_selector_all("header nav a", "els => els.map(e => e.getAttribute('href'))")
    wide = {}
    for path in dict.fromkeys([*PAGES, *nav]):
        page.goto(srv.url + path)
        page.wait_for_load_state("load")
        if path.startswith("/map"):
            page.wait_for_selector("#map[data-ready]", timeout=15000)
        if (over := _overflow(page)) > 0:
            wide[path] = over
    assert not wide, f"pages wider than {WIDTH} px (by px): {wide}"
    page.close()


@pytest.fixture
def plant_server(plant: Env) -> Iterator[tuple[Env, BackgroundServer]]:  # noqa: F811
    with BackgroundServer(plant.app, plant.ctx) as srv:
        yield plant, srv


@needs_chromium
def test_production_with_gateway_data_fits_1280(
    browser: Any,  # noqa: F811
    plant_server: tuple[Env, BackgroundServer],
) -> None:
    _, srv = plant_server
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    _login(page, srv.url, "viewer")
    for path in ("/production", "/assets/127.0.10.50", "/"):
        page.goto(srv.url + path)
        assert _overflow(page) <= 0, path
    page.close()


@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[tuple[Env, BackgroundServer]]:
    """One host with 400 conversations (a sweep) beside a few ordinary ones."""
    db = tmp_path / "hub.db"
    peers = [f"10.20.{1 + i // 200}.{1 + i % 200}" for i in range(400)]
    hosts = [(HUB, ["engineering-workstation"])] + [(p, ["plc"]) for p in peers]
    convs = [(HUB, p, 502) for p in peers]
    write_plant(db, hosts, convs, ops_per_conv=2)
    e = make_env(db, tmp_path, policy=None)
    with BackgroundServer(e.app, e.ctx) as srv:
        yield e, srv


@needs_chromium
def test_busy_asset_page_pages_its_lists(
    browser: Any,  # noqa: F811
    hub_server: tuple[Env, BackgroundServer],
) -> None:
    _, srv = hub_server
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    _login(page, srv.url, "viewer")
    page.goto(srv.url + f"/assets/{HUB}")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 4000, f"the asset page is {height} px tall"
    assert _overflow(page) <= 0
    rows = page.locator("#asset-conversations tbody tr").count()
    assert rows == 25
    more = page.locator("#asset-conversations-pager a[rel=next]")
    more.click()
    page.wait_for_load_state("load")
    assert "conv_offset=25" in page.url
    assert page.locator("#asset-conversations tbody tr").count() == 25
    assert page.evaluate("document.documentElement.scrollHeight") < 4000
    page.close()
