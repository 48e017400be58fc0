"""EtherNet/IP identity probe: ListIdentity (no session). Answers are read by the
monitor's EtherNet/IP decoder."""

from otconduit.probe.enip.dialogue import EnipProbe
from otconduit.probe.enip.request import list_identity

__all__ = ["EnipProbe", "list_identity"]
