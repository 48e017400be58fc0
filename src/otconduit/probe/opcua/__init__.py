"""OPC UA identity probe: Hello, OpenSecureChannel (None), GetEndpoints, Close, with its
own small binary codec (the monitor has no OPC UA decoder yet)."""

from otconduit.probe.opcua.codec import get_endpoints, hello, open_secure_channel
from otconduit.probe.opcua.dialogue import OpcUaProbe

__all__ = ["OpcUaProbe", "get_endpoints", "hello", "open_secure_channel"]
