"""Modbus/TCP and Modbus RTU collector: planned reads (FC 1-4 only), its own schedule,
timeout and back-off per device, automatic reconnects, and no exception that can end
the loop.

Poll groups (tags sharing an interval) are scheduled by their next due time. A device
that stops answering is closed and retried with exponential back-off; meanwhile its
tags turn STALE once they pass ``stale_after``. Other devices never wait for it: each
device has its own task and its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from otconduit.gateway.codec import decode_registers, engineering, register_count
from otconduit.gateway.collectors import Emit
from otconduit.gateway.collectors.tagstate import TagState
from otconduit.gateway.config import Device, GatewayConfig, Tag
from otconduit.gateway.model import Quality, TagSample, Value
from otconduit.gateway.planner import BIT_TABLES, Read, plan

log = logging.getLogger(__name__)
ILLEGAL_ADDRESS = 2
STALE_CHECK_EVERY = 0.25  # s between staleness checks (a scan of every tag)
_EXC_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class DeviceDown(Exception):
    """The connection is unusable: close it and back off."""


class ModbusCollector:
    def __init__(self, device: Device, cfg: GatewayConfig, emit: Emit) -> None:
        self.device = device
        self.cfg = cfg
        self.groups: dict[float, list[Tag]] = {}
        for t in device.tags:
            self.groups.setdefault(t.interval or device.interval, []).append(t)
        self.singles: set[str] = set()  # tags read alone after a merged read was refused
        self._plans: dict[tuple[float, int], list[Read]] = {}  # (interval, version) -> reads
        self._plan_version = 0
        self._next_stale_check = 0.0
        self.refused: dict[str, str] = {}  # tags the device refuses even alone
        self.client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.stats: dict[str, Any] = {
            "device": device.name,
            "protocol": device.protocol,
            "state": "starting",
            "requests": 0,
            "responses": 0,
            "exceptions": 0,
            "timeouts": 0,
            "connects": 0,
            "connect_failures": 0,
            "samples": 0,
            "last_error": None,
            "last_ok": None,
            "backoff_s": 0.0,
        }
        self.state = TagState(device, cfg, emit, self.stats)  # reporting, deadband, stale
        # Tags whose value is the register itself (one big-endian word, no scaling), and
        # whether it is signed: the common case, decoded inline without a call per tag.
        self._word_signed = {
            t.path: t.type == "int16"
            for t in device.tags
            if t.type in ("uint16", "int16") and t.byte_order == "big" and t.scale is None
        }

    # -- lifecycle -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return dict(self.stats, requests_per_cycle=self.requests_per_cycle())

    def requests_per_cycle(self) -> int:
        return sum(
            len(plan(self.device, tags, frozenset(self.singles))) for tags in self.groups.values()
        )

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        d = self.device
        if d.protocol == "modbus-rtu":
            assert d.serial is not None
            return AsyncModbusSerialClient(
                d.serial.port,
                baudrate=d.serial.baudrate,
                parity=d.serial.parity,
                stopbits=d.serial.stopbits,
                bytesize=d.serial.bytesize,
                timeout=d.timeout,
                retries=0,
                reconnect_delay=0,
            )
        assert d.host is not None
        src = (self.cfg.source_address, 0) if self.cfg.source_address else None
        return AsyncModbusTcpClient(
            d.host,
            port=d.port or 502,
            timeout=d.timeout,
            retries=0,
            reconnect_delay=0,
            source_address=src,
        )

    async def _connect(self) -> None:
        self.stats["state"] = "connecting"
        client = self._make_client()
        try:
            ok = await asyncio.wait_for(client.connect(), self.device.timeout + 0.5)
        except (TimeoutError, OSError) as exc:
            client.close()
            raise DeviceDown(f"cannot connect: {exc or 'timeout'}") from None
        if not ok:
            client.close()
            raise DeviceDown("cannot connect")
        self.client = client
        self.stats["connects"] += 1
        self.stats["state"] = "connected"

    def _close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        self.client = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; every failure is counted, backed off and retried."""
        backoff = self.device.backoff.initial
        while not stop.is_set():
            try:
                await self._connect()
                backoff = self.device.backoff.initial
                self.stats["backoff_s"] = 0.0
                await self._poll(stop)
            except asyncio.CancelledError:
                self._close()
                raise
            except DeviceDown as exc:
                self._fail(str(exc))
            except Exception as exc:
                log.exception("collector %s", self.device.name)
                self._fail(f"{type(exc).__name__}: {exc}")
            self._close()
            if stop.is_set():
                break
            self.stats["state"] = "backoff"
            self.stats["backoff_s"] = backoff
            self._mark_stale()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.device.backoff.max)
        self._close()
        self.stats["state"] = "stopped"

    def _fail(self, reason: str) -> None:
        self.stats["last_error"] = reason
        self.state.unreachable()
        if self.stats["state"] == "connecting":
            self.stats["connect_failures"] += 1

    # -- polling ---------------------------------------------------------------------
    async def _poll(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        due = {interval: loop.time() for interval in self.groups}
        while not stop.is_set():
            interval = min(due, key=lambda k: due[k])
            wait = due[interval] - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                if stop.is_set():
                    return
            await self._cycle(interval)
            if loop.time() >= self._next_stale_check:
                self._mark_stale()
                self._next_stale_check = loop.time() + STALE_CHECK_EVERY
            due[interval] = max(due[interval] + interval, loop.time())

    def _plan(self, interval: float) -> list[Read]:
        """The group's reads, planned once and again only after the device refused one."""
        key = (interval, self._plan_version)
        reads = self._plans.get(key)
        if reads is None:
            tags = [t for t in self.groups[interval] if t.path not in self.refused]
            reads = plan(self.device, tags, frozenset(self.singles))
            self._plans = {k: v for k, v in self._plans.items() if k[1] == self._plan_version}
            self._plans[key] = reads
        return reads

    async def _cycle(self, interval: float) -> None:
        out: list[TagSample] = []
        for read in self._plan(interval):
            out += await self._read(read)
        if not self.refused:
            return self._flush(out)
        for t in self.groups[interval]:
            if t.path in self.refused:  # reported BAD once (on change), kept fresh
                out += self._sample(t, None, Quality.BAD, self.refused[t.path])
        self._flush(out)

    def _flush(self, out: list[TagSample]) -> None:
        self.state.emit(out)

    async def _read(self, read: Read) -> list[TagSample]:
        client = self.client
        if client is None:
            raise DeviceDown("not connected")
        fn = {
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
        }[read.table]
        self.stats["requests"] += 1
        try:
            rr = await asyncio.wait_for(
                fn(read.start, count=read.count, device_id=self.device.unit), self.device.timeout
            )
        except TimeoutError:
            self.stats["timeouts"] += 1
            raise DeviceDown(f"no response within {self.device.timeout:g} s") from None
        except ModbusException as exc:
            if not client.connected:
                raise DeviceDown(f"connection lost: {exc}") from None
            self.stats["timeouts"] += 1
            raise DeviceDown(f"{exc}") from None
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0) or 0)
            self.stats["exceptions"] += 1
            reason = f"exception {code} ({_EXC_NAMES.get(code, 'unknown')})"
            if code == ILLEGAL_ADDRESS and len(read.tags) > 1:
                self.singles.update(t.path for t, _ in read.tags)  # split, and remember
                self._plan_version += 1
                out: list[TagSample] = []
                for t, _ in read.tags:
                    single = plan(self.device, [t], frozenset({t.path}))[0]
                    out += await self._read(single)
                return out
            if code == ILLEGAL_ADDRESS:
                self.refused[read.tags[0][0].path] = reason
                self._plan_version += 1
            out = []
            for t, _ in read.tags:
                out += self._sample(t, None, Quality.BAD, reason)
            return out
        self.stats["responses"] += 1
        now = time.time_ns()
        self.stats["last_ok"] = now
        if read.table in BIT_TABLES:
            bits = rr.bits
            return self.state.good(((t, bool(bits[off])) for t, off in read.tags), now)
        regs = rr.registers
        word_signed = self._word_signed
        readings: list[tuple[Tag, Value]] = []
        out = []
        for t, off in read.tags:
            signed = word_signed.get(t.path)
            if signed is not None:
                w = regs[off]
                readings.append((t, w - 0x10000 if signed and w & 0x8000 else w))
                continue
            try:
                value = engineering(decode_registers(regs[off : off + register_count(t)], t), t)
            except (ValueError, IndexError, UnicodeDecodeError) as exc:
                out += self.state.good(readings, now)  # keep the tags' order
                readings = []
                out += self._sample(t, None, Quality.BAD, f"cannot decode: {exc}", now=now)
                continue
            readings.append((t, value))
        out += self.state.good(readings, now)
        return out

    def _sample(
        self, tag: Tag, value: Value, quality: Quality, reason: str = "", *, now: int | None = None
    ) -> list[TagSample]:
        sample = self.state.offer(tag, value, quality, reason, now=now)
        return [sample] if sample is not None else []

    def _mark_stale(self) -> None:
        """STALE once for tags past their limit (the device's last error says why)."""
        reason = self.stats["last_error"] or "no good value from the device"
        self.state.emit(self.state.due_stale(reason))
