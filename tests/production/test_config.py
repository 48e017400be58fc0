"""Bad production models are one line naming the file and the line, exit 2: a state map
or counter missing, a tag that does not exist, overlapping shifts, and the rest."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app
from otconduit.gateway.model import Quality
from otconduit.gateway.plantconfig import plant_gateway
from otconduit.production.api import load_plan
from otconduit.yamlconf import ConfigError
from tests.conftest import REPO
from tests.production.synth import gateway_yaml, write

GOOD: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "shifts": [
        {"name": "early", "start": "06:00", "end": "14:00"},
        {"name": "late", "start": "14:00", "end": "22:00"},
        {"name": "night", "start": "22:00", "end": "06:00"},
    ],
    "machines": [
        {
            "oee": {
                "state": {
                    "tag": "area/line1/press/state",
                    "names": {1: "RUN", 2: "STOP"},
                    "producing": ["RUN"],
                    "planned_stop": ["STOP"],
                },
                "counters": {"good": "area/line1/press/good", "scrap": "area/line1/press/scrap"},
                "planned_cycle_time": 2.5,
            },
            "energy": {"power": "area/line1/press/power", "part_of": "meter"},
        },
        {"name": "meter", "energy": {"kwh": "area/line1/meter/kwh"}},
    ],
}


def _broken(path: str, value: Any = None, delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    *head, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = doc
    for p in head:
        node = node[p]
    if delete:
        del node[last]
    else:
        node[last] = value
    return doc


def _error(tmp_path: Path, production: dict[str, Any], **tags: Any) -> tuple[str, str]:
    """(the one-line message, the text of the line it names)."""
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(production, **tags))
    with pytest.raises(ConfigError) as exc:
        load_plan(cfg)
    msg = str(exc.value)
    assert "\n" not in msg
    m = re.match(rf"{re.escape(str(cfg))}:(\d+): ", msg)
    assert m, msg
    return msg, cfg.read_text().splitlines()[int(m[1]) - 1]


def test_the_good_model_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(GOOD))
    _gw, plan = load_plan(cfg)
    assert [m.name for m in plan.machines] == ["press", "meter"]
    assert plan.machines[0].oee is not None
    assert plan.machines[0].oee.good is not None and plan.machines[0].oee.good.rollover == 2**16
    assert plan.output_of("line1") is plan.machines[0]


def test_example_config_has_the_plant_model() -> None:
    _gw, plan = load_plan(REPO / "examples" / "gateway-plant.yaml")
    conveyor = plan.machines[0]
    assert (conveyor.line, conveyor.name) == ("line1", "conveyor")
    assert conveyor.oee is not None and conveyor.oee.planned_cycle_time_s == 1.2
    assert [s.name for s in plan.calendar.shifts] == ["early", "late", "night"]
    assert str(plan.calendar.tz) == "Europe/Berlin"


@pytest.mark.parametrize(
    ("production", "tags", "wanted", "on_line"),
    [
        # the state map missing
        (
            _broken("machines.0.oee.state", delete=True),
            {},
            "missing required field 'state'",
            "counters:",
        ),  # the oee block's first line
        # a counter missing: one of good/scrap/produced is not enough
        (
            _broken("machines.0.oee.counters.scrap", delete=True),
            {},
            "at least two of produced",
            "good: area/line1/press/good",
        ),
        # a tag that does not exist, with the closest one
        (
            _broken("machines.0.oee.state.tag", "area/line1/press/stat"),
            {},
            "no tag 'area/line1/press/stat' in the gateway's devices: did you mean "
            "'area/line1/press/state'?",
            "tag: area/line1/press/stat",
        ),
        (_broken("machines.1.energy.kwh", "area/line1/meter/kwhh"), {}, "no tag", "kwh:"),
        # shifts that overlap
        (
            _broken("shifts.1.start", "13:30"),
            {},
            "shift 'late' overlaps shift 'early'",
            "start: '13:30'",
        ),
        (
            _broken("shifts.2", {"name": "sat", "start": "05:00", "end": "07:00", "days": ["sat"]}),
            {},
            "shift 'sat' overlaps shift 'early'",
            "start: 05:00",
        ),
        # states the map does not have, or given two meanings
        (
            _broken("machines.0.oee.state.producing", ["RUNNING"]),
            {},
            "state 'RUNNING' is not in the state map: did you mean 'RUN'?",
            "- RUNNING",
        ),
        (
            _broken("machines.0.oee.state.producing", []),
            {},
            "state.producing: name the state",
            "producing: []",
        ),
        (
            _broken("machines.0.oee.state.down", ["STOP"]),
            {},
            "planned_stop: state 'STOP' is already down",
            "- STOP",
        ),
        # an on-change state tag cannot tell a steady state from a gateway that was down
        (
            GOOD,
            {"press/state": {"mode": "on_change"}},
            "set 'mode: cyclic' on the tag",
            "tag: area/line1/press/state",
        ),
        # energy units, part_of, time zone, durations
        (GOOD, {"meter/kwh": {"unit": ""}}, "set the tag's 'unit' to Wh, kWh or MWh", "kwh:"),
        (
            _broken("machines.0.energy.part_of", "meters"),
            {},
            "part_of 'meters' names no machine",
            "part_of: meters",
        ),
        (_broken("timezone", "Europe/Berln"), {}, "unknown time zone 'Europe/Berln'", "timezone:"),
        (
            _broken("machines.0.oee.planned_cycle_time", 0),
            {},
            "greater than 0",
            "planned_cycle_time: 0",
        ),
        (_broken("shifts.0.start", "6h"), {}, "is not a time of day", "start: 6h"),
        (
            _broken("machines.1.name", "press"),
            {},
            "machine name 'press' is used twice",
            "name: press",
        ),
        (
            _broken("machines.1.energy", None),
            {},
            "needs an 'oee' model, an 'energy' source",
            "name: meter",
        ),
    ],
)
def test_bad_models_name_the_line(
    tmp_path: Path, production: dict[str, Any], tags: dict[str, Any], wanted: str, on_line: str
) -> None:
    msg, line = _error(tmp_path, production, **tags)
    assert wanted in msg
    assert on_line in line, (msg, line)


def test_cli_bad_model_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(_broken("machines.0.oee.state.tag", "area/line1/press/nope")))
    for cmd in ("oee", "energy"):
        res = CliRunner().invoke(app, [cmd, "-c", str(cfg), "--historian", str(tmp_path)])
        assert res.exit_code == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{cfg}:" in lines[0] and "no tag" in lines[0]


def test_cli_without_a_production_section(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(None))
    res = CliRunner().invoke(app, ["oee", "-c", str(cfg)])
    assert res.exit_code == 2 and "no 'production' section" in res.stderr


def test_cli_empty_historian_and_no_shift_plan(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(gateway_yaml(_broken("shifts", [])))
    db = tmp_path / "gateway.db"
    write(db, [])
    res = CliRunner().invoke(app, ["oee", "-c", str(cfg), "--historian", str(db)])
    assert res.exit_code == 2 and "has no samples of the production model's tags" in res.stderr
    write(db, [("press/state", 0, 1, Quality.GOOD)])
    res = CliRunner().invoke(app, ["oee", "-c", str(cfg), "--historian", str(db), "--by", "shift"])
    assert res.exit_code == 2 and "--by shift needs a shift plan" in res.stderr


def test_pruned_plant_config_must_drop_the_model() -> None:
    """The plant's model names every device's tags: a config without the meters is
    refused, not silently left without energy."""
    from pydantic import ValidationError

    from otconduit.gateway.config import GatewayConfig

    raw = plant_gateway(production=True)
    raw["devices"] = [d for d in raw["devices"] if d["name"] == "conveyor-plc"]
    with pytest.raises(ValidationError, match="no tag 'packaging/line1/meter-1/total_kwh'"):
        GatewayConfig.model_validate(raw)
