"""A table of sensor readings in the SKAB layout: ``;``-separated, a header, a time column
(``datetime``), one numeric column per sensor, and optional label columns (``anomaly``,
``changepoint``) that the detector never reads.

Whatever is wrong with a file is one :class:`TableError` naming the file, and the line
and column where it can be seen: an analyst fixes the export, not our parser.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEPARATOR = ";"
LABEL_COLUMNS = ("anomaly", "changepoint")
MAX_BYTES = 1 << 30  # a sensor table larger than 1 GiB is a mistake, not a file to score


class TableError(ValueError):
    """A sensor table that cannot be scored; the message names the file and the place."""


@dataclass(frozen=True, slots=True)
class Table:
    times: list[str]
    columns: tuple[str, ...]
    values: np.ndarray  # rows x sensors
    labels: np.ndarray | None  # the `anomaly` column (0/1), when present


def _number(text: str, where: str, column: str) -> float:
    try:
        v = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise TableError(f"{where} column {column!r}: {shown!r} is not a number") from None
    if not math.isfinite(v):
        raise TableError(f"{where} column {column!r}: {text!r} is not a finite number")
    return v


def read_table(path: Path, *, time_column: str = "datetime", train_rows: int = 0) -> Table:
    """Read and validate a sensor table; ``train_rows`` > 0 also checks there are rows
    left to score after training."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise TableError(f"{name} is {size} bytes: more than the 1 GiB a table may have")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh, delimiter=SEPARATOR, strict=True))
    except OSError as exc:
        raise TableError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TableError(f"{name} is not UTF-8 text") from None
    except csv.Error as exc:
        raise TableError(f"{name}: not a readable CSV table ({exc})") from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise TableError(f"{name} is empty: expected a header line and rows of readings")
    header = [h.strip() for h in rows[0]]
    if len(header) == 1:
        found = next((s for s in (",", "\t", "|") if s in header[0]), None)
        hint = f" (the header is {found!r}-separated)" if found else ""
        raise TableError(
            f"{name} line 1: one column only{hint}: expected {SEPARATOR!r}-separated "
            f"columns with {time_column!r} and sensor columns"
        )
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise TableError(f"{name} line 1: column {dup!r} appears twice")
    if time_column not in header:
        raise TableError(
            f"{name} line 1: no time column {time_column!r} (columns: {', '.join(header)}); "
            "name it with --time-column"
        )
    t_idx = header.index(time_column)
    label_idx = header.index("anomaly") if "anomaly" in header else None
    sensors = [
        (j, h) for j, h in enumerate(header) if j != t_idx and h.lower() not in LABEL_COLUMNS
    ]
    if not sensors:
        raise TableError(f"{name} line 1: no sensor columns besides {time_column!r}")
    times: list[str] = []
    values = np.empty((len(rows) - 1, len(sensors)))
    labels = np.zeros(len(rows) - 1, dtype=np.int8) if label_idx is not None else None
    for i, row in enumerate(rows[1:]):
        where = f"{name} line {i + 2}"
        if len(row) != len(header):
            raise TableError(f"{where}: {len(row)} fields where the header has {len(header)}")
        times.append(row[t_idx].strip())
        for k, (j, col) in enumerate(sensors):
            values[i, k] = _number(row[j].strip(), where, col)
        if labels is not None and label_idx is not None:
            labels[i] = 1 if _number(row[label_idx].strip(), where, "anomaly") else 0
    if train_rows and len(times) <= train_rows:
        raise TableError(
            f"{name} has {len(times)} rows of readings: at least {train_rows + 1} are needed "
            f"({train_rows} to learn from, then the rows to score)"
        )
    return Table(times, tuple(h for _, h in sensors), values, labels)
