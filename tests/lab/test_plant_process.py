"""The plant's process model, register maps, scenario timing and policy file (no network)."""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path

import pytest

from otconduit.lab import addresses as A
from otconduit.lab.labels import LabelSink
from otconduit.lab.packml import ACTING_TIME, PackMLMachine, State
from otconduit.lab.process import (
    BREAKS,
    DT,
    VIBRATION_ALARM,
    VIBRATION_TRIP,
    PlantProcess,
    in_break,
)
from otconduit.lab.register_maps import CONVEYOR_MAP, SDM630_MAP, Register, register
from otconduit.lab.scenarios import MIXED, SCENARIOS, parse_scenarios, schedule

REPO = Path(__file__).resolve().parents[2]


def _run(p: PlantProcess, until: float) -> list[dict[str, float]]:
    out = []
    while p.t < until:
        p.advance_to(p.t + 5.0)
        out.append(p.snapshot())
    return out


def test_bearing_wear_raises_vibration_and_temperature_then_trips() -> None:
    p = PlantProcess(seed=3)
    p.schedule_bearing_failure(start=20.0, fail=300.0)
    trace = _run(p, 400.0)
    early = [s for s in trace if s["t"] <= 20.0]
    late = [s for s in trace if 250.0 <= s["t"] <= 285.0]
    assert max(s["vibration"] for s in early) < 3.0
    assert min(s["vibration"] for s in late) > VIBRATION_ALARM - 2.0
    assert late[-1]["bearing_temp"] > early[-1]["bearing_temp"] + 15.0
    kinds = [e.kind for e in p.events]
    assert kinds.index("vibration_alarm") < kinds.index("conveyor_trip")
    trip = next(e for e in p.events if e.kind == "conveyor_trip")
    assert 250.0 <= trip.t <= 300.0
    assert trip.details["vibration_rms"] >= VIBRATION_TRIP
    # unplanned stop: the drive is faulted, stopped and draws no current
    assert p.conveyor.state == 3
    assert p.conveyor_values()["fault_code"] == 1
    assert trace[-1]["speed"] == 0.0 and trace[-1]["current"] == 0.0


def test_normal_run_stays_below_alarm() -> None:
    p = PlantProcess(seed=3)
    trace = _run(p, 600.0)
    assert max(s["vibration"] for s in trace) < VIBRATION_ALARM
    assert not any(e.kind == "conveyor_trip" for e in p.events)
    assert trace[-1]["good"] > 400  # ~50 parts/min at 25 m/min (0.5 m pitch), less scrap


def test_stop_sets_motor_current_to_zero_and_restart_brings_it_back() -> None:
    p = PlantProcess(seed=1)
    p.advance_to(20.0)
    assert p.conveyor.current > 5.0
    p.write_conveyor("run_command", 0)
    p.advance_to(30.0)
    assert p.conveyor.current == 0.0
    assert p.conveyor.speed == 0.0
    parts = p.conveyor.good
    p.advance_to(60.0)
    assert p.conveyor.good == parts  # nothing produced while stopped
    p.write_conveyor("run_command", 1)
    p.advance_to(80.0)
    assert p.conveyor.current > 5.0 and p.conveyor.speed > 20.0


def test_setpoint_write_changes_speed_and_load() -> None:
    p = PlantProcess(seed=2)
    p.advance_to(20.0)
    current_before = p.conveyor.current
    p.write_conveyor("speed_setpoint", 40.0)
    p.advance_to(60.0)
    assert p.conveyor.speed == pytest.approx(40.0)
    assert p.conveyor.current > current_before + 2.0


def test_meter_power_is_machine_load_plus_base_and_kwh_integrates() -> None:
    p = PlantProcess(seed=4)
    kwh0 = p.meters[0].kwh
    for _ in range(40):
        p.advance_to(p.t + DT)
        m1 = p.meter_values(0)
        load = p.conveyor.power + p.press.power + p.meters[0].base_kw
        assert m1["total_power"] / 1000.0 == pytest.approx(load, abs=0.3)
        phases = sum(m1[f"phase{i}_power"] for i in (1, 2, 3))
        assert m1["total_power"] == pytest.approx(phases)
        assert 225.0 < m1["phase1_voltage"] < 235.0
        assert 49.9 <= m1["frequency"] <= 50.1
    assert p.meters[0].kwh > kwh0
    # press CPU in STOP: feeder 1 draws visibly less
    before = p.meter_values(0)["total_power"]
    p.press.cpu_run = False
    p.advance_to(p.t + 10.0)
    assert p.meter_values(0)["total_power"] < before - 5000.0


def test_same_seed_same_values_different_seed_different_values() -> None:
    def trace(seed: int) -> list[dict[str, float]]:
        p = PlantProcess(seed=seed)
        p.schedule_bearing_failure(10.0, 200.0)
        p.advance_to(50.0)
        p.write_conveyor("speed_setpoint", 30.0)
        return _run(p, 250.0)

    assert trace(11) == trace(11)
    assert trace(11) != trace(12)


def test_planned_break_reads_as_planned_stop() -> None:
    start = BREAKS[0][0] - 60
    p = PlantProcess(seed=1, start_of_day=start)
    assert not in_break(p.time_of_day())
    p.advance_to(90.0)
    assert in_break(p.time_of_day())
    p.write_conveyor("run_command", 0)
    p.advance_to(100.0)
    assert p.conveyor_values()["state"] == 4  # PLANNED_STOP, not STOPPED


def test_packml_state_machine() -> None:
    m = PackMLMachine(State.EXECUTE)
    assert m.command(4)  # Hold
    assert m.state == State.HOLDING
    m.step(ACTING_TIME)
    assert m.state == State.HELD
    assert not m.command(2)  # Start is not valid in Held
    assert m.command(5)  # Unhold
    m.step(ACTING_TIME)
    assert m.state == State.EXECUTE
    assert m.command(3)  # Stop
    m.step(ACTING_TIME)
    assert m.state == State.STOPPED
    assert m.command(1)  # Reset
    m.step(ACTING_TIME)
    assert m.state == State.IDLE
    assert m.command(2)  # Start
    m.step(ACTING_TIME)
    assert m.state == State.EXECUTE and m.producing
    assert not m.command(99)


def test_starved_packer_suspends_and_resumes() -> None:
    p = PlantProcess(seed=5)
    p.write_conveyor("run_command", 0)
    p.advance_to(40.0)
    assert p.packer.machine.state == State.SUSPENDED
    p.write_conveyor("run_command", 1)
    p.advance_to(60.0)
    assert p.packer.machine.state == State.EXECUTE


def test_register_encoding_round_trips() -> None:
    f = Register("x", "input", 0, "float32")
    assert f.encode(230.5) == [0x4366, 0x8000]
    assert f.decode(f.encode(49.98)) == pytest.approx(49.98, rel=1e-6)
    u = Register("c", "holding", 0, "uint32")
    assert u.encode(70000) == [1, 4464]
    assert u.decode([1, 4464]) == 70000
    t = Register("t", "holding", 0, "int16", scale=0.1)
    assert t.decode(t.encode(-12.3)) == pytest.approx(-12.3)
    assert register(CONVEYOR_MAP, "vibration_rms").decode([712]) == pytest.approx(7.12)


def test_sdm630_map_uses_the_published_addresses() -> None:
    addr = {r.name: r.address for r in SDM630_MAP if r.table == "input"}
    assert addr["phase1_voltage"] == 0x0000
    assert addr["phase1_current"] == 0x0006
    assert addr["phase1_power"] == 0x000C
    assert addr["total_power"] == 0x0034
    assert addr["frequency"] == 0x0046
    assert addr["import_kwh"] == 0x0048
    assert addr["total_kwh"] == 0x0156
    assert all(r.type == "float32" and r.width == 2 for r in SDM630_MAP)
    assert len(set(addr.values())) == len(addr)


def test_conveyor_map_has_no_overlaps() -> None:
    for table in ("coil", "discrete", "holding", "input"):
        used: set[int] = set()
        for r in (r for r in CONVEYOR_MAP if r.table == table):
            span = set(range(r.address, r.address + r.width))
            assert not used & span, r.name
            used |= span


def test_scenario_names_and_schedule_are_seeded() -> None:
    assert parse_scenarios([]) == ["normal"]
    assert parse_scenarios(["rogue-write,recon", "recon"]) == ["rogue-write", "recon"]
    assert parse_scenarios(["mixed"]) == list(MIXED)
    assert parse_scenarios(["normal", "recon"]) == ["recon"]
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_scenarios(["meltdown"])
    names = list(MIXED)
    a, b, c = schedule(names, 7, 300.0), schedule(names, 7, 300.0), schedule(names, 8, 300.0)
    assert a == b and a != c
    slotted = sorted(t for n, t in a.items() if SCENARIOS[n].slotted)
    assert all(0.12 * 300 <= t <= 0.85 * 300 for t in slotted)
    assert len(set(slotted)) == len(slotted)


def test_label_sink_checks_classes() -> None:
    sink = LabelSink()
    lab = sink.add(
        scenario="s",
        kind="k",
        ts=1.5,
        src_ip="127.0.40.66",
        dst_ip="127.0.10.10",
        dst_port=502,
        protocol="modbus",
        operation="write",
        function="WRITE_SINGLE_REGISTER",
        function_code=6,
        description="d",
    )
    assert lab.id == "L0001"
    d = sink.as_json()[0]
    assert {"id", "scenario", "kind", "ts", "src_ip", "dst_ip", "protocol", "operation"} <= set(d)
    assert "ts_end" not in d
    with pytest.raises(ValueError):
        sink.add(**{**d, "id": None, "operation": "hack"} | {"id": "x"})


def test_address_plan_is_loopback_and_zoned() -> None:
    addrs = A.capture_addresses()
    assert all(ipaddress.IPv4Address(a).is_loopback for a in addrs)
    for n in A.NODES:
        zone = A.zone_of(n.ip)
        assert zone is not None and zone.name == n.zone and zone.level == n.level
    assert A.node("conveyor-plc").ip == "127.0.10.10"
    assert A.node("historian").level == 3.5


def test_example_policy_matches_the_address_plan() -> None:
    yaml = pytest.importorskip("yaml")
    policy = yaml.safe_load((REPO / "examples" / "plant-policy.yaml").read_text())
    zones = {z["name"]: z for z in policy["zones"]}
    for z in A.ZONES:
        assert zones[z.name]["members"] == [z.cidr]
        assert math.isclose(zones[z.name]["level"], z.level)
        assert 1 <= zones[z.name]["sl_t"] <= 4
    named = {n.name: n.ip for n in A.DEVICES + A.HOSTS + A.EXTERNAL}
    assert policy["hosts"] == named
    for c in policy["conduits"]:
        assert c["from"] in zones and c["to"] in zones
        for h in c.get("from_hosts", []) + c.get("to_hosts", []):
            assert h in named
        for proto, rule in c["protocols"].items():
            assert proto in ("modbus", "s7comm", "opcua", "bacnet", "iec104", "http")
            assert set(rule["operations"]) <= {
                "read",
                "write",
                "control",
                "program",
                "firmware",
                "identity",
                "diagnostic",
            }
    # the attacker and the rogue device are covered by no conduit
    assert A.ATTACKER.ip not in policy["hosts"].values()
    assert A.ROGUE.ip not in policy["hosts"].values()
