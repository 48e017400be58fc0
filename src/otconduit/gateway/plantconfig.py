"""A gateway configuration for the built-in lab plant, derived from the plant's own
register maps (so the example and the plant cannot drift). ``examples/gateway-plant.yaml``
is this (with ``production=True``), written out; a test keeps the two equal."""

from __future__ import annotations

from typing import Any

from otconduit.lab import addresses as A
from otconduit.lab.register_maps import (
    CONVEYOR_MAP,
    CONVEYOR_STATES,
    REMOTE_IO_MAP,
    SDM630_MAP,
    Register,
)

GATEWAY_IP = A.GATEWAY.ip  # the gateway's IDMZ address (examples/plant-policy.yaml)
_PREFIX = {"coil": "co", "discrete": "di", "holding": "hr", "input": "ir"}
# How the console reads them: the conveyor's own state numbers (not PackML), and the
# registers that only count up during a shift.
_STATES = {"state": CONVEYOR_STATES}
_COUNTERS = {"good_count", "scrap_count", "microstop_count", "run_minutes"}


def tag_for(
    reg: Register, area: str, line: str, cell: str, interval: float | None
) -> dict[str, Any]:
    tag: dict[str, Any] = {
        "path": f"{area}/{line}/{cell}/{reg.name}",
        "address": f"{_PREFIX[reg.table]}:{reg.address}",
        "type": reg.type,
    }
    if reg.type == "bool" and reg.table in ("holding", "input"):
        tag["bit"] = 0
    if reg.scale != 1.0:
        tag["scale"] = {"factor": reg.scale}
    if reg.unit:
        tag["unit"] = reg.unit
    if reg.name in _COUNTERS:
        tag["kind"] = "counter"
    if reg.name in _STATES and cell == "conveyor":
        tag["kind"] = "state"
        tag["states"] = dict(_STATES[reg.name])
    if interval is not None:
        tag["interval"] = interval
    return tag


def plant_gateway(
    port: int = 502, hosts: dict[str, str] | None = None, production: bool = False
) -> dict[str, Any]:
    """The plant's gateway config as a dict (YAML-ready). ``hosts`` overrides device
    addresses (tests run their own servers); ``production`` adds the OEE and energy
    models (as in the example), which name tags of every device."""
    hosts = hosts or {}
    devices: list[dict[str, Any]] = []

    def dev(name: str, ip: str, regs: tuple[Register, ...], cell: str, interval: float) -> None:
        devices.append(
            {
                "name": name,
                "protocol": "modbus",
                "host": hosts.get(name, ip),
                "port": port,
                "unit": 1,
                "interval": interval,
                "timeout": 0.5,
                "tags": [tag_for(r, "packaging", "line1", cell, None) for r in regs],
            }
        )

    dev("conveyor-plc", A.CONVEYOR_PLC.ip, CONVEYOR_MAP, "conveyor", 1.0)
    dev("remote-io", A.REMOTE_IO.ip, REMOTE_IO_MAP, "conveyor-io", 1.0)
    dev("energy-meter-1", A.METER_1.ip, SDM630_MAP, "meter-1", 5.0)
    dev("energy-meter-2", A.METER_2.ip, SDM630_MAP, "meter-2", 5.0)
    if production:
        # Tags the models hold over time are reported every poll: on change, the historian
        # could not tell a steady value from a gateway that was not running.
        for tag in devices[0]["tags"]:
            if tag["path"].rsplit("/", 1)[1] in ("state", "motor_power"):
                tag["mode"] = "cyclic"
    out: dict[str, Any] = {
        "version": 1,
        "name": "line1-gateway",
        "enterprise": "acme",
        "site": "plant1",
        "status_file": "gateway-status.json",
        "source_address": GATEWAY_IP,
        "devices": devices,
        "sinks": {"historian": {"path": "gateway.db", "retention": "30d"}},
    }
    if production:
        out["production"] = plant_production()
    return out


def plant_production() -> dict[str, Any]:
    """The plant's OEE and energy models (``conduit oee``, ``conduit energy``): the
    conveyor's states, part counters and drive power, the two meters feeding the line,
    and the shifts of the plant's clock (otconduit.lab.process)."""
    from otconduit.lab.process import NOMINAL_SPEED, PART_PITCH, SHIFTS

    line = "packaging/line1"
    starts = [f"{s // 3600:02d}:{s % 3600 // 60:02d}" for s, _n in SHIFTS]
    names = ("early", "late", "night")
    return {
        "timezone": "Europe/Berlin",
        "shifts": [
            {"name": names[i], "start": starts[i], "end": starts[(i + 1) % len(starts)]}
            for i in range(len(starts))
        ],
        "grid_factor": 0.4,
        "machines": [
            {
                "oee": {
                    "state": {
                        "tag": f"{line}/conveyor/state",
                        "names": dict(CONVEYOR_STATES),
                        "producing": ["RUNNING"],
                        "down": ["STOPPED", "MICROSTOP", "FAULT"],
                        "planned_stop": ["PLANNED_STOP"],
                    },
                    "counters": {
                        "good": f"{line}/conveyor/good_count",
                        "scrap": f"{line}/conveyor/scrap_count",
                    },
                    "planned_cycle_time": round(PART_PITCH / NOMINAL_SPEED * 60, 6),
                },
                "energy": {"power": f"{line}/conveyor/motor_power", "part_of": "meter-1"},
            },
            *(
                {
                    "energy": {
                        "kwh": f"{line}/{m}/total_kwh",
                        "power": f"{line}/{m}/total_power",
                    }
                }
                for m in ("meter-1", "meter-2")
            ),
        ],
    }
