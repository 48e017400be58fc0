"""Test lab: produces real Modbus/TCP traffic and captures it.

The lab is an independent witness for the monitor: it must never import monitor code
(``otconduit.capture``, ``protocols``, ``analysis`` or ``store``), so that a bug in the
monitor cannot hide itself in the fixtures that are supposed to catch it.
"""

from otconduit.lab.sniffer import LoopbackCapture, PcapWriter, read_pcap

__all__ = ["LoopbackCapture", "PcapWriter", "read_pcap"]
