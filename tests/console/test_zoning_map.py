"""Zones and levels on the console: the fast zone index gives Policy.zone_of's answers,
and the map stacks Purdue levels top to bottom with edges coloured by verdict."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from otconduit.console.netmap import build_map
from otconduit.console.zoning import Zoning
from otconduit.policy import load_policy, parse_policy
from otconduit.policy.check import evaluate_and_store
from otconduit.policy.zoneindex import ZoneIndex
from otconduit.store import Store
from tests.console.conftest import POLICY
from tests.console.synth import write_plant

OVERLAPS = """
version: 1
plant: overlaps
timezone: UTC
hosts: {hmi: 10.0.1.5}
zones:
  - {name: wide, level: 2, members: [10.0.0.0/8, {vlan: 7}]}
  - {name: narrow, level: 1, members: [10.0.1.0/24, hmi, "2001:db8::/32"]}
  - {name: macs, level: 1, members: ["00:11:22:33:44:55"]}
  - {name: vlans, level: 3, members: [{vlan: 9}]}
"""


def test_zone_index_agrees_with_policy_zone_of() -> None:
    rnd = random.Random(5)
    for text in (load_policy(POLICY), parse_policy(OVERLAPS)):
        idx = ZoneIndex(text)
        probes: list[tuple[str | None, str | None, int | None]] = [
            ("127.0.10.10", None, None),
            ("10.0.1.5", None, None),
            ("10.0.2.5", "00:11:22:33:44:55", None),
            ("192.0.2.1", None, 7),
            ("192.0.2.1", None, 9),
            ("2001:db8::1", None, None),
            ("not-an-ip", None, 9),
            (None, "00-11-22-33-44-55", None),
        ]
        for _ in range(2000):
            addr = str(
                ipaddress.IPv4Address(rnd.choice([0x7F000000, 0x0A000000]) + rnd.randrange(1 << 17))
            )
            probes.append((addr, rnd.choice([None, "00:11:22:33:44:55"]), rnd.choice([None, 7, 9])))
        for ip, mac, vlan in probes:
            want = text.scan_zone_of(ip, mac, vlan)
            got = idx.zone_of(ip, mac, vlan)
            assert (got.name if got else None) == (want.name if want else None), (ip, mac, vlan)


PLANT = [
    ("127.0.40.50", []),  # enterprise office PC
    ("127.0.35.10", ["scada_historian"]),  # IDMZ historian
    ("127.0.30.10", []),  # MES
    ("127.0.20.10", ["hmi_scada"]),
    ("127.0.10.10", ["plc"]),
    ("127.0.10.40", ["plc"]),
    ("192.0.2.99", ["plc"]),  # in no zone: level inferred from its role
]
CONVS = [
    ("127.0.20.10", "127.0.10.10", 502),  # allowed by hmi-operation
    ("127.0.40.50", "127.0.10.10", 502),  # enterprise straight to a PLC: violation
    ("127.0.10.10", "127.0.10.40", 502),  # allowed plc-io-scan
]


def test_map_stacks_levels_and_colours_edges(tmp_path: Path) -> None:
    db = tmp_path / "plant.db"
    write_plant(db, PLANT, CONVS, ops_per_conv=3)
    policy = load_policy(POLICY)
    with Store(db) as st:
        evaluate_and_store(st, policy)
        m = build_map(st, Zoning(policy))
    assert m["mode"] == "assets" and m["policy"] == "conduit-lab"
    pos = {n["data"]["id"]: n["position"] for n in m["nodes"] if "position" in n}
    y = {ip: pos[f"asset:{ip}"]["y"] for ip, _ in PLANT}
    assert y["127.0.40.50"] < y["127.0.35.10"] < y["127.0.30.10"] < y["127.0.20.10"]
    assert y["127.0.20.10"] < y["127.0.10.10"] == y["127.0.10.40"]
    parents = {n["data"]["id"]: n["data"].get("parent") for n in m["nodes"]}
    assert parents["asset:127.0.35.10"] == "zone:idmz" and parents["zone:idmz"] == "level:3.5"
    assert parents["asset:192.0.2.99"] == "unzoned:1"  # inferred from its plc role
    edges = {(e["data"]["source"], e["data"]["target"]): e["data"] for e in m["edges"]}
    bad = edges[("asset:127.0.40.50", "asset:127.0.10.10")]
    assert bad["verdict"] == "violation" and "bypasses-idmz" in bad["rules"]
    assert edges[("asset:127.0.20.10", "asset:127.0.10.10")]["verdict"] == "allowed"
    assert edges[("asset:127.0.10.10", "asset:127.0.10.40")]["verdict"] == "allowed"

    with Store(db, readonly=True) as st:
        zones = build_map(st, Zoning(policy), max_nodes=3)
        focus = build_map(st, Zoning(policy), max_nodes=3, zone="cell-1")
        bare = build_map(st, Zoning(None))
    assert zones["mode"] == "zones"
    zedges = {(e["data"]["source"], e["data"]["target"]): e["data"] for e in zones["edges"]}
    assert zedges[("zone:enterprise", "zone:cell-1")]["verdict"] == "violation"
    assert zedges[("zone:supervisory", "zone:cell-1")]["verdict"] == "allowed"
    assert focus["mode"] == "assets"
    shown = {n["data"]["ip"] for n in focus["nodes"] if n["data"]["kind"] == "asset"}
    assert shown == {"127.0.10.10", "127.0.10.40", "127.0.20.10", "127.0.40.50"}
    # Without a policy: levels from roles; stored violations still mark their edges.
    verdicts = {
        (e["data"]["source"], e["data"]["target"]): e["data"]["verdict"] for e in bare["edges"]
    }
    assert verdicts[("asset:127.0.40.50", "asset:127.0.10.10")] == "violation"
    assert verdicts[("asset:127.0.20.10", "asset:127.0.10.10")] == "unchecked"
    assert bare["policy"] is None
