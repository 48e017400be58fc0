"""Gateway credentials and keys: an MQTT password is never sent in clear unless the
config says so (real Mosquitto with a password file), and the gateway's OPC UA private
key is refused by `conduit gateway check` when the group or others may read it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from otconduit.gateway import certs
from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.sinks.uns import UnsSink
from tests.gateway.mqttbroker import (
    MOSQUITTO_PASSWD,
    Broker,
    Seen,
    Subscriber,
    free_port,
    needs_mosquitto,
)

CONDUIT = Path(sys.executable).with_name("conduit")
ENT, SITE = "acme", "plant1"
TOPIC = f"{ENT}/{SITE}/pack/l1/filler/temp"


def values(seen: list[Seen]) -> list[Any]:
    return [json.loads(m.payload)["value"] for m in seen if m.topic == TOPIC]


def conduit(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [str(CONDUIT), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


def gateway_yaml(tmp: Path, mqtt: dict[str, Any], device: dict[str, Any] | None = None) -> Path:
    """A gateway file: one Modbus device on a closed loopback port, the given MQTT sink."""
    raw = {
        "name": "gw1",
        "enterprise": ENT,
        "site": SITE,
        "devices": [
            device
            or {
                "name": "plc1", "protocol": "modbus", "host": "127.0.93.1",
                "port": free_port(), "interval": 0.2, "timeout": 0.2,
                "tags": [{"path": "pack/l1/filler/temp", "address": "hr:0", "type": "int16"}],
            }
        ],
        "sinks": {"historian": None, "mqtt": {"reconnect": {"initial": 0.05, "max": 0.3}, **mqtt}},
        "buffer": {"disk_path": str(tmp / "buffer.db")},
    }  # fmt: skip
    path = tmp / "gw.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def password_broker(tmp_path: Path) -> Any:
    """Mosquitto on plain TCP that only lets named users in."""
    if MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    passwd = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(passwd), "gateway", "s3cret"], check=True)
    subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), "reader", "r"], check=True)
    b = Broker(tmp_path / "broker", anonymous=False, extra=f"password_file {passwd}\n")
    b.start()
    yield b
    b.stop()


# -- MQTT credentials without TLS -----------------------------------------------------------


@needs_mosquitto
def test_mqtt_password_without_tls_refuses_to_start(tmp_path: Path, password_broker: Any) -> None:
    cfg = gateway_yaml(
        tmp_path, {"port": password_broker.port, "username": "gateway", "password": "s3cret"}
    )
    for args in (("gateway", "run", "-c", cfg, "--duration", "2"), ("gateway", "check", cfg)):
        res = conduit(*args)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
        assert f"{cfg}:" in lines[0] and "sinks.mqtt" in lines[0]
        assert "in clear" in lines[0] and "allow_plaintext: true" in lines[0]
    log = password_broker.log.read_text()
    assert "New client connected" not in log, log
    # The library refuses the same config, and a sink built from an unchecked copy.
    raw = yaml.safe_load(cfg.read_text())
    with pytest.raises(ValidationError, match="allow_plaintext"):
        GatewayConfig.model_validate(raw)
    raw["sinks"]["mqtt"]["tls"] = {"ca": str(tmp_path / "ca.pem")}
    checked = GatewayConfig.model_validate(raw)
    assert checked.sinks.mqtt is not None
    unchecked = checked.model_copy(
        update={"sinks": checked.sinks.model_copy(update={"mqtt": checked.sinks.mqtt.model_copy(
            update={"tls": None})})}
    )  # fmt: skip
    with pytest.raises(ValueError, match="allow_plaintext"):
        UnsSink(unchecked)


@needs_mosquitto
def test_mqtt_allow_plaintext_warns_then_delivers(
    tmp_path: Path, password_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mqtt = {"port": password_broker.port, "username": "gateway", "password": "s3cret",
            "allow_plaintext": True, "sparkplug": {"enabled": False}}  # fmt: skip
    cfg = gateway_yaml(tmp_path, mqtt)
    sub = Subscriber(password_broker.port, [f"{ENT}/#"], username="reader", password="r").start()
    try:
        # The command line: it starts, says so once on stderr, and logs in over plain TCP.
        res = conduit("gateway", "run", "-c", cfg, "--duration", "1.5")
        assert res.returncode == 0, res.stderr
        warnings = [ln for ln in res.stderr.splitlines() if "WITHOUT TLS" in ln]
        assert len(warnings) == 1 and "'gateway'" in warnings[0], res.stderr
        assert "u'gateway'" in password_broker.log.read_text()

        # The library: the warning is logged when the sink starts, and samples flow.
        from otconduit.gateway.model import Quality, TagSample

        async def main() -> None:
            sink = UnsSink(GatewayConfig.model_validate(yaml.safe_load(cfg.read_text())))
            with caplog.at_level(logging.WARNING, logger="otconduit.gateway.sinks.mqtt"):
                await sink.start()
            await sink.write(
                [TagSample(path=TOPIC, value=21, quality=Quality.GOOD, recv_ts_ns=time.time_ns())]
            )
            for _ in range(300):
                if sink.sent:
                    break
                await asyncio.sleep(0.01)
            assert sink.status()["plaintext_credentials"] and sink.sent >= 1, json.dumps(
                sink.status()
            )
            await sink.close()

        asyncio.run(asyncio.wait_for(main(), 15))
        seen = sub.wait_for(lambda ms: 21 in values(ms))
    finally:
        sub.stop()
    assert any("WITHOUT TLS" in r.getMessage() for r in caplog.records)
    assert values(seen)[0] is None  # the CLI run's stale sample (its PLC is not there)


# -- OPC UA private key permissions ---------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_gateway_check_refuses_a_private_key_others_can_read(tmp_path: Path, mode: int) -> None:
    cert, key = tmp_path / "gw.der", tmp_path / "gw-key.pem"
    certs.generate(cert, key, "urn:conduit:test:gw")
    assert key.stat().st_mode & 0o777 == 0o600  # as generated
    key.chmod(mode)
    with pytest.raises(certs.KeyPermissionError, match=f"chmod 600 {key}"):
        certs.ensure_certificate(cert, key)
    device = {
        "name": "press-ua", "protocol": "opcua", "endpoint": "opc.tcp://127.0.93.2:4840",
        "security": {"policy": "Basic256Sha256", "mode": "Sign", "certificate": str(cert),
                     "private_key": str(key)},
        "tags": [{"path": "p/secure", "address": "ns=2;s=Secure"}],
    }  # fmt: skip
    cfg = gateway_yaml(tmp_path, {}, device)
    res = conduit("gateway", "check", cfg)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert f"chmod 600 {key}" in lines[0] and f"mode {mode:04o}" in lines[0]
    key.chmod(0o600)
    res = conduit("gateway", "check", cfg)
    assert res.returncode == 0, res.stderr
