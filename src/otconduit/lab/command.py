"""The ``lab`` command: options, progress lines and the end-of-run summary.

Shared by ``conduit lab`` (registered from ``otconduit.cli.lab_cmd``) and
``python -m otconduit.lab``, so both run exactly the same code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from otconduit.lab.plant import PlantResult

# The protocol stacks (pymodbus, python-snap7, asyncua, bacpypes3, c104) are imported only
# when the command runs, so registering it costs the rest of the CLI nothing and needs no
# lab extras.


def _hhmm(value: str) -> float:
    try:
        hh, mm = value.split(":")
        secs = int(hh) * 3600 + int(mm) * 60
    except ValueError:
        raise typer.BadParameter("expected HH:MM") from None
    if not 0 <= secs < 86400:
        raise typer.BadParameter("expected HH:MM within a day")
    return float(secs)


def _say(message: str) -> None:
    print(message, flush=True)


def _summary(result: PlantResult, as_json: bool) -> None:
    if as_json:
        out: dict[str, Any] = {
            "scenarios": result.scenarios,
            "schedule": result.schedule,
            "interrupted": result.interrupted,
            "seconds": round(result.stopped - result.started, 2),
            "labels": len(result.labels),
            "requests": result.requests,
            "errors": result.errors,
            "process": result.process,
            "capture": result.capture,
            "traffic": result.traffic,
            "truth": result.truth,
        }
        _say(json.dumps(out, indent=2))
        return
    secs = result.stopped - result.started
    how = "interrupted" if result.interrupted else "finished"
    _say(f"lab: {how} after {secs:.1f} s; scenarios: {', '.join(result.scenarios)}")
    _say(f"lab: {len(result.labels)} labels; requests by role: {result.requests}")
    if result.capture:
        cap = result.capture
        _say(
            f"lab: capture {cap['path']} ({cap['backend']}): {cap['packets']} packets, "
            f"{cap['dropped']} dropped"
        )
        for role, row in result.traffic.items():
            _say(f"lab:   {role:<18} {int(row['packets']):>8} packets {row['pps']:>9.1f} pkt/s")


def lab(
    duration: Annotated[
        float, typer.Option("--duration", help="Wall-clock seconds to run (then stop).")
    ] = 60.0,
    speed: Annotated[
        float, typer.Option("--speed", help="Plant time per wall second (time acceleration).")
    ] = 10.0,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for process values and scenario timing.")
    ] = 1,
    pcap: Annotated[
        Path | None, typer.Option("--pcap", help="Record all plant traffic to this pcap.")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Write ground-truth labels (JSON) here.")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            metavar="NAME",
            help="Scenario name, repeatable or comma separated; 'mixed' = several.",
        ),
    ] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list-scenarios", help="List the scenarios and exit.")
    ] = False,
    start: Annotated[
        str, typer.Option("--start", help="Plant clock time of day at start (HH:MM).")
    ] = "08:50",
    capture_backend: Annotated[
        str, typer.Option("--capture-backend", help="auto, tcpdump or afpacket.")
    ] = "auto",
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print the end-of-run summary as JSON.")
    ] = False,
    settle: Annotated[
        float,
        typer.Option(
            "--settle",
            min=0,
            max=60,
            help="Wall seconds the devices serve the frozen plant before production starts "
            "and after it stops (a collector then reads both ends of the run).",
        ),
    ] = 0.0,
) -> None:
    """Run the simulated plant on loopback: real Modbus, S7, OPC UA, BACnet/IP and IEC 104
    servers and clients.

    Client cycles run in plant time but never faster than every 0.05 s of wall time.
    """
    try:
        from otconduit.lab.plant import PlantOptions, run_plant
        from otconduit.lab.scenarios import describe
    except ImportError as exc:
        print(f"lab: error: {exc} (install otconduit[lab])", file=sys.stderr, flush=True)
        raise typer.Exit(2) from None
    if list_scenarios:
        for name, text in describe():
            _say(f"{name:<18} {text}")
        return
    opts = PlantOptions(
        duration=duration,
        speed=speed,
        seed=seed,
        pcap=pcap,
        labels=labels,
        scenarios=list(scenario or []),
        start_of_day=_hhmm(start),
        capture_backend=capture_backend,
        settle=settle,
        on_ready=lambda info: _say(
            f"ready: plant running, speed {speed:g}x, {duration:g} s, "
            f"schedule {json.dumps(info['schedule'])}"
        ),
    )
    try:
        result = run_plant(opts)
    except (ValueError, OSError, RuntimeError) as exc:
        hint = "" if os.geteuid() == 0 else " (ports 102/502 and live capture need root)"
        print(f"lab: error: {exc}{hint}", file=sys.stderr, flush=True)
        raise typer.Exit(2) from None
    _summary(result, json_summary)


def main() -> None:
    typer.run(lab)
