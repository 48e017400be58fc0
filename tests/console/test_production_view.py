"""The Production page reads like a plant: machine states by name (PackML unless the
tag's config names them), values rounded to the tag's precision, and counters told from
gauges by the tag's definition (kWh counts up, kW goes up and down) -- never by its
name: ``total_power`` is a gauge."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from otconduit.console.tagview import TagInfo, decimals_of, describe, kind_of, state_name
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import PACKML_STATES, Quality, TagSample
from otconduit.lab.packml import State
from tests.console.conftest import Env, make_env

LINE = "acme/plant1/packaging/line1"
GATEWAY = """
version: 1
name: line1-gateway
enterprise: acme
site: plant1
devices:
- name: energy-meter-1
  protocol: modbus
  host: 127.0.10.50
  tags:
  - {{path: packaging/line1/meter-1/total_power, address: "ir:52", type: float32, unit: W}}
  - {{path: packaging/line1/meter-1/total_kwh, address: "ir:342", type: float32, unit: kWh}}
  - {{path: packaging/line1/meter-1/total_pf, address: "ir:62", type: float32}}
- name: conveyor-plc
  protocol: modbus
  host: 127.0.10.10
  tags:
  - {{path: packaging/line1/conveyor/motor_current, address: "hr:13", type: uint16,
      scale: {{factor: 0.01}}, unit: A}}
  - {{path: packaging/line1/conveyor/good_count, address: "hr:18", type: uint32, unit: parts}}
  - {{path: packaging/line1/conveyor/total_stops, address: "hr:22", type: uint16}}
- name: case-packer
  protocol: modbus
  host: 127.0.10.30
  tags:
  - {{path: packaging/line1/packer/state, address: "hr:0", type: uint16}}
sinks:
  historian:
    path: {historian}
"""
VALUES = {
    "meter-1/total_power": (1234.56789, "W"),
    "meter-1/total_kwh": (98765.43219, "kWh"),
    "meter-1/total_pf": (0.97312, ""),
    "conveyor/motor_current": (3.45678, "A"),
    "conveyor/good_count": (1523, "parts"),
    "conveyor/total_stops": (7, ""),
}


@pytest.fixture
def plant(analysed_db: Path, tmp_path: Path) -> Iterator[Env]:
    db = tmp_path / "conduit.db"
    shutil.copy(analysed_db, db)
    hist = tmp_path / "gateway.db"
    h = SQLiteHistorian(hist)
    t0 = 1_790_000_000 * 10**9
    samples = [
        TagSample(f"{LINE}/{k}", v, Quality.GOOD, t0, unit=u) for k, (v, u) in VALUES.items()
    ]
    for i, state in enumerate((6, 6, 5, 6)):  # EXECUTE, SUSPENDED, EXECUTE
        samples.append(TagSample(f"{LINE}/packer/state", state, Quality.GOOD, t0 + i * 10**9))
    h.write(samples)
    h.flush()
    h.close()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(GATEWAY.format(historian=hist))
    e = make_env(db, tmp_path, gateway=cfg)
    yield e
    e.ctx.close()


def test_packml_names_match_the_lab_machine() -> None:
    assert {s.value: s.name for s in State} == PACKML_STATES


def test_kind_comes_from_the_definition_not_the_name() -> None:
    assert kind_of(TagInfo("float32", "W"), "total_power", 1.5) == "gauge"
    assert kind_of(TagInfo("float32", "kW"), "energy_total", 1.5) == "gauge"
    assert kind_of(TagInfo("float32", "kWh"), "import", 1.5) == "counter"
    assert kind_of(TagInfo("uint16", ""), "good_count", 3) == "gauge"  # a name is no proof
    assert kind_of(TagInfo("uint16", "", kind="counter"), "good_count", 3) == "counter"
    assert kind_of(TagInfo("bool"), "running", True) == "flag"
    assert kind_of(TagInfo("uint16", states="packml"), "machine_status", 6) == "state"


def test_precision_from_the_scale() -> None:
    assert decimals_of(TagInfo("uint16", scale_step=0.1), 12.3) == 1
    assert decimals_of(TagInfo("uint16", scale_step=0.01), 3.4567) == 2
    assert decimals_of(TagInfo("uint16", scale_step=0.25), 1.25) == 2
    assert decimals_of(TagInfo("uint16", decimals=3), 1.0) == 3
    assert decimals_of(TagInfo("uint32"), 1523) == 0
    assert describe(TagInfo("uint16", "A", scale_step=0.01), "i", "A", 3.45678)["display"] == "3.46"
    assert state_name(TagInfo(states={1: "RUNNING"}), 1) == "RUNNING"
    assert state_name(None, 6) == "EXECUTE" and state_name(None, 99) is None


def test_production_api_and_page(plant: Env) -> None:
    c = plant.client("viewer")
    p = c.get("/api/production").json()
    machines = {m["machine"]: m for line in p["lines"] for m in line["machines"]}
    tags = {t["name"]: t for m in machines.values() for t in m["tags"]}
    assert tags["total_power"]["kind"] == "gauge" and tags["total_power"]["display"] == "1234.57"
    assert tags["total_kwh"]["kind"] == "counter" and tags["total_kwh"]["display"] == "98765.43"
    assert tags["total_pf"]["display"] == "0.97"
    assert tags["motor_current"]["display"] == "3.46"  # scale 0.01: two decimals
    assert tags["good_count"]["kind"] == "counter" and tags["good_count"]["display"] == "1523"
    assert tags["total_stops"]["kind"] == "gauge"  # no unit nor kind says it counts
    meter = machines["meter-1"]
    assert [t["name"] for t in meter["counters"]] == ["total_kwh"]
    assert {t["name"] for t in meter["energy"]} == {"total_power", "total_kwh"}
    packer = machines["packer"]
    assert packer["state"]["value"] == 6 and packer["state"]["name"] == "EXECUTE"
    assert [s["name"] for s in packer["timeline"]] == ["EXECUTE", "SUSPENDED", "EXECUTE"]
    html = c.get("/production").text

    def row(name: str) -> str:
        m = re.search(rf'<tr[^>]*data-tag="{name}">(.*?)</tr>', html)
        assert m, name
        return m.group(1)

    assert ">gauge<" in row("total_power") and ">1234.57<" in row("total_power")
    assert ">counter<" in row("total_kwh") and ">98765.43<" in row("total_kwh")
    assert "state: EXECUTE" in html and "<b>SUSPENDED</b>" in html
    events = [e["title"] for e in plant.ctx.production.machine_events()]
    assert "packer: state EXECUTE (6) -> SUSPENDED (5)" in events
