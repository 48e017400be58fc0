"""Modbus/TCP identity probe: Read Device Identification (43/14), basic and regular
objects. Answers are read by the monitor's Modbus decoder."""

from otconduit.probe.modbus.dialogue import ModbusProbe
from otconduit.probe.modbus.request import DEFAULT_UNIT, read_device_id

__all__ = ["DEFAULT_UNIT", "ModbusProbe", "read_device_id"]
