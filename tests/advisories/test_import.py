"""`conduit advisories import`: files, folders and archives; idempotent; hostile input
reported per file, never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from otconduit.advisories.importer import import_paths
from otconduit.store import Store
from otconduit.store import advisories as adb
from tests.advisories.conftest import SNAPSHOT, Imported, needs_csaf
from tests.advisories.csafdocs import document, dumps, product

CONDUIT = Path(sys.executable).with_name("conduit")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONDUIT), *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
        timeout=300,
    )


def doc(tid: str, version: str = "1", fw: str = "vers:all/<V3.2.17") -> bytes:
    return dumps(
        document(
            tid,
            [product("P1", "Siemens", "SIMATIC S7-300 CPU 315-2 PN/DP", fw)],
            {"known_affected": ["P1"]},
            version=version,
        )
    )


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> None:
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("docs/link.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"  # never followed: only regular members are read
        tar.addfile(link)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder of good, repeated, broken and foreign files."""
    d = tmp_path / "in"
    (d / "nested").mkdir(parents=True)
    (d / "a.json").write_bytes(doc("EX-A"))
    (d / "a-copy.json").write_bytes(doc("EX-A"))  # same document twice
    (d / "broken.json").write_bytes(b'{"document": {"csaf_version": "2.0", ')
    (d / "other.json").write_text(json.dumps({"hello": "world"}))
    (d / "old.json").write_text(json.dumps({"document": {"csaf_version": "1.2"}}))
    (d / "feed.json").write_text(json.dumps({"feed": {"id": "x", "entry": []}}))
    (d / "notes.txt").write_text("not a document")
    _tar(d / "nested" / "more.tar.gz", {"docs/b.json": doc("EX-B"), "docs/bad.json": b"\x00\xff"})
    with zipfile.ZipFile(d / "nested" / "z.zip", "w") as z:
        z.writestr("c.json", doc("EX-C"))
    # An archive cut short: what came before the damage is imported, the rest reported.
    _tar(tmp_path / "whole.tar.xz", {f"d/{i}.json": doc(f"EX-T{i}") for i in range(5)}, "w:xz")
    data = (tmp_path / "whole.tar.xz").read_bytes()
    (d / "cut.tar.xz").write_bytes(data[: len(data) // 2])
    return d


def test_folder_with_bad_files(mixed: Path, tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []
    with Store(tmp_path / "c.db") as store:
        rep = import_paths(store, [mixed], on_problem=lambda n, r: problems.append((n, r)))
        ids = set(adb.ids(store))
    assert {"EX-A", "EX-B", "EX-C"} <= ids
    assert rep.unchanged == 1  # the copy
    assert rep.not_advisories == 1  # the feed, passed over quietly
    names = {
        Path(n.split("!")[0]).name + ("!" + n.split("!")[1] if "!" in n else "")
        for n, _ in problems
    }
    assert {"broken.json", "other.json", "old.json", "more.tar.gz!docs/bad.json"} <= names
    assert any(n.endswith("cut.tar.xz") and "unreadable" in r for n, r in problems)
    assert rep.skipped == len(problems)
    assert "notes.txt" not in str(problems)


def test_reimport_is_idempotent_and_versions_replace(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_bytes(doc("EX-A"))
    with Store(tmp_path / "c.db") as store:
        assert import_paths(store, [f]).new == 1
        assert import_paths(store, [f]).unchanged == 1
        rows = store.conn.execute("SELECT count(*) FROM advisory_products").fetchone()[0]
        f.write_bytes(doc("EX-A", version="2", fw="vers:all/<V3.2.19"))
        assert import_paths(store, [f]).updated == 1
        got = store.conn.execute("SELECT version FROM advisory_products").fetchall()
        assert got == [("vers:all/<V3.2.19",)] and rows == 1
        f.write_bytes(doc("EX-A", version="1"))
        assert import_paths(store, [f]).older == 1  # the stored version 2 is kept
        assert store.conn.execute("SELECT version FROM advisories").fetchall() == [("2",)]


def test_cli_reports_one_line_per_bad_file(mixed: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    res = run("advisories", "import", mixed, "--db", db)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    bad = [line for line in res.stderr.splitlines() if line.startswith("skipped ")]
    assert len(bad) == 5, res.stderr  # broken, other, old, bad member, cut archive
    assert "new" in res.stdout and "skipped as malformed" in res.stdout
    res = run("advisories", "import", tmp_path / "nothing-here", "--db", db)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "no such file or folder" in res.stderr


def test_cli_list_and_show(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    (tmp_path / "a.json").write_bytes(doc("EX-A"))
    assert run("advisories", "import", tmp_path / "a.json", "--db", db).returncode == 0
    listed = json.loads(run("advisories", "list", "--db", db, "-f", "json").stdout)
    assert [r["id"] for r in listed] == ["EX-A"] and listed[0]["cvss"] == 7.5
    assert json.loads(
        run("advisories", "list", "--db", db, "--vendor", "siemens ag", "-f", "json").stdout
    )
    assert (
        json.loads(
            run("advisories", "list", "--db", db, "--vendor", "Rockwell", "-f", "json").stdout
        )
        == []
    )
    shown = json.loads(run("advisories", "show", "ex-a", "--db", db, "-f", "json").stdout)[0]
    assert shown["id"] == "EX-A" and shown["products"][0]["status"] == "known_affected"
    assert shown["vulnerabilities"][0]["cve"] == "CVE-2099-0001"
    text = run("advisories", "show", "EX-A", "--db", db).stdout
    assert "CVE-2099-0001" in text and "vendor_fix" in text
    raw = run("advisories", "show", "EX-A", "--db", db, "--csaf").stdout
    assert json.loads(raw)["document"]["tracking"]["id"] == "EX-A"
    res = run("advisories", "show", "EX-B", "--db", db)
    assert res.returncode == 2 and "no advisory 'EX-B'" in res.stderr


@needs_csaf
def test_whole_snapshot(snapshot_db: Imported) -> None:
    """2,380 JSON files: 2,379 advisories and CISA's ROLIE feed, under a minute."""
    rep = snapshot_db.report
    print(f"\nsnapshot import: {rep.summary()} (wall {snapshot_db.seconds:.1f} s)")
    with tarfile.open(SNAPSHOT) as tar:
        json_members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
    assert len(json_members) == 2380
    assert (rep.new, rep.skipped, rep.not_advisories) == (2379, 0, 1)
    assert snapshot_db.seconds < 60
    with Store(snapshot_db.db, readonly=True) as store:
        assert adb.count(store) == 2379
        n = store.conn.execute("SELECT count(DISTINCT advisory_id) FROM advisory_products")
        assert n.fetchone()[0] >= 2300  # nearly every advisory names its products


@needs_csaf
def test_whole_snapshot_again_changes_nothing(snapshot_db: Imported, tmp_path: Path) -> None:
    with Store(snapshot_db.db) as store:
        before = store.conn.execute("SELECT count(*) FROM advisory_products").fetchone()[0]
        rep = import_paths(store, [SNAPSHOT])
        after = store.conn.execute("SELECT count(*) FROM advisory_products").fetchone()[0]
    assert (rep.unchanged, rep.new, rep.updated) == (2379, 0, 0) and before == after
