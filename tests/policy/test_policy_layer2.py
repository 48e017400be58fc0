"""Layer-2 devices and group addresses in the policy check.

PROFINET and GOOSE conversations have MAC addresses for endpoints. A zone places a device
without IP by listing its MAC (or its VLAN); a MAC that belongs to an IP asset is in that
asset's zone; a group destination (GOOSE multicast, DCP multicast) is never a sweep
target nor a host "in no zone". The PROFINET case is the corpus capture whose two RT
destinations (the MACs of the IO devices 192.168.0.2 and .3, which talk IO-CM over UDP
but send no RT frame themselves) used to be reported as a sweep of two hosts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.inventory.macs import is_group_mac
from otconduit.policy import parse_policy
from otconduit.policy.check import Violation, evaluate
from otconduit.store import Store
from tests.conftest import CORPUS
from tests.protocols.iec61850_helpers import goose_payload
from tests.test_l2_monitor import GOOSE_MCAST, _frames, eth

PROFINET_IO_CM = CORPUS / "icsnpp" / "profinet" / "profinet_io_cm" / "profinet_io_cm.pcap"
CONTROLLER_MAC = "00:12:34:12:34:01"  # 192.168.0.1
DEVICE_MACS = {"12:34:12:34:12:40", "12:34:12:34:12:33"}  # 192.168.0.2, 192.168.0.3
IED = "00:17:a4:dd:98:1e"


def _policy(zones: str, conduits: str = "") -> str:
    return f"version: 1\nplant: l2\nzones:\n{zones}" + (
        f"conduits:\n{conduits}" if conduits else ""
    )


def _layer2(found: list[Violation]) -> list[Violation]:
    return [v for v in found if ":" in (v.src_ip or "") or ":" in (v.dst_ip or "")]


@pytest.fixture(scope="module")
def profinet_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    if not PROFINET_IO_CM.is_file():
        pytest.skip("../shared/corpus is not present (icsnpp/profinet/profinet_io_cm)")
    db = tmp_path_factory.mktemp("pol-l2") / "pn.db"
    store = Store(db)
    analyze_file(store, PROFINET_IO_CM)
    return store


def test_rt_destinations_are_the_io_devices_not_a_sweep(profinet_store: Store) -> None:
    found = evaluate(profinet_store, parse_policy(_policy("  - {name: other, level: 1}\n")))
    assert not [v for v in found if v.targets > 1 or "sweep" in v.reason]
    l2 = _layer2(found)
    # the controller's RT frames to each device: judged as conversations of real hosts
    assert {(v.rule, v.src_ip, v.dst_ip) for v in l2} == {
        ("no-conduit", CONTROLLER_MAC, mac) for mac in DEVICE_MACS
    }
    assert all(f"{CONTROLLER_MAC} is in no zone" in v.reason for v in l2)


def test_a_mac_is_in_the_zone_of_the_ip_asset_carrying_it(profinet_store: Store) -> None:
    policy = parse_policy(_policy("  - {name: cell, level: 1, members: [192.168.0.0/24]}\n"))
    found = evaluate(profinet_store, policy)
    assert not _layer2(found)  # controller and devices all in cell: intra-zone, free


def test_a_zone_listing_macs_places_them_and_conduits_admit_them(profinet_store: Store) -> None:
    zones = (
        "  - {name: cell, level: 1, members: [192.168.0.0/24]}\n"
        f"  - {{name: io, level: 0, members: [{', '.join(sorted(DEVICE_MACS))}]}}\n"
    )
    found = _layer2(evaluate(profinet_store, parse_policy(_policy(zones))))
    assert {(v.rule, v.src_zone, v.dst_zone, v.dst_ip) for v in found} == {
        ("no-conduit", "cell", "io", mac) for mac in DEVICE_MACS
    }
    conduit = "  - {name: rt, from: cell, to: io, protocols: {profinet: {}}}\n"
    assert not _layer2(evaluate(profinet_store, parse_policy(_policy(zones, conduit))))


def _goose_store(tmp_path: Path) -> Store:
    frames = [eth(GOOSE_MCAST, IED, 0x88B8, goose_payload(1, sq), vlan=10) for sq in range(3)]
    store = Store(tmp_path / "goose.db")
    analyze_file(store, _frames(tmp_path, "goose.pcap", frames))
    return store


def test_goose_group_destination_is_no_host(tmp_path: Path) -> None:
    store = _goose_store(tmp_path)
    found = evaluate(store, parse_policy(_policy("  - {name: other, level: 1}\n")))
    assert {(v.rule, v.src_ip, v.dst_ip) for v in found} == {
        ("asset-in-no-zone", IED, None),
        ("no-conduit", IED, GOOSE_MCAST),
    }
    (conv,) = [v for v in found if v.rule == "no-conduit"]
    assert conv.targets == 1 and f"{IED} is in no zone" in conv.reason
    assert GOOSE_MCAST not in conv.reason


@pytest.mark.parametrize("member", [IED, IED.upper().replace(":", "-"), "{vlan: 10}"])
def test_a_publisher_without_ip_is_placed_by_mac_or_vlan(member: str, tmp_path: Path) -> None:
    store = _goose_store(tmp_path)
    found = evaluate(
        store, parse_policy(_policy(f"  - {{name: bay, level: 1, members: [{member}]}}\n"))
    )
    assert found == []  # the IED is in bay, its multicast stays in bay


def test_a_zone_may_list_the_group_address(tmp_path: Path) -> None:
    store = _goose_store(tmp_path)
    zones = (
        f"  - {{name: bay, level: 1, members: [{IED}]}}\n"
        f"  - {{name: station, level: 2, members: [{GOOSE_MCAST}]}}\n"
    )
    found = evaluate(store, parse_policy(_policy(zones)))
    assert [(v.rule, v.src_zone, v.dst_zone) for v in found] == [("no-conduit", "bay", "station")]


def test_is_group_mac() -> None:
    assert is_group_mac(GOOSE_MCAST) and is_group_mac("01-0E-CF-00-00-00")
    assert is_group_mac("ff:ff:ff:ff:ff:ff")
    assert not is_group_mac(IED) and not is_group_mac("12:34:12:34:12:40")
    assert not is_group_mac("192.168.0.1") and not is_group_mac(None)


def test_an_unquoted_all_digit_mac_is_a_mac_member() -> None:
    """YAML 1.1 reads 12:34:12:34:12:40 as a base-60 number; the zone still gets the MAC."""
    zone = parse_policy(_policy("  - {name: io, level: 0, members: [12:34:12:34:12:40]}\n")).zones[
        0
    ]
    assert zone.members == ["12:34:12:34:12:40"]
    assert zone.contains(None, "12:34:12:34:12:40") is not None
