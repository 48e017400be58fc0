"""A gateway configuration for the built-in lab plant, derived from the plant's own
register maps (so the example and the plant cannot drift). ``examples/gateway-plant.yaml``
is this, written out; a test keeps the two equal."""

from __future__ import annotations

from typing import Any

from otconduit.lab import addresses as A
from otconduit.lab.register_maps import CONVEYOR_MAP, REMOTE_IO_MAP, SDM630_MAP, Register

GATEWAY_IP = A.GATEWAY.ip  # the gateway's IDMZ address (examples/plant-policy.yaml)
_PREFIX = {"coil": "co", "discrete": "di", "holding": "hr", "input": "ir"}


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
    if interval is not None:
        tag["interval"] = interval
    return tag


def plant_gateway(port: int = 502, hosts: dict[str, str] | None = None) -> dict[str, Any]:
    """The plant's gateway config as a dict (YAML-ready). ``hosts`` overrides device
    addresses (tests run their own servers)."""
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
    return {
        "version": 1,
        "name": "line1-gateway",
        "enterprise": "acme",
        "site": "plant1",
        "status_file": "gateway-status.json",
        "source_address": GATEWAY_IP,
        "devices": devices,
        "sinks": {"historian": {"path": "gateway.db", "retention": "30d"}},
    }
