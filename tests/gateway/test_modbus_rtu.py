"""Modbus RTU through a pseudo-terminal pair: a real pymodbus serial server on one end,
the gateway's collector on the other, every byte crossing a pty bridge."""

from __future__ import annotations

import asyncio
import os
import select
import threading
import tty
from collections.abc import Iterator

import pytest

from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.model import Quality
from otconduit.gateway.plantconfig import tag_for
from otconduit.gateway.runtime import Gateway, MemorySink
from otconduit.lab.devices_modbus import ModbusDevice, RegisterImage, identity
from otconduit.lab.register_maps import REMOTE_IO_MAP

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    """Two serial-port paths joined back to back (like a null-modem cable)."""
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    for fd in (s1, s2):
        tty.setraw(fd)
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([m1, m2], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                os.write(m2 if fd == m1 else m1, data)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    yield os.ttyname(s1), os.ttyname(s2)
    stop.set()
    t.join(1)
    for fd in (m1, s1, m2, s2):
        os.close(fd)


async def test_rtu_tags_arrive(pty_pair: tuple[str, str]) -> None:
    from pymodbus.server import ModbusSerialServer

    server_port, client_port = pty_pair
    image = RegisterImage(REMOTE_IO_MAP)
    image.load({"estop_ok": 1, "guard_closed": 1, "cabinet_temp": 28.4, "air_pressure": 6.1})
    device = ModbusDevice("rio", "127.0.0.1", 0, image, identity("T", "rio", "rio", "1", "t"))
    server = ModbusSerialServer(device._simdevice(), port=server_port, baudrate=115200, timeout=0.5)
    await server.serve_forever(background=True)
    try:
        cfg = GatewayConfig.model_validate(
            {
                "enterprise": "acme",
                "site": "plant1",
                "devices": [
                    {
                        "name": "rio-rtu",
                        "protocol": "modbus-rtu",
                        "serial": {"port": client_port, "baudrate": 115200},
                        "interval": 0.2,
                        "timeout": 0.5,
                        "tags": [tag_for(r, "a", "l", "c", None) for r in REMOTE_IO_MAP],
                    }
                ],
            }
        )
        sink = MemorySink()
        await Gateway(cfg, [sink]).run(duration=1.5)
    finally:
        await server.shutdown()
    last = {s.path.rsplit("/", 1)[1]: s for s in sink.samples}
    assert last["cabinet_temp"].quality is Quality.GOOD
    assert last["cabinet_temp"].value == pytest.approx(28.4)
    assert last["air_pressure"].value == pytest.approx(6.1)
    assert last["estop_ok"].value is True and last["guard_closed"].value is True
    assert last["horn"].value is False
    assert len(last) == len(REMOTE_IO_MAP)
    await asyncio.sleep(0)
