"""Safe active identification (opt-in): one read-only identity dialogue per device and
protocol, for devices that never state their model and firmware on their own.

Each protocol has a folder with its request builder and the dialogue that reads the
answers (Modbus, S7comm and EtherNet/IP through the monitor's own decoders; BACnet/IP and
OPC UA through small codecs of their own). :mod:`.targets` decides what may be probed,
:mod:`.runner` is the only code that opens sockets.
"""

from __future__ import annotations

from otconduit.probe.bacnet import BacnetProbe
from otconduit.probe.base import Dialogue, Message, Outcome
from otconduit.probe.enip import EnipProbe
from otconduit.probe.modbus import ModbusProbe
from otconduit.probe.opcua import OpcUaProbe
from otconduit.probe.s7 import S7Probe

PROBES: dict[str, type[Dialogue]] = {
    "modbus": ModbusProbe,
    "s7comm": S7Probe,
    "enip": EnipProbe,
    "bacnet": BacnetProbe,
    "opcua": OpcUaProbe,
}
ALIASES = {
    "s7": "s7comm",
    "cip": "enip",
    "eip": "enip",
    "ethernet/ip": "enip",
    "modbus-tcp": "modbus",
    "opc-ua": "opcua",
    "bacnet/ip": "bacnet",
}


def protocol_name(text: str) -> str | None:
    """A protocol's probe name from the usual spellings, None when unknown."""
    key = text.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in PROBES else None


def dialogue(
    protocol: str, ip: str, port: int | None = None, modbus_unit: int | None = None
) -> Dialogue:
    """A fresh dialogue for one device (``port``: the protocol's well-known one if None)."""
    cls = PROBES[protocol]
    where = port if port is not None else cls.default_port
    if cls is ModbusProbe and modbus_unit is not None:
        return ModbusProbe(ip, where, modbus_unit)
    return cls(ip, where)


__all__ = ["ALIASES", "PROBES", "Dialogue", "Message", "Outcome", "dialogue", "protocol_name"]
