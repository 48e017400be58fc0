"""End-to-end proof that the compiled ruleset enforces a conduit on a real kernel.

Three network namespaces form IT <-> firewall <-> OT. Real pymodbus servers listen in
OT: A (the conduit's target) and two forbidden twins, B on another port of the same
host and C on a second address. Before the ruleset is loaded the IT client reaches all
three (so routing works); after ``nft -f`` in the firewall only A answers, and the
conduit's counter shows the hits. Namespaces are deleted whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otconduit.policy.nftables import compile_nftables
from otconduit.policy.spec import load_spec

pytestmark = pytest.mark.slow

IT_HOST, FW_IT, FW_OT, PLC_A, PLC_C = (
    "10.99.1.2",
    "10.99.1.1",
    "10.99.2.1",
    "10.99.2.2",
    "10.99.2.3",
)
PORT_B = 1502  # same host as A, port not in the conduit

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from pymodbus.datastore import (
        ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext)
    from pymodbus.server import StartAsyncTcpServer

    async def main():
        tasks = []
        for spec in sys.argv[1:]:
            host, port, value = spec.split(":")
            block = ModbusSequentialDataBlock(1, [int(value)] * 8)
            ctx = ModbusServerContext(devices=ModbusDeviceContext(hr=block), single=True)
            tasks.append(StartAsyncTcpServer(ctx, address=(host, int(port))))
        await asyncio.gather(*tasks)

    asyncio.run(main())
    """
)
CLIENT = textwrap.dedent(
    """
    import sys
    from pymodbus.client import ModbusTcpClient
    c = ModbusTcpClient(sys.argv[1], port=int(sys.argv[2]), timeout=1, retries=0)
    if not c.connect():
        print("no connection"); sys.exit(3)
    r = c.read_holding_registers(0, count=2, device_id=1)
    c.close()
    if r.isError():
        print("error", r); sys.exit(4)
    print(r.registers[0])
    """
)
WAIT_LISTEN = textwrap.dedent(
    """
    import socket, sys, time
    deadline = time.monotonic() + 10
    for spec in sys.argv[1:]:
        host, port = spec.split(":")
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"{spec} never listened")
                time.sleep(0.1)
    """
)

POLICY = f"""\
version: 1
plant: netns-test
timezone: UTC
default: deny
hosts:
  it-host: {IT_HOST}
  plc-a: {PLC_A}
  plc-c: {PLC_C}
zones:
  - name: office
    level: 4
    description: IT side of the test firewall
    members: [10.99.1.0/24]
  - name: cell
    level: 1
    description: OT side of the test firewall
    members: [10.99.2.0/24]
conduits:
  - name: office-reads-plc-a
    from: office
    to: cell
    from_hosts: [it-host]
    to_hosts: [plc-a]
    protocols:
      modbus: {{ports: [502], operations: [read]}}
"""


@dataclass(frozen=True)
class Lab:
    it: str
    fw: str
    ot: str


def _run(*cmd: str, ns: str | None = None, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)


def _ok(*cmd: str, ns: str | None = None) -> str:
    res = _run(*cmd, ns=ns)
    assert res.returncode == 0, f"{cmd}: {res.stderr.strip()}"
    return res.stdout


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install -y nftables iproute2)"
    try:
        import pymodbus  # noqa: F401
    except ImportError:
        return "pymodbus not installed"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    names = Lab(f"cdt-it-{tag}", f"cdt-fw-{tag}", f"cdt-ot-{tag}")
    created: list[str] = []
    try:
        for ns in (names.it, names.fw, names.ot):
            res = _run("ip", "netns", "add", ns)
            if res.returncode != 0:
                pytest.skip(f"cannot create network namespaces: {res.stderr.strip()}")
            created.append(ns)
        # veth pairs are created inside the namespaces, so they die with them.
        _ok(
            "ip",
            "link",
            "add",
            "fwit",
            "type",
            "veth",
            "peer",
            "itfw",
            "netns",
            names.it,
            ns=names.fw,
        )
        _ok(
            "ip",
            "link",
            "add",
            "fwot",
            "type",
            "veth",
            "peer",
            "otfw",
            "netns",
            names.ot,
            ns=names.fw,
        )
        for ns, dev, addrs in (
            (names.it, "itfw", [IT_HOST]),
            (names.fw, "fwit", [FW_IT]),
            (names.fw, "fwot", [FW_OT]),
            (names.ot, "otfw", [PLC_A, PLC_C]),
        ):
            for a in addrs:
                _ok("ip", "addr", "add", f"{a}/24", "dev", dev, ns=ns)
            _ok("ip", "link", "set", dev, "up", ns=ns)
            _ok("ip", "link", "set", "lo", "up", ns=ns)
        _ok("ip", "route", "add", "default", "via", FW_IT, ns=names.it)
        _ok("ip", "route", "add", "default", "via", FW_OT, ns=names.ot)
        _ok("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=names.fw)
        yield names
    finally:
        for ns in created:
            pids = _run("ip", "netns", "pids", ns).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _read(lab: Lab, host: str, port: int, ns: str | None = None) -> tuple[bool, str]:
    res = _run(sys.executable, "-c", CLIENT, host, str(port), ns=ns or lab.it, timeout=15)
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def _counters(lab: Lab) -> dict[str, int]:
    """Packets per rule comment in the firewall's forward chain."""
    data = json.loads(_ok("nft", "-j", "list", "chain", "inet", "conduit", "forward", ns=lab.fw))
    out: dict[str, int] = {}
    for item in data["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        packets = sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        out[rule.get("comment", "")] = out.get(rule.get("comment", ""), 0) + packets
    return out


def test_compiled_conduit_is_enforced(lab: Lab, tmp_path: Path) -> None:
    started = time.monotonic()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    ruleset = tmp_path / "conduit.nft"
    ruleset.write_text(compile_nftables(load_spec(policy)))

    endpoints = [f"{PLC_A}:502:11", f"{PLC_A}:{PORT_B}:22", f"{PLC_C}:502:33"]
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.ot, sys.executable, "-c", SERVER, *endpoints],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        listening = _run(
            sys.executable,
            "-c",
            WAIT_LISTEN,
            *(e.rsplit(":", 1)[0] for e in endpoints),
            ns=lab.ot,
            timeout=15,
        )
        assert listening.returncode == 0, listening.stderr

        # Without the ruleset the firewall forwards everything: all three answer.
        for host, port, value in ((PLC_A, 502, "11"), (PLC_A, PORT_B, "22"), (PLC_C, 502, "33")):
            ok, text = _read(lab, host, port)
            assert ok and text.endswith(value), f"{host}:{port} before nft: {text}"

        _ok("nft", "-f", str(ruleset), ns=lab.fw)
        before = _counters(lab)

        ok, text = _read(lab, PLC_A, 502)
        assert ok and text.endswith("11"), f"allowed conduit failed: {text}"
        ok, text = _read(lab, PLC_A, PORT_B)
        assert not ok, f"forbidden port answered: {text}"
        ok, text = _read(lab, PLC_C, 502)
        assert not ok, f"forbidden host answered: {text}"
        # B and C are alive: the firewall, not the servers, refused the IT client.
        assert _read(lab, PLC_A, PORT_B, ns=lab.ot)[0]
        assert _read(lab, PLC_C, 502, ns=lab.ot)[0]

        after = _counters(lab)
        conduit = "conduit office-reads-plc-a"
        assert after[conduit] > before.get(conduit, 0) >= 0
        assert after["default deny"] > before.get("default deny", 0)
        # Loading the same file again replaces the table instead of failing or doubling.
        _ok("nft", "-f", str(ruleset), ns=lab.fw)
        assert _counters(lab)[conduit] == 0
    finally:
        server.kill()
        server.wait(timeout=5)
    assert time.monotonic() - started < 30
