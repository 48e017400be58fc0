"""The plant's Modbus device servers (real pymodbus, the lab's register maps) on a test
address range, in a background thread so subprocesses can poll them too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from otconduit.lab.devices_modbus import ModbusDevice, RegisterImage, identity
from otconduit.lab.register_maps import CONVEYOR_MAP, REMOTE_IO_MAP, SDM630_MAP, Register

MAPS: dict[str, tuple[Register, ...]] = {
    "conveyor-plc": CONVEYOR_MAP,
    "remote-io": REMOTE_IO_MAP,
    "energy-meter-1": SDM630_MAP,
    "energy-meter-2": SDM630_MAP,
}


@contextmanager
def servers_in_thread(
    hosts: dict[str, str], port: int, values: dict[str, dict[str, float]]
) -> Iterator[dict[str, ModbusDevice]]:
    loop = asyncio.new_event_loop()
    devices: dict[str, ModbusDevice] = {}
    ready = threading.Event()

    async def start() -> None:
        for name, host in hosts.items():
            img = RegisterImage(MAPS[name])
            img.load(values.get(name, {}))
            dev = ModbusDevice(name, host, port, img, identity("T", name, name, "1", "t"))
            await dev.start()
            devices[name] = dev
        ready.set()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    t = threading.Thread(target=main, daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield devices
    finally:

        async def stop() -> None:
            for d in devices.values():
                await d.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()
