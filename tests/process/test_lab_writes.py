"""Writes in process terms against the built-in plant: the rogue-write scenario sets the
conveyor's speed setpoint and the plc-stop scenario drops its run coil, while the gateway
(from examples/gateway-plant.yaml's generator, polling fast) fills a historian.

The capture is analysed with ``--gateway``; what the write did must read as the lab's
labels say it happened: the value the label says was written, scaled by the plant's own
register map, and the value the attacker's read just before it brought back. The labels
and register maps come from the lab, which imports nothing of the monitor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.plantconfig import plant_gateway
from otconduit.lab import addresses as A
from otconduit.lab.register_maps import CONVEYOR_MAP, register
from otconduit.lab.sniffer import capture_unavailable_reason

pytestmark = pytest.mark.skipif(
    capture_unavailable_reason() is not None or os.geteuid() != 0,
    reason=f"the plant needs root and loopback capture ({capture_unavailable_reason()})",
)
SPEED, DURATION = 20.0, 24.0
POLL = 0.1
SETPOINT = "acme/plant1/packaging/line1/conveyor/speed_setpoint"
RUN = "acme/plant1/packaging/line1/conveyor/run_command"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.production.labrun import GatewayThread, _wait_listening, _wait_ports_free

    tmp = tmp_path_factory.mktemp("lab-writes")
    _wait_ports_free()
    raw = plant_gateway()
    for d in raw["devices"]:
        d["interval"] = POLL
    raw["sinks"] = {"historian": {"path": str(tmp / "gateway.db")}}
    raw["buffer"] = {"disk_path": str(tmp / "buffer.db")}
    raw["status_file"] = str(tmp / "status.json")
    cfg_path = tmp / "gateway.yaml"
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    pcap, labels = tmp / "plant.pcap", tmp / "labels.json"
    args = ["--scenario", "rogue-write,plc-stop", "--duration", str(DURATION), "--speed",
            str(SPEED), "--seed", "5", "--settle", "1", "--pcap", str(pcap),
            "--labels", str(labels)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "otconduit.lab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp,
    )
    gateway = GatewayThread(GatewayConfig.model_validate(raw))
    try:
        _wait_listening(A.CONVEYOR_PLC.ip, 502, proc, 30.0)
        gateway.start()
        _out, err = proc.communicate(timeout=DURATION + 90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        gateway.stop()
    assert proc.returncode == 0, err[-3000:]
    db = tmp / "conduit.db"
    run = CliRunner().invoke(cli, ["analyze", str(pcap), "--db", str(db), "--gateway",
                                   str(cfg_path)])  # fmt: skip
    assert run.exit_code == 0, run.output
    ops = CliRunner().invoke(cli, ["operations", "--db", str(db), "--class", "write",
                                   "--gateway", str(cfg_path), "-f", "json"])  # fmt: skip
    assert ops.exit_code == 0, ops.output
    # The same without the historian: previous values from the operations alone.
    bare = dict(raw, sinks={"historian": {"path": str(tmp / "absent" / "none.db")}})
    bare_path = tmp / "bare.yaml"
    bare_path.write_text(yaml.safe_dump(bare, sort_keys=False))
    ops_bare = CliRunner().invoke(cli, ["operations", "--db", str(db), "--gateway",
                                        str(bare_path), "-f", "json"])  # fmt: skip
    assert ops_bare.exit_code == 0, ops_bare.output
    alerts = CliRunner().invoke(cli, ["alerts", "--db", str(db), "-f", "json"])
    return {
        "summary": run.output,
        "ops": json.loads(ops.stdout),
        "ops_bare": json.loads(ops_bare.stdout),
        "alerts": json.loads(alerts.stdout),
        "labels": json.loads(labels.read_text()),
        "db": db,
        "config": cfg_path,
    }


def _label(lab: dict[str, Any], kind: str, protocol: str = "modbus") -> dict[str, Any]:
    found = [lb for lb in lab["labels"] if lb["kind"] == kind and lb["protocol"] == protocol]
    assert len(found) == 1, [lb["kind"] for lb in lab["labels"]]
    return found[0]


def _the_op(ops: list[dict[str, Any]], label: dict[str, Any]) -> dict[str, Any]:
    """The operation the label describes: same endpoints, function and address."""
    found = [
        o for o in ops
        if o["src_ip"] == label["src_ip"] and o["dst_ip"] == label["dst_ip"]
        and o["function_code"] == label["function_code"] and o["address"] == label["address"]
    ]  # fmt: skip
    assert len(found) == 1, found
    return found[0]


def test_rogue_setpoint_write_reads_as_the_tag(lab: dict[str, Any]) -> None:
    write, read = _label(lab, "rogue-write"), _label(lab, "rogue-read")
    scale = register(CONVEYOR_MAP, "speed_setpoint").scale
    value = write["values"][0] * scale
    before = read["values"][0] * scale  # what the attacker read just before writing
    op = _the_op(lab["ops"], write)
    [e] = op["process"]
    assert e["path"] == SETPOINT and e["unit"] == "m/min"
    assert e["value"] == pytest.approx(value) and e["previous"] == pytest.approx(before)
    assert e["previous_from"] == "historian"
    text = f"conveyor/speed_setpoint := {value:.1f} m/min (was {before:.1f})"
    assert e["text"] == text
    assert text in lab["summary"]  # analyze's summary says it in the plant's words
    # Without a historian the attacker's own read (and the HMI's polls) say the same.
    [b] = _the_op(lab["ops_bare"], write)["process"]
    assert b["previous"] == pytest.approx(before) and b["previous_from"] == "operations"
    # The alert about the write carries the same entry.
    alert = next(
        a for a in lab["alerts"]
        if a["src_ip"] == write["src_ip"] and a["dst_ip"] == write["dst_ip"]
        and any(p["path"] == SETPOINT for p in a["process"])
    )  # fmt: skip
    assert any(p["text"] == text for p in alert["process"])


def test_run_coil_write_reads_as_the_run_command(lab: dict[str, Any]) -> None:
    stop = _label(lab, "plc-stop")
    [e] = _the_op(lab["ops"], stop)["process"]
    assert e["path"] == RUN and e["value"] is bool(stop["values"][0])
    assert e["text"].startswith("conveyor/run_command := off")


def test_reads_and_unmapped_writes_have_no_process(lab: dict[str, Any]) -> None:
    ops = lab["ops_bare"]
    assert all(o["process"] == [] for o in ops if o["operation"] == "read")
    mapped = {A.CONVEYOR_PLC.ip, A.REMOTE_IO.ip, A.METER_1.ip, A.METER_2.ip}
    assert all(o["process"] == [] for o in ops if o["dst_ip"] not in mapped)


def test_alert_show_and_the_alert_json(lab: dict[str, Any]) -> None:
    write = _label(lab, "rogue-write")
    alert = next(a for a in lab["alerts"] if a["process"] and a["src_ip"] == write["src_ip"])
    shown = CliRunner().invoke(cli, ["alert", "show", str(alert["id"]), "--db", str(lab["db"])])
    assert shown.exit_code == 0, shown.output
    assert "In process terms" in shown.output and alert["process"][0]["text"] in shown.output
    assert "process" not in alert["context"]  # its own key, not repeated in context
