"""The console in a real browser: Playwright drives Debian's chromium (never a browser
that Playwright downloads). Log in, open an asset, open the map, acknowledge an alert,
and watch the overview update itself over server-sent events. Screenshots are kept in
tests/console/artifacts/ (ignored by git) for a person to look at."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.server import BackgroundServer
from tests.console.conftest import PASSWORDS, Env

pytestmark = pytest.mark.browser

ARTIFACTS = Path(os.environ.get("CONDUIT_ARTIFACTS", Path(__file__).parent / "artifacts"))


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield b
        b.close()


OPEN = "[data-bind='alerts.by_status.open']"


def _until(cond: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page: Any, url: str, role: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORDS[role])
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


@needs_chromium
def test_log_in_open_asset_and_map(browser: Any, live: tuple[Env, BackgroundServer]) -> None:
    _, srv = live
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Leaving the overview cuts its event stream (net::ERR_...): not a page error.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "net::ERR_" not in m.text else None
        ),
    )
    page.goto(srv.url + "/assets")
    assert "/login" in page.url  # not logged in: sent to the login page
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text(".flash")
    errors.clear()  # the refused login above is an expected 401
    _login(page, srv.url, "viewer")
    _shot(page, "01-overview")
    assert page.inner_text("#whoami") == "viewer (viewer)"

    page.click("nav >> text=Assets")
    page.fill("input[name=q]", "logix")
    page.click("form.filters button")
    rows = page.locator("#assets tbody tr")
    assert rows.count() == 1
    _shot(page, "02-assets-search")
    page.click("#assets >> text=127.0.7.10")
    page.wait_for_url(srv.url + "/assets/127.0.7.10")
    body = page.inner_text("main")
    assert "Rockwell Automation/Allen-Bradley" in body and "1756-L61/B LOGIX5561" in body
    assert "XEROX CORPORATION" in body  # MAC vendor
    _shot(page, "03-asset")

    page.click("nav >> text=Network map")
    page.wait_for_selector("#map[data-ready=true]", timeout=15000)
    n_assets = page.evaluate("window.conduitMap.nodes('[kind = \"asset\"]').length")
    n_edges = page.evaluate("window.conduitMap.edges().length")
    assert n_assets == 6 and n_edges == 4  # client -> server pairs
    red = page.evaluate("window.conduitMap.edges('[verdict = \"violation\"]').length")
    assert red >= 1
    # Purdue order on screen: the enterprise band above supervisory, supervisory above cell.
    y = page.evaluate(
        "Object.fromEntries(window.conduitMap.nodes('[kind = \"level\"]')"
        ".map(n => [n.id(), n.renderedPosition().y]))"
    )
    assert y["level:4"] < y["level:3.5"] < y["level:3"] < y["level:2"] < y["level:1"]
    assert "violation" in page.inner_text("#map-status")
    _shot(page, "04-map")
    # An edge leads to its conversations.
    page.evaluate("window.conduitMap.edges('[verdict = \"violation\"]')[0].emit('tap')")
    page.wait_for_url("**/conversations?ip=*")
    assert page.locator("#conversations tbody tr").count() >= 1
    assert "violation" in page.inner_text("#conversations")
    _shot(page, "04b-conversations")
    assert not errors, errors
    page.close()


@needs_chromium
def test_acknowledge_and_see_the_overview_update_live(
    browser: Any, live: tuple[Env, BackgroundServer]
) -> None:
    env, srv = live
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    watcher = ctx.new_page()  # the overview, left open
    _login(watcher, srv.url, "analyst")
    watcher.wait_for_selector("#live[data-state=open]", timeout=10000)
    open_count = int(watcher.inner_text(OPEN))
    acked = int(watcher.inner_text("[data-bind='alerts.by_status.acknowledged']"))

    actor = ctx.new_page()  # same session, another tab
    actor.goto(srv.url + "/alerts?status=open&severity=high")
    actor.click("table.grid tbody tr >> nth=0 >> a >> nth=0")
    actor.wait_for_selector("#ack")
    aid = actor.url.rsplit("/", 1)[1]
    actor.fill("textarea[name=comment]", "line 1 supervisor informed, checking the HMI")
    _shot(actor, "05-alert-before-ack")
    actor.click("#ack")
    actor.wait_for_url(srv.url + f"/alerts/{aid}")
    assert actor.inner_text("#alert-status") == "acknowledged"
    assert "line 1 supervisor informed" in actor.inner_text("main")
    _shot(actor, "06-alert-acknowledged")

    # The overview tab was not reloaded: the numbers change by themselves.
    # (Polled from here: a string predicate would be eval'd in the page, which the CSP
    # rightly forbids.)
    _until(lambda: watcher.inner_text(OPEN) == str(open_count - 1), "the open count to drop")
    assert int(watcher.inner_text("[data-bind='alerts.by_status.acknowledged']")) == acked + 1
    acked = watcher.locator("#newest li", has_text=f"#{aid} ")
    assert "acknowledged" in acked.inner_text()
    # Redrawn by the script in the server's format: plant time to the second, ISO on hover.
    when = acked.locator("time")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", when.inner_text())
    assert when.get_attribute("title").endswith("Z")
    _shot(watcher, "07-overview-live-update")

    _, log = env.ctx.auth.audit_log()
    ack = next(e for e in log if e["action"] == "alert.ack")
    assert ack["user"] == "analyst" and ack["target"] == f"alert:{aid}"
    ctx.close()


@needs_chromium
def test_viewer_sees_no_lifecycle_buttons(browser: Any, live: tuple[Env, BackgroundServer]) -> None:
    _, srv = live
    page = browser.new_page()
    _login(page, srv.url, "viewer")
    page.goto(srv.url + "/alerts/1")
    assert page.locator("#ack").count() == 0
    assert "an analyst acknowledges" in page.inner_text("main")
    page.goto(srv.url + "/production")
    assert "No gateway data yet" in page.inner_text("main")
    _shot(page, "08-production")
    page.close()
