"""Policy evaluation on a store built from a real capture, and the CLI around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otconduit.analysis.run import analyze_file
from otconduit.policy import load_policy, parse_policy
from otconduit.policy.check import Violation, asset_levels, evaluate, evaluate_and_store
from otconduit.store import Store, views

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plant-policy.yaml"
PCAP = REPO / "tests" / "data" / "modbus_all_functions.pcap"

# Server 127.0.5.10; clients .100 (read/write/diagnostic/identity/control), .101, .102.
POLICY = """\
version: 1
plant: tiny
hosts: {plc: 127.0.5.10, hmi: 127.0.5.100, eng: 127.0.5.101, office: 127.0.5.102}
zones:
  - {name: cell, level: 1, members: [plc], sl_t: 3}
  - {name: sup, level: 2, members: [hmi, eng], sl_t: 3}
  - {name: office, level: 4, members: [office], sl_t: 1}
maintenance_windows:
  - {name: sunday-early, weekday: sunday, start: "02:00", end: "03:00"}
conduits:
  - name: hmi-poll
    from: sup
    to: cell
    from_hosts: [hmi]
    protocols:
      modbus: {ports: [502], operations: [read, write]}
  - name: eng-changes
    from: sup
    to: cell
    from_hosts: [eng]
    window: sunday-early
    protocols:
      modbus: {ports: [502], operations: [read, identity, other]}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    db = tmp_path_factory.mktemp("pol") / "conduit.db"
    with Store(db) as s:
        analyze_file(s, PCAP)
        yield s


def _by(found: list[Violation], rule: str) -> list[Violation]:
    return [v for v in found if v.rule == rule]


def test_tiny_policy_findings(store: Store) -> None:
    found = evaluate(store, parse_policy(POLICY))
    ops = {(v.src_ip, v.operation) for v in _by(found, "operation-not-allowed")}
    assert ops == {
        ("127.0.5.100", "diagnostic"),
        ("127.0.5.100", "identity"),
        ("127.0.5.100", "control"),
    }
    diag = next(v for v in found if v.operation == "diagnostic")
    assert diag.count == 18 and diag.conduit == "hmi-poll" and diag.frame is not None
    assert diag.first_seen is not None and diag.first_seen <= (diag.last_seen or "")
    late = _by(found, "outside-window")
    assert {v.src_ip for v in late} == {"127.0.5.101"}
    assert {v.operation for v in late} == {"read", "identity", "other"}
    assert all("sunday-early" in v.reason for v in late)
    assert {(v.src_ip, v.dst_ip) for v in _by(found, "no-conduit")} == {
        ("127.0.5.102", "127.0.5.10")
    }
    (bypass,) = _by(found, "bypasses-idmz")
    assert (bypass.src_zone, bypass.dst_zone) == ("office", "cell")
    # sup and cell are both SL-T 3: cleartext Modbus between them, once per conversation.
    clear = _by(found, "cleartext-control-crossing")
    assert sorted(v.src_ip for v in clear) == ["127.0.5.100", "127.0.5.101"]
    assert not _by(found, "asset-in-no-zone")
    assert not _by(found, "protocol-not-allowed")


def test_protocol_and_unzoned(store: Store) -> None:
    text = POLICY.split("  - name: eng-changes")[0]
    text = text.replace("modbus: {ports: [502], operations: [read, write]}", "dnp3: {}")
    pol = parse_policy(text.replace("members: [hmi, eng]", "members: [hmi]"))
    found = evaluate(store, pol)
    (proto,) = _by(found, "protocol-not-allowed")
    assert proto.src_ip == "127.0.5.100" and proto.conduit == "hmi-poll"
    assert [v.src_ip for v in _by(found, "asset-in-no-zone")] == ["127.0.5.101"]
    assert not _by(found, "operation-not-allowed")


def test_intra_zone_free_unless_restricted(store: Store) -> None:
    flat = (
        POLICY.replace("members: [plc]", "members: [plc, hmi, eng, office]")
        .replace("members: [hmi, eng]", "members: [10.0.0.0/8]")
        .replace("members: [office]", "members: [192.168.0.0/16]")
    )
    flat = flat.split("conduits:")[0] + "conduits: []\n"
    assert evaluate(store, parse_policy(flat)) == []
    restricted = flat.replace(
        "conduits: []\n",
        "conduits:\n  - {name: c, from: cell, to: cell, from_hosts: [hmi], to_hosts: [plc],"
        " protocols: {modbus: {ports: [502]}}}\n",
    )
    found = evaluate(store, parse_policy(restricted))
    assert {v.src_ip for v in _by(found, "no-conduit")} == {"127.0.5.101", "127.0.5.102"}
    assert not _by(found, "operation-not-allowed")  # no operations list: all allowed


def test_asset_levels(store: Store) -> None:
    pol = parse_policy(POLICY.replace("members: [plc]", "members: [10.0.0.1]"))
    levels = asset_levels(store, pol)
    assert levels["127.0.5.10"] == (1.0, "inferred")  # gateway role
    assert levels["127.0.5.100"] == (2.0, "policy")
    assert levels["127.0.5.102"] == (4.0, "policy")


def test_store_replaces(store: Store) -> None:
    pol = parse_policy(POLICY)
    first = evaluate_and_store(store, pol)
    evaluate_and_store(store, pol)
    (n,) = store.conn.execute("SELECT count(*) FROM violations WHERE policy = 'tiny'").fetchone()
    assert n == len(first) > 0
    (cap,) = store.conn.execute("SELECT count(*) FROM violations WHERE capture_id IS NOT NULL")
    assert cap[0] > 0


def _app() -> object:
    import typer

    from otconduit.cli.policy_cmd import policy_app, violations

    app = typer.Typer()
    app.add_typer(policy_app, name="policy")
    app.command("violations")(violations)
    return app


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    res = runner.invoke(app, ["policy", "check", str(EXAMPLE)])  # type: ignore[arg-type]
    assert res.exit_code == 0, res.output
    assert "hmi-operation" in res.output and "cell-1" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("level: 4", "level: 9"))
    res = runner.invoke(app, ["policy", "check", str(bad)])  # type: ignore[arg-type]
    assert res.exit_code == 2
    assert f"{bad}:7:" in res.output and len(res.output.strip().splitlines()) == 1
    pol = tmp_path / "p.yaml"
    pol.write_text(POLICY)
    db = tmp_path / "c.db"
    with Store(db) as s:
        analyze_file(s, PCAP)
    args = ["violations", "--policy", str(pol), "--db", str(db), "--format", "json"]
    res = runner.invoke(app, args)  # type: ignore[arg-type]
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    keys = {"ts", "rule", "src_ip", "dst_ip", "src_zone", "dst_zone", "protocol"}
    assert keys | {"operation", "conduit", "reason"} <= set(rows[0])
    res = runner.invoke(app, ["violations", "--policy", str(pol), "--db", str(tmp_path / "x")])  # type: ignore[arg-type]
    assert res.exit_code == 2 and "does not exist" in res.output


def _lab_skip_reason() -> str | None:
    from otconduit.lab.sniffer import capture_unavailable_reason

    if os.geteuid() != 0:
        return "the lab capture needs root"
    return capture_unavailable_reason()


@pytest.mark.slow
def test_lab_capture_against_example_policy(tmp_path: Path) -> None:
    reason = _lab_skip_reason()
    if reason:
        pytest.skip(f"lab capture unavailable: {reason}")
    pcap, labels = tmp_path / "lab.pcap", tmp_path / "labels.jsonl"
    cmd = [
        str(Path(sys.executable).parent / "conduit"),
        "lab",
        "--duration",
        "20",
        "--speed",
        "20",
        "--seed",
        "5",
        "--scenario",
        "rogue-write,plc-stop",
        "--pcap",
        str(pcap),
        "--labels",
        str(labels),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and pcap.exists(), proc.stderr[-2000:]
    with Store(tmp_path / "c.db") as s:
        analyze_file(s, pcap)
        found = evaluate_and_store(s, load_policy(EXAMPLE))
        trends = [c for c in views.conversations(s) if c["server_ip"] == "127.0.35.10"]
    assert any(c["server_port"] == 8080 for c in trends)  # office PCs reading trends
    rogue = [v for v in found if (v.src_ip, v.dst_ip) == ("127.0.40.66", "127.0.10.10")]
    assert {"bypasses-idmz", "no-conduit"} <= {v.rule for v in rogue}
    hmi = [v for v in found if v.src_ip == "127.0.20.10" or v.dst_ip == "127.0.20.10"]
    # Its OPC UA session with the packaging machine has no security (SecurityPolicy None,
    # anonymous): the one design gap the policy reports for it.
    assert [(v.rule, v.dst_ip, v.conduit) for v in hmi] == [
        ("insecure-opcua-crossing", "127.0.10.30", "hmi-operation")
    ]
    office = [v for v in found if v.dst_ip == "127.0.35.10" and v.src_ip.startswith("127.0.40.5")]
    assert office == []


def test_assets_cli_adds_zone_and_level(tmp_path: Path) -> None:
    """`conduit assets --policy` places each asset: by the policy, else inferred from roles."""
    import json as _json
    import subprocess
    import sys as _sys

    from tests.conftest import DATA

    conduit = Path(_sys.executable).with_name("conduit")
    db = tmp_path / "c.db"
    subprocess.run(
        [str(conduit), "analyze", str(DATA / "modbus_all_functions.pcap"), "--db", str(db), "-q"],
        check=True,
    )
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nplant: t\nzones:\n"
        "  - {name: cell, level: 1, members: [127.0.5.10/32], sl_t: 2}\n"
        "conduits: []\n"
    )
    out = subprocess.run(
        [str(conduit), "assets", "--db", str(db), "--policy", str(policy), "-f", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {a["ip"]: a for a in _json.loads(out)}
    assert (rows["127.0.5.10"]["zone"], rows["127.0.5.10"]["level"]) == ("cell", 1)
    assert rows["127.0.5.10"]["level_source"] == "policy"
    client = rows["127.0.5.100"]
    assert client["zone"] is None and client["level_source"] == "inferred"
    assert client["level"] == 2
