"""`make bench` (gateway part): tag samples per second from real Modbus devices through the
gateway into the SQLite historian and to MQTT (Sparkplug B and the Unified Namespace on a
real Mosquitto), peak memory, and poll-to-publish latency at 1,000 tags/s.

Devices are real pymodbus servers in a separate process (they must not share the
gateway's CPU time with it unfairly), each with 1,000 holding registers whose values change
every read; every tag is reported cyclically, so samples/s = tags x polls/s.

    python bench/gateway_bench.py [--devices 4] [--tags 1250] [--interval 0.04] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
SERVER = r"""
import asyncio, sys
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

async def main(hosts, port, n):
    servers = []
    counter = [0]
    async def action(fc, start, address, count, registers, set_values):
        counter[0] += 1
        for i in range(len(registers)):
            registers[i] = (counter[0] + i) & 0xFFFF
        return None
    for h in hosts:
        dev = SimDevice(id=1, simdata=([SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=[0] * n, datatype=DataType.REGISTERS)],
            [SimData(0, values=[0] * 16, datatype=DataType.REGISTERS)]), action=action)
        s = ModbusTcpServer([dev], address=(h, port))
        await s.serve_forever(background=True)
        servers.append(s)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[3].split(","), int(sys.argv[1]), int(sys.argv[2])))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(exe, os.X_OK):
        return None, 0
    port = _free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 5
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    return None, 0


def _config(
    hosts: list[str],
    port: int,
    tags: int,
    interval: float,
    tmp: Path,
    mqtt: dict[str, Any] | None,
    mode: str,
) -> Any:
    from otconduit.gateway.config import GatewayConfig

    devices = []
    for i, h in enumerate(hosts):
        devices.append(
            {
                "name": f"dev{i}",
                "protocol": "modbus",
                "host": h,
                "port": port,
                "interval": interval,
                "timeout": 1.0,
                "tags": [
                    {"path": f"area/line{i}/cell/t{j}", "address": f"hr:{j}", "mode": mode}
                    for j in range(tags)
                ],
            }
        )
    sinks: dict[str, Any] = {"historian": {"path": str(tmp / "hist.db")}}
    if mqtt is not None:
        sinks["mqtt"] = mqtt
    return GatewayConfig.model_validate(
        {"enterprise": "acme", "site": "bench", "devices": devices, "sinks": sinks,
         "buffer": {"disk_path": str(tmp / "buf.db")}}
    )  # fmt: skip


SUBSCRIBER = r"""
import json, sys, time
from datetime import datetime
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from otconduit.gateway.sinks.sparkplug_proto import count_metrics

state = {"metrics": 0, "uns": 0, "latency_ms": []}

def on_message(_c, _u, m):
    if m.topic.startswith("spBv1.0/"):
        if "/DDATA/" in m.topic:
            n = count_metrics(m.payload)  # top-level fields only: keeps up with 100k/s
            state["metrics"] += n if isinstance(n, int) else 0
        return
    now = time.time()
    state["uns"] += 1
    try:
        ts = datetime.fromisoformat(json.loads(m.payload)["timestamp"].replace("Z", "+00:00"))
        if not m.retain:
            state["latency_ms"].append((now - ts.timestamp()) * 1000)
    except (ValueError, KeyError):
        pass

c = paho.Client(CallbackAPIVersion.VERSION2)
c.on_message = on_message
c.connect("127.0.0.1", int(sys.argv[1]))
c.subscribe([(t, 0) for t in sys.argv[2:]])
c.loop_start()
time.sleep(0.3)
print("ready", flush=True)
sys.stdin.readline()
time.sleep(0.5)
c.loop_stop()
print(json.dumps(state), flush=True)
"""


class Counter:
    """An MQTT subscriber in its own process (an IT consumer is not the gateway's
    business, nor its CPU): counts Sparkplug DDATA metrics and UNS messages, and UNS
    latency (broker timestamp of receipt minus the sample's timestamp)."""

    def __init__(self, port: int, *topics: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-c", SUBSCRIBER, str(port), *(topics or ("spBv1.0/#", "acme/#"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.metrics = 0
        self.uns = 0
        self.latency_ms: list[float] = []

    def stop(self) -> None:
        out, _ = self.proc.communicate("stop\n", timeout=60)
        state = json.loads(out.strip().splitlines()[-1])
        self.metrics, self.uns, self.latency_ms = (
            state["metrics"],
            state["uns"],
            state["latency_ms"],
        )


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def throughput(
    devices: int, tags: int, interval: float, seconds: float, sparkplug_port: int
) -> dict[str, Any]:
    from otconduit.gateway.runtime import Gateway
    from otconduit.gateway.sinks.factory import sinks_for

    port = _free_port()
    hosts = [f"127.0.91.{10 + i}" for i in range(devices)]
    srv = subprocess.Popen(
        [PY, "-c", SERVER, str(port), str(tags), ",".join(hosts)], stdout=subprocess.PIPE, text=True
    )
    assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
    try:
        with tempfile.TemporaryDirectory(prefix="conduit-gw-bench-") as t:
            tmp = Path(t)
            mqtt = None
            if sparkplug_port:
                mqtt = {
                    "port": sparkplug_port,
                    "uns": {"enabled": False},
                    "sparkplug": {"enabled": True},
                }
            cfg = _config(hosts, port, tags, interval, tmp, mqtt, "cyclic")
            sinks = sinks_for(cfg)
            sub = Counter(sparkplug_port) if sparkplug_port else None
            gw = Gateway(cfg, sinks)
            t0, c0 = time.perf_counter(), time.process_time()
            asyncio.run(gw.run(duration=seconds))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if sub:
                sub.stop()
            from otconduit.gateway.historian import open_store
            from otconduit.gateway.historian import tags as tag_rows

            store = open_store(tmp / "hist.db")
            try:
                stored = sum(int(r.get("samples") or 0) for r in tag_rows(store))
            finally:
                store.close()
            st = gw.status()
            return {
                "devices": devices,
                "tags": devices * tags,
                "collected": gw.dispatched,
                "historian_per_s": stored / wall,
                "sparkplug_per_s": (sub.metrics / wall) if sub else None,
                "requests": sum(d["requests"] for d in st["devices"]),
                "seconds": wall,
                # CPU seconds of the gateway process alone (all its threads): what it would
                # sustain with the devices on their own hardware rather than on these cores.
                "per_cpu_s": gw.dispatched / max(cpu, 1e-9),
            }
    finally:
        srv.kill()
        srv.wait()


def latency(port_mqtt: int, seconds: float) -> dict[str, Any]:
    """1,000 tags/s (100 tags every 100 ms, values changing) -> UNS; p50/p99 ms."""
    from otconduit.gateway.runtime import Gateway
    from otconduit.gateway.sinks.factory import sinks_for

    port = _free_port()
    hosts = ["127.0.92.10"]
    srv = subprocess.Popen(
        [PY, "-c", SERVER, str(port), "100", ",".join(hosts)], stdout=subprocess.PIPE, text=True
    )
    assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
    try:
        with tempfile.TemporaryDirectory(prefix="conduit-gw-lat-") as t:
            tmp = Path(t)
            mqtt = {
                "port": port_mqtt,
                "uns": {"enabled": True, "prefix": "lat"},
                "sparkplug": {"enabled": False},
            }
            cfg = _config(hosts, port, 100, 0.1, tmp, mqtt, "on_change")
            sub = Counter(port_mqtt, "lat/#")
            gw = Gateway(cfg, sinks_for(cfg))
            asyncio.run(gw.run(duration=seconds))
            sub.stop()
            lat = sub.latency_ms[50:]  # skip the first (connect/birth) messages
            return {"messages": len(sub.latency_ms), "rate": len(sub.latency_ms) / seconds,
                    "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99)}  # fmt: skip
    finally:
        srv.kill()
        srv.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--tags", type=int, default=1250)
    ap.add_argument("--interval", type=float, default=0.04)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        broker, mport = _broker(Path(t))
        try:
            r = throughput(a.devices, a.tags, a.interval, a.seconds, mport)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"gateway: {r['tags']:,} Modbus tags on {r['devices']} pymodbus devices, "
                f"cyclic every {a.interval * 1000:.0f} ms "
                f"(offered {r['tags'] / a.interval:,.0f}/s): "
                f"{r['collected'] / r['seconds']:,.0f} samples/s collected, "
                f"{r['historian_per_s']:,.0f}/s into the SQLite historian"
                + (
                    f", {r['sparkplug_per_s']:,.0f}/s delivered as Sparkplug B metrics"
                    if r["sparkplug_per_s"] is not None
                    else ""
                )
                + f"; {r['requests'] / r['seconds']:,.0f} Modbus requests/s; "
                f"{r['per_cpu_s']:,.0f} samples per gateway CPU second; peak RSS {rss:.0f} MB"
            )
            if mport:
                lat = latency(mport, min(a.seconds, 8.0))
                print(
                    f"gateway latency, {lat['rate']:,.0f} tags/s to the MQTT UNS "
                    "(poll -> subscriber): "
                    f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
                )
            else:
                print("gateway MQTT figures skipped: mosquitto is not installed")
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait()


if __name__ == "__main__":
    main()
