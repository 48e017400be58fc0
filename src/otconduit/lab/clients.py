"""The plant's client roles: HMI/SCADA, PLC I/O scan, historian, MES, engineering, office IT.

Each role speaks from its own loopback address on fixed plant-time cycles, the way real
supervisory systems poll: the HMI every second, the historian every 5-10 s, the MES every
30 s, the engineering station now and then. The HMI also plays the operator: it stops the
line for planned breaks, restarts it after an unplanned stop that left no fault, and puts
a setpoint back to the recipe value if someone changed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from asyncua import Client, ua
from asyncua.common.node import Node

from otconduit.lab import addresses as A
from otconduit.lab.devices_opcua import node_id, string_node
from otconduit.lab.http_it import HttpServer, http_get, intranet_pages
from otconduit.lab.modbus_client import ModbusClient
from otconduit.lab.netbind import SOURCE_ADDRESS
from otconduit.lab.process import NOMINAL_SPEED, in_break
from otconduit.lab.register_maps import CONVEYOR_MAP, PRESS_DB_SIZES, SDM630_MAP, register
from otconduit.lab.runtime import NETWORK_ERRORS, PlantRuntime
from otconduit.lab.s7_client import S7Client

HMI_PERIOD = 1.0
IO_SCAN_PERIOD = 1.0
METER_PERIOD = 5.0
HISTORIAN_PERIOD = 10.0
MES_PERIOD = 30.0
EWS_PERIOD = 300.0
RESTART_AFTER = 30.0  # plant s an operator waits before restarting after an unplanned stop
RESTORE_AFTER = 60.0  # plant s before a changed setpoint is put back to the recipe
UA_ERRORS: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, ua.UaError)


async def ua_connect(url: str, source: str) -> Client:
    """asyncua client session opened from ``source`` (see netbind.BoundEventLoop)."""
    token = SOURCE_ADDRESS.set(source)
    try:
        client = Client(url, timeout=3)
        client.session_timeout = 120_000
        await client.connect()
        return client
    finally:
        SOURCE_ADDRESS.reset(token)


async def ua_close(client: Client | None) -> None:
    if client is None:
        return
    # cleanup of a session that may already be broken must not fail
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), 2.0)


def ua_nodes(client: Client, ns: int, paths: list[str]) -> list[Node]:
    return [client.get_node(string_node(node_id(p), ns)) for p in paths]


async def ua_namespace(client: Client) -> int:
    return int(await client.get_namespace_index("urn:conduit-lab:packaging"))


BUILD_INFO_NODES = (
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName,
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName,
    ua.ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion,
    ua.ObjectIds.Server_ServerStatus_BuildInfo_BuildNumber,
)


async def ua_build_info(client: Client) -> list[Any]:
    """What an HMI's diagnostics page shows of a server: maker, product, software."""
    return list(await client.read_values([client.get_node(i) for i in BUILD_INFO_NODES]))


async def ua_command(client: Client, ns: int, cmd: int) -> None:
    """PackTags command: set CntrlCmd, then raise CmdChangeRequest."""
    cmd_node, req_node = ua_nodes(client, ns, ["Command/CntrlCmd", "Command/CmdChangeRequest"])
    await cmd_node.write_value(ua.DataValue(ua.Variant(cmd, ua.VariantType.Int32)))
    await req_node.write_value(ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))


class Closer:
    """Connections a role opened, closed together when the role ends."""

    def __init__(self) -> None:
        self.modbus: list[ModbusClient] = []
        self.s7: list[S7Client] = []
        self.ua: list[Client] = []

    async def close(self) -> None:
        for m in self.modbus:
            await m.close()
        for s in self.s7:
            await s.close()
        for c in self.ua:
            await ua_close(c)


class HmiOperator:
    """HMI/SCADA polling plus the operator's reactions to what it sees."""

    def __init__(self, rt: PlantRuntime, closer: Closer) -> None:
        self.rt = rt
        src = A.HMI.ip
        self.plc = ModbusClient(A.CONVEYOR_PLC.ip, src)
        self.rio = ModbusClient(A.REMOTE_IO.ip, src)
        self.meters = [ModbusClient(m.ip, src) for m in (A.METER_1, A.METER_2)]
        self.press = S7Client(A.PRESS_PLC.ip, src)
        closer.modbus += [self.plc, self.rio, *self.meters]
        closer.s7.append(self.press)
        self.closer = closer
        self.rng = rt.rng("hmi")
        self.recipe_speed = NOMINAL_SPEED
        self.stopped_since: float | None = None
        self.deviated_since: float | None = None
        self.break_stop = False
        self.next_tweak = self.rng.expovariate(1 / 900.0)
        self.ua: Client | None = None
        self.ua_ns = 0
        self.packer_held = False

    def _count(self, n: int = 1) -> None:
        self.rt.requests["hmi"] += n

    async def poll_conveyor(self) -> None:
        regs = await self.plc.read_registers(3, 0, 25)
        coils = await self.plc.read_bits(1, 0, 2)
        await self.plc.read_bits(2, 0, 4)
        self._count(3)
        await self._operate(regs, coils[0])

    async def _operate(self, regs: list[int], run: bool) -> None:
        t = self.rt.clock.plant_now()
        tod = self.rt.process.time_of_day(t)
        fault = regs[register(CONVEYOR_MAP, "fault_code").address]
        sp = regs[0] * 0.1
        if in_break(tod):
            if run:
                await self.plc.write_coil(0, False)
                self._count()
                self.break_stop = True
            self.stopped_since = None
            return
        if self.break_stop and not run and not fault:
            await self.plc.write_coil(0, True)
            self._count()
            self.break_stop = False
            return
        if not run and not fault:
            self.stopped_since = self.stopped_since if self.stopped_since is not None else t
            if t - self.stopped_since >= RESTART_AFTER:
                await self.plc.write_coil(0, True)
                self._count()
                self.stopped_since = None
        else:
            self.stopped_since = None
        if abs(sp - self.recipe_speed) > 0.05:
            self.deviated_since = self.deviated_since if self.deviated_since is not None else t
            if t - self.deviated_since >= RESTORE_AFTER:
                await self.plc.write_register(0, round(self.recipe_speed * 10))
                self._count()
                self.deviated_since = None
        else:
            self.deviated_since = None
        if t >= self.next_tweak:
            self.next_tweak = t + self.rng.expovariate(1 / 900.0)
            self.recipe_speed = round(NOMINAL_SPEED + self.rng.uniform(-1.5, 1.5), 1)
            await self.plc.write_register(0, round(self.recipe_speed * 10))
            self._count()

    async def poll_remote_io(self) -> None:
        await self.rio.read_bits(2, 0, 8)
        await self.rio.read_bits(1, 0, 5)
        await self.rio.read_registers(4, 0, 2)
        self._count(3)

    async def poll_press(self) -> None:
        if not self.press.connected:
            await self.press.connect()
        await self.press.read_db(1, 0, PRESS_DB_SIZES[1])
        self._count()

    async def poll_meters(self) -> None:
        total = register(SDM630_MAP, "total_power").address
        for m in self.meters:
            await m.read_registers(4, total, 2)
            self._count()

    async def poll_packaging(self) -> None:
        if self.ua is None:
            self.ua = await ua_connect(self.rt.opcua.url, A.HMI.ip)
            self.closer.ua.append(self.ua)
            self.ua_ns = await ua_namespace(self.ua)
            await ua_build_info(self.ua)
            self._count()
        paths = [
            "Status/StateCurrent",
            "Status/CurMachSpeed",
            "Status/MachPower",
            "Admin/ProdProcessedCount",
            "Admin/ProdDefectiveCount",
            "Admin/StopReasonId",
        ]
        try:
            values = await self.ua.read_values(ua_nodes(self.ua, self.ua_ns, paths))
        except UA_ERRORS:
            self.ua = None
            raise
        self._count()
        state = int(values[0])
        tod = self.rt.process.time_of_day(self.rt.clock.plant_now())
        if in_break(tod) and state in (5, 6) and not self.packer_held:
            await ua_command(self.ua, self.ua_ns, 4)  # Hold
            self.packer_held = True
            self._count(2)
        elif not in_break(tod) and self.packer_held:
            await ua_command(self.ua, self.ua_ns, 5)  # Unhold
            self.packer_held = False
            self._count(2)


class Historian:
    """Pulls meters and counters into a small in-memory trend store; serves it over HTTP."""

    def __init__(self, rt: PlantRuntime, closer: Closer) -> None:
        self.rt = rt
        src = A.HISTORIAN.ip
        self.meters = [ModbusClient(m.ip, src) for m in (A.METER_1, A.METER_2)]
        self.plc = ModbusClient(A.CONVEYOR_PLC.ip, src)
        self.press = S7Client(A.PRESS_PLC.ip, src)
        closer.modbus += [*self.meters, self.plc]
        closer.s7.append(self.press)
        self.closer = closer
        self.ua: Client | None = None
        self.ua_ns = 0
        self.trends: dict[str, deque[tuple[float, float]]] = {}

    def _record(self, tag: str, value: float) -> None:
        self.trends.setdefault(tag, deque(maxlen=200)).append((self.rt.clock.plant_now(), value))

    async def poll_meters(self) -> None:
        for i, m in enumerate(self.meters, start=1):
            block = await m.read_registers(4, 0x0000, 0x36)  # voltages .. total system power
            tail = await m.read_registers(4, 0x0046, 4)  # frequency, import kWh
            total = await m.read_registers(4, 0x0156, 2)  # total kWh
            self.rt.requests["historian"] += 3
            for name, words in (
                ("phase1_voltage", block[0:2]),
                ("total_power", block[0x34:0x36]),
                ("frequency", tail[0:2]),
                ("total_kwh", total),
            ):
                self._record(f"meter{i}.{name}", register(SDM630_MAP, name).decode(words))

    async def poll_counters(self) -> None:
        regs = await self.plc.read_registers(3, 10, 15)
        self._record("conveyor.good_count", (regs[8] << 16) | regs[9])
        if not self.press.connected:
            await self.press.connect()
        db = await self.press.read_db(1, 0, PRESS_DB_SIZES[1])
        self._record("press.stroke_count", struct.unpack_from(">i", db, 12)[0])
        if self.ua is None:
            self.ua = await ua_connect(self.rt.opcua.url, A.HISTORIAN.ip)
            self.closer.ua.append(self.ua)
            self.ua_ns = await ua_namespace(self.ua)
        try:
            paths = ["Admin/ProdProcessedCount", "Status/StateCurrent"]
            values = await self.ua.read_values(ua_nodes(self.ua, self.ua_ns, paths))
        except UA_ERRORS:
            self.ua = None
            raise
        self._record("packer.cases", float(values[0]))
        self.rt.requests["historian"] += 3

    def pages(self, path: str) -> tuple[str, bytes]:
        if path.startswith("/trends/"):
            tag = path.removeprefix("/trends/")
            points = list(self.trends.get(tag, ()))[-50:]
            return "application/json", json.dumps({"tag": tag, "points": points}).encode()
        body = json.dumps({"tags": sorted(self.trends)}).encode()
        return "application/json", body


async def plc_io_scan(rt: PlantRuntime, closer: Closer) -> None:
    """The conveyor PLC scans its remote I/O block: read inputs, write beacon outputs."""
    io = ModbusClient(A.REMOTE_IO.ip, A.CONVEYOR_PLC.ip)
    closer.modbus.append(io)
    names = ("beacon_green", "beacon_amber", "beacon_red", "horn", "reject_diverter")

    async def scan() -> None:
        await io.read_bits(2, 0, 8)
        outputs = rt.process.io_outputs
        await io.write_coils(0, [bool(outputs.get(n, False)) for n in names])
        rt.requests["plc-io"] += 2

    await rt.cycle("plc-io", IO_SCAN_PERIOD, scan, offset=0.3)


async def mes(rt: PlantRuntime, closer: Closer) -> None:
    """MES reads production counters now and then."""
    plc = ModbusClient(A.CONVEYOR_PLC.ip, A.MES.ip)
    closer.modbus.append(plc)
    session: list[Client] = []

    async def read() -> None:
        await plc.read_registers(3, 18, 7)
        if not session:
            client = await ua_connect(rt.opcua.url, A.MES.ip)
            closer.ua.append(client)
            session.append(client)
        client = session[0]
        ns = await ua_namespace(client)
        paths = ["Admin/ProdProcessedCount", "Admin/ProdDefectiveCount"]
        try:
            await client.read_values(ua_nodes(client, ns, paths))
        except UA_ERRORS:
            session.clear()
            raise
        rt.requests["mes"] += 3

    await rt.cycle("mes", MES_PERIOD, read, offset=5.0)


async def engineering(rt: PlantRuntime) -> None:
    """The engineering station checks device identity and diagnostics occasionally."""

    async def check() -> None:
        for dev in (A.CONVEYOR_PLC, A.REMOTE_IO):
            client = ModbusClient(dev.ip, A.EWS.ip)
            try:
                await client.device_identification(1)
                if dev is A.CONVEYOR_PLC:
                    await client.diagnostics(0, 0xA5A5)
                rt.requests["engineering"] += 2
            finally:
                await client.close()
        s7 = S7Client(A.PRESS_PLC.ip, A.EWS.ip)
        try:
            await s7.connect()
            await s7.read_szl(0x001C)
            rt.requests["engineering"] += 2
        finally:
            await s7.close()

    await rt.cycle("engineering", EWS_PERIOD, check, offset=40.0)


async def office_pc(rt: PlantRuntime, pc: A.Node) -> None:
    """Office browsing: the intranet mostly, the historian's trend pages sometimes."""
    rng = rt.rng(pc.name)
    pages = ["/", "/news", "/canteen", "/api/directory", "/api/tickets", "/hr/leave"]
    tags = ["meter1.total_power", "meter2.total_kwh", "conveyor.good_count", "packer.cases"]
    while not rt.stopping:
        if await rt.sleep_plant(rng.uniform(4.0, 20.0)):
            return
        try:
            if rng.random() < 0.25:
                await http_get(A.HISTORIAN.ip, A.HTTP_PORT, f"/trends/{rng.choice(tags)}", pc.ip)
            else:
                await http_get(A.IT_WEB.ip, A.HTTP_PORT, rng.choice(pages), pc.ip)
            rt.requests["office"] += 1
        except NETWORK_ERRORS:
            rt.errors["office"] += 1


def it_servers(historian: Historian) -> list[HttpServer]:
    return [
        HttpServer(A.IT_WEB.name, A.IT_WEB.ip, A.HTTP_PORT, intranet_pages),
        HttpServer(A.HISTORIAN.name, A.HISTORIAN.ip, A.HTTP_PORT, historian.pages),
    ]


def role_tasks(
    rt: PlantRuntime, hmi: HmiOperator, historian: Historian, closer: Closer
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """Coroutine factories for every normal-operation role."""
    return [
        lambda: rt.cycle("hmi", HMI_PERIOD, hmi.poll_conveyor),
        lambda: rt.cycle("hmi", HMI_PERIOD, hmi.poll_remote_io, offset=0.2),
        lambda: rt.cycle("hmi", HMI_PERIOD, hmi.poll_press, offset=0.4),
        lambda: rt.cycle("hmi", HMI_PERIOD, hmi.poll_packaging, offset=0.6),
        lambda: rt.cycle("hmi", METER_PERIOD, hmi.poll_meters, offset=0.8),
        lambda: rt.cycle("historian", METER_PERIOD, historian.poll_meters, offset=1.5),
        lambda: rt.cycle("historian", HISTORIAN_PERIOD, historian.poll_counters, offset=2.5),
        lambda: plc_io_scan(rt, closer),
        lambda: mes(rt, closer),
        lambda: engineering(rt),
        *[(lambda pc=pc: office_pc(rt, pc)) for pc in A.OFFICE_PCS],
    ]
