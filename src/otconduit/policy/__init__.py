"""Zones-and-conduits policy: model, YAML loading with line-accurate errors, and checks.

``load_policy(path)`` gives a :class:`Policy`; ``check.evaluate(store, policy)`` lists the
traffic in a store that the policy does not allow.
"""

from otconduit.policy.load import load_policy, parse_policy
from otconduit.policy.model import (
    Conduit,
    MaintenanceWindow,
    Policy,
    PolicyError,
    ProtocolRule,
    Zone,
)

__all__ = [
    "Conduit",
    "MaintenanceWindow",
    "Policy",
    "PolicyError",
    "ProtocolRule",
    "Zone",
    "load_policy",
    "parse_policy",
]
