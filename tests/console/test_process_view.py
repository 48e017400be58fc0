"""The console with the gateway config: alerts in process terms with the tag's trend around
the write and the machine events that followed, incidents that name the write -> state
change join, and the Production page's charts (trends, state timeline, OEE and energy
per line and shift) -- on a synthetic plant (tests/process/synthplant.py) whose conveyor
stops one second after the HMI drops its run coil."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from tests.console.conftest import Env, make_env
from tests.process.synthplant import ATTACKER, HMI, PLC, STOP_AT, WRITE_AT, Plant, make_plant


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Plant:
    plant = make_plant(tmp_path_factory.mktemp("synthplant"))
    # `conduit detect --gateway` puts the stored alerts in process terms.
    run = CliRunner().invoke(cli, ["detect", "--db", str(plant.db), "--gateway", str(plant.config)])
    assert run.exit_code == 0, run.output
    assert "conveyor/speed_setpoint := 40.0 m/min (was 25.0)" in run.output
    return plant


@pytest.fixture
def env(synth: Plant, tmp_path: Path) -> Iterator[Env]:
    e = make_env(synth.db, tmp_path, gateway=synth.config)
    yield e
    e.ctx.close()


def _alert(c: Any, src: str) -> dict[str, Any]:
    items = c.get("/api/alerts?limit=100").json()["items"]
    found = [a for a in items if a["src_ip"] == src and a["dst_ip"] == PLC]
    assert len(found) == 1, items
    detail: dict[str, Any] = c.get(f"/api/alerts/{found[0]['id']}").json()
    return detail


def test_alert_in_process_terms_with_its_trend(env: Env) -> None:
    c = env.client("viewer")
    a = _alert(c, ATTACKER)
    [e] = a["process"]
    assert e["text"] == "conveyor/speed_setpoint := 40.0 m/min (was 25.0)"
    assert e["previous_from"] == "historian"
    [t] = a["trends"]
    assert t["name"] == "conveyor/speed_setpoint" and t["unit"] == "m/min"
    values = [v for _, v in t["points"]]
    assert 25.0 in values and 40.0 in values  # the trend shows the step the write made
    write_ms = t["writes"][0]["t"]
    assert t["from_ms"] < write_ms < t["to_ms"]
    page = c.get(f"/alerts/{a['id']}").text
    assert "In process terms" in page and 'data-chart="trend"' in page
    assert "/static/vendor/chart.umd.min.js" in page
    blob = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, re.S)
    assert blob is not None and json.loads(blob.group(1))["trend0"]["points"]


def test_machine_events_follow_the_write_on_one_timeline(env: Env) -> None:
    c = env.client("viewer")
    a = _alert(c, HMI)
    assert a["process"][0]["text"].startswith("conveyor/run_command := off")
    kinds = [e["kind"] for e in a["machine_timeline"]]
    assert kinds[0] == "network" and "machine" in kinds
    stop = next(e for e in a["machine_timeline"] if e["kind"] == "machine"
                and e["tag"].endswith("/conveyor/state"))  # fmt: skip
    assert "RUNNING (1) -> STOPPED (0)" in stop["title"]
    # The historian's first STOPPED sample is 1.25 s after the coil write (synthplant).
    assert stop["after_s"] == pytest.approx(1.25, abs=0.01) and stop["causal"] is True
    page = c.get(f"/alerts/{a['id']}").text
    assert "What followed on the machine" in page and "after the write" in page


def test_incident_names_the_write_to_state_change_join(env: Env) -> None:
    c = env.client("viewer")
    hmi = _alert(c, HMI)
    incidents = c.get("/api/incidents").json()["items"]
    inc = next(i for i in incidents
               if any(e.get("alert_id") == hmi["id"] for e in i["timeline"]))  # fmt: skip
    joins = [j for j in inc["causal"] if j["alert_id"] == hmi["id"]]
    assert joins and all(j["device"] == PLC for j in joins)
    state = next(j for j in joins if j["tag"].endswith("/conveyor/state"))
    assert state["delay_s"] == pytest.approx(1.25, abs=0.01)
    assert "write -> state change" in state["text"]
    marked = [e for e in inc["timeline"] if e.get("after_alert") == hmi["id"]]
    assert marked and all(e["kind"] == "machine" for e in marked)
    # The setpoint write came long before (WRITE_AT vs STOP_AT): no join claims it.
    rogue = _alert(c, ATTACKER)
    assert STOP_AT - WRITE_AT > 120
    assert not any(j["alert_id"] == rogue["id"] and j["event"] == "state-change"
                   for i in incidents for j in i["causal"])  # fmt: skip
    page = c.get("/incidents").text
    assert "Write → state change" in page


def test_production_page_charts_and_kpis(env: Env) -> None:
    c = env.client("viewer")
    page = c.get("/production").text
    blob = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, re.S)
    assert blob is not None
    data = json.loads(blob.group(1))
    kinds = set(re.findall(r'data-chart="(\w+)"', page))
    assert {"states", "lines", "bars"} <= kinds
    states = next(v for k, v in data.items() if k.startswith("states"))
    names = [s["name"] for s in states["segments"]]
    assert names[0] == "RUNNING" and names[-1] == "STOPPED"  # the conveyor's own names
    oee = data["oee:line1"]
    assert [s["name"] for s in oee["series"]] == [
        "availability", "effectiveness", "quality rate", "OEE",
    ]  # fmt: skip
    assert oee["labels"] and all(label.startswith("late ") for label in oee["labels"])
    row = oee["rows"][0]
    assert 0 < row["availability"] <= 100 and row["oee"] is not None
    assert data["energy:line1"]["series"][0]["values"][0] > 0
    assert 'id="oee-line1"' in page and 'id="energy-line1"' in page


def test_without_gateway_the_alert_page_is_as_before(synth: Plant, tmp_path: Path) -> None:
    e = make_env(synth.db, tmp_path)
    try:
        c = e.client("viewer")
        a = _alert(c, HMI)
        assert a["trends"] == [] and a["machine_timeline"] == []
        assert a["process"]  # stored by `conduit detect --gateway`: still in the alert
    finally:
        e.ctx.close()
