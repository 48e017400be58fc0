"""`conduit gateway run|status|check`, `conduit tags` and `conduit history` end to end:
the plant's Modbus servers -> the gateway process -> the SQLite historian -> the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from otconduit.gateway.plantconfig import plant_gateway
from tests.conftest import REPO
from tests.gateway.plantservers import servers_in_thread

CONDUIT = Path(sys.executable).with_name("conduit")
PORT = 15021
HOSTS = {"conveyor-plc": "127.0.78.10", "energy-meter-1": "127.0.78.50"}


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [str(CONDUIT), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_example_config_is_the_generated_one() -> None:
    text = (REPO / "examples" / "gateway-plant.yaml").read_text()
    assert yaml.safe_load(text) == plant_gateway(production=True)
    res = run("gateway", "check", REPO / "examples" / "gateway-plant.yaml")
    assert res.returncode == 0, res.stderr
    assert "conveyor-plc" in res.stdout and "FC3" in res.stdout


def test_gateway_run_fills_the_historian(tmp_path: Path) -> None:
    raw = plant_gateway(port=PORT, hosts=HOSTS)
    raw["devices"] = [d for d in raw["devices"] if d["name"] in HOSTS]
    for d in raw["devices"]:
        d["interval"] = 0.2
    raw["status_file"] = str(tmp_path / "status.json")
    raw["sinks"] = {"historian": {"path": str(tmp_path / "hist.db")}}
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    values = {
        "conveyor-plc": {"actual_speed": 24.5, "good_count": 4242, "running": 1},
        "energy-meter-1": {"frequency": 50.02},
    }
    with servers_in_thread(HOSTS, PORT, values) as devices:
        proc = subprocess.Popen(
            [str(CONDUIT), "gateway", "run", "-c", str(cfg), "--duration", "6"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.time() + 5
        while time.time() < deadline and not (tmp_path / "status.json").exists():
            time.sleep(0.1)
        time.sleep(1.0)
        status = run("gateway", "status", "-c", cfg, "-f", "json")
        devices["conveyor-plc"].image.load({"actual_speed": 30.0})
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    st = json.loads(status.stdout)
    assert {d["device"]: d["state"] for d in st["devices"]} == {
        "conveyor-plc": "connected",
        "energy-meter-1": "connected",
    }
    tags = json.loads(run("tags", "--historian", tmp_path / "hist.db", "-f", "json").stdout)
    by_path = {t["path"]: t for t in tags}
    speed = "acme/plant1/packaging/line1/conveyor/actual_speed"
    assert by_path[speed]["value"] == 30.0 and by_path[speed]["unit"] == "m/min"
    assert by_path["acme/plant1/packaging/line1/conveyor/good_count"]["value"] == 4242
    freq = by_path["acme/plant1/packaging/line1/meter-1/frequency"]["value"]
    assert freq == pytest.approx(50.02, rel=1e-6)  # a float32 on the wire
    assert len(tags) == sum(len(d["tags"]) for d in raw["devices"])
    hist = run("history", speed, "--historian", tmp_path / "hist.db", "--from", "2000-01-01")
    rows = list(csv.DictReader(io.StringIO(hist.stdout)))
    assert [float(r["value"]) for r in rows] == [24.5, 30.0]  # on change only
    assert all(r["quality"] == "good" and r["ts"].endswith("Z") for r in rows)
    bad = run("history", speed, "--historian", tmp_path / "hist.db", "--from", "yesterday")
    assert bad.returncode == 2 and "--from 'yesterday'" in bad.stderr


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        "enterprise: a\nsite: b\ndevices:\n  - name: x\n    protocol: modbus\n    tags: []\n"
    )
    res = run("gateway", "run", "-c", cfg, "--duration", "1")
    assert res.returncode == 2
    assert "gw.yaml:4:" in res.stderr and "needs 'host'" in res.stderr
    assert res.stderr.count("\n") == 1


def test_check_generates_the_opcua_certificate_and_prints_its_thumbprint(tmp_path: Path) -> None:
    cfg = tmp_path / "ua.yaml"
    cert, key = tmp_path / "gw.der", tmp_path / "gw.pem"
    cfg.write_text(
        yaml.safe_dump(
            {
                "enterprise": "acme",
                "site": "plant1",
                "devices": [
                    {
                        "name": "packer",
                        "protocol": "opcua",
                        "endpoint": "opc.tcp://127.0.0.1:4840",
                        "security": {
                            "policy": "Basic256Sha256",
                            "mode": "SignAndEncrypt",
                            "certificate": str(cert),
                            "private_key": str(key),
                        },
                        "tags": [{"path": "a/b/c/state", "address": "ns=2;i=5", "type": "int32"}],
                    }
                ],
            }
        )
    )
    res = run("gateway", "check", cfg)
    assert res.returncode == 0, res.stderr
    assert cert.exists() and key.exists() and (key.stat().st_mode & 0o077) == 0
    from otconduit.gateway.certs import thumbprint

    sha1 = thumbprint(cert).split(",")[0].split()[-1]
    # Printed whole on its own line (never wrapped inside the table), ready to copy.
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("packer: gateway generated"))
    assert sha1 in line and str(cert) in line
