"""IEC 104 controlling stations of the lab (c104): the grid SCADA front end's role and
the connection the attack scenario opens.

c104 cannot bind a client to a local address, so each connection goes through a
:class:`~otconduit.lab.source_relay.SourceRelay` that opens it from the host's own
address. c104's calls block until the outstation confirms (or ``command_timeout_ms``
passes): they run in a worker thread.

c104 2.2.1 sometimes leaves a fresh connection muted (no STARTDT act sent, state
``OPEN_MUTED``); :meth:`Station104.open` then unmutes it itself, which sends STARTDT and
runs the connection's init (interrogation, clock synchronisation) as usual.
"""

from __future__ import annotations

import asyncio
import time

import c104

from otconduit.lab import addresses as A
from otconduit.lab.devices_iec104 import COMMON_ADDRESS, IOA_BREAKER_CMD, MEASURED
from otconduit.lab.privnet import run_private
from otconduit.lab.runtime import PlantRuntime
from otconduit.lab.source_relay import RELAY_HOST, SourceRelay

READ_PERIOD = 10.0  # plant s between the SCADA master's reads of the measurands
INTERROGATION_PERIOD = 600.0  # plant s between its general interrogations
COMMAND_TIMEOUT_MS = 3000
OPEN_TIMEOUT = 5.0


class Station104:
    """One c104 client with one connection to the RTU (or ``target``), from ``source``."""

    def __init__(self, source: str, init: c104.Init, target: tuple[str, int] | None = None) -> None:
        self.source = source
        self.init = init
        self.relay = SourceRelay(source, target or (A.SUBSTATION_RTU.ip, A.IEC104.port))
        self.client = c104.Client(tick_rate_ms=100, command_timeout_ms=COMMAND_TIMEOUT_MS)
        self.connection: c104.Connection | None = None
        self.station: c104.Station | None = None
        self.last_sent = 0.0

    async def open(self) -> None:
        """Connect (through the relay), and wait until data transfer has started."""
        port = await self.relay.start()
        con = self.client.add_connection(ip=RELAY_HOST, port=port, init=self.init)
        if con is None:
            raise RuntimeError("c104 refused the connection")
        self.connection = con
        self.station = con.add_station(common_address=COMMON_ADDRESS)
        # c104's threads (and the sockets they open) are born in the relay's namespace
        await asyncio.to_thread(run_private, self.client.start)
        deadline = time.monotonic() + OPEN_TIMEOUT
        unmuted = False
        while time.monotonic() < deadline:
            if con.is_connected and not con.is_muted:
                return
            if con.is_muted and not unmuted:
                await asyncio.sleep(0.3)  # give c104 its own chance first
                if con.is_muted:
                    self.last_sent = time.time()
                    await asyncio.to_thread(con.unmute)
                    unmuted = True
                continue
            await asyncio.sleep(0.05)
        raise TimeoutError(f"IEC 104 connection from {self.source} did not start")

    def point(self, ioa: int, kind: c104.Type, select: bool = False) -> c104.Point:
        assert self.station is not None
        found = self.station.get_point(io_address=ioa)
        if found is not None:
            return found
        mode = c104.CommandMode.SELECT_AND_EXECUTE if select else c104.CommandMode.DIRECT
        point = self.station.add_point(io_address=ioa, type=kind, command_mode=mode)
        if point is None:
            raise RuntimeError(f"c104 refused point {ioa}")
        return point

    async def read(self, ioa: int) -> bool:
        """Read command (C_RD_NA_1) for one measurand."""
        p = self.point(ioa, c104.Type.M_ME_NC_1)
        self.last_sent = time.time()
        return bool(await asyncio.to_thread(p.read))

    async def interrogation(self) -> bool:
        assert self.connection is not None
        self.last_sent = time.time()
        return bool(await asyncio.to_thread(self.connection.interrogation, COMMON_ADDRESS))

    async def clock_sync(self) -> bool:
        assert self.connection is not None
        self.last_sent = time.time()
        return bool(await asyncio.to_thread(self.connection.clock_sync, COMMON_ADDRESS))

    async def breaker_command(self, close: bool) -> bool:
        """Single command to the breaker, select then execute (c104 sends both)."""
        p = self.point(IOA_BREAKER_CMD, c104.Type.C_SC_NA_1, select=True)
        p.value = close
        self.last_sent = time.time()
        return bool(await asyncio.to_thread(p.transmit, c104.Cot.ACTIVATION))

    async def close(self) -> None:
        await asyncio.to_thread(self.client.stop)
        await self.relay.stop()


class ScadaMaster:
    """The grid SCADA front end: one long connection to the RTU (STARTDT, general
    interrogation and clock synchronisation at start-up, from c104's init), reads of the
    measurands every ``READ_PERIOD`` and a general interrogation every
    ``INTERROGATION_PERIOD`` plant seconds."""

    def __init__(self, rt: PlantRuntime) -> None:
        self.rt = rt
        self.link: Station104 | None = None
        self.last_gi = 0.0

    async def poll(self) -> None:
        if self.link is None:
            link = Station104(A.SCADA_MASTER.ip, c104.Init.ALL)
            try:
                await link.open()
            except BaseException:
                await link.close()
                raise
            self.link = link
            self.last_gi = self.rt.clock.plant_now()
            self.rt.requests["scada"] += 2
        now = self.rt.clock.plant_now()
        if now - self.last_gi >= INTERROGATION_PERIOD:
            await self.link.interrogation()
            self.last_gi = now
            self.rt.requests["scada"] += 1
        for ioa in MEASURED:
            await self.link.read(ioa)
        self.rt.requests["scada"] += len(MEASURED)

    async def run(self) -> None:
        try:
            await self.rt.cycle("scada", READ_PERIOD, self.poll, offset=1.2)
        finally:
            if self.link is not None:
                await self.link.close()
