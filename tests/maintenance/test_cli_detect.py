"""`conduit maintenance detect`: output shape, and hostile tables end in one line, exit 2."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from otconduit.cli.main import app

HEADER = "datetime;Accelerometer1RMS;Current;Temperature;anomaly;changepoint"


def _table(path: Path, n: int = 600, shift_from: int | None = 450) -> Path:
    rng = np.random.default_rng(2)
    lines = [HEADER]
    for i in range(n):
        a, c, t = rng.normal(size=3) * [0.01, 0.2, 0.3] + [0.2, 2.0, 80.0]
        if shift_from is not None and i >= shift_from:
            t += 3.0
        label = int(shift_from is not None and i >= shift_from)
        lines.append(f"2020-03-09 10:{i // 60:02d}:{i % 60:02d};{a};{c};{t};{label};0")
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(*args: str | Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["maintenance", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr


def test_rows_after_training_with_score_and_flag(tmp_path: Path) -> None:
    code, out, _ = _run("detect", "--csv", _table(tmp_path / "t.csv"))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 200 and list(rows[0]) == ["datetime", "score", "anomaly"]
    assert rows[0]["datetime"] == "2020-03-09 10:06:40"
    flags = [int(r["anomaly"]) for r in rows]
    assert sum(flags[:40]) == 0 and all(flags[80:])  # the shift starts at row 450
    code, out, _ = _run("detect", "--csv", tmp_path / "t.csv", "--train-rows", "300", "-f", "json")
    doc = json.loads(out)
    assert code == 0 and len(doc) == 300 and set(doc[0]) == {"datetime", "score", "anomaly"}


def test_time_column_option(tmp_path: Path) -> None:
    p = _table(tmp_path / "t.csv")
    p.write_text(p.read_text().replace("datetime;", "ts;", 1))
    code, _, err = _run("detect", "--csv", p)
    assert code == 2 and "no time column 'datetime'" in err and "--time-column" in err
    code, out, _ = _run("detect", "--csv", p, "--time-column", "ts")
    assert code == 0 and out.startswith("datetime,score,anomaly")  # the output keeps its names


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: "", "is empty"),
        (lambda t: t.replace(";", ","), "the header is ','-separated"),
        (lambda t: t.replace("0.2", "x0.2", 1) if "x" not in t else t, "is not a number"),
        (lambda t: "\n".join(t.splitlines()[:150]), "at least 401 are needed"),
        (lambda t: t.replace("Current", "Temperature", 1), "appears twice"),
        (lambda t: t + "2020-03-09 11:00:00;1;2\n", "3 fields where the header has 6"),
        (lambda t: t.replace(";80.", ";inf", 1).replace(";79.", ";inf", 1), "not a"),
        (lambda t: "datetime;anomaly\n" + "x;0\n" * 500, "no sensor columns"),
        (lambda t: t.replace(";0.", ";\x000.", 1), "is not a number"),
    ],
)
def test_hostile_tables_end_in_one_line(
    tmp_path: Path, mutate: Callable[[str], str], message: str
) -> None:
    p = _table(tmp_path / "t.csv")
    p.write_text(mutate(p.read_text()))
    code, out, err = _run("detect", "--csv", p)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 or len(err) < 400


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_bytes(b"datetime;a\n\xff\xfe;1\n")
    code, _, err = _run("detect", "--csv", p)
    assert code == 2 and "not UTF-8" in err
    code, _, err = _run("detect", "--csv", tmp_path / "none.csv")
    assert code == 2 and "cannot read" in err


def test_too_few_training_rows_for_the_window(tmp_path: Path) -> None:
    code, _, err = _run("detect", "--csv", _table(tmp_path / "t.csv"), "--train-rows", "40")
    assert code == 2 and "too few" in err
