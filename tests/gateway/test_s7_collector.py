"""The S7 collector against python-snap7's S7 server on loopback (a high port: no root):
addresses and types, read planning within the PDU, scaling, on-change/deadband/cyclic
reporting, refused reads, and a PLC that goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from snap7.server import Server
from snap7.type import SrvArea

from otconduit.gateway.collectors.s7 import S7Address, S7Collector, parse_address, plan
from otconduit.gateway.config import GatewayConfig, Tag, parse_gateway
from otconduit.gateway.model import Quality, TagSample
from otconduit.yamlconf import ConfigError

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
ENT, SITE = "acme", "plant1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Plc:
    """A python-snap7 S7 server whose data blocks the test edits in place."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.db1 = bytearray(64)
        self.db2 = bytearray(40)
        self.db3 = bytearray(700)
        self.mk = bytearray(16)
        self.server: Server | None = None
        struct.pack_into(">B", self.db1, 0, 0b0000_1000)  # DBX0.3 set
        struct.pack_into(">B", self.db1, 1, 200)  # DBB1 = 200 (as SINT: -56)
        struct.pack_into(">H", self.db1, 2, 1234)  # DBW2 WORD
        struct.pack_into(">f", self.db1, 4, 21.5)  # DBD4 REAL
        struct.pack_into(">h", self.db1, 8, -300)  # DBW8 INT
        struct.pack_into(">i", self.db1, 10, -100000)  # DBD10 DINT
        struct.pack_into(">I", self.db1, 14, 3_000_000_000)  # DBD14 DWORD
        struct.pack_into(">d", self.db1, 18, 1.0e10 + 0.25)  # DBL18 LREAL
        struct.pack_into(">H", self.db1, 26, 27648)  # DBW26 raw analog, full scale
        struct.pack_into(">H", self.db1, 28, 1 << 9)  # DBW28 bit 9
        struct.pack_into(">BB", self.db2, 10, 20, 5)  # STRING[20], 5 characters
        self.db2[12:17] = b"PRESS"
        struct.pack_into(">f", self.db3, 0, 1.25)
        struct.pack_into(">f", self.db3, 600, 2.5)
        self.mk[4] = 0b0100_0000  # M4.6
        self.mk[5] = 42  # MB5

    def start(self) -> None:
        server = Server(log=False)
        server.register_area(SrvArea.DB, 1, self.db1)
        server.register_area(SrvArea.DB, 2, self.db2)
        server.register_area(SrvArea.DB, 3, self.db3)
        server.register_area(SrvArea.MK, 0, self.mk)
        server.start_to(HOST, self.port)
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def plc() -> Iterator[Plc]:
    p = Plc(_free_port())
    p.start()
    yield p
    p.stop()


TAGS: list[dict[str, Any]] = [
    {"path": "press/plc/door_closed", "address": "DB1.DBX0.3", "type": "bool"},
    {"path": "press/plc/door_open", "address": "DB1.DBX0.2", "type": "bool"},
    {"path": "press/plc/mode", "address": "DB1.DBB1"},
    {"path": "press/plc/mode_signed", "address": "DB1.DBB1", "type": "int16"},
    {"path": "press/plc/strokes", "address": "DB1.DBW2", "type": "uint16", "unit": "1"},
    {"path": "press/plc/temp", "address": "DB1.DBD4", "type": "float32", "unit": "degC"},
    {"path": "press/plc/offset", "address": "DB1.DBW8", "type": "int16"},
    {"path": "press/plc/position", "address": "DB1.DBD10", "type": "int32"},
    {"path": "press/plc/counter", "address": "DB1.DBD14", "type": "uint32"},
    {"path": "press/plc/energy", "address": "DB1.DBL18", "type": "float64", "unit": "Wh"},
    {
        "path": "press/plc/pressure",
        "address": "DB1.DBW26",
        "type": "int16",
        "unit": "bar",
        "scale": {"raw": [0, 27648], "eng": [0, 250]},
    },
    {"path": "press/plc/alarm9", "address": "DB1.DBW28", "type": "bool", "bit": 9},
    {"path": "press/plc/recipe", "address": "DB2.STRING10.20", "type": "string", "length": 20},
    {"path": "press/plc/near", "address": "DB3.DBD0", "type": "float32"},
    {"path": "press/plc/far", "address": "DB3.DBD600", "type": "float32"},
    {"path": "press/plc/lamp", "address": "M4.6", "type": "bool"},
    {"path": "press/plc/mb5", "address": "MB5"},
]
EXPECTED: dict[str, Any] = {
    "door_closed": True,
    "door_open": False,
    "mode": 200,
    "mode_signed": -56,
    "strokes": 1234,
    "temp": 21.5,
    "offset": -300,
    "position": -100000,
    "counter": 3_000_000_000,
    "energy": 1.0e10 + 0.25,
    "pressure": 250.0,
    "alarm9": True,
    "recipe": "PRESS",
    "near": 1.25,
    "far": 2.5,
    "lamp": True,
    "mb5": 42,
}


def _cfg(port: int, tags: list[dict[str, Any]] | None = None, **dev: Any) -> GatewayConfig:
    device = {
        "name": "press-plc",
        "protocol": "s7",
        "host": HOST,
        "port": port,
        "interval": 0.1,
        "timeout": 0.5,
        "backoff": {"initial": 0.1, "max": 0.2},
        "tags": tags if tags is not None else TAGS,
    }
    device.update(dev)
    return GatewayConfig.model_validate(
        {"enterprise": ENT, "site": SITE, "devices": [device], "sinks": {"historian": None}}
    )


class Run:
    """A collector running in the test's event loop, its samples collected."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.samples: list[TagSample] = []
        self.collector = S7Collector(cfg.devices[0], cfg, self.samples.extend)
        self.stop = asyncio.Event()

    def latest(self) -> dict[str, TagSample]:
        return {s.path.rsplit("/", 1)[1]: s for s in self.samples}

    def of(self, name: str) -> list[TagSample]:
        return [s for s in self.samples if s.path.endswith("/" + name)]

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; status {self.collector.status()}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(cfg: GatewayConfig) -> AsyncIterator[Run]:
    run = Run(cfg)
    task = asyncio.create_task(run.collector.run(run.stop))
    try:
        yield run
    finally:
        run.stop.set()
        await asyncio.wait_for(task, 5)


# -- addresses and planning (no PLC) ---------------------------------------------------


def _tag(address: str, **kw: Any) -> Tag:
    return Tag(path="t", address=address, **kw)


@pytest.mark.parametrize(
    ("address", "kw", "expected"),
    [
        ("DB1.DBX0.3", {"type": "bool"}, S7Address("DB", 1, 0, 1, "X", 3)),
        ("db1.dbx 7.7", {"type": "bool"}, S7Address("DB", 1, 7, 1, "X", 7)),
        ("DB1.DBB0", {}, S7Address("DB", 1, 0, 1, "B")),
        ("DB1.DBW2", {"type": "int16"}, S7Address("DB", 1, 2, 2, "W")),
        ("DB1.DBD4", {"type": "float32"}, S7Address("DB", 1, 4, 4, "D")),
        ("DB9.DBL8", {"type": "float64"}, S7Address("DB", 9, 8, 8, "L")),
        ("DB1.DBW2", {"type": "bool", "bit": 15}, S7Address("DB", 1, 2, 2, "W", 15)),
        ("DB2.STRING10.20", {"type": "string", "length": 20}, S7Address("DB", 2, 10, 22, "STRING")),
        ("DB2.STRING10", {"type": "string", "length": 8}, S7Address("DB", 2, 10, 10, "STRING")),
        ("M10.1", {"type": "bool"}, S7Address("M", 0, 10, 1, "X", 1)),
        ("MW10", {"type": "int16"}, S7Address("M", 0, 10, 2, "W")),
        ("ID4", {"type": "uint32"}, S7Address("I", 0, 4, 4, "D")),
        ("EB0", {}, S7Address("I", 0, 0, 1, "B")),
        ("QB3", {}, S7Address("Q", 0, 3, 1, "B")),
        ("A1.0", {"type": "bool"}, S7Address("Q", 0, 1, 1, "X", 0)),
    ],
)
def test_addresses(address: str, kw: dict[str, Any], expected: S7Address) -> None:
    assert parse_address(_tag(address, **kw)) == expected


@pytest.mark.parametrize(
    ("address", "kw", "message"),
    [
        ("DB1.DBD4", {}, "type must be float32 or int32 or uint32"),
        ("DB1.DBW2", {"type": "float32"}, "type must be uint16 or int16"),
        ("DB1.DBX0.8", {"type": "bool"}, "bit must be 0-7"),
        ("DB1.DBX0", {"type": "bool"}, "needs .bit"),
        ("DB1.DBX0.1", {"type": "uint16"}, "use type bool"),
        ("DB1.DBX0.1", {"type": "bool", "bit": 2}, "'bit' says 2"),
        ("DB1.DBB0", {"type": "bool"}, "needs 'bit'"),
        ("DB2.STRING0.10", {"type": "string", "length": 12}, "STRING[10] but 'length' is 12"),
        ("DB2.STRING0", {"type": "uint16"}, "use type string"),
        ("DB0.DBB0", {}, "DB number must be 1-65535"),
        ("40001", {}, "use DB1.DBX0.3"),
        ("DB1.DBW2.1", {}, "only DBX/bit addresses take .bit"),
    ],
)
def test_bad_addresses(address: str, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_address(_tag(address, **kw))


def test_config_names_the_line_of_a_bad_s7_address(tmp_path: Path) -> None:
    text = f"""enterprise: {ENT}
site: {SITE}
devices:
  - name: press
    protocol: s7
    host: {HOST}
    tags:
      - {{path: a, address: DB1.DBW0}}
      - {{path: b, address: DB1.DBD4}}
"""
    with pytest.raises(ConfigError) as err:
        parse_gateway(text, "gw.yaml")
    msg = str(err.value)
    assert "gw.yaml:" in msg and "DB1.DBD4" in msg and "float32" in msg


def test_plan_merges_within_the_pdu_and_splits_beyond() -> None:
    items = [
        (_tag(a, type=t), parse_address(_tag(a, type=t)))
        for a, t in [
            ("DB1.DBD100", "float32"),
            ("DB1.DBW0", "int16"),
            ("DB1.DBX2.0", "bool"),
            ("DB1.DBD220", "float32"),  # span 0..224 > 222 (PDU 240): a second read
            ("DB2.DBW0", "int16"),
            ("MW4", "int16"),
        ]
    ]
    reads = plan(items, 240 - 18)
    spans = [(r.area, r.db, r.start, r.size, len(r.items)) for r in reads]
    assert spans == [
        ("DB", 1, 0, 104, 3),
        ("DB", 1, 220, 4, 1),
        ("DB", 2, 0, 2, 1),
        ("M", 0, 4, 2, 1),
    ]
    assert len(plan(items, 1000)) == 3  # one read per DB/area when the PDU allows


# -- against the S7 server -----------------------------------------------------------


async def test_every_tag_decodes_with_path_unit_and_quality(plc: Plc) -> None:
    async with running(_cfg(plc.port)) as run:
        await run.until(lambda: len(run.latest()) == len(TAGS))
        first_reads = run.collector.status()["reads"]
    got = run.latest()
    for name, value in EXPECTED.items():
        s = got[name]
        assert s.value == value, name
        assert type(s.value) is type(value), name
        assert s.quality is Quality.GOOD and s.reason == ""
        assert s.path == f"{ENT}/{SITE}/press/plc/{name}"
        assert s.source_ts_ns is None  # S7 reads carry no timestamp
    assert got["temp"].unit == "degC" and got["pressure"].unit == "bar"
    status = run.collector.status()
    # DB1 in one read, DB2 one, DB3 two (600 bytes apart > one 480-byte PDU), M one
    assert status["pdu_length"] == 480
    assert status["reads_per_cycle"] == 5
    assert first_reads % 5 == 0
    assert status["state"] == "stopped" and status["errors"] == 0
    assert status["samples"] == len(run.samples)


async def test_on_change_deadband_and_cyclic(plc: Plc) -> None:
    tags = [
        {"path": "p/temp", "address": "DB1.DBD4", "type": "float32", "deadband": 0.1},
        {"path": "p/strokes", "address": "DB1.DBW2", "type": "uint16"},
        {"path": "p/tick", "address": "DB1.DBW8", "type": "int16", "mode": "cyclic"},
    ]
    async with running(_cfg(plc.port, tags, interval=0.05)) as run:
        await run.until(lambda: len(run.of("temp")) == 1)
        struct.pack_into(">f", plc.db1, 4, 21.55)  # within the deadband
        await asyncio.sleep(0.3)
        assert len(run.of("temp")) == 1
        struct.pack_into(">f", plc.db1, 4, 21.7)  # beyond it (from the last reported 21.5)
        await run.until(lambda: len(run.of("temp")) == 2)
        struct.pack_into(">H", plc.db1, 2, 1235)
        await run.until(lambda: len(run.of("strokes")) == 2)
        await asyncio.sleep(0.3)
    assert [round(float(s.value or 0), 3) for s in run.of("temp")] == [21.5, 21.7]
    assert [s.value for s in run.of("strokes")] == [1234, 1235]
    assert len(run.of("tick")) >= 8  # every 50 ms though it never changes
    assert {s.value for s in run.of("tick")} == {-300}


async def test_refused_merged_read_is_split_and_remembered(plc: Plc) -> None:
    tags = [
        {"path": "p/strokes", "address": "DB1.DBW2", "type": "uint16"},
        {"path": "p/beyond", "address": "DB1.DBW100", "type": "uint16"},  # DB1 has 64 bytes
        {"path": "p/missing", "address": "DB9.DBW0", "type": "uint16"},  # no DB9
    ]
    for t in tags:  # a loaded machine's pause must not read as an outage (STALE) here
        t["stale_after"] = 10.0
    async with running(_cfg(plc.port, tags)) as run:
        await run.until(lambda: len(run.latest()) == 3)
        await asyncio.sleep(0.3)
        status = run.collector.status()
    got = run.latest()
    assert got["strokes"].quality is Quality.GOOD and got["strokes"].value == 1234
    assert got["beyond"].quality is Quality.BAD and "DB1.DBW100" in got["beyond"].reason
    assert got["missing"].quality is Quality.BAD and "DB9.DBW0" in got["missing"].reason
    assert len(run.of("beyond")) == 1  # BAD is reported once, not every poll
    assert status["reads_per_cycle"] == 3  # DB1 now read tag by tag, DB9 alone
    assert status["state"] == "connected" and status["connects"] == 1


async def test_plc_down_goes_stale_once_then_recovers(plc: Plc) -> None:
    tags = [
        {"path": "p/temp", "address": "DB1.DBD4", "type": "float32", "unit": "degC"},
        {"path": "p/tick", "address": "DB1.DBW8", "type": "int16", "mode": "cyclic"},
    ]
    async with running(_cfg(plc.port, tags)) as run:
        await run.until(lambda: len(run.of("temp")) == 1)
        t_down = time.monotonic()
        await asyncio.to_thread(plc.stop)  # takes a second: joins the server's threads
        await run.until(lambda: {s.quality for s in run.samples[-2:]} == {Quality.STALE})
        stale_after = time.monotonic() - t_down
        n = len(run.samples)
        status = run.collector.status()
        assert status["state"] in ("backoff", "connecting")
        assert status["last_error"]
        await asyncio.sleep(0.5)  # down: nothing more is reported
        assert len(run.samples) == n
        await asyncio.to_thread(plc.start)
        await run.until(lambda: run.of("temp")[-1].quality is Quality.GOOD, timeout=5)
        assert run.collector.status()["connects"] == 2
    temp = run.of("temp")
    assert [s.quality for s in temp] == [Quality.GOOD, Quality.STALE, Quality.GOOD]
    stale = temp[1]
    assert stale.value == 21.5 and stale.unit == "degC" and "unreachable" in stale.reason
    assert 0.2 < stale_after < 3.0  # stale_after defaults to 3 intervals (0.3 s)


async def test_unreachable_from_the_start_goes_stale_without_a_value() -> None:
    cfg = _cfg(_free_port(), [{"path": "p/temp", "address": "DB1.DBD4", "type": "float32"}])
    async with running(cfg) as run:
        await run.until(lambda: len(run.samples) == 1)
        await asyncio.sleep(0.3)
        status = run.collector.status()
    (s,) = run.samples
    assert s.quality is Quality.STALE and s.value is None
    assert "cannot connect" in s.reason
    assert status["connects"] == 0 and status["errors"] >= 2
