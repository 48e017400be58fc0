"""The Production page over a multi-site historian: two plants writing to one historian
(two real ``conduit gateway run`` processes polling real Modbus PLCs into a private
PostgreSQL cluster; and the historian's own writer, into SQLite and PostgreSQL), the
console without a gateway config groups lines by site, filters by the hub
pages' ``site`` parameter, keeps two sites' machines of the same name apart, and hangs
OEE/energy only on the lines of the site the gateway config describes. One site: the
page as it always was."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample
from tests.console.conftest import Env, login, make_env
from tests.console.test_browser import _login, _shot, browser, needs_chromium  # noqa: F401
from tests.console.test_charts_browser import HEIGHT, WIDTH, _charts, _overflow
from tests.pgcluster import PgCluster, drop_database, new_database, pg_cluster  # noqa: F401

S = 1_000_000_000
T0 = 1_780_000_000 * S  # a fixed instant: the page shows the historian's newest hour
A, B = "acme/plantA/packaging/line1", "acme/plantB/packaging/line1"

GATEWAY_A = """
version: 1
name: plantA-gateway
enterprise: acme
site: plantA
devices:
- name: filler-plc
  protocol: modbus
  host: 127.0.5.10
  port: 502
  tags:
  - {{path: packaging/line1/filler/state, address: "hr:10", type: uint16, mode: cyclic,
      states: {{0: STOPPED, 1: RUNNING, 3: FAULT}}}}
  - {{path: packaging/line1/filler/good_count, address: "hr:18", type: uint16, kind: counter}}
  - {{path: packaging/line1/filler/scrap_count, address: "hr:20", type: uint16, kind: counter}}
  - {{path: packaging/line1/filler/motor_power, address: "hr:14", type: uint16, unit: kW,
      mode: cyclic}}
sinks:
  historian:
    path: {historian}
production:
  timezone: UTC
  machines:
  - oee:
      state:
        tag: packaging/line1/filler/state
        names: {{0: STOPPED, 1: RUNNING, 3: FAULT}}
        producing: [RUNNING]
        down: [STOPPED, FAULT]
      counters:
        good: packaging/line1/filler/good_count
        scrap: packaging/line1/filler/scrap_count
      planned_cycle_time: 1.0
    energy:
      power: packaging/line1/filler/motor_power
"""


def _site_samples(line: str, running: bool, extra_machine: bool) -> list[TagSample]:
    """A minute of one site: its ``filler`` runs (state 1, 3.5 kW, counting parts) or is
    faulted (state 3, 0 kW, counters still); plantB also has a ``capper``."""
    out = []
    for i in range(60):
        t = T0 + i * S
        state = 1 if running else (1 if i < 30 else 3)
        out += [
            TagSample(f"{line}/filler/state", state, Quality.GOOD, t),
            TagSample(
                f"{line}/filler/good_count", 100 + (i if running else min(i, 30)), Quality.GOOD, t
            ),
            TagSample(f"{line}/filler/scrap_count", 2, Quality.GOOD, t),
            TagSample(
                f"{line}/filler/motor_power", 3.5 if state == 1 else 0.0, Quality.GOOD, t, unit="kW"
            ),
        ]
        if extra_machine:
            out.append(
                TagSample(f"{line}/capper/torque", 1.0 + i / 100, Quality.GOOD, t, unit="Nm")
            )
    return out


def write_sites(store: Any, sites: tuple[str, ...] = ("plantA", "plantB")) -> None:
    """Both plants' samples through the historian's writer (as two gateways would)."""
    for site in sites:
        line = f"acme/{site}/packaging/line1"
        store.write(_site_samples(line, running=site == "plantA", extra_machine=site == "plantB"))
        store.flush()
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def historian(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A two-site historian: a SQLite file, or a database on a private PostgreSQL cluster."""
    if request.param == "sqlite":
        path = tmp_path / "historian.db"
        write_sites(SQLiteHistorian(path))
        yield str(path)
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    from otconduit.gateway.historian.postgres import PostgresHistorian

    name = new_database(cluster, "prodsites")
    try:
        write_sites(PostgresHistorian(cluster.dsn(name)))
        yield cluster.dsn(name)
    finally:
        drop_database(cluster, name)


def _env(analysed_db: Path, tmp_path: Path, **kw: Any) -> Env:
    db = tmp_path / "conduit.db"
    shutil.copy(analysed_db, db)
    return make_env(db, tmp_path, **kw)


@pytest.fixture
def sites_env(analysed_db: Path, tmp_path: Path, historian: str) -> Iterator[Env]:
    e = _env(analysed_db, tmp_path, historian=historian)  # no gateway config
    yield e
    e.ctx.close()


def _machines(p: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["site"], m["machine"]): m for line in p["lines"] for m in line["machines"]}


def test_api_groups_by_site_and_keeps_same_named_machines_apart(sites_env: Env) -> None:
    c = TestClient(sites_env.app)
    login(c, "viewer", "viewer-pass-1")
    p = c.get("/api/production").json()
    assert p["available"] is True and p["multi_site"] is True
    assert p["sites"] == ["plantA", "plantB"] and p["site"] is None
    assert [(line["site"], line["line"]) for line in p["lines"]] == [("plantA", A), ("plantB", B)]
    assert "in 2 sites" in p["message"]
    ms = _machines(p)
    assert set(ms) == {("plantA", "filler"), ("plantB", "filler"), ("plantB", "capper")}
    fa, fb = ms[("plantA", "filler")], ms[("plantB", "filler")]
    # Devices from the tag paths (no gateway config): the cell is the machine.
    assert (fa["machine_path"], fb["machine_path"]) == (f"{A}/filler", f"{B}/filler")
    assert fa["device"] is None and fb["device"] is None
    assert fa["state"]["value"] == 1 and fb["state"]["value"] == 3  # never each other's
    assert {t["path"].rsplit("/", 1)[0] for t in fa["tags"]} == {f"{A}/filler"}
    assert {t["path"].rsplit("/", 1)[0] for t in fb["tags"]} == {f"{B}/filler"}
    power = {k: next(t["value"] for t in m["tags"] if t["name"] == "motor_power")
             for k, m in ms.items() if k[1] == "filler"}  # fmt: skip
    assert power == {("plantA", "filler"): 3.5, ("plantB", "filler"): 0.0}
    assert [(s["value"]) for s in fb["timeline"]] == [1, 3] and len(fa["timeline"]) == 1

    b = c.get("/api/production", params={"site": "plantB"}).json()
    assert b["site"] == "plantB" and b["sites"] == ["plantA", "plantB"]
    assert [line["line"] for line in b["lines"]] == [B]
    assert set(_machines(b)) == {("plantB", "filler"), ("plantB", "capper")}
    assert "of site plantB" in b["message"]
    none = c.get("/api/production", params={"site": "plantZ"}).json()
    assert none["lines"] == [] and "no site plantZ" in none["message"]
    assert c.get("/api/production", params={"site": "x" * 65}).status_code == 422


def test_page_shows_both_sites_and_the_filter_narrows(sites_env: Env) -> None:
    c = TestClient(sites_env.app)
    login(c, "viewer", "viewer-pass-1")
    page = c.get("/production").text
    assert '<select name="site" aria-label="site">' in page  # the hub pages' filter
    assert 'action="/production"' in page
    assert "<option>plantA</option>" in page and "<option>plantB</option>" in page
    assert 'id="site-plantA"' in page and 'id="site-plantB"' in page
    assert f"<h2>{A}</h2>" in page and f"<h2>{B}</h2>" in page
    assert (
        page.index('id="site-plantA"')
        < page.index(f"<h2>{A}</h2>")
        < page.index('id="site-plantB"')
        < page.index(f"<h2>{B}</h2>")
    )
    assert "state timeline of filler (plantA)" in page
    assert "state timeline of filler (plantB)" in page
    one = c.get("/production?site=plantA").text
    assert "<option selected>plantA</option>" in one
    assert f"<h2>{A}</h2>" in one and f"<h2>{B}</h2>" not in one and "capper" not in one
    assert "(plantB)" not in one


def test_machine_events_carry_their_site(sites_env: Env) -> None:
    events = sites_env.ctx.production.machine_events()
    changes = [(e["site"], e["tag"], e["value"]) for e in events if e["event"] == "state-change"]
    assert changes == [("plantB", f"{B}/filler/state", 3)]  # plantA's filler never stopped


def test_oee_and_energy_stay_with_the_config_site(analysed_db: Path, tmp_path: Path) -> None:
    """The gateway config (plantA) has the production section: plantA's line1 shows its
    OEE, plantB's line1 -- same line name -- shows none rather than plantA's numbers."""
    hist = tmp_path / "historian.db"
    write_sites(SQLiteHistorian(hist))
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(GATEWAY_A.format(historian=hist))
    e = _env(analysed_db, tmp_path, gateway=cfg)
    try:
        c = TestClient(e.app)
        login(c, "viewer", "viewer-pass-1")
        page = c.get("/production").text
        assert page.count('id="oee-line1"') == 1 and page.count('id="energy-line1"') == 1
        assert page.index('id="oee-line1"') < page.index(f"<h2>{B}</h2>")  # under plantA
        assert "site plantA only" in page
        # plantA ran the whole minute at 3.5 kW: 3.5 kW * 59 s = 0.057 kWh (its own data).
        energy = page[page.index('id="energy-line1"') :].split("</table>")[0]
        assert "0.06" in energy
        only_b = c.get("/production?site=plantB").text
        assert 'id="oee-line1"' not in only_b and 'id="energy-line1"' not in only_b
        only_a = c.get("/production?site=plantA").text
        assert 'id="oee-line1"' in only_a
        # Tags of plantA map to the configured device; plantB's have no device.
        p = c.get("/api/production").json()
        ms = _machines(p)
        assert ms[("plantA", "filler")]["device"] == "127.0.5.10"
        assert ms[("plantB", "filler")]["device"] is None
    finally:
        e.ctx.close()


def test_one_site_looks_as_before(analysed_db: Path, tmp_path: Path) -> None:
    hist = tmp_path / "historian.db"
    write_sites(SQLiteHistorian(hist), ("plantA",))
    e = _env(analysed_db, tmp_path, historian=str(hist))
    try:
        c = TestClient(e.app)
        login(c, "viewer", "viewer-pass-1")
        p = c.get("/api/production").json()
        assert p["multi_site"] is False and p["sites"] == ["plantA"]
        assert p["message"] == "4 tags on 1 lines from the gateway historian"
        page = c.get("/production").text
        assert 'name="site"' not in page and "site-heading" not in page and "data-site" not in page
        assert 'state timeline of filler"' in page
    finally:
        e.ctx.close()


@pytest.mark.browser
@needs_chromium
def test_browser_two_sites_and_the_filter(
    browser: Any,  # noqa: F811
    analysed_db: Path,
    tmp_path: Path,
) -> None:
    """Chromium at 1280 px: both sites' headings and charts, no sideways scrolling; the
    site filter narrows the page to plantA."""
    from otconduit.console.server import BackgroundServer

    hist = tmp_path / "historian.db"
    write_sites(SQLiteHistorian(hist))
    e = _env(analysed_db, tmp_path, historian=str(hist))
    with BackgroundServer(e.app, e.ctx) as srv:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        _login(page, srv.url, "viewer")
        page.goto(srv.url + "/production")
        charts = _charts(page)
        labels = {c["key"] for c in charts}
        assert len(labels) == len(charts) >= 4, charts  # states + trends of each filler
        for c in charts:
            assert c["points"] > 0 and c["inked"] > 500 and 0 < c["width"] <= WIDTH, c
        headings = page.locator("h2.site-heading").all_inner_texts()
        assert [h.split()[:2] for h in headings] == [["Site", "plantA"], ["Site", "plantB"]]
        assert page.locator("section[data-site=plantB] h3").count() == 2  # capper, filler
        assert _overflow(page) <= 0
        _shot(page, "30-production-two-sites")
        page.select_option("select[name=site]", "plantA")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/production?site=plantA")
        assert page.locator("h2.site-heading").all_inner_texts()[0].startswith("Site plantA")
        assert page.locator("section[data-site=plantB]").count() == 0
        assert page.locator("section[data-site=plantA] h3").count() == 1
        _charts(page)
        assert _overflow(page) <= 0
        _shot(page, "31-production-site-filter")
        page.close()
    e.ctx.close()
    assert not errors, errors


GW_PORT = 15029  # the two plants' Modbus PLCs (real pymodbus servers) on loopback
PLCS = {"plantA": "127.0.79.10", "plantB": "127.0.79.11"}


def test_two_real_gateways_into_one_postgresql_historian(
    analysed_db: Path,
    tmp_path: Path,
    pg_cluster: PgCluster,  # noqa: F811
) -> None:
    """Two ``conduit gateway run`` processes, one per plant, poll their own conveyor PLC
    and write one PostgreSQL historian; the console (no gateway config) shows both
    plants' ``conveyor`` machines apart, each with its own PLC's values."""
    import subprocess
    import sys

    import yaml

    from otconduit.gateway.plantconfig import plant_gateway
    from tests.gateway.plantservers import servers_in_thread

    conduit = Path(sys.executable).with_name("conduit")
    name = new_database(pg_cluster, "prodgw")
    dsn = pg_cluster.dsn(name)
    speeds = {"plantA": 24.5, "plantB": 12.0}
    try:
        configs = {}
        for site, host in PLCS.items():
            raw = plant_gateway(port=GW_PORT, hosts={"conveyor-plc": host})
            raw["site"] = site
            raw["name"] = f"{site}-gateway"
            raw["devices"] = [d for d in raw["devices"] if d["name"] == "conveyor-plc"]
            raw["devices"][0]["interval"] = 0.2
            raw["status_file"] = str(tmp_path / f"{site}-status.json")
            raw["sinks"] = {"historian": None, "postgres": {"dsn": dsn}}  # PostgreSQL only
            configs[site] = tmp_path / f"{site}.yaml"
            configs[site].write_text(yaml.safe_dump(raw))
        values = {s: {"conveyor-plc": {"actual_speed": v, "running": int(s == "plantA")}}
                  for s, v in speeds.items()}  # fmt: skip
        with (
            servers_in_thread({"conveyor-plc": PLCS["plantA"]}, GW_PORT, values["plantA"]),
            servers_in_thread({"conveyor-plc": PLCS["plantB"]}, GW_PORT, values["plantB"]),
        ):
            procs = [
                subprocess.Popen(
                    [str(conduit), "gateway", "run", "-c", str(cfg), "--duration", "4"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=tmp_path,  # anything relative stays in the test's directory
                )
                for cfg in configs.values()
            ]
            for proc in procs:
                _, err = proc.communicate(timeout=60)
                assert proc.returncode == 0, err
        e = _env(analysed_db, tmp_path, historian=dsn)
        try:
            c = TestClient(e.app)
            login(c, "viewer", "viewer-pass-1")
            p = c.get("/api/production").json()
            assert p["available"] and p["multi_site"] and p["sites"] == ["plantA", "plantB"]
            ms = _machines(p)
            assert {("plantA", "conveyor"), ("plantB", "conveyor")} <= set(ms)
            for site, speed in speeds.items():
                conv = ms[(site, "conveyor")]
                assert conv["machine_path"] == f"acme/{site}/packaging/line1/conveyor"
                got = {t["name"]: t["value"] for t in conv["tags"]}
                assert got["actual_speed"] == speed and got["running"] == (site == "plantA")
            only = c.get("/api/production", params={"site": "plantB"}).json()
            assert {m["site"] for line in only["lines"] for m in line["machines"]} == {"plantB"}
            page = c.get("/production").text
            assert 'id="site-plantA"' in page and 'id="site-plantB"' in page
        finally:
            e.ctx.close()
    finally:
        drop_database(pg_cluster, name)
