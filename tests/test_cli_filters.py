"""Commands that do not fail silently: a filter value that cannot match is one line naming
the valid values and the closest (exit 2), never an empty table and exit 0; filters take
any case, protocol aliases, CIDR networks and time ranges; stored violations list without
the policy file; evidence is found from any folder and after its capture moved; an unknown
historian tag is one line, not a traceback; ``analyze`` prints a summary that fits a
screen. Everything runs the real ``conduit`` on real captures."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CORPUS, DATA, REPO, needs_shared
from tests.test_cli import run

ALL = DATA / "modbus_all_functions.pcap"
ENIP = DATA / "enip_cpppo.pcap"
POLICY = REPO / "examples" / "plant-policy.yaml"


def rows(*args: str | Path) -> list[dict[str, object]]:
    res = run(*args, "-f", "json")
    assert res.returncode == 0, res.stderr
    out: list[dict[str, object]] = json.loads(res.stdout)
    return out


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == "" and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr
    return res.stderr


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Modbus (every public function code) and EtherNet/IP, checked against the plant's
    policy so violations are stored."""
    path = tmp_path_factory.mktemp("filters") / "c.db"
    res = run("analyze", ALL, ENIP, "--db", path, "--policy", POLICY, "-q")
    assert res.returncode == 0, res.stderr
    return path


@pytest.mark.parametrize(
    ("args", "valid", "closest"),
    [
        (["operations", "--class", "wirte"], "read, write, control", "'write'"),
        (["operations", "--protocol", "modbsu"], "modbus", "'modbus'"),
        (["operations", "--status", "bad"], "ok, exception, no_response, malformed", None),
        (["operations", "--status", "exeption"], "no_response", "'exception'"),
        (
            ["operations", "--function", "WRITE_SINGLE_REGISTR"],
            "READ_COILS",
            "'WRITE_SINGLE_REGISTER'",
        ),
        (
            ["operations", "--capture", "modbus_all_functons.pcap"],
            "enip_cpppo.pcap",
            "'modbus_all_functions.pcap'",
        ),
        (["conversations", "--protocol", "modbsu"], "enip", "'modbus'"),
        (["assets", "--role", "plcc"], "hmi_scada", "'plc'"),
        (["assets", "--protocol", "dnp"], None, None),  # an alias: valid
        (["alerts", "--rule", "proces-write"], "function-code-scan", "'process-write'"),
        (["alerts", "--status", "opne"], "open, acknowledged, closed", "'open'"),
        (["alerts", "--severity", "hihg"], "info, low, medium, high, critical", "'high'"),
        (["alerts", "--technique", "T08555"], "T0855", "'T0855'"),
        (["alerts", "--protocol", "modbsu"], "modbus", "'modbus'"),
        (["violations", "--rule", "no-condiut"], "bypasses-idmz", "'no-conduit'"),
        (["violations", "--protocol", "modbsu"], "modbus", "'modbus'"),
        (["violations", "--zone", "enterprize", "-p", str(POLICY)], "cell-1", "'enterprise'"),
    ],
)
def test_unknown_filter_value_is_one_line_naming_the_valid_ones(
    db: Path, args: list[str], valid: str | None, closest: str | None
) -> None:
    res = run(*args, "--db", db)
    if valid is None:
        assert res.returncode == 0, res.stderr
        return
    err = one_line_error(res)
    assert err.startswith("error: unknown ")
    assert repr(args[2]) in err and args[1] in err
    assert valid in err
    if closest:
        assert f"did you mean {closest}?" in err


def test_values_match_in_any_case_and_protocol_aliases(db: Path) -> None:
    writes = rows("operations", "--db", db, "--class", "write")
    assert writes and rows("operations", "--db", db, "--class", "WRITE") == writes
    ok = rows("operations", "--db", db, "--status", "OK", "--protocol", "Modbus")
    assert ok and all(o["status"] == "ok" and o["protocol"] == "modbus" for o in ok)
    assert rows("operations", "--db", db, "--protocol", "modbus-tcp") == rows(
        "operations", "--db", db, "--protocol", "modbus"
    )
    # EtherNet/IP connections are stored as enip, the CIP operations in them as cip:
    # `cip` is an alias of `enip`, and either finds both.
    cip = rows("operations", "--db", db, "--protocol", "cip")
    assert {o["protocol"] for o in cip} == {"enip", "cip"}
    assert rows("operations", "--db", db, "--protocol", "EtherNet/IP") == cip
    assert rows("conversations", "--db", db, "--protocol", "cip")
    name = rows("operations", "--db", db, "--function", "read_coils")
    assert name and {o["function"] for o in name} == {"READ_COILS"}
    assert rows("operations", "--db", db, "--function", "0x01", "--protocol", "modbus") == name
    # A real function that did not occur lists nothing and is not an error.
    assert rows("operations", "--db", db, "--function", "READ_FIFO_QUEUE") is not None
    assert rows("alerts", "--db", db, "--status", "OPEN")
    assert rows("alerts", "--db", db, "--rule", "Process-Write")
    assert rows("assets", "--db", db, "--role", "HMI")  # hmi -> hmi_scada


@needs_shared
def test_s7_alias(tmp_path: Path) -> None:
    path = tmp_path / "s7.db"
    res = run("analyze", CORPUS / "iti" / "s7" / "snap7_s300_everything.pcapng", "--db", path)
    assert res.returncode == 0, res.stderr
    s7 = rows("operations", "--db", path, "--protocol", "s7")
    assert s7 and {o["protocol"] for o in s7} == {"s7comm"}
    assert rows("operations", "--db", path, "--protocol", "S7COMM") == s7


def test_ip_filters_take_a_cidr_network(db: Path) -> None:
    every = rows("operations", "--db", db)
    net = rows("operations", "--db", db, "--ip", "127.0.5.96/29")  # .96 - .103
    assert net and len(net) == sum(1 for o in every if o["src_ip"] in _hosts(96, 103))
    src = rows("operations", "--db", db, "--src", "127.0.5.100/31")
    assert src and {o["src_ip"] for o in src} == {"127.0.5.100", "127.0.5.101"}
    assert rows("operations", "--db", db, "--dst", "127.0.5.0/24")
    assert rows("operations", "--db", db, "--ip", "10.99.0.0/16") == []
    convs = rows("conversations", "--db", db, "--ip", "127.0.5.100/31")
    assert {c["client_ip"] for c in convs} == {"127.0.5.100", "127.0.5.101"}
    assets = rows("assets", "--db", db, "--ip", "127.0.5.0/24")
    assert {a["ip"] for a in assets} >= {"127.0.5.10", "127.0.5.100"}
    alerts = rows("alerts", "--db", db, "--ip", "127.0.5.0/24")
    assert alerts and len(alerts) < len(rows("alerts", "--db", db))
    assert rows("violations", "--db", db, "--ip", "127.0.5.0/24")
    err = one_line_error(run("operations", "--db", db, "--ip", "127.0.5.300"))
    assert "--ip '127.0.5.300' is not an IP address or a CIDR network" in err


def _hosts(lo: int, hi: int) -> set[str]:
    return {f"127.0.5.{i}" for i in range(lo, hi + 1)}


def test_from_and_to_bound_operations_conversations_alerts_and_violations(db: Path) -> None:
    ops = rows("operations", "--db", db, "--protocol", "modbus")
    mid = str(ops[len(ops) // 2]["ts"])
    late = rows("operations", "--db", db, "--protocol", "modbus", "--from", mid)
    early = rows("operations", "--db", db, "--protocol", "modbus", "--to", mid)
    assert late and early and len(late) + len(early) == len(ops)
    assert all(str(o["ts"]) >= mid for o in late) and all(str(o["ts"]) < mid for o in early)
    # Without a zone a time is UTC, as Conduit prints times.
    assert rows("operations", "--db", db, "--protocol", "modbus", "--from", mid[:-1]) == late
    convs = rows("conversations", "--db", db, "--protocol", "modbus")
    cut = max(str(c["first_seen"]) for c in convs)  # an earlier one had ended by then
    after = rows("conversations", "--db", db, "--protocol", "modbus", "--from", cut)
    assert after == [c for c in convs if str(c["last_seen"]) >= cut]
    assert 0 < len(after) < len(convs)
    # Relative times: the captures are older than a day and younger than a century.
    for cmd in ("operations", "conversations", "alerts", "violations"):
        every = rows(cmd, "--db", db)
        assert every, cmd
        assert rows(cmd, "--db", db, "--from", "-36500d") == every, cmd
        assert rows(cmd, "--db", db, "--from", "-1h") == [], cmd
        assert rows(cmd, "--db", db, "--to", "-36500d") == [], cmd
    alerts = rows("alerts", "--db", db)
    cut = max(str(a["first_seen"]) for a in alerts)
    before = rows("alerts", "--db", db, "--to", cut)
    assert 0 < len(before) < len(alerts)
    viol = rows("violations", "--db", db)
    vcut = max(str(v["first_seen"]) for v in viol)
    assert 0 < len(rows("violations", "--db", db, "--to", vcut)) < len(viol)
    for bad in (["--from", "yesterday"], ["--to", "-1 fortnight"]):
        err = one_line_error(run("operations", "--db", db, *bad))
        assert f"{bad[0]} {bad[1]!r}: use ISO 8601" in err
    err = one_line_error(run("alerts", "--db", db, "--from", "-1h", "--to", "-2h"))
    assert "--from '-1h' is not before --to '-2h'" in err


def test_violations_are_listed_without_the_policy(db: Path) -> None:
    stored = rows("violations", "--db", db)
    assert stored and all(v["policy"] for v in stored)
    checked = rows("violations", "--db", db, "--policy", POLICY)
    assert checked == stored  # checking again stores and lists the same
    keys = {"ts", "rule", "src_ip", "dst_ip", "src_zone", "dst_zone", "protocol", "operation"}
    assert keys | {"conduit", "reason", "count", "capture", "frame", "evidence"} <= set(stored[0])
    rule = str(stored[0]["rule"])
    assert {v["rule"] for v in rows("violations", "--db", db, "--rule", rule)} == {rule}


def test_violations_before_any_check_say_so(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    assert run("analyze", ALL, "--db", path, "-q", "--no-detect").returncode == 0
    res = run("violations", "--db", path)
    assert res.returncode == 0 and "no violations stored" in res.stderr


def _alert_with_evidence(path: Path, cwd: Path | None = None) -> str:
    res = run("alerts", "--db", path, "-f", "json", "--rule", "comm-restart", cwd=cwd)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)[0]["id"])


def test_evidence_from_another_folder(tmp_path: Path) -> None:
    """As `make demo` does: analyse ``demo/plant.pcap`` into ``demo/conduit.db`` from the
    project folder, then cut evidence from elsewhere."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "demo").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(ALL, project / "demo" / "plant.pcap")
    res = run("analyze", "demo/plant.pcap", "--db", "demo/conduit.db", "-q", cwd=project)
    assert res.returncode == 0, res.stderr
    dbfile = project / "demo" / "conduit.db"
    (cap,) = rows("captures", "--db", dbfile)
    assert cap["path"] == str(project / "demo" / "plant.pcap")  # recorded absolute
    aid = _alert_with_evidence(dbfile)
    res = run("evidence", aid, "--db", dbfile, "-w", "e.pcap", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    assert (elsewhere / "e.pcap").stat().st_size > 24 and "wrote" in res.stdout


def test_old_relative_paths_and_moved_captures_are_found(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "demo").mkdir(parents=True)
    elsewhere.mkdir()
    pcap = project / "demo" / "plant.pcap"
    shutil.copy(ALL, pcap)
    dbfile = project / "demo" / "conduit.db"
    assert run("analyze", pcap, "--db", dbfile, "-q").returncode == 0
    aid = _alert_with_evidence(dbfile)
    # A database written before paths were recorded absolute holds them as typed.
    with sqlite3.connect(dbfile) as c:
        c.execute("UPDATE captures SET path = 'demo/plant.pcap'")
        c.execute("UPDATE alert_evidence SET capture_path = 'demo/plant.pcap'")
    res = run("evidence", aid, "--db", dbfile, "-w", "a.pcap", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    reference = (elsewhere / "a.pcap").read_bytes()
    assert rows("captures", "--db", dbfile)[0]["path"] == str(pcap)  # resolved, recorded
    # The capture moves: a clear error, then found by its fingerprint under --capture-dir
    # (among other files, one of them the same size) and its new place remembered.
    archive = tmp_path / "archive" / "2026"
    archive.mkdir(parents=True)
    (archive / "decoy.pcap").write_bytes(b"\0" * pcap.stat().st_size)
    shutil.copy(ENIP, archive / "other.pcap")
    pcap.rename(archive / "renamed.pcap")
    err = one_line_error(run("evidence", aid, "--db", dbfile, "-w", "b.pcap", cwd=elsewhere))
    assert "not readable" in err and "--capture-dir" in err
    res = run(
        "evidence", aid, "--db", dbfile, "-w", "b.pcap", "--capture-dir", tmp_path / "archive",
        cwd=elsewhere,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"found capture {archive / 'renamed.pcap'}" in res.stderr
    assert (elsewhere / "b.pcap").read_bytes() == reference
    res = run("evidence", aid, "--db", dbfile, "-w", "c.pcap", cwd=elsewhere)
    assert res.returncode == 0, res.stderr  # remembered: no --capture-dir needed again
    shown = rows("alert", "show", aid, "--db", dbfile)[0]
    assert shown["evidence"][0]["capture"] == str(archive / "renamed.pcap")  # type: ignore[index]
    # A different file at the recorded place is refused, not cut from.
    shutil.copy(ENIP, archive / "renamed.pcap")
    err = one_line_error(run("evidence", aid, "--db", dbfile, "-w", "d.pcap", cwd=elsewhere))
    assert "is not the file that was analysed" in err


def _historian(tmp_path: Path) -> Path:
    from otconduit.gateway.historian import open_store
    from otconduit.gateway.model import Quality, TagSample

    path = tmp_path / "gateway.db"
    t0 = 1_800_000_000 * 10**9
    names = [
        "acme/plant1/packaging/line1/conveyor/actual_speed",
        "acme/plant1/packaging/line1/conveyor/good_count",
        "acme/plant1/packaging/line2/press/pressure",
        "acme/plant1/utilities/energy/meter-1/frequency",
    ]
    with open_store(path, readonly=False) as store:
        store.write(
            [
                TagSample(path=n, value=float(i), quality=Quality.GOOD, recv_ts_ns=t0 + i)
                for i, n in enumerate(names)
            ]
        )
    return path


def test_history_of_an_unknown_tag_is_one_line_with_the_closest(tmp_path: Path) -> None:
    hist = _historian(tmp_path)
    err = one_line_error(
        run("history", "acme/plant1/packaging/line1/conveyor/actual_sped", "--historian", hist)
    )
    assert "no tag 'acme/plant1/packaging/line1/conveyor/actual_sped'" in err
    assert "did you mean 'acme/plant1/packaging/line1/conveyor/actual_speed'" in err
    # The path without its enterprise/site prefix names the tag it is the tail of.
    err = one_line_error(run("history", "conveyor/good_count", "--historian", hist))
    assert "'acme/plant1/packaging/line1/conveyor/good_count'" in err
    ok = run("history", "acme/plant1/packaging/line2/press/pressure", "--historian", hist)
    assert ok.returncode == 0 and next(csv.DictReader(io.StringIO(ok.stdout)))["value"]


def test_tags_take_a_glob(tmp_path: Path) -> None:
    hist = _historian(tmp_path)
    line1 = rows("tags", "line1/*", "--historian", hist)
    assert [t["path"] for t in line1] == [
        "acme/plant1/packaging/line1/conveyor/actual_speed",
        "acme/plant1/packaging/line1/conveyor/good_count",
    ]
    assert len(rows("tags", "*/FREQUENCY", "PRESS", "--historian", hist)) == 2
    assert len(rows("tags", "--historian", hist)) == 4
    err = one_line_error(run("tags", "lin1/*", "--historian", hist))
    assert "no tag matches 'lin1/*': did you mean 'line1/*'?" in err


def _lines(res: subprocess.CompletedProcess[str]) -> int:
    assert res.returncode == 0, res.stderr
    return len(res.stdout.splitlines())


@pytest.mark.parametrize(
    "capture",
    [
        pytest.param(ALL, id="every-public-function"),
        pytest.param(
            CORPUS / "iti" / "ModbusTCP" / "modbus_test_data_part2.pcap",
            id="function-code-scan",
            marks=needs_shared,
        ),
    ],
)
def test_analyze_prints_a_summary_that_fits_a_screen(capture: Path, tmp_path: Path) -> None:
    short = run("analyze", capture, "--db", tmp_path / "a.db")
    assert _lines(short) <= 40, short.stdout
    for heading in ("capture ", "Assets:", "Industrial conversations:", "operations:"):
        assert heading in short.stdout
    assert "detection:" in short.stdout
    full = run("analyze", capture, "--db", tmp_path / "b.db", "--verbose")
    assert _lines(full) > _lines(short) + 10
    assert "Operations by function" in full.stdout
    functions = {r["function"] for r in rows("operations", "--db", tmp_path / "b.db")}
    assert all(f in full.stdout for f in functions)  # every function, with --verbose
