"""One accelerated lab run with the gateway reading it into a historian, for checking
``conduit oee`` and ``conduit energy`` against the plant's own truth.

The plant runs as ``python -m otconduit.lab`` (its ``--json`` summary carries the truth);
the gateway runs here, in a thread, from the example config with faster polling (the
plant's time runs ``SPEED`` times faster than the gateway's clock). ``--settle`` keeps the
devices serving the frozen plant before and after the run, so the gateway reads both ends.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.plantconfig import plant_gateway
from otconduit.lab import addresses as A
from otconduit.lab.plant import check_ports_free

SPEED = 10.0  # plant seconds per wall second
DURATION = 30.0  # wall seconds: 300 plant seconds
SETTLE = 2.0
START = "08:57"  # plant clock: 3 minutes of production, then the 09:00 break begins
POLL = 0.05  # wall seconds between gateway reads (0.5 plant seconds)
MARGIN = 3 * POLL  # after the last step: the gateway's read of the final image


@dataclass
class LabRun:
    config: Path
    historian: Path
    truth: dict[str, Any]
    summary: dict[str, Any]

    def window(self) -> tuple[str, str]:
        """The truth's window as --from/--to (wall clock, UTC)."""

        def iso(ts: float) -> str:
            return datetime.fromtimestamp(ts, UTC).isoformat()

        return iso(self.truth["start"]), iso(self.truth["end"] + MARGIN)


def gateway_config(tmp: Path) -> dict[str, Any]:
    """The example config, polling every POLL s, with the planned cycle time in wall
    seconds (the plant's 1.2 s per part takes 1.2 / SPEED s of the gateway's clock)."""
    raw = plant_gateway(production=True)
    raw["devices"] = [d for d in raw["devices"] if d["name"] != "remote-io"]
    for d in raw["devices"]:
        d["interval"] = POLL
        for t in d["tags"]:
            t["stale_after"] = 1.0  # a busy CI machine may delay a poll: not an outage
    raw["status_file"] = str(tmp / "gateway-status.json")
    raw["sinks"] = {"historian": {"path": str(tmp / "gateway.db")}}
    raw["buffer"] = {"disk_path": str(tmp / "gateway-buffer.db")}
    conveyor = raw["production"]["machines"][0]["oee"]
    conveyor["planned_cycle_time"] = conveyor["planned_cycle_time"] / SPEED
    return raw


class GatewayThread:
    """The gateway in its own thread and event loop until :meth:`stop`."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        from otconduit.gateway.runtime import Gateway
        from otconduit.gateway.sinks.factory import sinks_for

        async def run() -> None:
            stop = asyncio.Event()
            gw = Gateway(self.cfg, sinks_for(self.cfg))
            task = asyncio.create_task(gw.run(stop))
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
            stop.set()
            await task

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "gateway did not stop"
        if self.error is not None:
            raise self.error


def _wait_ports_free(timeout: float = 180.0) -> None:
    """Another lab run (another test session) may hold the plant's addresses."""
    deadline = time.monotonic() + timeout
    while busy := check_ports_free():
        if time.monotonic() > deadline:
            pytest.fail(f"the plant's ports stay busy (another lab running?): {busy[:3]}")
        time.sleep(2.0)


def _wait_listening(host: str, port: int, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"the lab ended before it listened: {err[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"the lab's {host}:{port} did not listen within {timeout:.0f} s")


def run_lab(tmp: Path, scenario: str, seed: int, start: str = START) -> LabRun:
    """Run the plant (``scenario``, plant clock from ``start``) with the gateway beside it;
    returns the truth and the historian the gateway filled."""
    _wait_ports_free()
    raw = gateway_config(tmp)
    cfg_path = tmp / "gateway.yaml"
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = GatewayConfig.model_validate(raw)
    args = ["--scenario", scenario, "--duration", str(DURATION), "--speed", str(SPEED)]
    args += ["--seed", str(seed), "--start", start, "--settle", str(SETTLE), "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "otconduit.lab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp,
    )
    gateway = GatewayThread(cfg)
    try:
        _wait_listening(A.CONVEYOR_PLC.ip, 502, proc, 30.0)
        gateway.start()
        out, err = proc.communicate(timeout=DURATION + 2 * SETTLE + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        gateway.stop()
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out[out.index("\n{") + 1 :])  # after the "ready:" line
    return LabRun(cfg_path, tmp / "gateway.db", summary["truth"], summary)
