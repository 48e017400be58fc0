"""`conduit probe` against the whole built-in plant (`conduit lab`): its cell zone marked
`probe: true` in a copy of examples/plant-policy.yaml, every device probed over every
protocol on the well-known ports. Each device must be identified over exactly the
protocols it serves, with the identity the plant gives it. Needs root (ports 102/502)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otconduit.lab.addresses import DEVICES as PLANT_DEVICES
from tests.conftest import REPO

CONDUIT = Path(sys.executable).with_name("conduit")
# The production cell's devices (the building's BACnet controller and the substation's
# IEC 104 RTU are probed by neither this test nor its protocols).
DEVICES = tuple(d for d in PLANT_DEVICES if d.zone == "cell-1")
# What the plant's Modbus devices state as MajorMinorRevision (src/otconduit/lab/plant.py).
FIRMWARE = {"conveyor-plc": "2.4.1", "remote-io": "1.0.7", "energy-meter-1": "1.05",
            "energy-meter-2": "1.05"}  # fmt: skip


def _listening(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ip, port)) == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the plant binds ports 102 and 502: needs root"),
]


@pytest.fixture(scope="module")
def plant() -> Iterator[None]:
    if any(_listening(d.ip, s.port) for d in DEVICES for s in d.services):
        pytest.skip("another plant is already running on the lab addresses")
    proc = subprocess.Popen(
        [str(CONDUIT), "lab", "--duration", "40", "--speed", "10", "--scenario", "normal"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 30
        while not all(_listening(d.ip, s.port) for d in DEVICES for s in d.services):
            if time.monotonic() > end or proc.poll() is not None:
                pytest.fail("the plant did not start its device servers")
            time.sleep(0.2)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_probe_the_cell(plant: None, tmp_path: Path) -> None:
    policy = tmp_path / "plant.yaml"
    text = (REPO / "examples" / "plant-policy.yaml").read_text()
    marker = "    owner: OT engineering, line 1\n\n  - name: supervisory"
    assert marker in text
    policy.write_text(
        text.replace(marker, marker.replace("line 1\n", "line 1\n    probe: true\n", 1))
    )
    db = tmp_path / "c.db"
    names = [d.name for d in DEVICES]
    res = subprocess.run(
        [str(CONDUIT), "probe", "--db", str(db), "--policy", str(policy), "--rate", "20/s",
         "--protocol", "modbus,s7,opcua", *names, "-f", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    identified = {(r["name"], r["protocol"]) for r in rows if r["status"] == "identified"}
    served = {(d.name, s.protocol) for d in DEVICES for s in d.services}
    assert identified == served
    assets = json.loads(
        subprocess.run(
            [str(CONDUIT), "assets", "--db", str(db), "--policy", str(policy), "-f", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    )  # fmt: skip
    by_ip = {a["ip"]: a for a in assets}
    for d in DEVICES:
        a = by_ip[d.ip]
        if d.services[0].protocol == "modbus":
            # 43/14 ProductName is the product code the plant's model starts with.
            assert a["model"] and d.model.startswith(a["model"])
            assert a["vendor"] and d.vendor.startswith(a["vendor"])
            assert a["firmware"] == FIRMWARE[d.name]
        elif d.services[0].protocol == "s7comm":
            assert a["order_number"] == "6ES7 315-2EH14-0AB0"
            assert a["identity"]["module_name"]["value"] == d.model
        else:
            assert a["identity"]["application_name"]["value"].startswith("Conduit Lab")
        assert a["risk"]["groups"]["exposure"] > 0  # the cell is reachable and writable
