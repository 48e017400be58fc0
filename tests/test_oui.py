"""MAC vendor lookup: the answer netaddr's own registry lookup gives, for every kind of
address (registered, unregistered, locally administered, malformed)."""

from __future__ import annotations

import random

import netaddr
import pytest

from otconduit.inventory.oui import _index, mac_vendor


def _netaddr_vendor(mac: str) -> str | None:
    try:
        eui = netaddr.EUI(mac)
        if int(eui) & (1 << 41):
            return None
        org = eui.oui.registration().org
    except (netaddr.AddrFormatError, netaddr.NotRegisteredError, IndexError, ValueError):
        return None
    org = " ".join(str(org).split()).strip(" ,.")
    return org or None


def test_matches_netaddr_on_registered_and_unregistered_ouis() -> None:
    keys = _index()[0]
    rng = random.Random(7)
    registered = [int(k) for k in rng.sample(list(keys), 400)]
    unregistered = [o for o in rng.sample(range(1 << 24), 400) if o not in set(keys.tolist())]
    checked = 0
    for oui in registered + unregistered:
        oui &= ~(1 << 17)  # keep the locally administered bit clear
        mac = ":".join(f"{b:02x}" for b in (oui << 24 | rng.getrandbits(24)).to_bytes(6, "big"))
        assert mac_vendor(mac) == _netaddr_vendor(mac), mac
        checked += mac_vendor(mac) is not None
    assert checked >= 300  # most of the registered sample has an organisation


@pytest.mark.parametrize(
    "mac",
    ["00:00:0c:12:34:56", "00-1B-1B-23-EB-3B", "02:00:00:00:00:01", "zz:00:0c:12:34:56", "00:0c"],
)
def test_formats_and_odd_addresses(mac: str) -> None:
    assert mac_vendor(mac) == _netaddr_vendor(mac)


def test_a_known_vendor() -> None:
    assert mac_vendor("00:1b:1b:23:eb:3b") == "Siemens AG"
