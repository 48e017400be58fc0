"""The charts in a real browser (Debian's chromium through Playwright): the Production
page draws its state timeline, trends and OEE/energy bars, the alert page the written
tag's trend, every chart from the vendored Chart.js (nothing from a CDN), with data, and
the pages still fit a 1280 px wide window. Screenshots go to tests/console/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.server import BackgroundServer
from tests.console.conftest import Env, make_env
from tests.console.test_browser import _login, _shot, browser, needs_chromium  # noqa: F401
from tests.process.synthplant import HMI, Plant, make_plant

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 1280, 800


@pytest.fixture
def plant_live(tmp_path: Path) -> Iterator[tuple[Env, BackgroundServer, Plant]]:
    from typer.testing import CliRunner

    from otconduit.cli.main import app as cli

    (tmp_path / "plant").mkdir()
    plant = make_plant(tmp_path / "plant")
    run = CliRunner().invoke(cli, ["detect", "--db", str(plant.db), "--gateway", str(plant.config)])
    assert run.exit_code == 0, run.output
    e = make_env(plant.db, tmp_path, gateway=plant.config, timezone="Europe/Berlin")
    with BackgroundServer(e.app, e.ctx) as srv:
        yield e, srv, plant


def _charts(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function(
        "[...document.querySelectorAll('canvas[data-chart]')].every(c => c.dataset.ready)",
        timeout=15000,
    )
    found: list[dict[str, Any]] = page.evaluate(
        """[...document.querySelectorAll('canvas[data-chart]')].map(c => {
             const box = c.getBoundingClientRect();
             const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let inked = 0;
             for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++;
             return {kind: c.dataset.chart, key: c.dataset.key, points: +c.dataset.points,
                     width: box.width, height: box.height, inked};
           })"""
    )
    return found


def _overflow(page: Any) -> int:
    width: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


@needs_chromium
def test_production_and_alert_charts_render(
    browser: Any,  # noqa: F811
    plant_live: tuple[Env, BackgroundServer, Plant],
) -> None:
    env, srv, _plant = plant_live
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    _login(page, srv.url, "viewer")

    page.goto(srv.url + "/production")
    charts = _charts(page)
    kinds = {c["kind"] for c in charts}
    assert {"states", "lines", "bars"} <= kinds, charts
    for c in charts:
        assert c["points"] > 0 and c["inked"] > 500, c  # drawn, and drawn from data
        assert 0 < c["width"] <= WIDTH, c
    assert _overflow(page) <= 0
    # The state timeline names the conveyor's states (its tooltip/legend labels).
    legend = page.evaluate(
        "window.conduitCharts.filter(ch => ch.config.type === 'bar' && ch.options.indexAxis"
        " === 'y').flatMap(ch => ch.data.datasets.map(d => d.label))"
    )
    assert {"RUNNING", "STOPPED"} <= set(legend)
    # Axis ticks in the plant's zone: 16:xx in Berlin (CEST) for the 14:13-14:23 UTC data.
    ticks = page.evaluate(
        "window.conduitCharts.filter(ch => ch.config.type === 'line')"
        ".flatMap(ch => ch.scales.x.ticks.map(t => t.label))"
    )
    assert ticks and all(str(t).startswith("16:") for t in ticks), ticks
    _shot(page, "20-production-charts")

    api = env.client("viewer")
    items = api.get("/api/alerts?limit=100").json()["items"]
    hmi = next(a for a in items if a["src_ip"] == HMI)
    page.goto(srv.url + f"/alerts/{hmi['id']}")
    [trend] = _charts(page)
    assert trend["kind"] == "trend" and trend["points"] > 10 and trend["inked"] > 500
    assert "What followed on the machine" in page.inner_text("main")
    assert _overflow(page) <= 0
    _shot(page, "21-alert-process-trend")
    page.close()

    assert not errors, errors
    outside = [u for u in requests if not u.startswith(srv.url)]
    assert not outside, outside  # plants are offline: nothing from a CDN
