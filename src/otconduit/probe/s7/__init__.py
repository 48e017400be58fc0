"""S7comm identity probe: COTP connect, Setup Communication, Read SZL 0x0011 and 0x001C.
Answers are read by the monitor's S7comm decoder."""

from otconduit.probe.s7.dialogue import S7Probe
from otconduit.probe.s7.request import cotp_connect, read_szl, setup_communication

__all__ = ["S7Probe", "cotp_connect", "read_szl", "setup_communication"]
