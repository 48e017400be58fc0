"""The Modbus collector against real pymodbus servers (the lab plant's own device
servers and register maps) on loopback: values, planning, fault isolation, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.plantconfig import plant_gateway
from otconduit.gateway.runtime import Gateway, MemorySink
from otconduit.lab.devices_modbus import ModbusDevice, RegisterImage, identity
from otconduit.lab.register_maps import CONVEYOR_MAP, REMOTE_IO_MAP, SDM630_MAP, Register

pytestmark = pytest.mark.anyio
PORT = 15020
HOSTS = {
    "conveyor-plc": "127.0.77.10",
    "remote-io": "127.0.77.40",
    "energy-meter-1": "127.0.77.50",
    "energy-meter-2": "127.0.77.51",
}
MAPS = {
    "conveyor-plc": CONVEYOR_MAP,
    "remote-io": REMOTE_IO_MAP,
    "energy-meter-1": SDM630_MAP,
    "energy-meter-2": SDM630_MAP,
}
VALUES: dict[str, dict[str, float]] = {
    "conveyor-plc": {
        "run_command": 1, "running": 1, "speed_setpoint": 25.0, "state": 1, "actual_speed": 24.7,
        "motor_current": 12.34, "bearing_temp": -3.5, "good_count": 123456, "scrap_count": 7,
        "shift": 2,
    },
    "remote-io": {"estop_ok": 1, "beacon_green": 1, "cabinet_temp": 31.2, "air_pressure": 6.25},
    "energy-meter-1": {"phase1_voltage": 231.5, "frequency": 50.01, "total_kwh": 98765.5},
    "energy-meter-2": {"phase1_voltage": 229.25, "frequency": 49.98, "total_kwh": 1234.25},
}  # fmt: skip


def _cfg(**over: Any) -> GatewayConfig:
    raw = plant_gateway(port=PORT, hosts=HOSTS)
    raw["status_file"] = None
    for d in raw["devices"]:
        d["interval"] = 0.1
        d["timeout"] = 0.3
        d["backoff"] = {"initial": 0.1, "max": 0.4}
    raw.update(over)
    return GatewayConfig.model_validate(raw)


async def _servers(names: list[str]) -> list[ModbusDevice]:
    out = []
    for name in names:
        img = RegisterImage(MAPS[name])
        img.load(VALUES[name])
        ident = identity("Test", name, name, "1.0", "conduit-test")
        dev = ModbusDevice(name, HOSTS[name], PORT, img, ident)
        await dev.start()
        out.append(dev)
    return out


async def _run(cfg: GatewayConfig, seconds: float) -> tuple[Gateway, MemorySink]:
    sink = MemorySink()
    gw = Gateway(cfg, [sink])
    await gw.run(duration=seconds)
    return gw, sink


def _last(samples: list[TagSample]) -> dict[str, TagSample]:
    out: dict[str, TagSample] = {}
    for s in samples:
        out[s.path] = s
    return out


def _expected(reg: Register, image: RegisterImage) -> float:
    tab = image.table(reg.table)
    if reg.table in ("coil", "discrete"):
        return float(bool(tab[reg.address]))
    return reg.decode([int(w) for w in tab[reg.address : reg.address + reg.width]])


@pytest.fixture
async def plant() -> AsyncIterator[list[ModbusDevice]]:
    servers = await _servers(list(HOSTS))
    yield servers
    for s in servers:
        await s.stop()


async def test_every_tag_arrives_with_value_unit_and_path(plant: list[ModbusDevice]) -> None:
    cfg = _cfg()
    gw, sink = await _run(cfg, 0.8)
    last = _last(sink.samples)
    n = 0
    for server in plant:
        dev = next(d for d in cfg.devices if d.name == server.name)
        for reg, tag in zip(MAPS[server.name], dev.tags, strict=True):
            s = last[cfg.full_path(tag)]
            assert s.path.startswith("acme/plant1/packaging/line1/")
            assert s.quality is Quality.GOOD, s
            assert s.unit == reg.unit
            # The lab's own decoder of its own register image is the oracle.
            assert float(s.value) == pytest.approx(_expected(reg, server.image), rel=1e-6), s  # type: ignore[arg-type]
            n += 1
    assert n == sum(len(m) for m in MAPS.values())
    # Planning: the conveyor's 25 tags (holding 0-2 and 10-24, coils, discretes) take
    # three requests a cycle, not 25.
    status = {d["device"]: d for d in gw.status()["devices"]}
    assert status["conveyor-plc"]["requests_per_cycle"] == 3
    assert status["conveyor-plc"]["exceptions"] == 0


async def test_on_change_reports_only_changes_and_deadband(plant: list[ModbusDevice]) -> None:
    raw = plant_gateway(port=PORT, hosts=HOSTS)
    conveyor = next(d for d in raw["devices"] if d["name"] == "conveyor-plc")
    conveyor.update(interval=0.05, timeout=0.3)
    speed = next(t for t in conveyor["tags"] if t["path"].endswith("/actual_speed"))
    speed["deadband"] = 0.5
    raw["devices"] = [conveyor]
    raw["status_file"] = None
    cfg = GatewayConfig.model_validate(raw)
    server = next(s for s in plant if s.name == "conveyor-plc")
    sink = MemorySink()
    gw = Gateway(cfg, [sink])
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await asyncio.sleep(0.4)
    server.image.load({"actual_speed": 24.9})  # +0.2: inside the deadband
    await asyncio.sleep(0.3)
    server.image.load({"actual_speed": 26.0})  # +1.3: reported
    await asyncio.sleep(0.3)
    stop.set()
    await task
    speeds = [s.value for s in sink.samples if s.path.endswith("/actual_speed")]
    assert speeds == [pytest.approx(24.7), pytest.approx(26.0)]
    state = [s for s in sink.samples if s.path.endswith("/state")]
    assert len(state) == 1  # unchanged values are not repeated


async def _blackhole(host: str, port: int) -> asyncio.Server:
    """Accepts connections and never answers: the slow/dead device."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(-1)
        writer.close()

    return await asyncio.start_server(hold, host, port)


async def test_dead_devices_do_not_delay_the_others(plant: list[ModbusDevice]) -> None:
    good = _cfg()
    _, alone = await _run(good, 1.5)
    hole = await _blackhole("127.0.77.98", PORT)
    try:
        raw = _cfg().model_dump(mode="json")
        for name, host in (("dead-silent", "127.0.77.98"), ("dead-refused", "127.0.77.99")):
            dead = dict(raw["devices"][0], name=name, host=host)
            dead["tags"] = [
                dict(t, path=f"{name}/{t['path'].rsplit('/', 1)[1]}") for t in dead["tags"]
            ]
            raw["devices"].append(dead)
        cfg = GatewayConfig.model_validate(raw)
        gw, crowded = await _run(cfg, 1.5)
    finally:
        hole.close()
    status = {d["device"]: d for d in gw.status()["devices"]}
    conveyor = status["conveyor-plc"]
    assert conveyor["responses"] >= 0.6 * (1.5 / 0.1) * 3, conveyor
    assert status["dead-silent"]["timeouts"] >= 1 and status["dead-silent"]["state"] != "connected"
    assert status["dead-refused"]["connect_failures"] >= 2
    dead_paths = [s for s in crowded.samples if s.path.split("/")[2].startswith("dead")]
    assert all(s.quality is not Quality.GOOD for s in dead_paths)
    good_alone = {s.path for s in alone.samples}
    good_crowded = {s.path for s in crowded.samples if s.quality is Quality.GOOD}
    assert good_alone <= good_crowded


async def test_reconnects_and_reports_stale_while_down() -> None:
    servers = await _servers(["remote-io"])
    raw = _cfg().model_dump(mode="json")
    raw["devices"] = [d for d in raw["devices"] if d["name"] == "remote-io"]
    for t in raw["devices"][0]["tags"]:
        t["stale_after"] = 0.3
    cfg = GatewayConfig.model_validate(raw)
    sink = MemorySink()
    gw = Gateway(cfg, [sink])
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await asyncio.sleep(0.5)
        await servers[0].stop()
        await asyncio.sleep(1.2)
        servers = await _servers(["remote-io"])
        await asyncio.sleep(1.5)
    finally:
        stop.set()
        await task
        for s in servers:
            await s.stop()
    path = "acme/plant1/packaging/line1/conveyor-io/air_pressure"
    qualities = [s.quality for s in sink.samples if s.path == path]
    assert qualities[0] is Quality.GOOD
    assert Quality.STALE in qualities
    assert qualities[-1] is Quality.GOOD  # back after the restart
    st = gw.status()["devices"][0]
    assert st["connects"] >= 2 and st["last_error"]


async def test_refused_block_is_split_and_remembered(plant: list[ModbusDevice]) -> None:
    raw = _cfg().model_dump(mode="json")
    conveyor = next(d for d in raw["devices"] if d["name"] == "conveyor-plc")
    # Holding registers end at 24: a tag at 28 merges into the 10-24 block (gap 3).
    conveyor["tags"].append({"path": "packaging/line1/conveyor/ghost", "address": "hr:28"})
    raw["devices"] = [conveyor]
    cfg = GatewayConfig.model_validate(raw)
    gw, sink = await _run(cfg, 0.8)
    last = _last(sink.samples)
    ghost = last["acme/plant1/packaging/line1/conveyor/ghost"]
    assert ghost.quality is Quality.BAD and "illegal data address" in ghost.reason
    assert last["acme/plant1/packaging/line1/conveyor/shift"].quality is Quality.GOOD
    st = gw.status()["devices"][0]
    # The refused block was split into single reads once, not on every cycle.
    assert st["exceptions"] <= 3
    assert st["requests_per_cycle"] > 3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
