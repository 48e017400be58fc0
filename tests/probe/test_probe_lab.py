"""`conduit probe` against real protocol stacks on loopback: the lab plant's own device
servers (pymodbus conveyor PLC, python-snap7 press CPU, asyncua packaging machine) and,
where their PyPI stacks are installed, cpppo's EtherNet/IP server and a bacpypes3 BACnet
device. Every target is a 127.0.91.x address on a high port: no root, no other network.

The CLI runs as a user would run it; what it learnt must show in `conduit assets`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.lab.devices_modbus import ModbusDevice, RegisterImage, identity
from otconduit.lab.devices_opcua import OpcUaDevice
from otconduit.lab.devices_s7 import S7Device
from otconduit.lab.register_maps import CONVEYOR_MAP

CONDUIT = Path(sys.executable).with_name("conduit")
HERE = Path(__file__).resolve().parent
NET = "127.0.91.0/24"
PLC, PRESS, PACKER, ENIP, BACNET = (f"127.0.91.{n}" for n in (10, 20, 30, 40, 50))
MODBUS_PORT, S7_PORT, UA_PORT, ENIP_PORT, BACNET_PORT = 15502, 15102, 15840, 15818, 15808


def conduit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [str(CONDUIT), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


class Loop:
    """An asyncio loop in a thread, for the lab's asyncio servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def wait_port(ip: str, port: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex((ip, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{ip}:{port} did not start listening")


@pytest.fixture(scope="module")
def lab() -> Iterator[None]:
    loop = Loop()
    plc = ModbusDevice(
        "conveyor-plc",
        PLC,
        MODBUS_PORT,
        RegisterImage(CONVEYOR_MAP),
        identity("Conduit Lab", "CL-PLC-1", "Conveyor controller", "2.4.1", "conveyor-line"),
    )
    press = S7Device("press-plc", PRESS, S7_PORT)
    packer = OpcUaDevice("packaging-machine", PACKER, UA_PORT)
    loop.run(plc.start())
    press.start()
    loop.run(packer.start(1.0))
    for ip, port in ((PLC, MODBUS_PORT), (PRESS, S7_PORT), (PACKER, UA_PORT)):
        wait_port(ip, port)
    try:
        yield
    finally:
        loop.run(packer.stop())
        press.stop()
        loop.run(plc.stop())
        loop.close()


def _ports() -> list[str]:
    return [
        "--port", f"modbus={MODBUS_PORT}", "--port", f"s7comm={S7_PORT}",
        "--port", f"opcua={UA_PORT}",
    ]  # fmt: skip


def test_probe_lab_devices_become_identity_claims(lab: None, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    res = conduit(
        "probe", "--db", db, "--allow", NET, "--rate", "50/s", "--timeout", "3",
        "--protocol", "modbus,s7,opcua", *_ports(), PLC, PRESS, PACKER, "-f", "json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = {(r["ip"], r["protocol"]): r for r in json.loads(res.stdout)}
    # Each device answers its own protocol and has the others' ports closed.
    assert rows[(PLC, "modbus")]["status"] == "identified"
    assert rows[(PLC, "modbus")]["identity"]["vendor"] == "Conduit Lab"
    assert rows[(PLC, "modbus")]["identity"]["revision"] == "2.4.1"
    assert rows[(PLC, "modbus")]["requests"] == 1  # one request: regular objects at once
    assert rows[(PRESS, "s7comm")]["status"] == "identified"
    assert rows[(PRESS, "s7comm")]["identity"]["model"] == "6ES7 315-2EH14-0AB0"
    assert rows[(PRESS, "s7comm")]["requests"] == 4  # CR, setup, SZL 0x0011, SZL 0x001C
    assert rows[(PACKER, "opcua")]["status"] == "identified"
    assert rows[(PACKER, "opcua")]["identity"]["application_name"] == "Conduit Lab CasePacker"
    assert rows[(PACKER, "opcua")]["identity"]["security_modes"] == "None"
    assert rows[(PLC, "s7comm")]["status"] == "closed"
    assert rows[(PRESS, "modbus")]["status"] == "closed"

    assets = conduit("assets", "--db", db, "-f", "json")
    assert assets.returncode == 0, assets.stderr
    by_ip = {a["ip"]: a for a in json.loads(assets.stdout)}
    assert set(by_ip) == {PLC, PRESS, PACKER}
    plc = by_ip[PLC]
    assert plc["vendor"] == "Conduit Lab" and plc["firmware"] == "2.4.1"
    assert plc["model"] == "CL-PLC-1"
    assert "modbus/server" in plc["protocols"]
    assert {c["source"] for c in plc["identity_claims"]} == {"probe"}
    press = by_ip[PRESS]
    assert press["order_number"] == "6ES7 315-2EH14-0AB0"
    assert press["vendor"] == "Siemens"
    assert "opcua/server" in by_ip[PACKER]["protocols"]


def test_probe_again_replaces_the_previous_answer(lab: None, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    args = ["probe", "--db", db, "--allow", NET, "--protocol", "modbus", *_ports()[:2], PLC]
    assert conduit(*args).returncode == 0
    assert conduit(*args).returncode == 0
    assets = json.loads(conduit("assets", "--db", db, "-f", "json").stdout)
    claims = [c for c in assets[0]["identity_claims"] if c["attribute"] == "vendor"]
    assert claims == [
        {"attribute": "vendor", "value": "Conduit Lab", "source": "probe", "confidence": 0.9}
    ]


def test_probe_zone_marked_probe_in_policy(lab: None, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nplant: probe-test\nhosts: {conveyor-plc: " + PLC + "}\nzones:\n"
        f"  - {{name: cell, level: 1, members: [{PLC}/32], probe: true}}\n"
        f"  - {{name: press-cell, level: 1, members: [{PRESS}/32]}}\n"
    )
    db = tmp_path / "c.db"
    ok = conduit("probe", "--db", db, "--policy", policy, "--protocol", "modbus",
                 *_ports()[:2], "conveyor-plc", "-f", "json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)[0]["status"] == "identified"
    refused = conduit("probe", "--db", db, "--policy", policy, "--protocol", "s7",
                      *_ports()[2:4], PRESS)  # fmt: skip
    assert refused.returncode == 2
    assert "zone press-cell is not probe: true" in refused.stderr
    assert "nothing was sent" in refused.stderr


def test_dry_run_sends_nothing(tmp_path: Path) -> None:
    """A listening socket that records connections sees none during a dry run."""
    ip, port = "127.0.91.99", 15999
    seen: list[bytes] = []
    srv = socket.socket()
    srv.bind((ip, port))
    srv.listen()
    srv.settimeout(0.2)

    def accept() -> None:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            seen.append(conn.recv(100))
            conn.close()

    t = threading.Thread(target=accept)
    t.start()
    res = conduit("probe", "--dry-run", "--db", tmp_path / "c.db", "--allow", ip,
                  "--protocol", "modbus", "--port", f"modbus={port}", ip)  # fmt: skip
    t.join()
    srv.close()
    assert res.returncode == 0, res.stderr
    assert "000100000005ff2b0e0200" in res.stdout  # the exact request, in hex
    assert "nothing was sent" in res.stderr
    assert seen == []
    assert not (tmp_path / "c.db").exists()


def test_refuses_without_allow_list(tmp_path: Path) -> None:
    res = conduit("probe", "--db", tmp_path / "c.db", PLC)
    assert res.returncode == 2
    assert "allow-list" in res.stderr


# -- peers from PyPI stacks (when installed) --------------------------------------------
needs_cpppo = pytest.mark.skipif(
    importlib.util.find_spec("cpppo") is None, reason="cpppo not installed (pip install cpppo)"
)
needs_bacpypes3 = pytest.mark.skipif(
    importlib.util.find_spec("bacpypes3") is None,
    reason="bacpypes3 not installed (pip install bacpypes3)",
)


@needs_cpppo
def test_probe_enip_against_cpppo(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "cpppo.server.enip", "-a", f"{ENIP}:{ENIP_PORT}", "SCADA=INT[10]"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(ENIP, ENIP_PORT)
        res = conduit("probe", "--db", tmp_path / "c.db", "--allow", NET, "--protocol", "cip",
                      "--port", f"enip={ENIP_PORT}", ENIP, "-f", "json")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["status"] == "identified"
    assert row["identity"]["vendor"] == "Rockwell Automation/Allen-Bradley"
    assert row["identity"]["product_name"] == "1756-L61/B LOGIX5561"
    assert row["identity"]["revision"] == "20.11"


@needs_bacpypes3
def test_probe_bacnet_against_bacpypes3(tmp_path: Path) -> None:
    peer = subprocess.Popen(
        [sys.executable, str(HERE / "bacnet_peer.py"), f"{BACNET}/32:{BACNET_PORT}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert peer.stdout is not None
        assert peer.stdout.readline().strip() == "ready"
        res = conduit("probe", "--db", tmp_path / "c.db", "--allow", NET, "--protocol", "bacnet",
                      "--port", f"bacnet={BACNET_PORT}", BACNET, "-f", "json")  # fmt: skip
    finally:
        peer.terminate()
        peer.communicate(timeout=10)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["status"] == "identified"
    # bacpypes3 0.0.110 answers the wildcard instance with unknown-object (its check
    # compares an ObjectIdentifier to a tuple), so this also runs the Who-Is fallback.
    assert row["identity"]["bacnet_device_instance"] == "599"
    assert row["identity"]["vendor"] == "Conduit Test"
    assert row["identity"]["model"] == "CT-BAC-1"
    assert row["identity"]["firmware"] == "3.1.4"


def test_opcua_answer_in_two_chunks_reads_the_same(lab: None) -> None:
    """asyncua's real GetEndpoints answer, cut into an intermediate and a final chunk as a
    server with a small buffer would send it, gives the same identity."""
    from otconduit.probe.base import SERVER_TO_CLIENT
    from otconduit.probe.opcua import OpcUaProbe
    from otconduit.probe.runner import RateLimiter, run_dialogue

    live = OpcUaProbe(PACKER, UA_PORT)
    res = run_dialogue(live, 3.0, RateLimiter(50))
    assert res.status == "identified"
    answers = [data for direction, data in live.transcript if direction == SERVER_TO_CLIENT]
    msg = answers[-1]
    assert msg[:4] == b"MSGF"
    head, body = msg[:24], msg[24:]
    cut = len(body) // 2

    def chunk(kind: bytes, part: bytes) -> bytes:
        return kind + (24 + len(part)).to_bytes(4, "little") + head[8:] + part

    replay = OpcUaProbe(PACKER, UA_PORT)
    replay.answer(answers[0])
    replay.answer(answers[1])
    more = replay.answer(chunk(b"MSGC", body[:cut]))
    assert more is not None and more.data == b""  # keep reading, send nothing
    close = replay.answer(chunk(b"MSGF", body[cut:]))
    assert close is not None and close.data[:3] == b"CLO" and not close.expects_answer
    assert replay.outcome().claims == res.claims
