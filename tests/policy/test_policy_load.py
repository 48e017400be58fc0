"""Policy loading: the example loads, and each kind of mistake is one line naming its line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from otconduit.model import OpClass
from otconduit.policy import PolicyError, load_policy, parse_policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plant-policy.yaml"

SMALL = """\
version: 1
plant: tiny
timezone: Europe/Berlin
hosts:
  plc: 127.0.5.10
  hmi: 127.0.5.100
zones:
  - name: cell
    level: 1
    members: [plc, "02:00:00:aa:bb:cc"]
    sl_t: 3
    owner: OT
    criticality: high
  - name: sup
    level: 2
    members:
      - 127.0.5.96/27
      - vlan: 20
    owner: shared IT/OT
maintenance_windows:
  - name: nightly
    weekday: [mon, tue]
    start: "22:00"
    end: "02:00"
conduits:
  - name: hmi-poll
    from: sup
    to: cell
    from_hosts: [hmi]
    transports: [tcp]
    protocols:
      modbus: {ports: [502], operations: [read, write]}
      cip: {deny_operations: [program, firmware]}
"""


def _err(text: str) -> str:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text, "p.yaml")
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_example_policy_loads() -> None:
    pol = load_policy(EXAMPLE)
    assert pol.plant == "conduit-lab"
    assert pol.zone_of("127.0.10.10").name == "cell-1"  # type: ignore[union-attr]
    assert pol.zone_of("127.0.35.10").is_idmz  # type: ignore[union-attr]
    assert pol.zone_of("10.9.9.9") is None
    assert pol.host_ip("historian") == "127.0.35.10"
    names = [c.name for c in pol.conduits_between("127.0.20.10", "127.0.10.10")]
    assert names == ["hmi-operation"]
    assert pol.conduits_between("127.0.40.66", "127.0.10.10") == []
    sunday = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert pol.in_window("weekly-maintenance", sunday)
    assert not pol.in_window("weekly-maintenance", sunday.replace(hour=7))


def test_extensions_parse() -> None:
    pol = parse_policy(SMALL)
    cell, sup = pol.zones
    assert pol.zone_of("127.0.5.10") is cell
    assert pol.zone_of("10.1.1.1", mac="02-00-00-AA-BB-CC") is cell
    assert pol.zone_of("10.1.1.1", vlan=20) is sup
    assert pol.zone_of("127.0.5.100") is sup
    assert (cell.owner_kind, sup.owner_kind, cell.criticality) == ("OT", "shared", "high")
    (c,) = pol.conduits
    assert c.allows("modbus", 502, "write", "tcp")
    assert not c.allows("modbus", 502, "control")
    assert not c.allows("modbus", 503)
    assert not c.allows("modbus", 502, transport="udp")
    assert c.allows("enip", 44818, OpClass.READ)  # cip is an alias of enip
    assert not c.allows("enip", 44818, "program")
    assert c.admits("127.0.5.100", "127.0.5.10")
    assert not c.admits("127.0.5.101", "127.0.5.10")
    win = pol.window("nightly")
    # 01:00 on Wednesday local is inside Tuesday's window that crosses midnight.
    assert pol.in_window("nightly", datetime(2026, 11, 25, 0, 0, tzinfo=UTC))
    assert not pol.in_window("nightly", datetime(2026, 11, 26, 0, 0, tzinfo=UTC))
    assert win.weekday == ["monday", "tuesday"]


def _line(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("    level: 2\n", "    level: 7\n", "is not a Purdue level"),
        ("    to: cell\n", "    to: cel\n", "unknown zone 'cel'"),
        ("      - 127.0.5.96/27\n", "      - 127.0.5.96/33\n", "not a valid CIDR"),
        ("operations: [read, write]}", "operations: [read, wrtie]}", "unknown operation class"),
        ("    criticality: high\n", "    critical: high\n", "unknown field 'critical'"),
        ("    weekday: [mon, tue]\n", "    weekday: [mon, tea]\n", "unknown weekday"),
        ("timezone: Europe/Berlin", "timezone: Mars/Base", "unknown timezone"),
        ("    from_hosts: [hmi]\n", "    from_hosts: [plc]\n", "is not in zone sup"),
    ],
)
def test_errors_name_the_line(old: str, new: str, expect: str) -> None:
    assert old in SMALL
    bad = SMALL.replace(old, new, 1)
    msg = _err(bad)
    assert expect in msg
    assert msg.startswith(f"p.yaml:{_line(bad, new.strip())}:"), msg


def test_error_line_in_example_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    bad = text.replace("    to: cell-1\n", "    to: cell-9\n", 1)
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    assert str(exc.value).startswith(f"{path}:{_line(bad, 'to: cell-9')}: ")


def test_yaml_syntax_and_duplicates() -> None:
    assert _err("version: 1\nplant: [x\n").startswith("p.yaml:")
    msg = _err(SMALL.replace("  hmi: 127.0.5.100\n", "  hmi: 127.0.5.100\n  plc: 127.0.5.11\n"))
    assert msg.startswith(f"p.yaml:{_line(SMALL, 'hmi: 127.0.5.100') + 1}:")
    assert "duplicate key" in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "nope.yaml")
