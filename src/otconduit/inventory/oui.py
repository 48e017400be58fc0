"""MAC vendor lookup from the IEEE registry shipped offline with netaddr."""

from __future__ import annotations

from functools import lru_cache

import netaddr


@lru_cache(maxsize=65536)
def mac_vendor(mac: str) -> str | None:
    """Organisation that registered the MAC's OUI, or None for unregistered/local MACs."""
    try:
        eui = netaddr.EUI(mac)
        if int(eui) & (1 << 41):  # locally administered: no registry entry can apply
            return None
        org = eui.oui.registration().org
    except (netaddr.AddrFormatError, netaddr.NotRegisteredError, IndexError, ValueError):
        return None
    org = " ".join(str(org).split()).strip(" ,.")
    return org or None
