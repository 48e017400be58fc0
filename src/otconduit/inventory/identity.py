"""What an asset's identity claims add up to: one model, order number and firmware to
show, and the claims that contradict each other.

Each protocol names things its own way (Modbus 43/14 ``ProductCode`` and
``MajorMinorRevision``, the S7 SZL order number and firmware, CIP product name and
revision); an analyst wants one column each. A device that states one vendor over one
protocol and another elsewhere (or a free-text FC 17 server id naming another product)
is either misconfigured or not what it says: that is flagged, never silently resolved.
"""

from __future__ import annotations

import re
from typing import Any

# Attributes in order of preference for each summary field.
MODEL_FROM = ("product_name", "model_name", "model", "product_code", "module_name")
FIRMWARE_FROM = ("firmware", "revision", "firmware_version", "software_version")
ORDER_FROM = ("order_number", "catalog_number")
# A name an operator gave (policy host name, BACnet object-name) outranks the host name
# the network uses (DHCP, NetBIOS, DNS, LLDP...: the IT side's ``hostname`` claims, the
# one with the highest confidence first: a host stating its own name beats a DNS answer).
# PROFINET's NameOfStation (DCP) is the name the engineering project gave the device;
# an IEC 61850 logical device name (GOOSE gocbRef) names an IED that states nothing else.
NAME_FROM = ("name", "device_name", "name_of_station", "hostname", "iec61850_ld")
# Siemens order numbers (MLFB: 6ES7 315-2EH14-0AB0) and Rockwell-style catalog numbers
# (1756-ENBT/A) carry the exact hardware variant, which advisories are written against.
_ORDER_NUMBER = re.compile(r"^(\d[A-Z]{2}\d[\s-]?\d{3}-\w{4,5}-\w{4}|\d{4}-[A-Z0-9]+(/[A-Z])?)$")
# Claims from the same device's protocols that must agree (OUI is the NIC maker: it may
# differ from the device vendor legitimately, so it is not held against the others).
CHECKED = ("vendor", "product_code", "model", "firmware", "revision")
UNTRUSTED_SOURCES = frozenset({"oui"})
_WORD = re.compile(r"[a-z0-9]+")


def _first(identity: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        claim = identity.get(name)
        if claim and claim.get("value"):
            return str(claim["value"])
    return None


def _order_number(identity: dict[str, Any]) -> str | None:
    found = _first(identity, ORDER_FROM)
    if found:
        return found
    model = identity.get("model")
    if model and _ORDER_NUMBER.match(str(model["value"]).strip()):
        return str(model["value"])
    return None


def _words(text: str) -> set[str]:
    """Name-like words: version numbers and short fragments match anything."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and not w.isdigit()}


def _conflicts(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for attr in CHECKED:
        values: dict[str, set[str]] = {}
        for c in claims:
            if c["attribute"] == attr and c["source"] not in UNTRUSTED_SOURCES:
                values.setdefault(str(c["value"]).strip().lower(), set()).add(c["source"])
        if len(values) > 1:
            out.append(
                {
                    "attribute": attr,
                    "claims": sorted(
                        (
                            {"value": c["value"], "source": c["source"]}
                            for c in claims
                            if c["attribute"] == attr and c["source"] not in UNTRUSTED_SOURCES
                        ),
                        key=lambda d: (str(d["source"]), str(d["value"])),
                    ),
                    "note": f"{attr} differs between sources",
                }
            )
    # A free-text server id (Modbus FC 17) that names neither the vendor nor the product
    # another protocol stated describes some other device.
    text = next((c for c in claims if c["attribute"] == "slave_id_text"), None)
    if text is not None:
        said = _words(str(text["value"]))
        stated = [
            c
            for c in claims
            if c["attribute"] in ("vendor", "product_code", "product_name", "model")
            and c["source"] not in UNTRUSTED_SOURCES
            and c["source"] != text["source"]
        ]
        if stated and not any(_words(str(c["value"])) & said for c in stated):
            out.append(
                {
                    "attribute": "slave_id_text",
                    "claims": [{"value": text["value"], "source": text["source"]}]
                    + [{"value": c["value"], "source": c["source"]} for c in stated],
                    "note": f"server id {text['value']!r} names neither the vendor nor the "
                    "product the device states elsewhere",
                }
            )
    return out


def summarize(rec: dict[str, Any]) -> None:
    """Add ``name``, ``model``, ``order_number``, ``firmware``, ``os`` and ``conflicts`` to
    an asset row (the shape of ``views.assets``)."""
    identity = rec.get("identity", {})
    rec["name"] = _first(identity, NAME_FROM)
    rec["os"] = _first(identity, ("os",))  # stated by DHCP, SMB, SSH, HTTP, LLDP, CDP
    rec["model"] = _first(identity, MODEL_FROM)
    rec["order_number"] = _order_number(identity)
    if rec["model"] is None and rec["order_number"] is not None:
        rec["model"] = rec["order_number"]
    rec["firmware"] = _first(identity, FIRMWARE_FROM)
    rec["conflicts"] = _conflicts(rec.get("identity_claims", []))


__all__ = ["summarize"]
