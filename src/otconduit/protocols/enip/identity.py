"""What a device says about itself: ListIdentity items and Identity object attributes.

ListIdentity replies (Vol 2 §2-4.2.3, Table 2-4.4) and the Identity object (class 0x01,
Vol 1 §5-2.2, Table 5-2.2 attributes 1-8) carry the same facts: vendor, device type,
product code, revision, status, serial number, product name and state. Both become
:class:`~otconduit.model.IdentityClaim` records with source ``cip_identity``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from otconduit.model import IdentityClaim
from otconduit.protocols.enip._wire import Reader, Truncated
from otconduit.protocols.enip.device_types import device_type_name
from otconduit.protocols.enip.encap import SockAddr, parse_sockaddr
from otconduit.protocols.enip.vendors import vendor_name

SOURCE: Final = "cip_identity"
CONFIDENCE: Final = 0.95

# Vol 1 Table 5-2.4: Identity object attribute 8, State.
STATE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "Nonexistent",
        1: "Device Self Testing",
        2: "Standby",
        3: "Operational",
        4: "Major Recoverable Fault",
        5: "Major Unrecoverable Fault",
        255: "Default for Get_Attributes_All service",
    }
)

# Vol 1 Table 5-2.2: sizes of Identity attributes 1-10 (0 = SHORT_STRING).
_ATTRIBUTE_SIZES: Final[Mapping[int, int]] = MappingProxyType(
    {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 4, 7: 0, 8: 1, 9: 2, 10: 1}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityInfo:
    """Identity attributes; any may be missing (a single-attribute read has one)."""

    vendor_id: int | None = None
    device_type: int | None = None
    product_code: int | None = None
    revision: tuple[int, int] | None = None
    status: int | None = None
    serial: int | None = None
    product_name: str | None = None
    state: int | None = None
    encapsulation_version: int | None = None
    sockaddr: SockAddr | None = None

    def claims(self, ip: str, ts_ns: int) -> list[IdentityClaim]:
        """One claim per known attribute, rendered for people and policies."""
        out: list[tuple[str, str]] = []
        if self.vendor_id is not None:
            out.append(("vendor", vendor_name(self.vendor_id)))
        if self.device_type is not None:
            out.append(("device_type", device_type_name(self.device_type)))
        if self.product_code is not None:
            out.append(("product_code", str(self.product_code)))
        if self.revision is not None:
            out.append(("revision", f"{self.revision[0]}.{self.revision[1]}"))
        if self.serial is not None:
            out.append(("serial", f"0x{self.serial:08x}"))
        if self.product_name:
            out.append(("product_name", self.product_name))
        if self.state is not None:
            out.append(("state", STATE_NAMES.get(self.state, f"0x{self.state:02x}")))
        return [
            IdentityClaim(
                ip=ip,
                attribute=attribute,
                value=value,
                source=SOURCE,
                confidence=CONFIDENCE,
                ts_ns=ts_ns,
            )
            for attribute, value in out
        ]

    def detail(self) -> dict[str, Any]:
        """The raw numbers, for an Operation's detail."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "sockaddr":
                d["socket_address"] = f"{value.ip}:{value.port}"
            elif f.name == "revision":
                d["revision"] = f"{value[0]}.{value[1]}"
            else:
                d[f.name] = value
        if self.vendor_id is not None:
            d["vendor"] = vendor_name(self.vendor_id)
        if self.device_type is not None:
            d["device_type_name"] = device_type_name(self.device_type)
        return d


def _short_string(r: Reader) -> str:
    """SHORT_STRING (Vol 1 §C-6.1): length USINT, then that many ISO 8859-1 characters."""
    return r.take(r.u8("string length"), "string").decode("latin-1").rstrip("\x00")


def _core(r: Reader) -> dict[str, Any]:
    """Attributes 1-7 in order, as both layouts share them."""
    vendor, devtype, product = r.u16("vendor id"), r.u16("device type"), r.u16("product code")
    major, minor = r.u8("major revision"), r.u8("minor revision")
    status, serial = r.u16("status"), r.u32("serial number")
    return {
        "vendor_id": vendor,
        "device_type": devtype,
        "product_code": product,
        "revision": (major, minor),
        "status": status,
        "serial": serial,
        "product_name": _short_string(r),
    }


def parse_list_identity_item(data: bytes) -> tuple[IdentityInfo | None, str | None]:
    """Vol 2 Table 2-4.4: encapsulation version UINT, socket address (16 bytes, network
    order), vendor id UINT, device type UINT, product code UINT, revision USINT[2],
    status WORD, serial UDINT, product name SHORT_STRING, state USINT."""
    r = Reader(data)
    try:
        version = r.u16("encapsulation version")
        sockaddr = parse_sockaddr(r.take(16, "socket address"))
        fields = _core(r)
        state = r.u8("state")
    except (Truncated, ValueError) as exc:
        return None, f"ListIdentity item: {exc}"
    return IdentityInfo(
        encapsulation_version=version, sockaddr=sockaddr, state=state, **fields
    ), None


def parse_get_attributes_all(data: bytes) -> IdentityInfo | None:
    """Vol 1 §5-2.3.1: Get_Attributes_All reply of an Identity instance returns
    attributes 1-7, then optionally state (8) and more."""
    r = Reader(data)
    try:
        fields = _core(r)
    except Truncated:
        return None
    state = r.u8() if r.remaining else None
    return IdentityInfo(state=state, **fields)


def _attribute(attribute: int, r: Reader) -> dict[str, Any]:
    if attribute == 1:
        return {"vendor_id": r.u16()}
    if attribute == 2:
        return {"device_type": r.u16()}
    if attribute == 3:
        return {"product_code": r.u16()}
    if attribute == 4:
        return {"revision": (r.u8(), r.u8())}
    if attribute == 5:
        return {"status": r.u16()}
    if attribute == 6:
        return {"serial": r.u32()}
    if attribute == 7:
        return {"product_name": _short_string(r)}
    if attribute == 8:
        return {"state": r.u8()}
    size = _ATTRIBUTE_SIZES.get(attribute)
    if size is None:
        raise ValueError(f"attribute {attribute} has no known size")
    r.take(size)
    return {}


def parse_get_attribute_single(attribute: int | None, data: bytes) -> IdentityInfo | None:
    """Get_Attribute_Single reply data: the attribute's value alone."""
    if attribute is None:
        return None
    try:
        fields = _attribute(attribute, Reader(data))
    except (Truncated, ValueError):
        return None
    return IdentityInfo(**fields) if fields else None


def parse_get_attribute_list(data: bytes) -> IdentityInfo | None:
    """Vol 1 §A-4.3: count UINT, then per attribute: id UINT, status UINT, value (only
    when the status is 0). Walking stops at the first attribute of unknown size."""
    r = Reader(data)
    fields: dict[str, Any] = {}
    try:
        count = r.u16()
        for _ in range(min(count, 64)):
            attribute, status = r.u16(), r.u16()
            if status != 0:
                continue
            fields.update(_attribute(attribute, r))
    except (Truncated, ValueError):
        pass
    return IdentityInfo(**fields) if fields else None
