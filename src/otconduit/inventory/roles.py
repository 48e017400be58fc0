"""Role inference from behaviour: what a host does on the wire says what it is.

Every role carries a confidence and a line of evidence so an analyst can overrule it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otconduit.model import OpClass

# Product lines that are energy/power meters or remote I/O, not controllers: what the
# device says it is outranks what serving requests suggests (both answer Modbus reads).
_METER = re.compile(
    r"\b(sdm\d+\w*|pm\d{3,4}\w*|iem\d+\w*|pac\d{4}\w*|umg ?\d+\w*|em\d{2,3}\w*|diris\w*|"
    r"acuvim\w*|ion\d{4}\w*|powerlogic|sentron|energy ?meter|power ?meter|multimeter|meter)\b",
    re.I,
)
_METER_VENDORS = frozenset({"eastron", "janitza", "carlo gavazzi", "socomec", "accuenergy"})
_REMOTE_IO = re.compile(
    r"\b(rio\b|remote ?i/?o|et ?200\w*|1734-aent\w*|1794-\w+|750-3\d\d|bl20|excom|"
    r"io-?link master|bus coupler|fieldbus coupler)",
    re.I,
)

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


def _device_kind(identity: dict[str, str]) -> RoleGuess | None:
    """A meter or a remote I/O, from the product or vendor the device states."""
    text = " ".join(identity.get(k, "") for k in ("product_name", "model", "product_code"))
    if not text.strip():  # a free-text server id only when nothing better was stated
        text = identity.get("slave_id_text", "")
    vendor = identity.get("vendor", "")
    stated = " ".join(v for v in (vendor, text.strip()) if v)
    if _METER.search(text) or vendor.lower() in _METER_VENDORS:
        return RoleGuess("meter", 0.7, f"states it is {stated} (an energy/power meter line)")
    if _REMOTE_IO.search(text):
        return RoleGuess("io", 0.7, f"states it is {stated} (a remote I/O line)")
    return None


def infer_roles(
    by_protocol: dict[str, Behaviour], identity: dict[str, str] | None = None
) -> list[RoleGuess]:
    """Roles for one host from its behaviour across the industrial protocols it speaks,
    and from what it says it is (``identity``: attribute -> value, best claim first)."""
    out: list[RoleGuess] = []
    b = _merge(by_protocol)
    names = "/".join(sorted(by_protocol))
    kind = _device_kind(identity or {}) if b.operations_served else None
    if kind is not None:
        out.append(kind)
    elif b.operations_served:
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
    if b.operations_sent and b.operations_served and kind is None:
        # A controller that also polls (a PLC as master of its remote I/O, drives or
        # meters) is still a controller, not an operator station.
        out[-1] = RoleGuess(
            out[-1].role,
            out[-1].confidence,
            out[-1].evidence + f"; also polls {len(b.servers_polled)} {names} device(s) "
            "as a master",
        )
        return out
    if b.operations_sent:
        eng = {c: n for c, n in b.classes_sent.items() if c in ENGINEERING_CLASSES}
        # Asking who a device is at connect time (BACnet Who-Is, OPC UA GetEndpoints) is
        # what every client does; identity makes an engineering station only where it is
        # a tenth or more of what the host sends (inventory tools, engineering software).
        ident = eng.get(OpClass.IDENTITY, 0)
        if ident and ident * 10 < b.operations_sent:
            del eng[OpClass.IDENTITY]
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
