"""BACnet/IP identity probe: ReadProperty of the Device object's vendor-name, model-name
and firmware-revision (UDP 47808), with its own small codec (the monitor has no BACnet
decoder yet)."""

from otconduit.probe.bacnet.codec import parse_answer, read_property
from otconduit.probe.bacnet.dialogue import BacnetProbe

__all__ = ["BacnetProbe", "parse_answer", "read_property"]
