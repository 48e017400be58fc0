"""`conduit maintenance watch` on the lab's conveyor: the bearing-wear scenario's process
model, polled into a real historian, must raise a maintenance-anomaly alert before the
drive trips; a healthy run raises none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from otconduit.cli.main import app
from otconduit.detect.alerts import list_alerts
from otconduit.gateway.historian import open_store
from otconduit.maintenance.watch import machines, watch_machine
from otconduit.store import Store
from tests.maintenance.plantsim import Run, simulate


@pytest.fixture(scope="module")
def worn(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(tmp_path_factory.mktemp("worn") / "gateway.db")


def _config(run: Run, tmp: Path) -> Path:
    p = tmp / "gateway.yaml"
    p.write_text(yaml.safe_dump(run.config.model_dump(mode="json", exclude_none=True)))
    return p


def test_machines_and_condition_tags_come_from_the_gateway_config(worn: Run) -> None:
    ms = {m.name: m for m in machines(worn.config)}
    conveyor = ms["conveyor-plc"]
    names = {t.rsplit("/", 1)[-1] for t in conveyor.tags}
    assert names == {"vibration_rms", "bearing_temp", "motor_current"}
    assert conveyor.running and conveyor.running.endswith("/conveyor/running")
    assert conveyor.host == "127.0.10.10"
    only = machines(worn.config, ["*/conveyor/vibration_rms"])
    assert [m.tags for m in only] == [("acme/plant1/packaging/line1/conveyor/vibration_rms",)]


def test_bearing_wear_alerts_before_the_trip(worn: Run) -> None:
    assert worn.trip_ns is not None, "the simulated bearing did not fail"
    conveyor = next(m for m in machines(worn.config) if m.name == "conveyor-plc")
    with open_store(worn.historian) as hist:
        episodes = watch_machine(hist, conveyor)
    assert len(episodes) == 1
    ep = episodes[0]
    lead_s = (worn.trip_ns - ep.raised_ns) / 1e9
    since_wear_s = (ep.raised_ns - worn.degradation_ns) / 1e9
    print(
        f"\nmaintenance-anomaly raised {lead_s:.0f} plant-s before the conveyor tripped "
        f"({since_wear_s:.0f} s after the bearing began to wear); tags: {ep.tags}"
    )
    assert lead_s > 0
    assert ep.onset_ns <= ep.raised_ns
    assert ep.tags[0]["path"].endswith("vibration_rms") and ep.tags[0]["sigmas"] > 3


def test_a_healthy_conveyor_raises_nothing(tmp_path: Path) -> None:
    run = simulate(tmp_path / "gateway.db", wear=False, seed=11)
    conveyor = next(m for m in machines(run.config) if m.name == "conveyor-plc")
    with open_store(run.historian) as hist:
        assert watch_machine(hist, conveyor) == []


def test_cli_stores_alerts_idempotently(worn: Run, tmp_path: Path) -> None:
    cfg = _config(worn, tmp_path)
    db = tmp_path / "conduit.db"
    args = ["maintenance", "watch", "-c", str(cfg), "--historian", str(worn.historian)]
    args += ["--db", str(db), "-f", "json"]
    for _ in range(2):  # a re-run replaces what the last one stored
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["machine"] for x in rows] == ["conveyor-plc"]
    with Store(db, readonly=True) as store:
        alerts = list_alerts(store)
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule"] == "maintenance-anomaly" and a["category"] == "predictive-maintenance"
    assert a["dst_ip"] == "127.0.10.10" and a["count"] == 1
    assert "vibration_rms" in a["summary"] and "since" in a["summary"]
    tags = a["context"]["tags"]
    assert tags[0]["unit"] == "mm/s" and tags[0]["value"] > tags[0]["normal"]
    assert a["context"]["raised_at"] >= a["context"]["since"]


def test_cli_errors_are_one_line(worn: Run, tmp_path: Path) -> None:
    cfg = _config(worn, tmp_path)
    r = CliRunner().invoke(
        app, ["maintenance", "watch", "-c", str(cfg), "--historian", str(tmp_path / "no.db")]
    )
    assert r.exit_code == 2 and "no historian" in r.stderr
    r = CliRunner().invoke(
        app,
        ["maintenance", "watch", "-c", str(cfg), "--historian", str(worn.historian),
         "--tag", "*/nothing", "--db", str(tmp_path / "c.db")],
    )  # fmt: skip
    assert r.exit_code == 2 and "--tag" in r.stderr
