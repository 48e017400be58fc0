"""A small asyncio Modbus/TCP client for the plant's roles and scenarios.

Written for the lab rather than taken from pymodbus so that every request is exactly what
the role means to send (function, address, quantity, source address) and so that the time
a scenario writes into its label is taken right before the bytes leave.
"""

from __future__ import annotations

import asyncio
import struct
import time

from otconduit.lab.netbind import BoundClient


class ModbusError(RuntimeError):
    """The device answered with an exception response (``code`` = exception code)."""

    def __init__(self, fc: int, code: int) -> None:
        super().__init__(f"modbus exception fc={fc} code={code}")
        self.fc = fc
        self.code = code


class ModbusClient(BoundClient):
    """One persistent TCP connection from ``source`` to a Modbus server."""

    def __init__(
        self, host: str, source: str, port: int = 502, unit: int = 1, timeout: float = 2.0
    ) -> None:
        super().__init__(host, source, port, timeout)
        self.unit = unit
        self.tid = 0
        self.requests = 0

    async def connect(self) -> None:
        await self._open()

    async def request(self, pdu: bytes, *, unit: int | None = None) -> bytes:
        """Send one PDU and return the response PDU (exception responses included)."""
        async with self._lock:
            if not self.connected:
                await self.connect()
            assert self._reader is not None and self._writer is not None
            self.tid = (self.tid + 1) & 0xFFFF
            u = self.unit if unit is None else unit
            adu = struct.pack(">HHHB", self.tid, 0, len(pdu) + 1, u) + pdu
            try:
                self.last_sent = time.time()
                self._writer.write(adu)
                await self._writer.drain()
                self.requests += 1
                while True:
                    head = await asyncio.wait_for(self._reader.readexactly(7), self.timeout)
                    tid, _proto, length, _unit = struct.unpack(">HHHB", head)
                    body = await asyncio.wait_for(
                        self._reader.readexactly(length - 1), self.timeout
                    )
                    if tid == self.tid:
                        return body
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                await self.close()
                raise

    async def _checked(self, pdu: bytes) -> bytes:
        resp = await self.request(pdu)
        if resp[0] & 0x80:
            raise ModbusError(pdu[0], resp[1] if len(resp) > 1 else 0)
        return resp

    async def read_registers(self, fc: int, address: int, count: int) -> list[int]:
        """FC 3 (holding) or FC 4 (input) registers."""
        resp = await self._checked(struct.pack(">BHH", fc, address, count))
        n = resp[1] // 2
        return list(struct.unpack(f">{n}H", resp[2 : 2 + 2 * n]))

    async def read_bits(self, fc: int, address: int, count: int) -> list[bool]:
        """FC 1 (coils) or FC 2 (discrete inputs)."""
        resp = await self._checked(struct.pack(">BHH", fc, address, count))
        data = resp[2 : 2 + resp[1]]
        return [bool(data[i // 8] >> (i % 8) & 1) for i in range(count)]

    async def write_coil(self, address: int, value: bool) -> None:
        await self._checked(struct.pack(">BHH", 5, address, 0xFF00 if value else 0))

    async def write_register(self, address: int, value: int) -> None:
        await self._checked(struct.pack(">BHH", 6, address, value & 0xFFFF))

    async def write_registers(self, address: int, values: list[int]) -> None:
        body = struct.pack(f">{len(values)}H", *values)
        await self._checked(struct.pack(">BHHB", 16, address, len(values), len(body)) + body)

    async def write_coils(self, address: int, values: list[bool]) -> None:
        packed = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            if v:
                packed[i // 8] |= 1 << (i % 8)
        head = struct.pack(">BHHB", 15, address, len(values), len(packed))
        await self._checked(head + bytes(packed))

    async def device_identification(self, read_code: int = 1) -> dict[int, bytes]:
        """FC 43 / MEI 14 (Read Device Identification), first response only."""
        resp = await self._checked(bytes([43, 14, read_code, 0]))
        objects: dict[int, bytes] = {}
        count = resp[6] if len(resp) > 6 else 0
        pos = 7
        for _ in range(count):
            if pos + 2 > len(resp):
                break
            oid, olen = resp[pos], resp[pos + 1]
            objects[oid] = resp[pos + 2 : pos + 2 + olen]
            pos += 2 + olen
        return objects

    async def diagnostics(self, sub: int, data: int = 0) -> bytes:
        """FC 8 with a sub-function (0 = return query data)."""
        return await self._checked(struct.pack(">BHH", 8, sub, data))
