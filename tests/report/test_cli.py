"""Bad input to `conduit report` is one line on stderr and exit 2, before any work and
without leaving a file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.conftest import POLICY, run


def one_line_error(args: list[str], needle: str) -> None:
    res = run("report", *args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert needle in lines[0], lines[0]


def test_missing_database(tmp_path: Path) -> None:
    one_line_error(
        ["--db", str(tmp_path / "none.db"), "-o", str(tmp_path / "r.html")], "does not exist"
    )
    assert not (tmp_path / "r.html").exists()


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite at all " * 100)
    one_line_error(["--db", str(bad), "-o", str(tmp_path / "r.html")], "cannot use database")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("zones: [\n", "invalid YAML"),
        ("version: 1\nplant: p\nzones:\n  - {name: a, level: 7}\n", "not a Purdue level"),
    ],
)
def test_policy_errors(lab_db: Path, tmp_path: Path, text: str, needle: str) -> None:
    pol = tmp_path / "policy.yaml"
    pol.write_text(text)
    one_line_error(
        ["--db", str(lab_db), "--policy", str(pol), "-o", str(tmp_path / "r.html")], needle
    )
    one_line_error(
        [
            "--db",
            str(lab_db),
            "--policy",
            str(tmp_path / "gone.yaml"),
            "-o",
            str(tmp_path / "r.html"),
        ],
        "cannot read policy",
    )


def test_gateway_errors(lab_db: Path, tmp_path: Path) -> None:
    gw = tmp_path / "gateway.yaml"
    gw.write_text("devices: [\n")
    one_line_error(
        ["--db", str(lab_db), "--gateway", str(gw), "-o", str(tmp_path / "r.html")], "gateway.yaml"
    )
    one_line_error(
        [
            "--db",
            str(lab_db),
            "--historian",
            str(tmp_path / "none.db"),
            "-o",
            str(tmp_path / "r.html"),
        ],
        "no historian at",
    )


@pytest.mark.parametrize("name", ["report.txt", "report", "report.docx"])
def test_unknown_extension(lab_db: Path, tmp_path: Path, name: str) -> None:
    one_line_error(["--db", str(lab_db), "-o", str(tmp_path / name)], "name a .html or a .pdf")


def test_unwritable_output(lab_db: Path, tmp_path: Path) -> None:
    one_line_error(
        ["--db", str(lab_db), "-o", str(tmp_path / "no" / "such" / "r.html")], "does not exist"
    )
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    one_line_error(["--db", str(lab_db), "-o", str(a_file / "r.pdf")], "is not a folder")
    folder = tmp_path / "r.html"
    folder.mkdir()
    one_line_error(["--db", str(lab_db), "-o", str(folder)], "is a directory")
    # A folder the kernel will not let anyone create files in, root included.
    one_line_error(["--db", str(lab_db), "-o", "/proc/report.html"], "cannot write")


def test_bad_times(lab_db: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    one_line_error(["--db", str(lab_db), "--from", "yesterday", "-o", out], "--from 'yesterday'")
    one_line_error(
        ["--db", str(lab_db), "--from", "2026-10-01", "--to", "2026-09-01", "-o", out],
        "is not before",
    )


def test_a_failed_run_keeps_the_old_report(lab_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("the previous report")
    one_line_error(
        ["--db", str(lab_db), "--policy", str(tmp_path / "gone.yaml"), "-o", str(out)],
        "cannot read policy",
    )
    assert out.read_text() == "the previous report"
    res = run("report", "--db", str(lab_db), "--policy", str(POLICY), "-o", str(out))
    assert res.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left
