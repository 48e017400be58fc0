"""`make demo`: the main job on the embedded default, with no hardware.

1. The built-in plant (``conduit lab``) runs a mixed scenario — normal production plus
   injected attacks and a bearing failure — for about a minute and a half of wall time
   (half an hour of plant time), recording all its traffic.
2. The monitor analyses the capture into ``demo/conduit.db`` and prints the inventory,
   the industrial conversations and the operations it decoded.
3. The plant's ground truth is held against what the monitor recorded.
4. Meanwhile the sensor (``conduit sense -i lo``) watches the plant live into
   ``demo/sensor.db``: its alerts are printed as the attacks happen.
5. Meanwhile the one-way gateway (``examples/gateway-plant.yaml``) reads the plant's Modbus
   devices from its IDMZ address into ``demo/gateway.db``; the demo ends with its tags.

Without the rights to run the plant (root: ports 102/502 and loopback capture) the demo
analyses the lab capture recorded into the repository instead. Ctrl-C stops cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from otconduit.cli.output import Format, emit, make_console

REPO = Path(__file__).resolve().parents[2]
OUT = Path("demo")
DURATION = float(os.environ.get("CONDUIT_DEMO_SECONDS", "90"))
SPEED = 20.0


def _run_plant(pcap: Path, labels: Path) -> str | None:
    """Run the plant; returns why it could not run, or None."""
    from otconduit.lab.plant import PlantOptions, check_ports_free, run_plant
    from otconduit.lab.sniffer import capture_unavailable_reason

    reason = capture_unavailable_reason()
    if reason is not None:
        return reason
    busy = check_ports_free()
    if busy:
        return f"plant ports already in use: {busy[:3]}"
    result = run_plant(
        PlantOptions(
            duration=DURATION,
            speed=SPEED,
            seed=7,
            pcap=pcap,
            labels=labels,
            scenarios=["mixed"],
        )
    )
    if result.interrupted:
        raise KeyboardInterrupt
    return None


def _can_sense() -> bool:
    """The live sensor needs root (capture on loopback) and dumpcap or tcpdump."""
    return os.geteuid() == 0 and (shutil.which("dumpcap") or shutil.which("tcpdump")) is not None


class _GatewayThread:
    """The gateway beside the plant: its own thread and event loop, started once the
    plant's devices listen, stopped when the plant stops."""

    def __init__(self, out: Path) -> None:
        import threading

        self.out = out
        self.error: str | None = None
        self.status: dict[str, object] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        import asyncio
        import socket
        import time

        from otconduit.gateway.config import GatewayConfig
        from otconduit.gateway.plantconfig import plant_gateway
        from otconduit.gateway.runtime import Gateway
        from otconduit.gateway.sinks.factory import sinks_for

        raw = plant_gateway()
        raw["status_file"] = str(self.out / "gateway-status.json")
        raw["sinks"] = {"historian": {"path": str(self.out / "gateway.db")}}
        raw["buffer"] = {"disk_path": str(self.out / "gateway-buffer.db")}
        cfg = GatewayConfig.model_validate(raw)
        deadline = time.time() + 20
        first = cfg.devices[0]
        while time.time() < deadline and not self._stop.is_set():
            with socket.socket() as s:  # wait until the plant's first PLC listens
                s.settimeout(0.5)
                if s.connect_ex((first.host or "", first.port or 502)) == 0:
                    break
            time.sleep(0.5)

        async def run() -> None:
            stop = asyncio.Event()
            gw = Gateway(cfg, sinks_for(cfg))
            task = asyncio.create_task(gw.run(stop))
            while not self._stop.is_set():
                await asyncio.sleep(0.2)
            stop.set()
            await task
            self.status = gw.status()

        try:
            asyncio.run(run())
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


class _SensorThread:
    """``conduit sense -i lo`` beside the plant, printing each alert as it is raised with
    how long after its packet that was."""

    def __init__(self, out: Path, console: object) -> None:
        import threading

        self.db = out / "sensor.db"
        self.ring = out / "sensor.ring"
        self.console = console
        self.sensor: object | None = None
        self.error: str | None = None
        self._seen = 0
        self._thread = threading.Thread(target=self._main, name="demo-sensor", daemon=True)
        self._ready = threading.Event()

    def start(self) -> bool:
        for f in OUT.glob("sensor.db*"):
            f.unlink()
        shutil.rmtree(self.ring, ignore_errors=True)
        self._thread.start()
        self._ready.wait(60)
        return self.error is None and self.sensor is not None

    def _main(self) -> None:
        from otconduit.sensor.run import SenseOptions, Sensor, SensorError
        from otconduit.store import Store

        try:
            with Store(self.db) as store:
                opts = SenseOptions(db=self.db, interface="lo", ring_dir=self.ring,
                                    ring_size_mb=256, ring_files=8)  # fmt: skip
                sensor = Sensor(store, opts)
                sensor.on_start = lambda s: self._ready.set()
                sensor.on_tick = self._tick
                self.sensor = sensor
                sensor.run()
        except (SensorError, OSError) as exc:
            self.error = str(exc)
        finally:
            self._ready.set()

    def _tick(self, sensor: object) -> None:
        from datetime import datetime

        from otconduit.store.alerts import raised_after
        from otconduit.store.views import iso

        store = sensor.store  # type: ignore[attr-defined]
        for aid, sev, rule, src, dst, first, detected in raised_after(store, self._seen, 2):
            self._seen = max(self._seen, aid)
            if detected is None:  # raised by an older release: no wall-clock time kept
                continue
            when = datetime.fromisoformat(detected.replace("Z", "+00:00"))
            lag = when.timestamp() - first / 1e9
            label = ("info", "low", "medium", "high", "critical")[sev]
            ends = f"{src or ''} -> {dst or ''}"
            self.console.print(  # type: ignore[attr-defined]
                f"  [live] {(iso(first) or '')[11:19]} {label:8} {rule:22} {ends}"
                f"  (raised {lag:.1f} s after its first packet)",
                highlight=False,
                markup=False,
            )

    def stop(self) -> None:
        if self.sensor is not None:
            self.sensor.request_stop()  # type: ignore[attr-defined]
        self._thread.join(120)


def _show_gateway(console: object, gw: _GatewayThread) -> None:
    from otconduit.gateway.historian import open_store, tags

    assert hasattr(console, "print")
    hist = gw.out / "gateway.db"
    if gw.error or not hist.exists():
        console.print(f"[yellow]gateway did not run: {gw.error or 'no historian'}[/]")
        return
    devices = gw.status.get("devices", [])
    assert isinstance(devices, list)
    console.print(
        f"\n[bold]4. Gateway[/] (conduit gateway run -c examples/gateway-plant.yaml): "
        f"{gw.status.get('samples_dispatched', 0)} samples into {hist}; "
        + ", ".join(f"{d['device']} {d['state']} ({d['requests']} requests)" for d in devices)
    )
    store = open_store(hist)
    try:
        rows = [r for r in tags(store) if r["path"].split("/")[-2] in ("conveyor", "meter-1")]
    finally:
        store.close()
    keep = ("actual_speed", "motor_current", "vibration_rms", "bearing_temp", "good_count",
            "state", "total_system_power", "frequency", "import_kwh")  # fmt: skip
    rows = [r for r in rows if r["path"].rsplit("/", 1)[1] in keep]
    emit(
        rows,
        Format.table,
        columns=["path", "value", "unit", "quality", "samples", "last_ts"],
        title=f"Gateway tags (all: conduit tags --historian {hist})",
        console=console,  # type: ignore[arg-type]
    )


def main() -> int:
    console = make_console()
    OUT.mkdir(exist_ok=True)
    pcap, labels_path, db = OUT / "plant.pcap", OUT / "labels.json", OUT / "conduit.db"
    for f in OUT.glob("conduit.db*"):
        f.unlink()
    labels: list[dict[str, object]] = []
    console.print(
        f"[bold]1. Plant[/]: conveyor PLC, press (S7), packaging (OPC UA), remote I/O and "
        f"energy meters on 127.0.10.x, an HVAC controller (BACnet/IP) on 127.0.60.10, a "
        f"substation RTU (IEC 104) on 127.0.70.10, HMI/engineering/historian/BMS/SCADA/IT "
        f"hosts around them; "
        f"scenario 'mixed' for {DURATION:.0f} s at {SPEED:.0f}x plant time ..."
    )
    for f in OUT.glob("gateway*"):
        f.unlink()
    gateway = _GatewayThread(OUT)
    gateway.start()
    sensor = _SensorThread(OUT, console)
    live = _can_sense() and sensor.start()
    if live:
        console.print(
            f"[bold]Sensor[/]: conduit sense -i lo --db {sensor.db} — alerts as they happen:"
        )
    try:
        why = _run_plant(pcap, labels_path)
    except KeyboardInterrupt:
        gateway.stop()
        if live:
            sensor.stop()
        console.print("interrupted: the plant stopped cleanly")
        return 130
    gateway.stop()
    if live:
        sensor.stop()
        console.print(
            f"Sensor stopped: conduit sensor status --db {sensor.db}; "
            f"conduit alerts --db {sensor.db}"
        )
    if why is None:
        labels = json.loads(labels_path.read_text())
    else:
        fallback = REPO / "tests" / "data" / "modbus_all_functions.pcap"
        console.print(f"[yellow]The plant cannot run here ({why}); analysing {fallback}[/]")
        shutil.copyfile(fallback, pcap)

    policy = REPO / "examples" / "plant-policy.yaml"
    extra = ["--policy", str(policy)] if why is None and policy.exists() else []
    console.print(f"\n[bold]2. Monitor[/]: conduit analyze {pcap} --db {db} {' '.join(extra)}\n")
    from otconduit.cli.main import app

    try:
        app(["analyze", str(pcap), "--db", str(db), *extra], standalone_mode=False)
        console.print(
            "\n[bold]Controls and program changes[/] (conduit operations --class control | program)"
        )
        for cls in ("control", "program"):
            app(
                ["operations", "--db", str(db), "--class", cls, "--limit", "12"],
                standalone_mode=False,
            )
    except SystemExit as exc:
        return int(exc.code or 0)

    if extra:
        from collections import Counter

        from otconduit.policy import load_policy
        from otconduit.policy.check import evaluate_and_store
        from otconduit.store import Store

        with Store(db) as store:
            found = evaluate_and_store(store, load_policy(policy))
        by_rule = Counter(v.rule for v in found)
        console.print(
            f"\n[bold]Zones and conduits[/] ({policy.name}): {len(found)} violations — "
            + ", ".join(f"{rule} {n}" for rule, n in by_rule.most_common())
        )
        # One row per source and rule keeps a port scan from filling the screen.
        shown: set[tuple[str | None, str]] = set()
        rows = []
        for v in found:
            if (v.src_ip, v.rule) in shown or v.rule == "asset-in-no-zone":
                continue
            shown.add((v.src_ip, v.rule))
            rows.append(
                {
                    "rule": v.rule,
                    "from": f"{v.src_ip} ({v.src_zone})",
                    "to": f"{v.dst_ip} ({v.dst_zone})",
                    "protocol": v.protocol,
                    "operation": v.operation,
                    "count": v.count,
                }
            )
        emit(
            rows[:15],
            Format.table,
            columns=["rule", "from", "to", "protocol", "operation", "count"],
            title="Violations (first per source "
            f"and rule; all: conduit violations --db {db} --policy {policy})",
            console=console,
        )

    console.print(
        "\n[bold]Alerts[/] above informational, with ATT&CK for ICS techniques "
        f"(conduit alerts --db {db} --severity low)"
    )
    try:
        app(["alerts", "--db", str(db), "--severity", "low"], standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)

    if labels:
        from otconduit.analysis.groundtruth import match_labels
        from otconduit.store import Store

        with Store(db, readonly=True) as store:
            matches = match_labels(store, labels)
        interesting = [m for m in matches if m.label.get("kind") != "fc-sweep"]
        rows = [
            {
                "scenario": m.label["scenario"],
                "event": m.label["kind"],
                "from": m.label["src_ip"],
                "to": m.label["dst_ip"],
                "what": f"{m.label['protocol']} {m.label['function']}",
                "monitor": f"seen ({m.evidence})" if m.seen else "NOT SEEN",
            }
            for m in interesting
        ]
        console.print()
        emit(
            rows,
            Format.table,
            columns=list(rows[0]) if rows else [],
            title="3. Ground truth (plant labels) vs what the monitor recorded",
            console=console,
        )
        found_n = sum(m.seen for m in matches)
        console.print(
            f"{found_n} of {len(matches)} labelled events found in the decoded traffic "
            "(each attack step also raised its alert above)."
        )
    if why is None:
        _show_gateway(console, gateway)
    console.print("\nExplore further:", highlight=False)
    for cmd in (
        f"assets --db {db} -f json",
        f"operations --db {db} --status exception",
        f"conversations --db {db}",
        f"problems --db {db}",
        f"alert show 1 --db {db}   # evidence, ATT&CK, runbook",
        f"evidence 1 --db {db} -w alert1.pcap",
        "attack",
        "lab --list-scenarios",
        "history acme/plant1/packaging/line1/conveyor/bearing_temp --historian demo/gateway.db",
    ):
        console.print(f"  .venv/bin/conduit {cmd}", highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
