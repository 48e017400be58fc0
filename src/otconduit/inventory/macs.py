"""MAC address text: one spelling, and whether it names a group rather than a device.

Shared by the layer-2 monitor (which hosts a frame shows) and the zones-and-conduits
policy (which zone a MAC endpoint is in); both also see IP addresses in the same
fields, so a text that is not a MAC is never taken for one.
"""

from __future__ import annotations

import re

_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def norm_mac(v: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` for a MAC written with colons or dashes, any case; else None."""
    m = v.strip().lower()
    return m.replace("-", ":") if _MAC.match(m) else None


def is_group_mac(v: str | None) -> bool:
    """A multicast or broadcast MAC address (I/G bit of the first octet set): a layer-2
    group (GOOSE 01:0c:cd:..., PROFINET DCP 01:0e:cf:..., ff:ff:ff:ff:ff:ff), no device."""
    m = norm_mac(v) if v else None
    return m is not None and bool(int(m[:2], 16) & 1)
