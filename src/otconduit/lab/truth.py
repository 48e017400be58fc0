"""The plant's own account of a run: how long each machine spent in each state, what it
made and what energy it used, counted inside the process model step by step.

This is the independent witness ``conduit oee`` and ``conduit energy`` are checked
against: it never reads a register or the gateway, so a mistake in collection, the
historian or the KPI code cannot hide in it. Machine names are the cells of the
gateway's ISA-95 paths (``packaging/line1/<cell>/<tag>``); the press and the packer,
which the example gateway does not read, are named by their role.

Time is plant seconds. Each step's time goes to the state the machine *reported* before
the step (what its PLC showed until the step's result was loaded), and each step's parts
and energy to that step, so the witness and a collector reading the registers see the
same edges.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from otconduit.lab.register_maps import CONVEYOR_STATES

if TYPE_CHECKING:
    from otconduit.lab.devices_bacnet import BacnetController
    from otconduit.lab.devices_iec104 import Outstation
    from otconduit.lab.process import PlantProcess


class _Machine:
    def __init__(self) -> None:
        self.state_seconds: dict[str, float] = defaultdict(float)
        self.produced = 0
        self.good = 0
        self.scrap = 0
        self.kwh = 0.0

    def as_json(self, counts: bool = True) -> dict[str, Any]:
        return {
            "state_seconds": {k: round(v, 3) for k, v in sorted(self.state_seconds.items())},
            "produced": self.produced if counts else None,
            "good": self.good if counts else None,
            "scrap": self.scrap if counts else None,
            "kwh": round(self.kwh, 6),
        }


class Witness:
    """Accumulates the truth as the process advances (``record`` after each step)."""

    def __init__(self, p: PlantProcess) -> None:
        self.seconds = 0.0
        self.machines = {n: _Machine() for n in ("conveyor", "press", "packer")}
        self.meters = {"meter-1": _Machine(), "meter-2": _Machine()}
        self._states = self._reported(p)
        self._counts = self._counters(p)
        self._meter_kwh = [m.kwh for m in p.meters]
        self._shift = p.shift

    @staticmethod
    def _reported(p: PlantProcess) -> dict[str, str]:
        c = int(p.conveyor_values()["state"])
        press = p.press
        return {
            "conveyor": CONVEYOR_STATES.get(c, str(c)),
            "press": "Running" if press.running else "Idle" if press.cpu_run else "Stopped",
            "packer": p.packer.machine.name,
        }

    @staticmethod
    def _counters(p: PlantProcess) -> dict[str, tuple[int, int]]:
        c = p.conveyor
        return {
            "conveyor": (c.good, c.scrap),  # since the shift began (see record)
            "press": (p.press.good, p.press.strokes - p.press.good),
            "packer": (p.packer.cases, p.packer.defective),
        }

    def record(self, p: PlantProcess, dt: float) -> None:
        """Account for one step of ``dt`` plant seconds that has just run."""
        self.seconds += dt
        for name, state in self._states.items():
            self.machines[name].state_seconds[state] += dt
        counts = self._counters(p)
        if p.shift != self._shift:  # the PLC zeroed its shift counters before this step
            self._counts["conveyor"] = (0, 0)
            self._shift = p.shift
        for name, (good, scrap) in counts.items():
            m, (g0, s0) = self.machines[name], self._counts[name]
            m.good += good - g0
            m.scrap += scrap - s0
            m.produced += good - g0 + scrap - s0
        self._counts = counts
        self.machines["conveyor"].kwh += p.conveyor.power * dt / 3600.0
        self.machines["press"].kwh += p.press.power * dt / 3600.0
        self.machines["packer"].kwh += p.packer.power * dt / 3600.0
        for i, meter in enumerate(self.meters.values()):
            meter.kwh += p.meters[i].kwh - self._meter_kwh[i]
            self._meter_kwh[i] = p.meters[i].kwh
        self._states = self._reported(p)

    def as_json(self) -> dict[str, Any]:
        machines = {n: m.as_json() for n, m in self.machines.items()}
        machines |= {n: m.as_json(counts=False) for n, m in self.meters.items()}
        return {"plant_seconds": round(self.seconds, 3), "machines": machines}


def field_truth(building: BacnetController, rtu: Outstation) -> dict[str, Any]:
    """What the building controller and the substation RTU went through, as they saw it
    (counted inside the devices, never from the capture): the monitor's alerts for the
    BACnet and IEC 104 attack steps are checked against it."""
    app = building.app
    return {
        "building": {
            "setpoint": float(building.setpoint.presentValue),
            "zone_temperature": round(building.zone_temp, 2),
            "reinitialized": list(building.reinitialized),
            "communication_control": list(app.communication) if app is not None else [],
            "notifications_suppressed": app.suppressed if app is not None else 0,
        },
        "substation": {
            "breaker_closed": rtu.breaker_closed,
            "commands": [{"select": s, "state": v} for s, v in rtu.commands],
        },
    }
