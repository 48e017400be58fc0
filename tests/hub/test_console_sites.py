"""The console on a hub database: the Sites page (overview and health per site, refusals),
assets and alerts of every site with a site column and filter; the menu shows Sites only
on a hub's database; the pages fit a 1280 px screen in real chromium."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.server import BackgroundServer
from otconduit.hub.ingest import Ingest
from otconduit.store import Store
from otconduit.uplink.envelope import Envelope, encode
from tests.console.conftest import Env, analysed_db, env, make_env  # noqa: F401
from tests.console.test_browser import _login, browser, needs_chromium  # noqa: F401

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
SITES = ("north", "south", "east")


def _fill(db: Path, assets_per_site: int = 120) -> None:
    with Store(db) as store:
        ing = Ingest(store, frozenset(SITES), clock=lambda: NOW)
        for n, site in enumerate(SITES):
            assets = [
                {
                    "ip": f"10.{n}.{i // 250}.{i % 250}",
                    "vlan": -1,
                    "mac": None,
                    "name": None,
                    "vendor": "Siemens" if i % 2 else "Rockwell",
                    "model": "S7-1500",
                    "roles": "plc",
                    "protocols": "s7/server",
                    "first_seen": 1,
                    "last_seen": 1_796_000_000_000_000_000,
                    "packets_sent": i,
                    "packets_received": i,
                }
                for i in range(assets_per_site)
            ]
            alerts = [
                {
                    "alert_id": k,
                    "rule": "s7-stop",
                    "title": f"PLC stop at {site}",
                    "category": "inhibit-response",
                    "severity": k % 5,
                    "techniques": None,
                    "src_ip": f"10.{n}.9.9",
                    "dst_ip": f"10.{n}.0.{k}",
                    "protocol": "s7",
                    "operation": "PLC_STOP",
                    "summary": "stop",
                    "first_seen": 1,
                    "last_seen": 2 + k,
                    "count": 1,
                    "status": "open",
                    "change_seq": k,
                }
                for k in range(1, 8)
            ]
            for seq, (kind, rows) in enumerate(
                (
                    ("assets", assets),
                    ("alerts", alerts),
                    (
                        "health",
                        [
                            {
                                "sensor": "iface:eth1",
                                "backlog": 5 * n,
                                "drops": n,
                                "dropped_uplink": 0,
                            }
                        ],
                    ),
                ),
                start=1,
            ):
                env = Envelope(
                    site=site, seq=seq, sent_at="2026-12-07T07:59:58Z", kind=kind, rows=tuple(rows)
                )
                assert ing.handle(env.topic, encode(env)).value == "applied"
        forged = Envelope(
            site="south", seq=99, sent_at="2026-12-07T07:59:58Z", kind="assets", rows=()
        )
        ing.handle("conduit/v1/north/assets", encode(forged))


@pytest.fixture
def hub_env(tmp_path: Path) -> Iterator[Env]:
    db = tmp_path / "hub.db"
    _fill(db)
    e = make_env(db, tmp_path, policy=None)
    yield e
    e.ctx.close()


def test_sites_page_and_filters(hub_env: Env) -> None:
    c = hub_env.client("viewer")
    page = c.get("/sites").text
    assert 'href="/sites"' in page  # the menu shows Sites on a hub database
    for site in SITES:
        assert f'data-site="{site}"' in page
    assert "site_mismatch" in page  # the forgery is reported
    api = c.get("/api/hub/sites").json()["sites"]
    by = {s["site"]: s for s in api}
    assert by["east"]["backlog"] == 10 and by["east"]["drops"] == 2
    assert by["north"]["refused"] == 1 and by["north"]["assets"] == 120
    south = c.get("/sites/assets?site=south").text
    assert ">10.1.0.1" in south and ">10.0.0.1" not in south and "360 rows" not in south
    assert "120 rows" in south
    every = c.get("/sites/assets").text
    assert "360 rows" in every and 'rel="next"' in every
    alerts = c.get("/sites/alerts?site=east").text
    assert "PLC stop at east" in alerts and "PLC stop at north" not in alerts
    assert "critical" in alerts  # severity 4 shown by name
    assert c.get("/sites/assets?site=" + "x" * 65).status_code == 422
    anon = hub_env.client(None).get("/sites", follow_redirects=False)
    assert anon.status_code in (303, 401)


def test_no_sites_menu_on_a_site_database(env: Env) -> None:  # noqa: F811
    page = env.client("viewer").get("/assets").text
    assert 'href="/sites"' not in page


@needs_chromium
@pytest.mark.browser
def test_hub_pages_fit_1280(browser: Any, hub_env: Env) -> None:  # noqa: F811
    with BackgroundServer(hub_env.app, hub_env.ctx) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _login(page, srv.url, "admin")
        wide = {}
        for path in ("/sites", "/sites/assets", "/sites/assets?site=north", "/sites/alerts"):
            page.goto(srv.url + path)
            page.wait_for_load_state("load")
            over = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if over > 0:
                wide[path] = over
        page.close()
    assert not wide, f"pages wider than 1280 px: {wide}"
