"""Scenarios: process faults and attacks played into the running plant, with ground truth.

Each scenario waits for its start time (plant time, drawn from the run's seed so a seed
reproduces the timing), does its thing with real protocol clients from its own address,
and writes a label for each request a detector should find. Several scenarios in one run
get separate time slots so that their traffic does not overlap.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import Client, ua
from asyncua.common.node import Node

from otconduit.lab import addresses as A
from otconduit.lab.clients import UA_ERRORS, ua_close, ua_connect, ua_namespace, ua_nodes
from otconduit.lab.labels import OPCUA_SERVICES, S7_FUNCTIONS, Label, modbus_function
from otconduit.lab.modbus_client import ModbusClient
from otconduit.lab.netbind import close_writer, open_connection
from otconduit.lab.register_maps import CONVEYOR_MAP, register
from otconduit.lab.runtime import NETWORK_ERRORS, PlantRuntime
from otconduit.lab.s7_client import S7Client
from otconduit.lab.scenarios_building_grid import bacnet_attack, iec104_command

Runner = Callable[[PlantRuntime, float], Coroutine[Any, Any, None]]
Setup = Callable[[PlantRuntime], None]

SLOT_WINDOW = (0.12, 0.85)  # fraction of the planned run where attack slots lie
SCAN_CONCURRENCY = 32
ROGUE_SETPOINT = 400  # 40.0 m/min, the drive's maximum, far from the 25.0 recipe
UA_ROGUE_SPEED = 30.0  # cases/min: nearly four times the case packer's 8.0 setpoint
UA_BROWSE_NODES = 150  # nodes the intruder browses before it writes


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Runner | None = None
    setup: Setup | None = None
    slotted: bool = True


# -- helpers --------------------------------------------------------------------------------


def _modbus_label(
    rt: PlantRuntime,
    scenario: str,
    kind: str,
    src: str,
    dst: str,
    fc: int,
    ts: float,
    description: str,
    **kw: Any,
) -> Label:
    name, op = modbus_function(fc)
    return rt.labels.add(
        scenario=scenario,
        kind=kind,
        ts=ts,
        src_ip=src,
        dst_ip=dst,
        dst_port=502,
        protocol="modbus",
        operation=kw.pop("operation", op),
        function=name,
        function_code=fc,
        description=description,
        **kw,
    )


def _s7_label(
    rt: PlantRuntime,
    scenario: str,
    kind: str,
    src: str,
    fc: int,
    ts: float,
    description: str,
    **kw: Any,
) -> Label:
    name, op = S7_FUNCTIONS[fc]
    return rt.labels.add(
        scenario=scenario,
        kind=kind,
        ts=ts,
        src_ip=src,
        dst_ip=A.PRESS_PLC.ip,
        dst_port=102,
        protocol="s7comm",
        operation=op,
        function=name,
        function_code=fc,
        description=description,
        **kw,
    )


def in_maintenance_window(ts: float) -> bool:
    """Is wall time ``ts`` inside the plant's planned maintenance window (UTC)?"""
    w = A.MAINTENANCE_WINDOW
    dt = datetime.fromtimestamp(ts, UTC)
    hhmm = dt.strftime("%H:%M")
    return dt.weekday() == w["weekday"] and str(w["start"]) <= hhmm < str(w["end"])


# -- bearing wear -----------------------------------------------------------------------------


def _bearing_setup(rt: PlantRuntime) -> None:
    rng = rt.rng("bearing-wear")
    start = rt.horizon * 0.1
    fail = rt.horizon * rng.uniform(0.6, 0.75)
    rt.process.schedule_bearing_failure(start, fail)


async def _bearing_watch(rt: PlantRuntime, _t0: float) -> None:
    name = "bearing-wear"
    degradation = rt.process.conveyor.degradation
    if degradation is None:
        return
    vib = register(CONVEYOR_MAP, "vibration_rms")
    temp = register(CONVEYOR_MAP, "bearing_temp")
    common: dict[str, Any] = {"src_ip": A.HMI.ip, "dst_ip": A.CONVEYOR_PLC.ip, "dst_port": 502}
    common |= {"protocol": "modbus", "operation": "read", "function": "READ_HOLDING_REGISTERS"}
    common["function_code"] = 3
    signal_map = {
        r.name: {"address": r.address, "unit": r.unit, "scale": r.scale} for r in (vib, temp)
    }
    seen: set[str] = set()
    trend = rt.labels.add(
        scenario=name,
        kind="bearing-degradation",
        ts=rt.clock.to_wall(degradation[0]),
        address=vib.address,
        values=signal_map,
        description="drive-end bearing of the conveyor starts to wear: vibration RMS and "
        "bearing temperature rise in the PLC registers the HMI polls",
        **common,
    )
    while not rt.stopping:
        for ev in rt.process.events:
            if ev.kind not in ("vibration_alarm", "conveyor_trip") or ev.kind in seen:
                continue
            seen.add(ev.kind)
            if ev.kind == "vibration_alarm":
                rt.labels.add(
                    scenario=name,
                    kind="vibration-alarm",
                    ts=rt.clock.to_wall(ev.t),
                    address=vib.address,
                    values=ev.details,
                    description="vibration RMS crossed the 7.1 mm/s alarm limit",
                    **common,
                )
            else:
                trend.ts_end = rt.clock.to_wall(ev.t)
                rt.labels.add(
                    scenario=name,
                    kind="conveyor-trip",
                    ts=rt.clock.to_wall(ev.t),
                    address=register(CONVEYOR_MAP, "state").address,
                    values=ev.details,
                    extra={"unplanned_stop": True, "state": "FAULT", "fault": "VIBRATION_TRIP"},
                    description="bearing failure: the PLC tripped the conveyor drive "
                    "(unplanned stop, state FAULT, motor current to 0)",
                    **common,
                )
        if "conveyor_trip" in seen or await rt.sleep(0.2):
            return


# -- attacks ---------------------------------------------------------------------------------


async def _rogue_write(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    src, dst = A.ATTACKER.ip, A.CONVEYOR_PLC.ip
    client = ModbusClient(dst, src)
    try:
        regs = await client.read_registers(3, 0, 3)
        _modbus_label(
            rt,
            "rogue-write",
            "rogue-read",
            src,
            dst,
            3,
            client.last_sent,
            "IT host reads the conveyor setpoints before changing them",
            address=0,
            values=regs,
        )
        await client.write_register(0, ROGUE_SETPOINT)
        _modbus_label(
            rt,
            "rogue-write",
            "rogue-write",
            src,
            dst,
            6,
            client.last_sent,
            "IT host writes the conveyor speed setpoint (HR 0) to 40.0 m/min",
            address=0,
            values=[ROGUE_SETPOINT],
        )
    finally:
        await client.close()


async def _plc_stop(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    src = A.ATTACKER.ip
    client = ModbusClient(A.CONVEYOR_PLC.ip, src)
    try:
        await client.write_coil(0, False)
        _modbus_label(
            rt,
            "plc-stop",
            "plc-stop",
            src,
            A.CONVEYOR_PLC.ip,
            5,
            client.last_sent,
            "IT host writes the conveyor run coil (coil 0) to 0: the line stops",
            address=0,
            values=[0],
            extra={"semantic": "control", "effect": "conveyor stop"},
        )
    finally:
        await client.close()
    if await rt.sleep_plant(5.0):
        return
    s7 = S7Client(A.PRESS_PLC.ip, src)
    try:
        await s7.connect()
        await s7.plc_stop()
        _s7_label(
            rt,
            "plc-stop",
            "plc-stop",
            src,
            0x29,
            s7.last_sent,
            "IT host sends S7 PLC STOP to the press CPU",
        )
    finally:
        await s7.close()


async def _probe(host: str, port: int, sem: asyncio.Semaphore) -> bool:
    async with sem:
        try:
            _reader, writer = await open_connection(host, port, A.ATTACKER.ip, timeout=0.5)
        except (OSError, TimeoutError):
            return False
        await close_writer(writer)
        return True


async def _recon(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    name, src = "recon", A.ATTACKER.ip
    sem = asyncio.Semaphore(SCAN_CONCURRENCY)
    hosts = [f"127.0.10.{i}" for i in range(1, 255)]
    started = time.time()
    targets = [(h, p) for h in hosts for p in A.ICS_SCAN_PORTS]
    results = await asyncio.gather(*(_probe(h, p, sem) for h, p in targets))
    found = [f"{h}:{p}" for (h, p), ok in zip(targets, results, strict=True) if ok]
    rt.labels.add(
        scenario=name,
        kind="port-scan",
        ts=started,
        ts_end=time.time(),
        src_ip=src,
        dst_ip="127.0.10.0/24",
        protocol="tcp",
        operation="other",
        function="TCP_CONNECT_SCAN",
        values={"ports": list(A.ICS_SCAN_PORTS), "hosts": len(hosts), "open": found},
        description="TCP connect scan of common ICS ports across the whole cell subnet",
    )
    if rt.stopping:
        return
    for hostport in found:
        host, port = hostport.split(":")
        if port != "502":
            continue
        client = ModbusClient(host, src)
        try:
            objects = await client.device_identification(1)
            _modbus_label(
                rt,
                name,
                "identity-sweep",
                src,
                host,
                43,
                client.last_sent,
                "Read Device Identification (43/14) of every Modbus device found",
                values={str(k): v.decode(errors="replace") for k, v in objects.items()},
                extra={"mei_type": 14},
            )
        except NETWORK_ERRORS:
            rt.errors["recon"] += 1
        finally:
            await client.close()
    await _fc_sweep(rt, name, src)


async def _fc_sweep(rt: PlantRuntime, name: str, src: str) -> None:
    """Probe every function code on the conveyor PLC with an out-of-range address."""
    dst = A.CONVEYOR_PLC.ip
    client = ModbusClient(dst, src, timeout=0.5)
    try:
        for fc in range(1, 128):
            if rt.stopping:
                return
            answer = "none"
            try:
                resp = await client.request(bytes([fc]) + struct.pack(">HH", 0xFFFF, 1))
                answer = f"exception {resp[1]}" if resp[0] & 0x80 else "normal"
            except NETWORK_ERRORS:
                pass
            _modbus_label(
                rt,
                name,
                "fc-sweep",
                src,
                dst,
                fc,
                client.last_sent,
                "function-code sweep: each code probed once at address 0xFFFF",
                address=0xFFFF,
                extra={"response": answer},
            )
    finally:
        await client.close()


async def _rogue_device(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    src, dst = A.ROGUE.ip, A.CONVEYOR_PLC.ip
    client = ModbusClient(dst, src)
    label: Label | None = None
    polls = 0
    try:
        while not rt.stopping:
            try:
                await client.read_registers(3, 0, 25)
                polls += 1
                if label is None:
                    label = _modbus_label(
                        rt,
                        "rogue-device",
                        "rogue-device",
                        src,
                        dst,
                        3,
                        client.last_sent,
                        "unknown host on the supervisory LAN starts polling the conveyor PLC",
                        address=0,
                    )
                label.ts_end = client.last_sent
                label.extra = {"polls": polls, "period_plant_s": 2.0}
            except NETWORK_ERRORS:
                rt.errors["rogue-device"] += 1
            if await rt.sleep_plant(2.0):
                return
    finally:
        await client.close()


async def _program_download(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    name, src = "program-download", A.EWS.ip
    s7 = S7Client(A.PRESS_PLC.ip, src)
    inside = in_maintenance_window(time.time())
    window = {"maintenance_window": A.MAINTENANCE_WINDOW, "inside_window": inside}
    note = " inside" if inside else " outside"
    try:
        await s7.connect()
        await s7.read_szl(0x0011)
        rt.labels.add(
            scenario=name,
            kind="program-download",
            ts=s7.last_sent,
            src_ip=src,
            dst_ip=A.PRESS_PLC.ip,
            dst_port=102,
            protocol="s7comm",
            operation="identity",
            function="READ_SZL",
            extra={"szl_id": "0x0011", **window},
            description="engineering station reads the CPU's module identification",
        )
        ts = time.time()
        blob = await s7.upload_db(2)
        label = _s7_label(
            rt, name, "block-upload", src, 0x1D, ts, "upload of recipe block DB2 from the press"
        )
        label.ts_end, label.extra = time.time(), {"bytes": len(blob), **window}
        await s7.plc_stop()
        _s7_label(rt, name, "plc-stop", src, 0x29, s7.last_sent, "CPU to STOP for download")
        recipe = struct.pack(">hfff", 9, 950.0, 0.6, 135.0).ljust(64, b"\0")
        ts = time.time()
        await s7.download_db(2, recipe)
        label = _s7_label(
            rt,
            name,
            "program-download",
            src,
            0x1A,
            ts,
            f"download of block DB2 to the press{note} the maintenance window",
            address=2,
        )
        label.ts_end, label.extra = time.time(), {"block": "DB2", "bytes": 64, **window}
        await s7.plc_hot_start()
        _s7_label(rt, name, "plc-start", src, 0x28, s7.last_sent, "CPU hot start after download")
    finally:
        await s7.close()


def _opcua_label(
    rt: PlantRuntime, kind: str, service: str, ts: float, description: str, **kw: Any
) -> Label:
    code, op = OPCUA_SERVICES[service]
    return rt.labels.add(
        scenario="opcua-write",
        kind=kind,
        ts=ts,
        src_ip=A.ATTACKER.ip,
        dst_ip=A.PACKAGING.ip,
        dst_port=A.OPCUA.port,
        protocol="opcua",
        operation=op,
        function=service,
        function_code=code,
        description=description,
        **kw,
    )


async def _browse_walk(rt: PlantRuntime, client: Client, limit: int) -> list[str]:
    """Walk the address space from the Objects folder, breadth first, one Browse per
    node (asyncua's get_children), until ``limit`` nodes were browsed."""
    queue: list[Node] = [client.nodes.objects]
    seen: set[str] = set()
    browsed: list[str] = []
    while queue and len(browsed) < limit and not rt.stopping:
        node = queue.pop(0)
        key = node.nodeid.to_string()
        if key in seen:
            continue
        seen.add(key)
        queue += await node.get_children()
        browsed.append(key)
    return browsed


async def _opcua_write(rt: PlantRuntime, t0: float) -> None:
    if not await rt.wait_until(t0):
        return
    ts = time.time()
    try:
        client = await ua_connect(rt.opcua.url, A.ATTACKER.ip)
    except UA_ERRORS:
        rt.errors["opcua-write"] += 1
        return
    try:
        _opcua_label(
            rt,
            "opcua-session",
            "ActivateSession",
            ts,
            "IT host opens an OPC UA session to the case packer: SecurityPolicy None, "
            "anonymous user",
            extra={"security_policy": "None", "identity": "anonymous"},
        )
        started = time.time()
        browsed = await _browse_walk(rt, client, UA_BROWSE_NODES)
        _opcua_label(
            rt,
            "opcua-browse",
            "Browse",
            started,
            f"IT host walks the case packer's address space ({len(browsed)} nodes browsed)",
            ts_end=time.time(),
            values={"nodes": len(browsed), "first": browsed[:5]},
        )
        if rt.stopping:
            return
        ns = await ua_namespace(client)
        (speed,) = ua_nodes(client, ns, ["Command/MachSpeed"])
        ts = time.time()
        await speed.write_value(ua.DataValue(ua.Variant(UA_ROGUE_SPEED, ua.VariantType.Float)))
        _opcua_label(
            rt,
            "opcua-write",
            "Write",
            ts,
            f"IT host writes the case packer's speed setpoint to {UA_ROGUE_SPEED:g} cases/min",
            values=[UA_ROGUE_SPEED],
            extra={"node": "CasePacker.Command.MachSpeed"},
        )
    except UA_ERRORS:
        rt.errors["opcua-write"] += 1
    finally:
        await ua_close(client)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("normal", "normal operation only: no attack, no fault", slotted=False),
        Scenario(
            "bearing-wear",
            "conveyor bearing degrades (vibration, temperature) until the drive trips",
            _bearing_watch,
            _bearing_setup,
            slotted=False,
        ),
        Scenario("rogue-write", "IT host 127.0.40.66 writes the conveyor setpoint", _rogue_write),
        Scenario(
            "plc-stop",
            "IT host 127.0.40.66 stops the conveyor (run coil) and the press (S7 PLC STOP)",
            _plc_stop,
        ),
        Scenario(
            "recon",
            "scan of the cell from 127.0.40.66: ICS ports, Modbus identity, function codes",
            _recon,
        ),
        Scenario(
            "rogue-device", "new host 127.0.20.99 starts polling the conveyor PLC", _rogue_device
        ),
        Scenario(
            "program-download",
            "engineering station uploads and downloads a block to the press outside the window",
            _program_download,
        ),
        Scenario(
            "opcua-write",
            "IT host 127.0.40.66 browses the packaging machine over OPC UA (anonymous, "
            "no security) and writes its speed setpoint",
            _opcua_write,
        ),
        Scenario(
            "bacnet-attack",
            "rogue host 127.0.20.99 writes the HVAC controller's zone setpoint (BACnet, "
            "priority 8), silences its reports and restarts it (ReinitializeDevice)",
            bacnet_attack,
        ),
        Scenario(
            "iec104-command",
            "rogue host 127.0.20.99 interrogates the substation RTU over IEC 104 and opens "
            "the feeder breaker (single command, select then execute)",
            iec104_command,
        ),
    )
}
MIXED: tuple[str, ...] = (
    "bearing-wear",
    "recon",
    "rogue-write",
    "rogue-device",
    "plc-stop",
    "program-download",
    "opcua-write",
    "bacnet-attack",
    "iec104-command",
)


def parse_scenarios(values: Iterable[str]) -> list[str]:
    """Expand comma lists and ``mixed``; validate names; default to ``normal``."""
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            expanded = MIXED if part == "mixed" else (part,)
            for n in expanded:
                if n not in SCENARIOS:
                    known = ", ".join([*SCENARIOS, "mixed"])
                    raise ValueError(f"unknown scenario {n!r} (known: {known})")
                if n not in names:
                    names.append(n)
    if len(names) > 1 and "normal" in names:
        names.remove("normal")
    return names or ["normal"]


def schedule(names: list[str], seed: int, horizon: float) -> dict[str, float]:
    """Plant start time of each slotted scenario: one slot each, order and offset seeded."""
    rng = random.Random(f"{seed}:schedule")
    slotted = [n for n in names if SCENARIOS[n].slotted]
    rng.shuffle(slotted)
    lo, hi = SLOT_WINDOW[0] * horizon, SLOT_WINDOW[1] * horizon
    width = (hi - lo) / max(len(slotted), 1)
    out = {n: 0.0 for n in names if not SCENARIOS[n].slotted}
    for i, n in enumerate(slotted):
        out[n] = round(lo + i * width + rng.uniform(0.0, 0.4 * width), 3)
    return out


def describe() -> list[tuple[str, str]]:
    return [(s.name, s.description) for s in SCENARIOS.values()] + [
        ("mixed", "all of: " + ", ".join(MIXED))
    ]
