"""Register maps of the plant's devices, as data.

A monitor (or a person reading a capture) needs to know what address 15 of the conveyor
PLC means; these tables are that documentation and also drive the device servers, so the
two cannot drift apart.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

Table = Literal["coil", "discrete", "holding", "input"]
RegType = Literal["bool", "uint16", "int16", "uint32", "float32"]


@dataclass(frozen=True)
class Register:
    """One Modbus data point: where it is, how it is encoded and what it means."""

    name: str
    table: Table
    address: int
    type: RegType
    unit: str = ""
    scale: float = 1.0
    access: Literal["R", "RW"] = "R"
    description: str = ""

    @property
    def width(self) -> int:
        """Number of 16-bit registers (or bits) occupied."""
        return 2 if self.type in ("uint32", "float32") else 1

    def encode(self, value: float) -> list[int]:
        """Engineering value -> raw register words (big-endian word order)."""
        if self.type == "bool":
            return [1 if value else 0]
        if self.type == "float32":
            hi, lo = struct.unpack(">HH", struct.pack(">f", float(value)))
            return [hi, lo]
        raw = round(value / self.scale)
        if self.type == "uint32":
            raw = max(0, min(raw, 0xFFFFFFFF))
            return [raw >> 16, raw & 0xFFFF]
        if self.type == "int16":
            raw = max(-0x8000, min(raw, 0x7FFF))
            return [raw & 0xFFFF]
        return [max(0, min(raw, 0xFFFF))]

    def decode(self, words: list[int]) -> float:
        """Raw register words -> engineering value."""
        if self.type == "bool":
            return float(bool(words[0]))
        if self.type == "float32":
            return float(struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0])
        if self.type == "uint32":
            return ((words[0] << 16) | words[1]) * self.scale
        if self.type == "int16":
            w = words[0]
            return (w - 0x10000 if w & 0x8000 else w) * self.scale
        return words[0] * self.scale


# -- conveyor PLC (127.0.10.10, unit 1) ------------------------------------------------------
CONVEYOR_STATES = {0: "STOPPED", 1: "RUNNING", 2: "MICROSTOP", 3: "FAULT", 4: "PLANNED_STOP"}
CONVEYOR_FAULTS = {0: "NONE", 1: "VIBRATION_TRIP", 2: "BEARING_OVERTEMP", 3: "MOTOR_OVERLOAD"}

CONVEYOR_MAP: tuple[Register, ...] = (
    Register("run_command", "coil", 0, "bool", access="RW", description="1 = run, 0 = stop"),
    Register("fault_reset", "coil", 1, "bool", access="RW", description="write 1 to clear a fault"),
    Register("running", "discrete", 0, "bool", description="belt moving"),
    Register("faulted", "discrete", 1, "bool", description="fault latched"),
    Register("microstop", "discrete", 2, "bool", description="jam / starved, auto-resumes"),
    Register("estop_ok", "discrete", 3, "bool", description="emergency-stop chain healthy"),
    Register(
        "speed_setpoint",
        "holding",
        0,
        "uint16",
        "m/min",
        0.1,
        "RW",
        "belt speed setpoint (recipe 25.0 m/min, max 40.0)",
    ),
    Register("accel_ramp", "holding", 1, "uint16", "m/min/s", 0.1, "RW", "speed ramp rate"),
    Register("recipe_id", "holding", 2, "uint16", access="RW", description="active product"),
    Register("state", "holding", 10, "uint16", description=f"enum {CONVEYOR_STATES}"),
    Register("fault_code", "holding", 11, "uint16", description=f"enum {CONVEYOR_FAULTS}"),
    Register("actual_speed", "holding", 12, "uint16", "m/min", 0.1, description="belt speed"),
    Register("motor_current", "holding", 13, "uint16", "A", 0.01, description="drive current"),
    Register("motor_power", "holding", 14, "uint16", "kW", 0.01, description="drive power"),
    Register(
        "vibration_rms", "holding", 15, "uint16", "mm/s", 0.01, description="drive-end bearing"
    ),
    Register("bearing_temp", "holding", 16, "int16", "degC", 0.1, description="bearing temp"),
    Register("belt_load", "holding", 17, "uint16", "%", 1.0, description="belt occupancy"),
    Register("good_count", "holding", 18, "uint32", "parts", description="good parts (shift)"),
    Register("scrap_count", "holding", 20, "uint32", "parts", description="rejected parts"),
    Register("microstop_count", "holding", 22, "uint16", description="micro-stops (shift)"),
    Register("run_minutes", "holding", 23, "uint16", "min", description="running time (shift)"),
    Register("shift", "holding", 24, "uint16", description="1 = 06-14, 2 = 14-22, 3 = 22-06"),
)

# -- remote I/O block (127.0.10.40, unit 1) -------------------------------------------------
REMOTE_IO_MAP: tuple[Register, ...] = (
    Register("estop_ok", "discrete", 0, "bool", description="e-stop chain closed"),
    Register("guard_closed", "discrete", 1, "bool", description="guard door switch"),
    Register("infeed_eye", "discrete", 2, "bool", description="infeed photo-eye blocked"),
    Register("outfeed_eye", "discrete", 3, "bool", description="outfeed photo-eye blocked"),
    Register("jam_sensor", "discrete", 4, "bool", description="jam detected"),
    Register("motor_feedback", "discrete", 5, "bool", description="contactor feedback"),
    Register("air_ok", "discrete", 6, "bool", description="compressed air above 5.5 bar"),
    Register("cabinet_temp_ok", "discrete", 7, "bool", description="cabinet below 40 degC"),
    Register("beacon_green", "coil", 0, "bool", access="RW", description="stack light green"),
    Register("beacon_amber", "coil", 1, "bool", access="RW", description="stack light amber"),
    Register("beacon_red", "coil", 2, "bool", access="RW", description="stack light red"),
    Register("horn", "coil", 3, "bool", access="RW", description="alarm horn"),
    Register("reject_diverter", "coil", 4, "bool", access="RW", description="reject flap"),
    Register("cabinet_temp", "input", 0, "uint16", "degC", 0.1, description="cabinet temp"),
    Register("air_pressure", "input", 1, "uint16", "bar", 0.01, description="supply air"),
)

# -- Eastron SDM630 energy meter (127.0.10.50 / .51, unit 1) ---------------------------------
# Addresses follow Eastron's "SDM630-Modbus V2" manual, table "Modbus Protocol Input Register
# Parameters": register 3xxxx is read with FC 04 at start address 3xxxx - 30001, each value an
# IEEE-754 float32 in two registers, high word first. E.g. 30001 (0x0000) phase 1 line to
# neutral volts, 30007 (0x0006) phase 1 current, 30013 (0x000C) phase 1 power, 30053 (0x0034)
# total system power, 30071 (0x0046) frequency, 30073 (0x0048) import kWh, 30343 (0x0156)
# total kWh. Holding registers 40003 (0x0002) demand period and 40011 (0x000A) system type
# come from the same manual's "Holding Register Parameters" table.
_SDM_INPUTS = (
    ("phase1_voltage", 0x0000, "V"),
    ("phase2_voltage", 0x0002, "V"),
    ("phase3_voltage", 0x0004, "V"),
    ("phase1_current", 0x0006, "A"),
    ("phase2_current", 0x0008, "A"),
    ("phase3_current", 0x000A, "A"),
    ("phase1_power", 0x000C, "W"),
    ("phase2_power", 0x000E, "W"),
    ("phase3_power", 0x0010, "W"),
    ("phase1_va", 0x0012, "VA"),
    ("phase2_va", 0x0014, "VA"),
    ("phase3_va", 0x0016, "VA"),
    ("phase1_var", 0x0018, "VAr"),
    ("phase2_var", 0x001A, "VAr"),
    ("phase3_var", 0x001C, "VAr"),
    ("phase1_pf", 0x001E, ""),
    ("phase2_pf", 0x0020, ""),
    ("phase3_pf", 0x0022, ""),
    ("avg_ln_voltage", 0x002A, "V"),
    ("avg_line_current", 0x002E, "A"),
    ("sum_line_current", 0x0030, "A"),
    ("total_power", 0x0034, "W"),
    ("total_va", 0x0038, "VA"),
    ("total_var", 0x003C, "VAr"),
    ("total_pf", 0x003E, ""),
    ("frequency", 0x0046, "Hz"),
    ("import_kwh", 0x0048, "kWh"),
    ("export_kwh", 0x004A, "kWh"),
    ("total_kwh", 0x0156, "kWh"),
)
SDM630_MAP: tuple[Register, ...] = (
    *(
        Register(name, "input", addr, "float32", unit, description=f"SDM630 3{addr + 1:04d}")
        for name, addr, unit in _SDM_INPUTS
    ),
    Register("demand_period", "holding", 0x0002, "float32", "min", access="RW"),
    Register("system_type", "holding", 0x000A, "float32", access="RW", description="3 = 3P4W"),
)

# -- press cell S7 CPU (127.0.10.20, rack 0 slot 2) -----------------------------------------


@dataclass(frozen=True)
class S7Field:
    """One variable in an S7 data block: DB number, byte offset and S7 type."""

    name: str
    db: int
    offset: int
    type: Literal["WORD", "INT", "DINT", "REAL"]
    unit: str = ""
    access: Literal["R", "RW"] = "R"
    description: str = ""

    @property
    def size(self) -> int:
        return 2 if self.type in ("WORD", "INT") else 4

    @property
    def fmt(self) -> str:
        return {"WORD": ">H", "INT": ">h", "DINT": ">i", "REAL": ">f"}[self.type]


PRESS_STATUS_DB = 1
PRESS_RECIPE_DB = 2
PRESS_DB_SIZES = {PRESS_STATUS_DB: 32, PRESS_RECIPE_DB: 64}
PRESS_MAP: tuple[S7Field, ...] = (
    S7Field("status_bits", 1, 0, "WORD", description="b0 running, b1 fault, b2 CPU RUN, b3 part"),
    S7Field("strokes_setpoint", 1, 2, "INT", "1/min", "RW", "stroke rate setpoint"),
    S7Field("hyd_pressure", 1, 4, "REAL", "bar", description="main cylinder pressure"),
    S7Field("ram_force", 1, 8, "REAL", "kN", description="peak force of the last stroke"),
    S7Field("stroke_count", 1, 12, "DINT", description="strokes since reset"),
    S7Field("good_parts", 1, 16, "DINT", description="parts pressed in tolerance"),
    S7Field("oil_temp", 1, 20, "REAL", "degC", description="hydraulic oil temperature"),
    S7Field("pump_power", 1, 24, "REAL", "kW", description="hydraulic pump power"),
    S7Field("die_id", 1, 28, "INT", description="installed die"),
    S7Field("cycle_time", 1, 30, "INT", "ms", description="last cycle time"),
    S7Field("recipe_no", 2, 0, "INT", access="RW", description="recipe number"),
    S7Field("tonnage", 2, 2, "REAL", "kN", "RW", "force limit"),
    S7Field("dwell", 2, 6, "REAL", "s", "RW", "dwell time at bottom dead centre"),
    S7Field("stroke_length", 2, 10, "REAL", "mm", "RW", "stroke length"),
)

# -- packaging machine (OPC UA, 127.0.10.30:4840) -------------------------------------------


@dataclass(frozen=True)
class UaTag:
    """One OPC UA variable under the packaging machine object (PackTags naming)."""

    path: str  # "Status/StateCurrent"
    type: Literal["Int32", "Float", "String", "Boolean"]
    unit: str = ""
    writable: bool = False
    description: str = ""


PACKAGING_NAMESPACE = "urn:conduit-lab:packaging"
PACKAGING_OBJECT = "CasePacker"
PACKAGING_TAGS: tuple[UaTag, ...] = (
    UaTag("Command/CntrlCmd", "Int32", writable=True, description="PackML command number"),
    UaTag("Command/CmdChangeRequest", "Boolean", writable=True, description="execute command"),
    UaTag("Command/MachSpeed", "Float", "cases/min", True, "speed setpoint"),
    UaTag("Status/StateCurrent", "Int32", description="PackML state number"),
    UaTag("Status/StateName", "String", description="PackML state name"),
    UaTag("Status/UnitModeCurrent", "Int32", description="1 = Production"),
    UaTag("Status/CurMachSpeed", "Float", "cases/min", description="actual speed"),
    UaTag("Status/MachPower", "Float", "kW", description="electrical load"),
    UaTag("Admin/ProdProcessedCount", "Int32", "cases", description="cases packed"),
    UaTag("Admin/ProdDefectiveCount", "Int32", "cases", description="cases rejected"),
    UaTag("Admin/StopReasonId", "Int32", description="0 none, 1 starved, 2 planned, 3 fault"),
)


def register(regs: tuple[Register, ...], name: str) -> Register:
    """Find a register by name in one of the maps above."""
    for r in regs:
        if r.name == name:
            return r
    raise KeyError(name)


def s7_field(name: str) -> S7Field:
    for f in PRESS_MAP:
        if f.name == name:
            return f
    raise KeyError(name)


def table_size(regs: tuple[Register, ...], table: Table) -> int:
    """Registers (or bits) needed to hold every point of ``table``, at least one."""
    ends = [r.address + r.width for r in regs if r.table == table]
    return max(ends, default=1)
