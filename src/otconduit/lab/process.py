"""Process model behind the device registers: a small conveyor / press / packer line.

Pure Python and deterministic: the model advances in fixed plant-time steps and draws from
one seeded RNG in a fixed order, so the same seed and the same commands give the same
values. Plant time is wall time multiplied by the run's speed factor (see ``PlantClock``).
The numbers are plausible rather than exact: a 5.5 kW conveyor drive, a 15 kW hydraulic
press pump, a case packer, compressed air and lighting, measured by two energy meters
whose power is the sum of the loads they feed and whose kWh integrate that power.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from otconduit.lab.packml import PackMLMachine, State
from otconduit.lab.truth import Witness

DT = 0.5  # plant seconds per model step
DEFAULT_START_OF_DAY = 8 * 3600 + 50 * 60  # plant clock starts at 08:50, mid morning shift

# Shift pattern and planned downtime (seconds of the day). During a break the HMI stops the
# conveyor and holds the packer; both restart when it ends.
SHIFTS = ((6 * 3600, 1), (14 * 3600, 2), (22 * 3600, 3))
BREAKS: tuple[tuple[int, int], ...] = (
    (9 * 3600, 9 * 3600 + 15 * 60),
    (12 * 3600, 12 * 3600 + 30 * 60),
    (17 * 3600, 17 * 3600 + 15 * 60),
    (20 * 3600, 20 * 3600 + 30 * 60),
    (1 * 3600, 1 * 3600 + 30 * 60),
    (4 * 3600, 4 * 3600 + 15 * 60),
)

NOMINAL_SPEED = 25.0  # m/min, recipe setpoint
MAX_SPEED = 40.0
PART_PITCH = 0.5  # m between parts on the belt
VIBRATION_ALARM = 7.1  # mm/s RMS, ISO 10816-style alarm limit
VIBRATION_TRIP = 11.0  # mm/s RMS, the PLC trips the drive above this
TEMP_TRIP = 95.0  # degC bearing over-temperature trip
AMBIENT = 24.0
PARTS_PER_CASE = 6


class PlantClock:
    """Plant time = (wall - start) x speed; converts both ways for labels and schedules."""

    MIN_WALL_PERIOD = 0.05  # no client polls faster than this, whatever the speed

    def __init__(self, speed: float, wall_start: float | None = None) -> None:
        if not 0 < speed <= 1000:
            raise ValueError("speed must be in (0, 1000]")
        self.speed = speed
        self.wall_start = time.time() if wall_start is None else wall_start

    def plant_now(self) -> float:
        return (time.time() - self.wall_start) * self.speed

    def to_wall(self, plant_t: float) -> float:
        return self.wall_start + plant_t / self.speed

    def wall_period(self, plant_period: float) -> float:
        return max(plant_period / self.speed, self.MIN_WALL_PERIOD)


@dataclass
class ProcessEvent:
    """Something that happened in the process (a trip, an alarm), in plant time."""

    t: float
    kind: str
    details: dict[str, Any] = field(default_factory=dict)


def in_break(tod: float) -> bool:
    """Is this second of the day inside a planned break window?"""
    tod %= 86400
    return any(a <= tod < b for a, b in BREAKS)


def shift_of(tod: float) -> int:
    tod %= 86400
    current = 3
    for start, number in SHIFTS:
        if tod >= start:
            current = number
    return current


class Conveyor:
    """Belt drive with run/stop, speed ramp, micro-stops, bearing wear and part counters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.run_cmd = True
        self.fault_reset = False
        self.speed_sp = NOMINAL_SPEED
        self.ramp = 5.0  # m/min per s
        self.recipe = 1
        self.speed = NOMINAL_SPEED
        self.fault = 0
        self.microstop_left = 0.0
        self.load = 0.6
        self.wear = 0.12 + rng.random() * 0.05
        self.wear_start = self.wear
        self.degradation: tuple[float, float] | None = None
        self.current = 0.0
        self.power = 0.0
        self.vibration = 0.0
        self.temp = AMBIENT + 12.0
        self.good = 0
        self.scrap = 0
        self.microstops = 0
        self.run_seconds = 0.0
        self.part_acc = 0.0
        self.parts_out = 0  # good parts delivered to the packer this step
        self.alarm = False

    @property
    def state(self) -> int:
        if self.fault:
            return 3
        if not self.run_cmd:
            return 0
        if self.microstop_left > 0:
            return 2
        return 1

    def step(self, t: float, dt: float, events: list[ProcessEvent]) -> None:
        rng = self.rng
        if self.fault_reset:
            self.fault_reset = False
            if self.fault and self.vibration < VIBRATION_ALARM and self.temp < TEMP_TRIP - 10:
                self.fault = 0
                events.append(ProcessEvent(t, "fault_reset"))
        if self.degradation is not None:
            start, fail = self.degradation
            frac = min(max((t - start) / max(fail - start, 1e-6), 0.0), 1.0)
            self.wear = self.wear_start + (1.0 - self.wear_start) * frac * frac
        else:
            self.wear = min(self.wear + 2e-8 * dt, 1.0)
        self.load = min(max(self.load + rng.gauss(0.0, 0.02), 0.35), 0.9)
        # micro-stops: jams that clear themselves
        if self.state == 1 and rng.random() < dt / 600.0:
            self.microstop_left = rng.uniform(4.0, 25.0)
            self.microstops += 1
            events.append(ProcessEvent(t, "microstop", {"duration": self.microstop_left}))
        elif self.microstop_left > 0:
            self.microstop_left = max(self.microstop_left - dt, 0.0)
        moving = self.state == 1
        target = min(max(self.speed_sp, 0.0), MAX_SPEED) if moving else 0.0
        if self.state in (0, 3):  # stop or trip: fast coast-down
            self.speed = max(self.speed - 20.0 * dt, 0.0)
        elif self.state == 2:
            self.speed = 0.0
        elif self.speed < target:
            self.speed = min(self.speed + self.ramp * dt, target)
        else:
            self.speed = max(self.speed - self.ramp * dt, target)
        frac = self.speed / NOMINAL_SPEED
        if self.speed > 0.05:
            friction = 1.0 + 0.25 * self.wear * self.wear
            self.current = (2.5 + 8.5 * frac * (0.55 + 0.45 * self.load)) * friction
            self.current += rng.gauss(0.0, 0.08)
            base_vib = 1.2 + 0.8 * frac
            self.vibration = base_vib + 9.5 * self.wear**3 + rng.gauss(0.0, 0.08)
            heat = 15.0 * frac * (0.5 + 0.5 * self.load) + 45.0 * self.wear**2
            self.run_seconds += dt
        else:
            self.current = 0.4 + rng.gauss(0.0, 0.02) if self.state == 2 else 0.0
            self.vibration = abs(rng.gauss(0.05, 0.02))
            heat = 0.0
        self.current = max(self.current, 0.0)
        self.power = math.sqrt(3) * 400.0 * self.current * 0.85 / 1000.0
        self.temp += (AMBIENT + 12.0 * (self.speed > 0) + heat - self.temp) * (dt / 90.0)
        # parts
        self.parts_out = 0
        if self.speed > 0.05:
            self.part_acc += self.speed / PART_PITCH / 60.0 * dt
            p_scrap = 0.015 + 0.1 * self.wear * self.wear
            while self.part_acc >= 1.0:
                self.part_acc -= 1.0
                if rng.random() < p_scrap:
                    self.scrap += 1
                else:
                    self.good += 1
                    self.parts_out += 1
        # protection: alarm, then trip
        if self.vibration >= VIBRATION_ALARM and not self.alarm and self.speed > 0:
            self.alarm = True
            events.append(ProcessEvent(t, "vibration_alarm", self.signals()))
        if not self.fault and self.speed > 0:
            code = 1 if self.vibration >= VIBRATION_TRIP else 2 if self.temp >= TEMP_TRIP else 0
            if code:
                self.fault = code
                self.run_cmd = False
                events.append(ProcessEvent(t, "conveyor_trip", {"fault": code, **self.signals()}))

    def signals(self) -> dict[str, float]:
        return {
            "vibration_rms": round(self.vibration, 2),
            "bearing_temp": round(self.temp, 1),
            "motor_current": round(self.current, 2),
            "actual_speed": round(self.speed, 1),
            "wear": round(self.wear, 3),
        }

    def new_shift(self) -> None:
        self.good = self.scrap = self.microstops = 0
        self.run_seconds = 0.0


class Press:
    """Hydraulic press fed by the conveyor; stops stroking when the S7 CPU is in STOP."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cpu_run = True
        self.spm_sp = 24
        self.tonnage = 800.0
        self.recipe = 3
        self.dwell = 0.4
        self.stroke_mm = 120.0
        self.strokes = 40_000 + rng.randrange(5000)
        self.good = self.strokes - rng.randrange(300, 600)
        self.pressure = 0.0
        self.force = 0.0
        self.oil = 42.0
        self.power = 0.0
        self.stroke_acc = 0.0
        self.die = 7
        self.fed = False

    @property
    def running(self) -> bool:
        return self.cpu_run and self.fed

    def step(self, dt: float, conveyor_moving: bool) -> None:
        rng = self.rng
        self.fed = conveyor_moving
        spm = max(min(self.spm_sp, 40), 0)
        if self.running and spm > 0:
            self.stroke_acc += spm / 60.0 * dt
            while self.stroke_acc >= 1.0:
                self.stroke_acc -= 1.0
                self.strokes += 1
                if rng.random() > 0.004:
                    self.good += 1
            self.pressure = 150.0 + rng.gauss(0.0, 4.0)
            self.force = self.tonnage * 0.92 + rng.gauss(0.0, 6.0)
            self.power = 3.0 + 12.0 * spm / 24.0 * 0.8 + rng.gauss(0.0, 0.2)
        elif self.cpu_run:
            self.pressure = 20.0 + rng.gauss(0.0, 1.0)
            self.power = 3.5 + rng.gauss(0.0, 0.1)
        else:
            self.pressure = max(self.pressure - 40.0 * dt, 0.0)
            self.power = 0.2
        self.oil += (35.0 + 15.0 * self.power / 18.0 - self.oil) * (dt / 600.0)

    @property
    def status_bits(self) -> int:
        return (self.running << 0) | (self.cpu_run << 2) | (self.fed << 3)

    @property
    def cycle_ms(self) -> int:
        return int(60000 / self.spm_sp) if self.spm_sp > 0 else 0


class Packer:
    """Case packer: six good parts make a case while the PackML machine is in Execute."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.machine = PackMLMachine(State.EXECUTE)
        self.speed_sp = 8.0
        self.speed = 0.0
        self.cases = 1200 + rng.randrange(200)
        self.defective = 5 + rng.randrange(10)
        self.buffer = 0
        self.starved_for = 0.0
        self.stop_reason = 0
        self.power = 0.0
        self.pending: list[int] = []

    def step(self, dt: float, parts_in: int, events: list[ProcessEvent], t: float) -> None:
        m = self.machine
        for cmd in self.pending:
            before = m.state
            if m.command(cmd):
                events.append(ProcessEvent(t, "packml_command", {"cmd": cmd, "from": before}))
        self.pending.clear()
        m.step(dt)
        if m.producing:
            self.buffer += parts_in
            made = 0
            while self.buffer >= PARTS_PER_CASE:
                self.buffer -= PARTS_PER_CASE
                made += 1
                if self.rng.random() < 0.004:
                    self.defective += 1
                else:
                    self.cases += 1
            self.speed = made / dt * 60.0 * 0.2 + self.speed * 0.8
            self.starved_for = 0.0 if parts_in else self.starved_for + dt
            if self.starved_for >= 20.0:
                m.command(6)  # suspend: starved of product
                self.stop_reason = 1
        else:
            self.speed *= 0.5
            if m.state == State.SUSPENDED and parts_in:
                m.command(7)
                self.stop_reason = 0
        st = m.state
        if st == State.EXECUTE:
            self.power = 4.2 + self.rng.gauss(0.0, 0.1)
        elif st in (State.STOPPED, State.ABORTED):
            self.power = 0.3
        elif st in (State.IDLE, State.SUSPENDED, State.HELD, State.COMPLETE):
            self.power = 1.4 + self.rng.gauss(0.0, 0.05)
        else:
            self.power = 2.5


class Meter:
    """Three-phase meter: splits a total load over phases and integrates energy."""

    def __init__(self, rng: random.Random, kwh: float, base_kw: float) -> None:
        self.rng = rng
        self.kwh = kwh
        self.base_kw = base_kw
        self.volts = [230.0 + rng.uniform(-1.5, 1.5) for _ in range(3)]
        self.freq = 50.0
        self.split = [0.34, 0.33, 0.33]
        self.values: dict[str, float] = {}

    def step(self, dt: float, load_kw: float) -> None:
        rng = self.rng
        self.freq = min(
            max(self.freq + rng.gauss(0.0, 0.004) - (self.freq - 50.0) * 0.05, 49.9), 50.1
        )
        total_kw = load_kw + self.base_kw + rng.gauss(0.0, 0.03)
        self.kwh += max(total_kw, 0.0) * dt / 3600.0
        motorish = min(load_kw / max(total_kw, 0.1), 1.0)
        pf = 0.97 - 0.1 * motorish
        v: dict[str, float] = {}
        for i in range(3):
            self.volts[i] += rng.gauss(0.0, 0.05) - (self.volts[i] - 230.0) * 0.01
            p_w = total_kw * 1000.0 * self.split[i] * (1.0 + rng.gauss(0.0, 0.005))
            va = p_w / pf
            v[f"phase{i + 1}_voltage"] = self.volts[i]
            v[f"phase{i + 1}_current"] = va / self.volts[i]
            v[f"phase{i + 1}_power"] = p_w
            v[f"phase{i + 1}_va"] = va
            v[f"phase{i + 1}_var"] = math.sqrt(max(va * va - p_w * p_w, 0.0))
            v[f"phase{i + 1}_pf"] = pf
        currents = [v[f"phase{i}_current"] for i in (1, 2, 3)]
        v["avg_ln_voltage"] = sum(self.volts) / 3.0
        v["avg_line_current"] = sum(currents) / 3.0
        v["sum_line_current"] = sum(currents)
        v["total_power"] = sum(v[f"phase{i}_power"] for i in (1, 2, 3))
        v["total_va"] = sum(v[f"phase{i}_va"] for i in (1, 2, 3))
        v["total_var"] = sum(v[f"phase{i}_var"] for i in (1, 2, 3))
        v["total_pf"] = pf
        v["frequency"] = self.freq
        v["import_kwh"] = self.kwh
        v["export_kwh"] = 0.0
        v["total_kwh"] = self.kwh
        v["demand_period"] = 60.0
        v["system_type"] = 3.0
        self.values = v


class PlantProcess:
    """The whole line; ``advance_to`` runs fixed steps up to a plant time."""

    def __init__(self, seed: int, start_of_day: float = DEFAULT_START_OF_DAY) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.start_of_day = start_of_day
        self.t = 0.0
        self.events: list[ProcessEvent] = []
        self.conveyor = Conveyor(self.rng)
        self.press = Press(self.rng)
        self.packer = Packer(self.rng)
        self.meters = (
            Meter(self.rng, 18_000.0 + self.rng.uniform(0, 2000), base_kw=2.2),
            Meter(self.rng, 9_000.0 + self.rng.uniform(0, 1000), base_kw=1.5),
        )
        self.compressor_phase = self.rng.uniform(0, 120)
        self.cabinet_temp = 31.0
        self.air = 6.3
        self.shift = shift_of(start_of_day)
        self.io_outputs: dict[str, bool] = {}
        self.io_inputs: dict[str, bool] = {}
        self.step()  # populate every derived value once
        self.truth = Witness(self)  # the plant's own account of the run (lab/truth.py)

    # -- time -------------------------------------------------------------------------------
    def time_of_day(self, t: float | None = None) -> float:
        return (self.start_of_day + (self.t if t is None else t)) % 86400

    def advance_to(self, t: float) -> int:
        """Run whole steps until plant time ``t``; returns how many were run."""
        n = 0
        while self.t + DT <= t + 1e-9:
            self.t += DT
            self.step()
            self.truth.record(self, DT)
            n += 1
        return n

    def step(self) -> None:
        t = self.t
        tod = self.time_of_day()
        shift = shift_of(tod)
        if shift != self.shift:
            self.shift = shift
            self.conveyor.new_shift()
            self.events.append(ProcessEvent(t, "shift_change", {"shift": shift}))
        c = self.conveyor
        c.step(t, DT, self.events)
        self.press.step(DT, c.speed > 0.05)
        self.packer.step(DT, c.parts_out, self.events, t)
        # auxiliaries: a compressor cycling on ~40 % duty, lighting and controls as base load
        compressor_on = ((t + self.compressor_phase) % 120.0) < 48.0
        self.air += (0.015 if compressor_on else -0.01) * DT
        self.air = min(max(self.air, 5.8), 7.0)
        self.cabinet_temp += (31.0 + 4.0 * (c.speed > 0) - self.cabinet_temp) * DT / 300.0
        self.meters[0].step(DT, c.power + self.press.power)
        self.meters[1].step(DT, self.packer.power + (7.5 if compressor_on else 0.4))
        self.io_outputs = {
            "beacon_green": c.state == 1,
            "beacon_amber": c.state in (2, 4) or (c.state == 0 and in_break(tod)),
            "beacon_red": c.state == 3,
            "horn": c.state == 3 and c.fault != 0 and t - self._last_trip() < 10.0,
            "reject_diverter": self.rng.random() < 0.05 and c.speed > 0,
        }
        moving = c.speed > 0.05
        self.io_inputs = {
            "infeed_eye": moving and self.rng.random() < c.load,
            "outfeed_eye": moving and self.rng.random() < c.load * 0.8,
        }

    def _last_trip(self) -> float:
        for e in reversed(self.events):
            if e.kind == "conveyor_trip":
                return e.t
        return -1e9

    # -- scenario hooks ---------------------------------------------------------------------
    def schedule_bearing_failure(self, start: float, fail: float) -> None:
        """Make the drive-end bearing wear out between two plant times (fails at ``fail``)."""
        self.conveyor.wear_start = self.conveyor.wear
        self.conveyor.degradation = (start, fail)

    # -- register images --------------------------------------------------------------------
    def conveyor_values(self) -> dict[str, float]:
        c = self.conveyor
        state = c.state
        if state == 0 and in_break(self.time_of_day()):
            state = 4
        return {
            "run_command": float(c.run_cmd),
            "fault_reset": 0.0,
            "running": float(c.speed > 0.05),
            "faulted": float(c.fault != 0),
            "microstop": float(c.microstop_left > 0),
            "estop_ok": 1.0,
            "speed_setpoint": c.speed_sp,
            "accel_ramp": c.ramp,
            "recipe_id": float(c.recipe),
            "state": float(state),
            "fault_code": float(c.fault),
            "actual_speed": c.speed,
            "motor_current": c.current,
            "motor_power": c.power,
            "vibration_rms": c.vibration,
            "bearing_temp": c.temp,
            "belt_load": c.load * 100.0 if c.speed > 0 else 0.0,
            "good_count": float(c.good),
            "scrap_count": float(c.scrap),
            "microstop_count": float(c.microstops),
            "run_minutes": float(int(c.run_seconds // 60)),
            "shift": float(self.shift),
        }

    def write_conveyor(self, name: str, value: float) -> None:
        """A client wrote a conveyor PLC register: apply it as the PLC program would."""
        c = self.conveyor
        if name == "run_command":
            want = bool(value)
            if want and c.fault:
                return  # a faulted drive ignores run until the fault is reset
            if want != c.run_cmd:
                self.events.append(ProcessEvent(self.t, "run_command", {"value": int(want)}))
            c.run_cmd = want
        elif name == "fault_reset" and value:
            c.fault_reset = True
        elif name == "speed_setpoint":
            c.speed_sp = min(max(value, 0.0), MAX_SPEED)
            self.events.append(ProcessEvent(self.t, "speed_setpoint", {"value": c.speed_sp}))
        elif name == "accel_ramp":
            c.ramp = min(max(value, 0.5), 20.0)
        elif name == "recipe_id":
            c.recipe = int(value)

    def remote_io_values(self) -> dict[str, float]:
        c = self.conveyor
        moving = c.speed > 0.05
        out = {
            "estop_ok": 1.0,
            "guard_closed": 0.0 if (c.state == 0 and in_break(self.time_of_day())) else 1.0,
            "infeed_eye": float(self.io_inputs["infeed_eye"]),
            "outfeed_eye": float(self.io_inputs["outfeed_eye"]),
            "jam_sensor": float(c.microstop_left > 0),
            "motor_feedback": float(moving),
            "air_ok": float(self.air > 5.5),
            "cabinet_temp_ok": float(self.cabinet_temp < 40.0),
            "cabinet_temp": self.cabinet_temp,
            "air_pressure": self.air,
        }
        out.update({k: float(v) for k, v in self.io_outputs.items()})
        return out

    def press_values(self) -> dict[str, float]:
        p = self.press
        return {
            "status_bits": float(p.status_bits),
            "strokes_setpoint": float(p.spm_sp),
            "hyd_pressure": p.pressure,
            "ram_force": p.force if p.running else 0.0,
            "stroke_count": float(p.strokes),
            "good_parts": float(p.good),
            "oil_temp": p.oil,
            "pump_power": p.power,
            "die_id": float(p.die),
            "cycle_time": float(p.cycle_ms),
            "recipe_no": float(p.recipe),
            "tonnage": p.tonnage,
            "dwell": p.dwell,
            "stroke_length": p.stroke_mm,
        }

    def packaging_values(self) -> dict[str, object]:
        k = self.packer
        return {
            "Status/StateCurrent": int(k.machine.state),
            "Status/StateName": k.machine.name,
            "Status/UnitModeCurrent": 1,
            "Status/CurMachSpeed": float(k.speed),
            "Status/MachPower": float(k.power),
            "Admin/ProdProcessedCount": int(k.cases),
            "Admin/ProdDefectiveCount": int(k.defective),
            "Admin/StopReasonId": int(k.stop_reason),
        }

    def meter_values(self, index: int) -> dict[str, float]:
        return self.meters[index].values

    def snapshot(self) -> dict[str, float]:
        """A few key signals, for tests and status lines."""
        c = self.conveyor
        return {
            "t": self.t,
            "conveyor_state": float(c.state),
            "speed": c.speed,
            "current": c.current,
            "vibration": c.vibration,
            "bearing_temp": c.temp,
            "good": float(c.good),
            "press_strokes": float(self.press.strokes),
            "cases": float(self.packer.cases),
            "meter1_kw": self.meters[0].values["total_power"] / 1000.0,
            "meter2_kw": self.meters[1].values["total_power"] / 1000.0,
            "meter1_kwh": self.meters[0].kwh,
            "meter2_kwh": self.meters[1].kwh,
        }
