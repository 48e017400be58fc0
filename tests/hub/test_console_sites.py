"""The console on a hub database: the Sites page (overview and health per site, refusals),
assets, alerts, conversations and violations of every site with a site column and filter;
the menu shows Sites only on a hub's database; the pages fit a 1280 px screen in real
chromium."""

from __future__ import annotations

import time
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
CONVERSATIONS = {"north": 60, "south": 3, "east": 0}  # north pages, south fits, east none
VIOLATIONS = {"north": 2, "south": 1, "east": 0}
MINUTE = int(time.time()) // 60 * 60  # the pages count "the last hour" on the real clock


# The first conversation has more functions than the page lists; two send text that is
# not a JSON object of counts (one nested too deep for the parser).
ODD_FUNCTIONS = {
    0: '{"read_holding_registers": 3, "a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1}',
    1: "not json",
    2: "[" * 10_000,  # within the uplink's 16 KiB a string
}


def _conversations(n: int, site: str) -> list[dict[str, Any]]:
    return [
        {
            "transport": "tcp",
            "client_ip": f"10.{n}.8.{i}",
            "server_ip": f"10.{n}.0.1",
            "server_port": 502,
            "vlan": -1,
            "protocol": "modbus",
            "connections": 1,
            "packets": 100 + i,
            "bytes": 6400 + i,
            "first_seen": 1_796_000_000_000_000_000,
            "last_seen": 1_796_000_060_000_000_000,
            "functions": ODD_FUNCTIONS.get(i, '{"write_single_register": 2}'),
        }
        for i in range(CONVERSATIONS[site])
    ]


def _op_minutes(n: int, site: str) -> list[dict[str, Any]]:
    """The first conversation: 5 operations within the hour, 7 two hours ago."""
    if not CONVERSATIONS[site]:
        return []
    key = {"transport": "tcp", "client_ip": f"10.{n}.8.0", "server_ip": f"10.{n}.0.1",
           "server_port": 502, "vlan": -1, "protocol": "modbus"}  # fmt: skip
    return [
        {**key, "minute": MINUTE - 60, "operations": 5},
        {**key, "minute": MINUTE - 7200, "operations": 7},
    ]


def _violations(n: int, site: str) -> list[dict[str, Any]]:
    return [
        {
            "policy": "plant",
            "rule": "no-writes-from-it" if k == 0 else "unlisted-conduit",
            "src_ip": f"10.{n}.7.{k}",
            "dst_ip": f"10.{n}.0.1",
            "protocol": "modbus",
            "operation": "write",
            "reason": f"write to the PLC at {site}",
            "count": 4 + k,
            "first_seen": "2026-12-07T07:00:00+00:00",
            "last_seen": "2026-12-07T07:30:00+00:00",
        }
        for k in range(VIOLATIONS[site])
    ]


def _fill(db: Path | str, assets_per_site: int = 120) -> None:
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
                    ("conversations", _conversations(n, site)),
                    ("op_minutes", _op_minutes(n, site)),
                    ("violations", _violations(n, site)),
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
                if site == "east" and seq >= 3:
                    seq += 1  # east's message 3 never came
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
    assert (by["east"]["missing"], by["north"]["missing"]) == (1, 0)
    assert page.count(" missing</span>") == 1 and "1 missing" in page
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
        for path in (
            "/sites",
            "/sites/assets",
            "/sites/assets?site=north",
            "/sites/alerts",
            "/sites/conversations",
            "/sites/conversations?site=north&offset=50",
            "/sites/violations",
            "/sites/violations?site=" + "x" * 64,
        ):
            page.goto(srv.url + path)
            page.wait_for_load_state("load")
            over = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if over > 0:
                wide[path] = over
            if path == "/sites" or path.startswith(("/sites/conversations", "/sites/violations")):
                # these tables fit whole: no column hidden behind a scroll bar
                inner = page.evaluate(
                    "Math.max(0, ...Array.from(document.querySelectorAll('.wide'), "
                    "e => e.scrollWidth - e.clientWidth))"
                )
                if inner > 0:
                    wide[path + " (table)"] = inner
        page.close()
    assert not wide, f"pages wider than 1280 px: {wide}"


def test_hub_conversations_of_every_site(hub_env: Env) -> None:
    c = hub_env.client("viewer")
    every = c.get("/sites/conversations").text
    assert "63 rows" in every and 'rel="next"' in every
    assert ">10.0.8.0<" in every and ">10.1.8.0<" not in every  # site order: north first
    tail = c.get("/sites/conversations?offset=50").text
    assert ">10.0.8.9<" in tail and ">10.1.8.0<" in tail  # rows of two sites
    assert 'href="/sites/conversations"' in every  # in the menu beside Sites
    south = c.get("/sites/conversations?site=south").text
    assert "3 rows" in south and ">10.1.8.2<" in south and ">10.0.8." not in south
    assert 'rel="next"' not in south and 'id="unknown-site"' not in south
    north = c.get("/sites/conversations?site=north").text
    assert "60 rows" in north and "5 / 12" in north  # operations: last hour / total
    assert "read_holding_registers\u00d73" in north and "+1 more" in north
    assert "not json" in north and "[[[[" in north  # malformed text is shown, not fatal
    page2 = c.get("/sites/conversations?site=north&offset=50").text
    assert "page 2 of 2" in page2 and ">10.0.8.59<" in page2 and ">10.0.8.0<" not in page2
    api = c.get("/api/hub/conversations", params={"site": "north", "offset": 50}).json()
    assert api["total"] == 60 and api["offset"] == 50 and len(api["items"]) == 10
    assert {r["site"] for r in api["items"]} == {"north"}
    first = c.get("/api/hub/conversations?site=north").json()["items"][0]
    assert first["client_ip"] == "10.0.8.0" and first["operations"] == 12
    assert first["operations_recent"] == 5 and first["functions"]["read_holding_registers"] == 3
    nowhere = c.get("/sites/conversations?site=nowhere")
    assert nowhere.status_code == 200 and 'id="unknown-site"' in nowhere.text
    assert "No conversations." in nowhere.text and "0 rows" in nowhere.text


def test_hub_violations_of_every_site(hub_env: Env) -> None:
    c = hub_env.client("viewer")
    every = c.get("/sites/violations").text
    assert "3 rows" in every and "write to the PLC at north" in every
    assert "write to the PLC at south" in every and 'href="/sites/violations"' in every
    south = c.get("/sites/violations?site=south").text
    assert "1 rows" in south and "write to the PLC at north" not in south
    api = c.get("/api/hub/violations?site=north").json()
    assert api["total"] == 2 and [v["rule"] for v in api["items"]] == [
        "no-writes-from-it",
        "unlisted-conduit",
    ]
    second = c.get("/api/hub/violations?site=north&offset=1").json()["items"][0]
    assert second["count"] == 5 and second["first_seen"] == "2026-12-07T07:00:00Z"  # API style
    east = c.get("/sites/violations?site=east").text  # a known site with none
    assert "No violations." in east and 'id="unknown-site"' not in east
    sites = c.get("/sites").text  # each site's counts lead to its filtered pages
    assert 'href="/sites/conversations?site=north">60<' in sites
    assert 'href="/sites/violations?site=south">1<' in sites
    assert 'href="/sites/assets?site=east">120<' in sites


@pytest.mark.parametrize("path", ["/sites/conversations", "/sites/violations"])
def test_hub_listings_refuse_or_survive_a_hostile_site(hub_env: Env, path: str) -> None:
    c = hub_env.client("viewer")
    assert c.get(path, params={"site": "x" * 65}).status_code == 422
    api = "/api/hub/" + path.rsplit("/", 1)[1]
    too_long = c.get(api, params={"site": "x" * 65})
    assert too_long.status_code == 422 and "detail" in too_long.text.lower()
    for hostile in ("north' OR '1'='1", "north; DROP TABLE hub_sites; --", "%", "north\\"):
        r = c.get(path, params={"site": hostile})
        assert r.status_code == 200 and 'id="unknown-site"' in r.text and "0 rows" in r.text
        assert c.get(api, params={"site": hostile}).json()["total"] == 0
    assert c.get(api, params={"offset": -5}).json()["offset"] == 0  # clamped, as elsewhere
    assert "3 rows" in c.get("/sites/violations").text  # nothing was dropped


def test_hub_listing_queries_on_each_backend(hub_db: str) -> None:
    """The same SQL on SQLite and PostgreSQL: filter, order, paging, operations."""
    from otconduit.store import hub as hub_q

    _fill(hub_db, assets_per_site=2)
    with Store(hub_db) as store:
        assert hub_q.conversation_count(store, None) == 63
        assert hub_q.conversation_count(store, "south") == 3
        assert hub_q.conversation_count(store, "nowhere") == 0
        page = hub_q.conversation_page(store, "north", 50, 0, since=MINUTE - 3600)
        assert len(page) == 50 and page[0]["client_ip"] == "10.0.8.0"
        assert (page[0]["operations"], page[0]["operations_recent"]) == (12, 5)
        assert all(r["operations"] == 0 for r in page[1:])
        rest = hub_q.conversation_page(store, "north", 50, 50)
        assert len(rest) == 10 and not {r["client_ip"] for r in rest} & {
            r["client_ip"] for r in page
        }
        both = hub_q.conversation_page(store, None, 20, 55)
        assert [r["site"] for r in both] == ["north"] * 5 + ["south"] * 3
        assert hub_q.violation_count(store, None) == 3
        assert hub_q.violation_count(store, "north") == 2
        viol = hub_q.violation_page(store, None, 2, 1)
        assert [(v["site"], v["count"]) for v in viol] == [("north", 5), ("south", 4)]


@pytest.mark.parametrize("path", ["/sites/assets", "/sites/alerts"])
def test_assets_and_alerts_say_when_a_site_is_unknown(hub_env: Env, path: str) -> None:
    c = hub_env.client("viewer")
    r = c.get(path, params={"site": "nowhere"})
    assert r.status_code == 200 and 'id="unknown-site"' in r.text
    assert 'id="unknown-site"' not in c.get(path, params={"site": "north"}).text
