"""The nftables compiler: shape of the ruleset, port mapping, and `nft -c` validity."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from otconduit.policy.load import parse_policy
from otconduit.policy.nftables import compile_nftables, service_ports, window_matches
from otconduit.policy.spec import (
    PolicySpec,
    PolicySpecError,
    ServiceSpec,
    WindowSpec,
    load_spec,
    spec_from_policy,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLANT = EXAMPLES / "plant-policy.yaml"

needs_nft = pytest.mark.skipif(
    shutil.which("nft") is None or os.geteuid() != 0,
    reason="nft -c needs the nft binary and root (apt-get install -y nftables)",
)


def _spec(text: str) -> PolicySpec:
    return spec_from_policy(parse_policy(text))


def _nft_check(ruleset: str, tmp_path: Path) -> None:
    f = tmp_path / "r.nft"
    f.write_text(ruleset)
    res = subprocess.run(
        ["nft", "-c", "-f", str(f)], capture_output=True, text=True, timeout=30, check=False
    )
    assert res.returncode == 0, res.stderr


def test_plant_ruleset_shape() -> None:
    spec = load_spec(PLANT)
    out = compile_nftables(spec)
    assert "table inet conduit {" in out
    assert "type filter hook forward priority filter; policy drop;" in out
    assert "ct state established,related counter accept" in out
    rules = [ln.strip() for ln in out.splitlines() if 'comment "conduit ' in ln]
    expected = sum(len(c.services) for c in spec.conduits)
    # one rule per conduit and service in the plant policy (bms-monitoring and
    # substation-scada are the building's and the substation's)
    assert len(rules) == expected == 18
    assert all(" counter accept comment " in r for r in rules)
    for c in spec.conduits:
        mine = [r for r in rules if r.endswith(f'"conduit {c.name}"')]
        assert len(mine) == len(c.services)
    for z in spec.zones:
        assert f"set zone_{z.name.replace('-', '_')} {{" in out
    assert "ip saddr @zone_enterprise ip daddr 127.0.40.100 tcp dport 8080" in out
    assert re.search(r"ip saddr 127\.0\.35\.10 .* tcp dport 102 counter", out)
    assert 'meta day "Sunday" meta hour "02:00"-"06:00"' in out  # engineering-changes
    assert out.rstrip().endswith('counter comment "default deny"\n    }\n}')
    assert compile_nftables(load_spec(PLANT)) == out  # deterministic


@needs_nft
def test_plant_ruleset_passes_nft_check(tmp_path: Path) -> None:
    _nft_check(compile_nftables(load_spec(PLANT)), tmp_path)


@needs_nft
def test_purdue_example_passes_nft_check(tmp_path: Path) -> None:
    _nft_check(compile_nftables(load_spec(EXAMPLES / "purdue-classic.yaml")), tmp_path)


@pytest.mark.parametrize(
    ("proto", "ports", "expected"),
    [
        ("modbus", (), [("tcp", 502)]),
        ("dnp3", (), [("tcp", 20000), ("udp", 20000)]),
        ("enip", (), [("tcp", 44818), ("udp", 2222), ("udp", 44818)]),
        ("enip", (2222,), [("udp", 2222)]),
        ("bacnet", (), [("udp", 47808)]),
        ("profinet", (), [("udp", 34964)]),  # IO-CM; RT and DCP are layer 2
        ("mms", (), [("tcp", 102)]),
        ("http", (8080,), [("tcp", 8080)]),
        ("modbus", (5020,), [("tcp", 5020)]),
        ("udp", (9999,), [("udp", 9999)]),
    ],
)
def test_service_ports(proto: str, ports: tuple[int, ...], expected: list[tuple[str, int]]) -> None:
    assert service_ports(ServiceSpec(proto, ports, ())) == expected


def test_unknown_protocol_needs_ports() -> None:
    with pytest.raises(PolicySpecError, match="unknown protocol"):
        service_ports(ServiceSpec("foobus", (), ()))
    with pytest.raises(PolicySpecError, match="explicit ports"):
        service_ports(ServiceSpec("tcp", (), ()))


def test_window_crossing_midnight() -> None:
    w = WindowSpec("night", ("saturday", "sunday"), "22:00", "04:00")
    assert window_matches(w) == [
        'meta day { "Saturday", "Sunday" } meta hour "22:00"-"23:59:59"',
        'meta day { "Monday", "Sunday" } meta hour "00:00"-"04:00"',
    ]


MIXED = """
version: 1
plant: mixed
hosts: {rtu: 192.0.2.10, scada: 192.0.2.130}
zones:
  - {name: field, level: 1, members: [192.0.2.0/25, "2001:db8:1::/64", "aa:bb:cc:dd:ee:ff"]}
  - {name: control, level: 2, members: [192.0.2.128/25, "2001:db8:2::/64"]}
conduits:
  - name: scada-poll
    from: control
    to: field
    protocols:
      dnp3: {}
      enip: {operations: [read]}
  - name: scada-tcp-only
    from: control
    to: field
    from_hosts: [scada]
    to_hosts: [rtu]
    transports: [tcp]
    protocols: {dnp3: {ports: [20000]}}
"""


def test_mixed_transports_and_families(tmp_path: Path) -> None:
    out = compile_nftables(_spec(MIXED))
    assert "meta l4proto . th dport { tcp . 20000, udp . 20000 }" in out
    assert "meta l4proto . th dport { tcp . 44818, udp . 2222, udp . 44818 }" in out
    assert "ip6 saddr @zone_control_v6 ip6 daddr @zone_field_v6" in out
    assert "# zone field: members aa:bb:cc:dd:ee:ff cannot be matched here" in out
    tcp_only = [ln for ln in out.splitlines() if '"conduit scada-tcp-only"' in ln]
    assert tcp_only == [
        "        ip saddr 192.0.2.130 ip daddr 192.0.2.10 tcp dport 20000 "
        'counter accept comment "conduit scada-tcp-only"'
    ]
    if shutil.which("nft") and os.geteuid() == 0:
        _nft_check(out, tmp_path)


BUILDING_AND_SUBSTATION = """
version: 1
plant: bms-and-substation
zones:
  - {name: bms, level: 1, members: [192.0.2.0/26]}
  - {name: substation, level: 1, members: [192.0.2.64/26]}
  - {name: control, level: 2, members: [192.0.2.128/25]}
conduits:
  - name: bms-supervision
    from: control
    to: bms
    protocols: {bacnet/ip: {operations: [read, identity, write]}}
  - name: scada-telecontrol
    from: control
    to: substation
    protocols: {iec-104: {operations: [read, control, session, diagnostic]}}
"""


def test_bacnet_and_iec104_conduits_compile_to_their_ports() -> None:
    """The registered BACnet/IP and IEC 104 specs give the policy their aliases and
    the firewall their well-known services."""
    spec = _spec(BUILDING_AND_SUBSTATION)
    assert {s.protocol for c in spec.conduits for s in c.services} == {"bacnet", "iec104"}
    out = compile_nftables(spec)
    (bms,) = [ln for ln in out.splitlines() if '"conduit bms-supervision"' in ln]
    assert "udp dport 47808 counter accept" in bms
    (scada,) = [ln for ln in out.splitlines() if '"conduit scada-telecontrol"' in ln]
    assert "tcp dport 2404 counter accept" in scada
    policy = parse_policy(BUILDING_AND_SUBSTATION)
    rules = {name: rule for c in policy.conduits for name, rule in c.protocols.items()}
    assert rules["bacnet"].allows_operation("write")
    assert not rules["bacnet"].allows_operation("control")  # ReinitializeDevice, DCC
    assert rules["iec104"].allows_operation("control")
    assert not rules["iec104"].allows_operation("program")  # file transfer
