"""Policy proposal from observed traffic, and the `policy` CLI functions."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from otconduit.analysis.run import analyze_file
from otconduit.cli.policy_compile import compile_cmd, init_cmd, paths_cmd
from otconduit.policy.load import load_policy, parse_policy
from otconduit.policy.propose import ProposalError, propose_policy
from otconduit.store import Store

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "tests" / "data" / "modbus_all_functions.pcap"
PLANT = REPO / "examples" / "plant-policy.yaml"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("propose") / "conduit.db"
    store = Store(path)
    try:
        analyze_file(store, PCAP)
    finally:
        store.close()
    return path


def test_proposal_loads_and_has_modbus_conduit(db: Path) -> None:
    store = Store(db, readonly=True)
    try:
        text = propose_policy(store)
    finally:
        store.close()
    policy = parse_policy(text, "proposal")
    (zone,) = policy.zones
    assert zone.name == "net-127-0-5"
    assert zone.level == 1.0  # a Modbus gateway lives there
    assert policy.zone_of("127.0.5.10") is zone
    (conduit,) = policy.conduits
    rule = conduit.protocols["modbus"]
    assert rule.ports == [502]
    assert {"read", "write", "diagnostic"} <= {str(o) for o in rule.operations or []}
    assert [policy.host_ip(h) for h in conduit.to_hosts] == ["127.0.5.10"]
    assert {policy.host_ip(h) for h in conduit.from_hosts} == {
        "127.0.5.100",
        "127.0.5.101",
        "127.0.5.102",
    }
    assert "# level guessed: 127.0.5.10 is gateway" in text
    # Everything that was observed is allowed by the proposal.
    assert conduit.allows("modbus", 502, "read")
    assert conduit.admits("127.0.5.102", "127.0.5.10")


def test_empty_store_is_an_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.db")
    try:
        with pytest.raises(ProposalError, match="no unicast assets"):
            propose_policy(store)
    finally:
        store.close()
    res = CliRunner().invoke(_app(), ["init", "--db", str(tmp_path / "empty.db")])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("compile")(compile_cmd)
    app.command("init")(init_cmd)
    app.command("paths")(paths_cmd)
    return app


def test_cli_compile_init_paths(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(_app(), ["compile", str(PLANT)])
    assert res.exit_code == 0, res.output
    assert 'comment "conduit office-trends"' in res.stdout
    out = tmp_path / "fw.nft"
    res = runner.invoke(_app(), ["compile", str(PLANT), "-o", str(out)])
    assert res.exit_code == 0 and "table inet conduit" in out.read_text()

    res = runner.invoke(_app(), ["init", "--db", str(db)])
    assert res.exit_code == 0, res.output
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(res.stdout)
    assert load_policy(proposal).conduits

    res = runner.invoke(_app(), ["paths", str(PLANT)])
    assert res.exit_code == 0
    assert "zones: enterprise -> idmz -> cell-1" in res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["compile", "/nonexistent/policy.yaml"],
        ["compile", str(PLANT), "--target", "iptables"],
        ["init", "--db", "/nonexistent/conduit.db"],
        ["paths", str(PLANT.with_name("missing.yaml"))],
    ],
)
def test_cli_errors_are_one_line_exit_2(args: list[str]) -> None:
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
