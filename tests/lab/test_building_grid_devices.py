"""The lab's building controller (bacpypes3) and substation RTU (c104) on their own, with
the lab's own clients: what they state and how they react, without the plant around
them. Addresses are outside the plant's plan, so this runs beside a plant."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import c104

from otconduit.lab import bacnet_client as B
from otconduit.lab import devices_bacnet as D
from otconduit.lab.devices_iec104 import IOA_CURRENT, IOA_VOLTAGE, Outstation
from otconduit.lab.iec104_client import Station104
from otconduit.lab.netbind import BoundEventLoop

CONTROLLER, CLIENT, RTU, MASTER = "127.0.94.10", "127.0.94.20", "127.0.94.30", "127.0.94.40"
logging.getLogger("bacpypes3").setLevel(logging.CRITICAL)


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=BoundEventLoop) as runner:
        return runner.run(main())


def test_controller_states_its_identity_and_takes_commands() -> None:
    async def main() -> dict[str, Any]:
        ctl = D.BacnetController(CONTROLLER)
        ctl.start()
        app = B.client_app(CLIENT, 9420, "test-client")
        out: dict[str, Any] = {}
        try:
            await asyncio.sleep(0.1)
            out["who_is"] = await B.who_is(app, at=CONTROLLER)
            out["identity"] = await B.read_identity(app, at=CONTROLLER)
            await B.write_setpoint(app, 30.0, 8, at=CONTROLLER)
            out["points"] = await B.read_points(app, at=CONTROLLER)
            await B.communication_control(app, "disableInitiation", 5, at=CONTROLLER)
            await B.subscribe_cov(app, 7, at=CONTROLLER)  # its first report is held back
            await asyncio.sleep(0.2)
            assert ctl.app is not None
            out["suppressed"] = ctl.app.suppressed
            await B.communication_control(app, "enable", None, at=CONTROLLER)
            await B.reinitialize(app, "warmstart", at=CONTROLLER)
            out["reinitialized"] = list(ctl.reinitialized)
            out["communication"] = list(ctl.app.communication)
            return out
        finally:
            app.close()
            ctl.stop()

    out = run(main)
    ident = out["identity"]
    assert out["who_is"]
    assert ident["vendor-name"] == D.VENDOR_NAME and ident["vendor-identifier"] == D.VENDOR_ID
    assert (ident["model-name"], ident["firmware-revision"]) == (D.MODEL_NAME, D.FIRMWARE)
    assert ident["application-software-version"] == D.APPLICATION_VERSION
    assert out["points"][1] == 30.0  # the setpoint written at priority 8 is in force
    assert out["suppressed"] == 1
    assert out["communication"][-1] == "enable" and len(out["communication"]) == 2
    assert out["reinitialized"] == ["warmstart"]


def test_zone_follows_the_setpoint_and_falls_without_the_fan() -> None:
    async def main() -> tuple[float, float, float]:
        ctl = D.BacnetController(CONTROLLER)  # bacpypes3 objects want a running loop
        ctl.tick(0.0)
        ctl.tick(3000.0)
        warm = ctl.zone_temp
        ctl.fan.presentValue = "inactive"
        ctl.tick(6000.0)
        return warm, ctl.zone_temp, float(ctl.valve.presentValue)

    warm, cold, valve = run(main)
    assert abs(warm - D.SETPOINT_DEFAULT) < 0.1
    assert cold < 17.0 and valve == 0.0


def test_rtu_answers_reads_and_obeys_a_breaker_command() -> None:
    async def main() -> tuple[bool, bool, list[tuple[bool, bool]], float]:
        rtu = Outstation(RTU)
        rtu.start()
        link = Station104(MASTER, c104.Init.ALL, target=(RTU, 2404))
        try:
            await link.open()
            read = await link.read(IOA_VOLTAGE)
            done = await link.breaker_command(False)
            rtu.tick(60.0)
            return read, done, list(rtu.commands), float(rtu.points[IOA_CURRENT].value)
        finally:
            await link.close()
            rtu.stop()

    read, done, commands, current = run(main)
    assert read and done
    assert commands == [(False, False)]  # c104 answers the select itself; the execute opens
    assert current == 0.0
