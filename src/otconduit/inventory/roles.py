"""Role inference from behaviour: what a host does on the wire says what it is.

Every role carries a confidence and a line of evidence so an analyst can overrule it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otconduit.model import OpClass

# Operation classes that an operator HMI rarely issues but an engineering station does.
ENGINEERING_CLASSES = {OpClass.PROGRAM, OpClass.FIRMWARE, OpClass.DIAGNOSTIC, OpClass.IDENTITY}


@dataclass(slots=True)
class Behaviour:
    """Per-host, per-protocol counters gathered during analysis."""

    servers_polled: set[str] = field(default_factory=set)
    clients_served: set[str] = field(default_factory=set)
    units_served: set[int] = field(default_factory=set)
    classes_sent: dict[str, int] = field(default_factory=dict)
    operations_sent: int = 0
    operations_served: int = 0


@dataclass(frozen=True, slots=True)
class RoleGuess:
    role: str
    confidence: float
    evidence: str


def _merge(by_protocol: dict[str, Behaviour]) -> Behaviour:
    total = Behaviour()
    for b in by_protocol.values():
        total.servers_polled |= b.servers_polled
        total.clients_served |= b.clients_served
        total.operations_sent += b.operations_sent
        total.operations_served += b.operations_served
        for c, n in b.classes_sent.items():
            total.classes_sent[c] = total.classes_sent.get(c, 0) + n
    return total


def infer_roles(by_protocol: dict[str, Behaviour]) -> list[RoleGuess]:
    """Roles for one host from its behaviour across the industrial protocols it speaks."""
    out: list[RoleGuess] = []
    b = _merge(by_protocol)
    names = "/".join(sorted(by_protocol))
    if b.operations_served:
        # Unit ids 0 and 255 are the "this device" addresses of Modbus/TCP; several real
        # unit ids behind one IP is the signature of a TCP-to-serial gateway.
        modbus = by_protocol.get("modbus")
        real_units = {u for u in modbus.units_served if u not in (0, 255)} if modbus else set()
        if len(real_units) > 1:
            out.append(
                RoleGuess(
                    "gateway",
                    0.6,
                    f"serves modbus for {len(real_units)} unit ids "
                    f"({', '.join(map(str, sorted(real_units)[:8]))})",
                )
            )
        else:
            out.append(
                RoleGuess(
                    "plc",
                    0.6,
                    f"answers {b.operations_served} {names} requests from "
                    f"{len(b.clients_served)} client(s)",
                )
            )
    if b.operations_sent:
        eng = {c: n for c, n in b.classes_sent.items() if c in ENGINEERING_CLASSES}
        if eng:
            detail = ", ".join(f"{n} {c}" for c, n in sorted(eng.items()))
            out.append(
                RoleGuess("engineering_workstation", 0.6, f"sends {names} {detail} operations")
            )
        writes = b.classes_sent.get(OpClass.WRITE, 0) + b.classes_sent.get(OpClass.CONTROL, 0)
        reads = b.classes_sent.get(OpClass.READ, 0)
        if reads or writes or not eng:
            # Writing makes it an operator station; reading many devices and never writing
            # is what historians and data collectors do.
            role = "hmi_scada" if writes or len(b.servers_polled) < 3 else "scada_historian"
            out.append(
                RoleGuess(
                    role,
                    0.5,
                    f"polls {len(b.servers_polled)} {names} server(s): {reads} reads, "
                    f"{writes} writes/controls",
                )
            )
    return out
