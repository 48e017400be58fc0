"""`conduit sense --interface` with the real capture engine: a veth pair in a network
namespace fed by tcpreplay of corpus captures, and loopback with the lab's real
protocol stacks. Results are held to `conduit analyze` of the same capture; alerts to
the 2 s latency target; status to the documented keys."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from otconduit.cli.sense_cmd import STATUS_KEYS
from otconduit.store import Store, views
from tests.conftest import CORPUS, needs_shared

CONDUIT = str(Path(sys.executable).parent / "conduit")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw capture)"
    for tool in ("ip", "dumpcap", "tcpreplay"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 wireshark-common tcpreplay)"
    return None


def _ok(*cmd: str, ns: str | None = None) -> str:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    res = subprocess.run(full, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, f"{cmd}: {res.stderr.strip()}"
    return res.stdout


@pytest.fixture
def veth_ns() -> Iterator[str]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    ns = f"cds-{uuid.uuid4().hex[:6]}"
    res = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {res.stderr.strip()}")
    try:
        for key in ("all", "default"):  # no IPv6 chatter on the wire we compare
            _ok("sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1", ns=ns)
        _ok("ip", "link", "add", "mirror", "type", "veth", "peer", "name", "feed", ns=ns)
        for dev in ("mirror", "feed"):
            _ok("ip", "link", "set", dev, "up", ns=ns)
        yield ns
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split():  # fmt: skip
            subprocess.run(["kill", "-9", pid], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _status(db: Path) -> dict[str, Any]:
    res = subprocess.run([CONDUIT, "sensor", "status", "--db", str(db), "-f", "json"],
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(res.stdout) if res.returncode == 0 else {}


def _wait(pred: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _latency_s(alert: dict[str, Any]) -> float:
    first = datetime.fromisoformat(alert["first_seen"].replace("Z", "+00:00"))
    detected = datetime.fromisoformat(alert["detected_at"].replace("Z", "+00:00"))
    return (detected - first).total_seconds()


def _functions(db: Path) -> dict[tuple[str, str, str], int]:
    with Store(db, readonly=True) as s:
        return {
            (r["protocol"], r["function"], r["operation"]): r["count"]
            for r in views.function_summary(s)
        }


@needs_shared
@pytest.mark.parametrize("rel", ["iti/ModbusTCP/ModbusTCP.pcap", "iti/s7/snap7_s300_stop.pcapng"])
def test_sense_veth_replay_equals_analyze(veth_ns: str, tmp_path: Path, rel: str) -> None:
    """Replay a corpus capture into a veth pair; the sensor on the other end stores the
    operations `conduit analyze` finds in the file itself, and stops cleanly on SIGTERM."""
    cap = CORPUS / rel
    db = tmp_path / "sensed.db"
    sense = subprocess.Popen(
        ["ip", "netns", "exec", veth_ns, CONDUIT, "sense", "-i", "mirror", "--db", str(db),
         "--ring", str(tmp_path / "ring")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: _status(db).get("state") == "running", 60), "sensor did not start"
        time.sleep(0.5)
        _ok("tcpreplay", "-q", "--pps", "4000", "-i", "feed", str(cap), ns=veth_ns)
        assert _wait(lambda: _status(db).get("lag_s") == 0.0 and _status(db)["packets"] > 0, 30)
        time.sleep(1.5)
        sense.send_signal(signal.SIGTERM)
        _, errs = sense.communicate(timeout=60)
    finally:
        if sense.poll() is None:
            sense.kill()
            sense.wait()
        if sense.stderr is not None:
            sense.stderr.close()  # a failed assertion above must not leak the pipe
    assert sense.returncode == 0, errs
    st = _status(db)
    assert st["state"] == "stopped" and set(STATUS_KEYS) <= set(st)
    assert st["drops_kernel"] == 0 and st["drops_capture"] == 0
    whole = tmp_path / "whole.db"
    subprocess.run([CONDUIT, "analyze", str(cap), "--db", str(whole), "-q"], check=True)
    assert _functions(db) == _functions(whole)
    if "stop" in rel:
        with Store(db, readonly=True) as s:
            from otconduit.detect.alerts import list_alerts

            stops = [a for a in list_alerts(s) if a["rule"] == "controller-stop"]
        assert stops and all(_latency_s(a) < 2.0 for a in stops)


def test_sense_loopback_lab_alerts_within_two_seconds(tmp_path: Path) -> None:
    """The lab's real Modbus and S7 stacks on loopback, a PLC stop among them: the
    sensor raises it within 2 s of its packet, evidence kept out of the ring."""
    reason = _skip_reason()
    if reason and "tcpreplay" not in reason and "namespaces" not in reason:
        pytest.skip(reason)
    if os.geteuid() != 0 or shutil.which("dumpcap") is None:
        pytest.skip("needs root and dumpcap to capture on loopback")
    pytest.importorskip("pymodbus")
    db = tmp_path / "sensed.db"
    sense = subprocess.Popen(
        [CONDUIT, "sense", "-i", "lo", "--db", str(db), "--ring", str(tmp_path / "ring"),
         "--ring-size", "64", "--ring-files", "4", "--export-file", str(tmp_path / "siem.jsonl")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: _status(db).get("state") == "running", 60), "sensor did not start"
        lab = subprocess.run(
            [CONDUIT, "lab", "--duration", "14", "--speed", "20", "--seed", "3",
             "--scenario", "plc-stop", "--start", "08:59"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert lab.returncode == 0, lab.stderr
        time.sleep(2.5)
        sense.send_signal(signal.SIGTERM)
        _, errs = sense.communicate(timeout=60)
    finally:
        if sense.poll() is None:
            sense.kill()
            sense.wait()
        if sense.stderr is not None:
            sense.stderr.close()  # a failed assertion above must not leak the pipe
    assert sense.returncode == 0, errs
    with Store(db, readonly=True) as s:
        from otconduit.detect.alerts import list_alerts

        alerts = list_alerts(s)
    stops = [a for a in alerts if a["rule"] == "controller-stop"]
    assert stops, [a["rule"] for a in alerts]
    for a in stops:
        assert _latency_s(a) < 2.0, a
    # The SIEM file got them, and their evidence survives the ring.
    exported = [json.loads(line) for line in (tmp_path / "siem.jsonl").read_text().splitlines()]
    assert {a["id"] for a in stops} <= {e["id"] for e in exported}
    shutil.rmtree(tmp_path / "ring")
    out = tmp_path / "ev.pcap"
    res = subprocess.run([CONDUIT, "evidence", str(stops[0]["id"]), "-w", str(out), "--db",
                          str(db)], capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 100


def test_capture_engine_that_dies_is_restarted_and_reported(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("dumpcap") is None:
        pytest.skip("needs root and dumpcap to capture on loopback")
    db = tmp_path / "sensed.db"
    ring = tmp_path / "ring"
    sense = subprocess.Popen(
        [CONDUIT, "sense", "-i", "lo", "--db", str(db), "--ring", str(ring),
         "--filter", "udp port 9"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: _status(db).get("state") == "running", 60)
        killed = subprocess.run(["pkill", "-KILL", "-f", f"dumpcap .*{ring}"], check=False)
        assert killed.returncode == 0, "no dumpcap to kill"
        assert _wait(lambda: _status(db).get("engine_restarts", 0) >= 1, 30)
        # Capturing again: a datagram sent now is counted.
        import socket

        before = _status(db)["packets"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                s.sendto(b"x", ("127.0.0.1", 9))
                time.sleep(0.1)
        assert _wait(lambda: _status(db)["packets"] >= before + 5, 20)
        sense.send_signal(signal.SIGTERM)
        sense.communicate(timeout=60)
    finally:
        if sense.poll() is None:
            sense.kill()
            sense.wait()
        if sense.stderr is not None:
            sense.stderr.close()  # a failed assertion above must not leak the pipe
    st = _status(db)
    assert any("exited" in e for e in st["engine_events"]), st["engine_events"]
    res = subprocess.run([CONDUIT, "alerts", "--db", str(db), "-f", "json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "sensor-capture-failed" in {a["rule"] for a in json.loads(res.stdout)}
