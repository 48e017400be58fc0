"""The protocols the engine knows, listed explicitly (no registration by import side
effect): order is the tie-break when two protocols claim the same connection."""

from __future__ import annotations

from otconduit.protocols import dnp3, enip, modbus, s7
from otconduit.protocols.base import ProtocolSpec


def default_protocols() -> tuple[ProtocolSpec, ...]:
    return (modbus.SPEC, dnp3.SPEC, s7.SPEC, enip.SPEC)
