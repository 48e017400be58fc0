"""Run the simulated plant: devices, roles, process loop, scenarios, capture and labels.

``run_plant`` is the one entry point; ``conduit lab`` and ``python -m otconduit.lab`` both
call it. Start-up order matters: capture first (so handshakes are recorded), then the
servers, then the clock starts and the clients begin. A stop (end of ``duration``,
SIGINT/SIGTERM, or ``stop_event``) runs the same order backwards: roles end and close
their connections, servers shut down, the capture is flushed, labels are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otconduit.lab import addresses as A
from otconduit.lab.bacnet_client import BmsWorkstation
from otconduit.lab.clients import Closer, Historian, HmiOperator, it_servers, role_tasks
from otconduit.lab.devices_bacnet import BacnetController
from otconduit.lab.devices_iec104 import Outstation
from otconduit.lab.devices_modbus import ModbusDevice, RegisterImage, identity
from otconduit.lab.devices_opcua import OpcUaDevice
from otconduit.lab.devices_s7 import S7Device
from otconduit.lab.http_it import HttpServer
from otconduit.lab.iec104_client import ScadaMaster
from otconduit.lab.labels import LabelSink
from otconduit.lab.netbind import BoundEventLoop
from otconduit.lab.process import DEFAULT_START_OF_DAY, PlantClock, PlantProcess
from otconduit.lab.register_maps import CONVEYOR_MAP, REMOTE_IO_MAP, SDM630_MAP
from otconduit.lab.runtime import PlantRuntime
from otconduit.lab.scenarios import SCENARIOS, parse_scenarios, schedule
from otconduit.lab.sniffer import LoopbackCapture, read_pcap
from otconduit.lab.truth import field_truth

log = logging.getLogger("otconduit.lab")
MAX_DURATION = 86_400.0
OPCUA_PUSH_PERIOD = 0.2  # wall seconds between status pushes into the OPC UA server
_QUIET_LOGGERS = ("pymodbus", "asyncua", "snap7", "s7", "bacpypes3")


@dataclass
class PlantOptions:
    """What ``conduit lab`` accepts; see the CLI help for each field."""

    duration: float = 60.0
    speed: float = 10.0
    seed: int = 1
    pcap: Path | None = None
    labels: Path | None = None
    scenarios: list[str] = field(default_factory=lambda: ["normal"])
    start_of_day: float = DEFAULT_START_OF_DAY
    capture_backend: str = "auto"
    install_signal_handlers: bool = True
    stop_event: threading.Event | None = None
    on_ready: Callable[[dict[str, Any]], None] | None = None
    # Wall seconds the devices serve the frozen plant before the process starts and after
    # it stops, so that a collector reads both ends of the run (the truth's window).
    settle: float = 0.0


@dataclass
class PlantResult:
    started: float
    stopped: float
    interrupted: bool
    scenarios: list[str]
    schedule: dict[str, float]
    labels: list[dict[str, Any]]
    requests: dict[str, int]
    errors: dict[str, int]
    process: dict[str, float]
    capture: dict[str, Any] | None = None
    traffic: dict[str, dict[str, float]] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)


def _modbus_devices(process: PlantProcess) -> dict[str, ModbusDevice]:
    conveyor = RegisterImage(CONVEYOR_MAP)
    conveyor.on_write = process.write_conveyor
    devs = {
        A.CONVEYOR_PLC.name: ModbusDevice(
            A.CONVEYOR_PLC.name,
            A.CONVEYOR_PLC.ip,
            502,
            conveyor,
            identity("Conduit Lab", "CL-PLC-1", "Conveyor controller", "2.4.1", "conveyor-line"),
        ),
        A.REMOTE_IO.name: ModbusDevice(
            A.REMOTE_IO.name,
            A.REMOTE_IO.ip,
            502,
            RegisterImage(REMOTE_IO_MAP),
            identity("Conduit Lab", "CL-RIO-16", "Remote I/O 8DI/8DO", "1.0.7", "cell-1-io"),
        ),
    }
    for node in (A.METER_1, A.METER_2):
        devs[node.name] = ModbusDevice(
            node.name,
            node.ip,
            502,
            RegisterImage(SDM630_MAP),
            identity("Eastron", "SDM630-Modbus", "SDM630 V2", "1.05", node.name),
        )
    return devs


def _sync_devices(rt: PlantRuntime) -> None:
    """Process -> device memories (and S7 setpoints a client changed -> process)."""
    p = rt.process
    press = p.press
    press.cpu_run = rt.s7.cpu_running
    for name, value in rt.s7.changed_setpoints().items():
        if name == "strokes_setpoint":
            press.spm_sp = int(value)
        elif name == "tonnage":
            press.tonnage = value
        elif name == "recipe_no":
            press.recipe = int(value)
        elif name == "dwell":
            press.dwell = value
        elif name == "stroke_length":
            press.stroke_mm = value
    _load_modbus(rt)
    rt.s7.load(p.press_values())
    if rt.bacnet is not None:
        rt.bacnet.tick(p.t)
    if rt.iec104 is not None:
        rt.iec104.tick(p.t)


def _load_modbus(rt: PlantRuntime) -> None:
    p = rt.process
    rt.modbus[A.CONVEYOR_PLC.name].image.load(p.conveyor_values())
    rt.modbus[A.REMOTE_IO.name].image.load(p.remote_io_values(), frozenset({"discrete", "input"}))
    rt.modbus[A.METER_1.name].image.load(p.meter_values(0))
    rt.modbus[A.METER_2.name].image.load(p.meter_values(1))


async def _process_loop(rt: PlantRuntime) -> None:
    """Advance the model with the plant clock and keep every device's memory current."""
    last_push = 0.0
    loop = asyncio.get_running_loop()
    while not rt.stopping:
        rt.process.advance_to(rt.clock.plant_now())
        _sync_devices(rt)
        if loop.time() - last_push >= OPCUA_PUSH_PERIOD:
            last_push = loop.time()
            cmds, speed = await rt.opcua.take_commands()
            rt.process.packer.pending.extend(cmds)
            if speed is not None:
                rt.process.packer.speed_sp = speed
            await rt.opcua.push(rt.process.packaging_values())
        if await rt.sleep(rt.clock.wall_period(0.5)):
            return


def traffic_by_node(pcap: Path, seconds: float) -> dict[str, dict[str, float]]:
    """Packets sent per plant node in a capture (Ethernet/IPv4 frames on lo).

    Addresses that are no node (hosts the recon scan probed, answering with RST) count
    as ``other``.
    """
    counts: Counter[str] = Counter()
    for _ts, frame in read_pcap(pcap):
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        src = socket.inet_ntoa(frame[26:30])
        node = A.node_by_ip(src)
        counts[node.name if node else "other"] += 1
    secs = max(seconds, 1e-6)
    return {r: {"packets": n, "pps": round(n / secs, 1)} for r, n in sorted(counts.items())}


async def _amain(opts: PlantOptions, names: list[str]) -> PlantResult:
    loop = asyncio.get_running_loop()
    horizon = opts.duration * opts.speed
    process = PlantProcess(opts.seed, opts.start_of_day)
    modbus = _modbus_devices(process)
    s7 = S7Device(A.PRESS_PLC.name, A.PRESS_PLC.ip)
    opcua = OpcUaDevice(A.PACKAGING.name, A.PACKAGING.ip)
    sink = LabelSink()
    # the clock is restarted once the servers are up; plant t = 0 is when clients begin
    rt = PlantRuntime(PlantClock(opts.speed), process, modbus, s7, opcua, sink, opts.seed, horizon)
    bacnet, outstation = BacnetController(), Outstation(seed=opts.seed)
    rt.bacnet, rt.iec104 = bacnet, outstation
    capture: LoopbackCapture | None = None
    servers: list[HttpServer] = []
    tasks: list[asyncio.Task[Any]] = []
    closer = Closer()
    interrupted = False
    handlers: list[int] = []
    devices_seen: dict[str, Any] = {}

    def request_stop(signum: int | None = None) -> None:
        nonlocal interrupted
        interrupted = interrupted or signum is not None
        rt.stop.set()

    if opts.install_signal_handlers and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_stop, int(sig))
            handlers.append(sig)
    started = time.time()
    try:
        if opts.pcap is not None:
            capture = LoopbackCapture(
                opts.pcap,
                A.capture_addresses(),
                backend=opts.capture_backend,
                own_process_group=True,
            )
            await asyncio.to_thread(capture.start)
        _load_modbus(rt)  # a device answers with plant values from its first request
        for dev in modbus.values():
            await dev.start()
        await asyncio.to_thread(s7.start)
        await opcua.start(process.packer.speed_sp)
        bacnet.start()
        outstation.start()
        s7.load(process.press_values(), include_rw=True)
        historian = Historian(rt, closer)
        servers = it_servers(historian)
        for srv in servers:
            await srv.start()
        if opts.settle > 0:
            _sync_devices(rt)
            await asyncio.sleep(opts.settle)
        rt.clock = PlantClock(opts.speed)
        _sync_devices(rt)
        starts = schedule(names, opts.seed, horizon)
        for n in names:
            setup = SCENARIOS[n].setup
            if setup is not None:
                setup(rt)
        hmi = HmiOperator(rt, closer)
        factories: list[Callable[[], Coroutine[Any, Any, None]]] = [
            lambda: _process_loop(rt),
            *role_tasks(rt, hmi, historian, closer),
            BmsWorkstation(rt).run,
            ScadaMaster(rt).run,
        ]
        tasks = [asyncio.create_task(f()) for f in factories]
        for n in names:
            run = SCENARIOS[n].run
            if run is not None:
                tasks.append(asyncio.create_task(run(rt, starts[n])))
        if opts.stop_event is not None:
            tasks.append(asyncio.create_task(_watch_external(opts.stop_event, rt)))
        if opts.on_ready is not None:
            opts.on_ready({"schedule": starts, "horizon": horizon, "wall_start": started})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), opts.duration)
        rt.stop.set()
        await _finish(tasks)
        tasks = []
        if opts.settle > 0 and not interrupted:
            _sync_devices(rt)  # the process has stopped: this image stays as it is
            await asyncio.sleep(opts.settle)
    finally:
        rt.stop.set()
        await _finish(tasks)
        await closer.close()
        for srv in servers:
            await srv.stop()
        for dev in modbus.values():
            await dev.stop()
        await opcua.stop()
        devices_seen = field_truth(bacnet, outstation)  # before the devices drop their logs
        bacnet.stop()
        await asyncio.to_thread(outstation.stop)
        await asyncio.to_thread(s7.stop)
        if capture is not None:
            await asyncio.to_thread(capture.stop)
        for signum in handlers:
            loop.remove_signal_handler(signum)
    stopped = time.time()
    cap_info = None
    traffic: dict[str, dict[str, float]] = {}
    if capture is not None and opts.pcap is not None:
        cap_info = {
            "path": str(opts.pcap),
            "backend": capture.backend,
            "packets": capture.packets,
            "dropped": capture.dropped,
        }
        traffic = traffic_by_node(opts.pcap, stopped - started)
    if opts.labels is not None:
        sink.write(opts.labels)
    return PlantResult(
        started=started,
        stopped=stopped,
        interrupted=interrupted,
        scenarios=names,
        schedule=schedule(names, opts.seed, horizon),
        labels=sink.as_json(),
        requests=dict(rt.requests),
        errors=dict(rt.errors),
        process=process.snapshot(),
        capture=cap_info,
        traffic=traffic,
        truth={
            "start": rt.clock.wall_start,  # wall time of plant t = 0 (epoch seconds)
            "end": rt.clock.to_wall(process.t),  # wall time of the last step
            "speed": opts.speed,
            **process.truth.as_json(),
            "field": devices_seen,
        },
    )


async def _watch_external(event: threading.Event, rt: PlantRuntime) -> None:
    while not rt.stopping:
        if event.is_set():
            rt.stop.set()
            return
        await rt.sleep(0.1)


async def _finish(tasks: list[asyncio.Task[Any]], grace: float = 5.0) -> None:
    """Let tasks notice the stop and end; cancel any that do not within ``grace``."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=grace)
    for t in pending:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
            log.warning("plant task ended with %r", r)


def validate(opts: PlantOptions) -> list[str]:
    """Check options before anything starts; returns the expanded scenario list."""
    if not 0 < opts.duration <= MAX_DURATION:
        raise ValueError(f"duration must be in (0, {MAX_DURATION:.0f}] seconds")
    if not 0 < opts.speed <= 1000:
        raise ValueError("speed must be in (0, 1000]")
    return parse_scenarios(opts.scenarios)


def run_plant(opts: PlantOptions) -> PlantResult:
    """Run the plant until ``opts.duration`` wall seconds pass or it is told to stop."""
    names = validate(opts)
    levels = {n: logging.getLogger(n).level for n in _QUIET_LOGGERS}
    for n in _QUIET_LOGGERS:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    try:
        with asyncio.Runner(loop_factory=BoundEventLoop) as runner:
            return runner.run(_amain(opts, names))
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def check_ports_free() -> list[tuple[str, int]]:
    """Endpoints of the plant that are still bound (should be empty after a stop)."""
    busy = []
    for ip, port in A.listening_endpoints():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, port))
                s.listen(1)
            except OSError:
                busy.append((ip, port))
    for ip, port in A.udp_endpoints():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((ip, port))
            except OSError:
                busy.append((ip, port))
    return busy
