"""Gateway data on the console: the Production page from the historian, device tags on
the asset page, and machine events joined with network alerts into one incident."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample
from otconduit.store import Store
from tests.console.conftest import Env, login, make_env

PLC = "127.0.5.10"  # the Modbus PLC the fixture capture's alerts are about
LINE = "acme/plant1/packaging/line1"

GATEWAY = """
version: 1
name: line1-gateway
enterprise: acme
site: plant1
devices:
- name: conveyor-plc
  protocol: modbus
  host: {plc}
  port: 502
  tags:
  - {{path: packaging/line1/conveyor/state, address: "hr:10", type: uint16,
      states: {{0: STOPPED, 1: RUNNING, 2: MICROSTOP, 3: FAULT, 4: PLANNED_STOP}}}}
  - {{path: packaging/line1/conveyor/faulted, address: "di:1", type: bool}}
  - {{path: packaging/line1/conveyor/good_count, address: "hr:18", type: uint16, kind: counter}}
  - {{path: packaging/line1/conveyor/motor_power, address: "hr:14", type: uint16, unit: kW}}
sinks:
  historian:
    path: {historian}
"""


def _fill(path: Path, t0: int) -> None:
    s = 1_000_000_000
    h = SQLiteHistorian(path)
    samples = []
    for i in range(30):
        t = t0 - 20 * s + i * s
        state = 1 if i < 22 else 3  # running, then stopped 2 s after the rogue writes
        samples += [
            TagSample(f"{LINE}/conveyor/state", state, Quality.GOOD, t),
            TagSample(f"{LINE}/conveyor/faulted", i >= 23, Quality.GOOD, t),
            TagSample(f"{LINE}/conveyor/good_count", 100 + i, Quality.GOOD, t),
            TagSample(
                f"{LINE}/conveyor/motor_power",
                3.5 if state == 1 else 0.0,
                Quality.GOOD,
                t,
                unit="kW",
            ),
        ]
    samples.append(TagSample(f"{LINE}/conveyor/good_count", None, Quality.STALE, t0 + 11 * s,
                             reason="device did not answer"))  # fmt: skip
    h.write(samples)
    h.flush()
    h.close()


@pytest.fixture
def gw_env(analysed_db: Path, tmp_path: Path) -> Iterator[Env]:
    db = tmp_path / "conduit.db"
    shutil.copy(analysed_db, db)
    with Store(db, readonly=True) as st:
        (t0,) = st.conn.execute(
            "SELECT min(first_seen) FROM alerts WHERE dst_ip = ?", (PLC,)
        ).fetchone()
    hist = tmp_path / "gateway.db"
    _fill(hist, int(t0))
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(GATEWAY.format(plc=PLC, historian=hist))
    e = make_env(db, tmp_path, gateway=cfg)
    yield e
    e.ctx.close()


def test_production_page_shows_lines_states_counters_energy(gw_env: Env) -> None:
    c = TestClient(gw_env.app)
    login(c, "viewer", "viewer-pass-1")
    p = c.get("/api/production").json()
    assert p["available"] is True
    (line,) = p["lines"]
    assert line["line"] == LINE
    (m,) = line["machines"]
    assert m["machine"] == "conveyor" and m["device"] == PLC and m["faulted"] is True
    assert m["state"]["value"] == 3 and m["state"]["name"] == "FAULT"
    assert [(s["value"], s["name"]) for s in m["timeline"]] == [(1, "RUNNING"), (3, "FAULT")]
    assert [t["name"] for t in m["counters"]] == ["good_count"]
    assert [t["name"] for t in m["energy"]] == ["motor_power"]
    o = c.get("/api/overview").json()["production"]
    assert (o["available"], o["lines"], o["machines"], o["faulted"]) == (True, 1, 1, 1)
    assert o["states"] == [{"machine": "conveyor", "device": PLC, "state": 3,
                            "state_name": "FAULT", "faulted": True}]  # fmt: skip
    assert "1</b> faulted" in c.get("/").text
    page = c.get("/production").text
    assert "conveyor" in page and "motor_power" in page and "No gateway data yet" not in page
    tags = c.get(f"/api/assets/{PLC}").json()["tags"]
    names = ("state", "faulted", "good_count", "motor_power")
    assert {t["path"] for t in tags} == {f"{LINE}/conveyor/{n}" for n in names}


def test_machine_events_join_the_plc_incident(gw_env: Env) -> None:
    c = TestClient(gw_env.app)
    login(c, "viewer", "viewer-pass-1")
    inc = c.get("/api/incidents", params={"asset": PLC}).json()["items"]
    (plc,) = [i for i in inc if PLC in i["assets"] and i["alerts"] > 1]
    machine = [e for e in plc["timeline"] if e["kind"] == "machine"]
    titles = [e["title"] for e in machine]
    assert "conveyor: state RUNNING (1) -> FAULT (3)" in titles and "conveyor: fault" in titles
    assert any("good_count stale: device did not answer" in t for t in titles)
    assert plc["machine_events"] == len(machine) >= 3
    # One timeline: the network alerts come first, then the machine stops.
    kinds = [e["kind"] for e in plc["timeline"]]
    assert kinds.index("machine") > kinds.index("alert")


def test_without_historian_the_page_says_so(env: Env) -> None:
    c = TestClient(env.app)
    login(c, "viewer", "viewer-pass-1")
    p = c.get("/api/production").json()
    assert p == {"available": False, "lines": [], "message": p["message"]}
    assert "no gateway data yet" in p["message"] and "--historian" in p["message"]


def test_empty_or_missing_historian(analysed_db: Path, tmp_path: Path) -> None:
    e = make_env(analysed_db, tmp_path, historian=str(tmp_path / "missing.db"))
    c = TestClient(e.app)
    login(c, "viewer", "viewer-pass-1")
    p = c.get("/api/production").json()
    assert p["available"] is False and "cannot read the historian" in p["message"]
    assert c.get("/api/incidents").status_code == 200
    e.ctx.close()
