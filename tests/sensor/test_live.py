"""A sensor following a ring stores what `conduit analyze` stores for the ring's files
concatenated (by mergecap, the peer): the same operations, conversations, assets and
problems, however the stream was cut into files and checkpoints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.detect.alerts import list_alerts
from otconduit.detect.run import detect_capture
from otconduit.sensor.run import SenseOptions, Sensor
from otconduit.store import Store, views
from tests.conftest import CORPUS, needs_shared
from tests.sensor.test_follow import _split

needs_wireshark_tools = pytest.mark.skipif(
    shutil.which("editcap") is None or shutil.which("mergecap") is None,
    reason="editcap/mergecap (Wireshark) are not installed",
)

CAPTURES = [
    ("iti/ModbusTCP/ModbusTCP.pcap", 700),
    ("iti/EthernetIP/EthernetIP-CIP.pcap", 500),
    ("icsnpp/dnp3/dnp3_example/dnp3_example.pcap", 40),
    ("icsnpp/s7comm/snap7/snap7.pcap", 9),
    ("iti/s7/s7-1200-hmi.pcap", 7),
    ("iti/s7/s7comm_reading_plc_status.pcap", 25),
]


def snapshot(db: Path) -> dict[str, Any]:
    """What a user sees, in a form two stores can be compared in."""
    with Store(db, readonly=True) as store:
        ops = sorted(
            (o["frame"], o["protocol"], o["function"], o["status"], o["src_ip"], o["dst_ip"],
             str(o.get("address")), str(o.get("unit")))
            for o in views.operations(store)
        )  # fmt: skip
        convs = sorted(
            (c["transport"], c["client_ip"], c["server_ip"], c["server_port"], c["protocol"],
             c["connections"], c["packets_c2s"], c["packets_s2c"], c["bytes_c2s"],
             c["bytes_s2c"], c["first_seen"], c["last_seen"], str(c["functions"]))
            for c in views.conversations(store)
        )  # fmt: skip
        assets = sorted(
            (a["ip"], a["mac"], a["packets_sent"], a["packets_received"], a["first_seen"],
             a["last_seen"], str(a["roles"]), str(a["protocols"]), a.get("vendor"))
            for a in views.assets(store)
        )  # fmt: skip
        problems = sorted(
            (p["layer"], p["reason"], p["count"]) for p in views.problem_summary(store)
        )
        alerts = sorted((a["rule"], a["src_ip"], a["dst_ip"]) for a in list_alerts(store))
    return {"ops": ops, "convs": convs, "assets": assets, "problems": problems, "alerts": alerts}


def run_sensor(db: Path, ring: Path, **kw: Any) -> Any:
    with Store(db) as store:
        opts = SenseOptions(db=db, follow=ring, duration=0, **kw)
        return Sensor(store, opts).run()


def analyze_concatenated(db: Path, files: list[Path], tmp: Path) -> None:
    whole = tmp / "whole.pcap"
    subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", str(whole), *map(str, files)],
                   check=True)  # fmt: skip
    with Store(db) as store:
        res = analyze_file(store, whole)
        assert res.capture_id is not None
        detect_capture(store, res.capture_id)


@needs_shared
@needs_wireshark_tools
@pytest.mark.parametrize(("rel", "per_file"), CAPTURES, ids=[c[0].split("/")[-1] for c in CAPTURES])
def test_sense_equals_analyze_of_concatenated_ring(tmp_path: Path, rel: str, per_file: int) -> None:
    files = _split(CORPUS / rel, tmp_path / "ring", per_file)
    assert len(files) > 2
    h = run_sensor(tmp_path / "sensed.db", tmp_path / "ring")
    analyze_concatenated(tmp_path / "whole.db", files, tmp_path)
    sensed, whole = snapshot(tmp_path / "sensed.db"), snapshot(tmp_path / "whole.db")
    assert sensed["ops"], rel
    for part in ("ops", "convs", "assets", "problems", "alerts"):
        assert sensed[part] == whole[part], (rel, part)
    assert h.files_done == len(files) and h.state == "stopped"


@needs_shared
@needs_wireshark_tools
def test_checkpoints_mid_stream_add_up(tmp_path: Path) -> None:
    """Checkpoints while connections are open: a conversation shows as it stands (from
    the sensor's live capture), and once its connection ends it is counted once."""
    files = _split(CORPUS / "iti/ModbusTCP/ModbusTCP.pcap", tmp_path / "ring", 700)
    db = tmp_path / "sensed.db"
    seen: list[int] = []

    def watch(sensor: Sensor) -> None:
        with Store(db, readonly=True) as s:
            seen.append(sum(c["packets_c2s"] + c["packets_s2c"] for c in views.conversations(s)))

    with Store(db) as store:
        sensor = Sensor(store, SenseOptions(db=db, follow=tmp_path / "ring", duration=3,
                                            tick_s=0.05))  # fmt: skip
        sensor.on_tick = watch
        sensor.run()
    analyze_concatenated(tmp_path / "whole.db", files, tmp_path)
    whole = snapshot(tmp_path / "whole.db")
    total = sum(c[6] + c[7] for c in whole["convs"])
    assert seen[-1] == total
    # Totals only grow, tick by tick, and every tick after the ring was read shows all.
    assert seen == sorted(seen) and seen.count(total) >= 2
    assert snapshot(db)["convs"] == whole["convs"]


def _status(db: Path) -> dict[str, Any]:
    from otconduit.store.sensing import sensor_rows
    from otconduit.store.sqlite import StoreError

    if not db.exists():
        return {}
    try:
        s = Store(db, readonly=True)
    except StoreError:  # created, not migrated yet
        return {}
    with s:
        rows = sensor_rows(s)
    return rows[0] if rows else {}


@needs_shared
@needs_wireshark_tools
@pytest.mark.parametrize("when", [0.0, 0.15, 0.4])
def test_kill_9_then_restart_loses_and_doubles_nothing(tmp_path: Path, when: float) -> None:
    """kill -9 at some moment of a run, restart: the store ends as an uninterrupted
    run's (operations, packets, conversations, assets, problems)."""
    import os
    import signal
    import sys
    import time

    src = tmp_path / "all"
    files = _split(CORPUS / "iti/ModbusTCP/ModbusTCP.pcap", src, 500)
    ring = tmp_path / "ring"
    ring.mkdir()
    db = tmp_path / "sensed.db"
    conduit = [str(Path(sys.executable).parent / "conduit")]
    for f in files[:12]:
        shutil.copy2(f, ring / f.name)
    proc = subprocess.Popen([*conduit, "sense", "--follow", str(ring), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not _status(db).get("health", {}).get("packets") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _status(db)["health"]["packets"] > 0
    for f in files[12:20]:
        shutil.copy2(f, ring / f.name)
    time.sleep(when)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for f in files[20:]:
        shutil.copy2(f, ring / f.name)
    again = subprocess.run([*conduit, "sense", "--follow", str(ring), "--db", str(db),
                            "--duration", "0"], capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr
    analyze_concatenated(tmp_path / "whole.db", files, tmp_path)
    sensed, whole = snapshot(db), snapshot(tmp_path / "whole.db")
    assert sensed["ops"] == whole["ops"]
    assert sensed["problems"] == whole["problems"]
    assert sensed["assets"] == whole["assets"]
    # Connections open at the crash were counted (as they stood) at the last
    # checkpoint; the restart rebuilds them by replaying, and counts only what is new.
    assert sensed["convs"] == whole["convs"]
    with Store(db, readonly=True) as s:
        (packets,) = s.conn.execute(
            "SELECT packets FROM captures WHERE sha256 = 'sensor:ring:' || ?", (str(ring),)
        ).fetchone()
    assert packets == 15387


@needs_shared
@needs_wireshark_tools
def test_console_overview_shows_sensor_health(tmp_path: Path) -> None:
    """The console's overview lists each sensor with its state, packets, drops and lag;
    a sensor that drops is marked, not hidden."""
    import json as _json

    from tests.console.conftest import make_env

    _split(CORPUS / "iti/ModbusTCP/ModbusTCP.pcap", tmp_path / "ring", 4000)
    db = tmp_path / "sensed.db"
    run_sensor(db, tmp_path / "ring")
    env = make_env(db, tmp_path, policy=None)
    try:
        c = env.client("viewer")
        o = c.get("/api/overview").json()
        assert o["sensors"][0]["name"] == f"ring:{tmp_path / 'ring'}"
        assert o["sensors"][0]["packets"] == 15387 and o["sensors"][0]["drops"] == 0
        page = c.get("/").text
        assert "Sensors" in page and "15387" in page and "sev-high" not in page.split("Sensors")[1]
        with Store(db) as s:  # the capture engine reported drops
            (h,) = s.conn.execute("SELECT health FROM sensors").fetchone()
            health = _json.loads(h)
            health["drops_kernel"] = 42
            s.conn.execute("UPDATE sensors SET health = ?", (_json.dumps(health),))
        page = c.get("/").text.split("Sensors")[1]
        assert '<span class="sev sev-high">42</span>' in page
        c.close()
    finally:
        env.ctx.close()
