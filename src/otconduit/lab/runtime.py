"""Shared state of a running plant: clock, process, devices, labels and the stop signal.

Client roles and scenarios receive one ``PlantRuntime``; they sleep through it so that a
stop (end of ``--duration`` or Ctrl-C) wakes every loop at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from otconduit.lab.devices_bacnet import BacnetController
from otconduit.lab.devices_iec104 import Outstation
from otconduit.lab.devices_modbus import ModbusDevice
from otconduit.lab.devices_opcua import OpcUaDevice
from otconduit.lab.devices_s7 import S7Device
from otconduit.lab.labels import LabelSink
from otconduit.lab.process import PlantClock, PlantProcess

log = logging.getLogger("otconduit.lab")

# Errors a role expects from a peer and recovers from by reconnecting later.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.IncompleteReadError,
    ConnectionError,
    RuntimeError,
)


@dataclass
class PlantRuntime:
    clock: PlantClock
    process: PlantProcess
    modbus: dict[str, ModbusDevice]
    s7: S7Device
    opcua: OpcUaDevice
    labels: LabelSink
    seed: int
    horizon: float  # plant seconds the run is planned to last
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bacnet: BacnetController | None = None
    iec104: Outstation | None = None

    def rng(self, name: str) -> random.Random:
        """An RNG private to one role or scenario, derived from the run's seed."""
        return random.Random(f"{self.seed}:{name}")

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    async def sleep(self, wall_seconds: float) -> bool:
        """Sleep, waking early on stop; returns True if the plant is stopping."""
        if self.stop.is_set():
            return True
        try:
            await asyncio.wait_for(self.stop.wait(), max(wall_seconds, 0.0))
        except TimeoutError:
            return False
        return True

    async def sleep_plant(self, plant_seconds: float) -> bool:
        return await self.sleep(self.clock.wall_period(plant_seconds))

    async def wait_until(self, plant_t: float) -> bool:
        """Sleep until plant time ``plant_t``; returns False if the plant stopped first."""
        while not self.stop.is_set():
            left = plant_t - self.clock.plant_now()
            if left <= 0:
                return True
            await self.sleep(min(left / self.clock.speed, 0.5))
        return False

    async def cycle(
        self,
        role: str,
        plant_period: float,
        body: Callable[[], Awaitable[None]],
        *,
        offset: float = 0.0,
    ) -> None:
        """Run ``body`` every ``plant_period`` plant seconds until stop; errors back off."""
        if offset and await self.sleep_plant(offset):
            return
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            started = loop.time()
            try:
                await body()
            except NETWORK_ERRORS as exc:
                self.errors[role] += 1
                log.debug("%s: %s", role, exc)
                if await self.sleep(0.5):
                    return
            spent = loop.time() - started
            if await self.sleep(self.clock.wall_period(plant_period) - spent):
                return
