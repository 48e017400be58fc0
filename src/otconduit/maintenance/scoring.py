"""SKAB's binary scoring: F1, false-alarm rate and missed-alarm rate over every scored row.

FAR = false positives / normal rows and MAR = false negatives / anomalous rows; F1 alone
rewards flagging too much, so the three are always reported together. Summing the
confusion counts over files (rather than averaging per-file scores) is SKAB's own
protocol: a long anomaly-free file weighs by its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from otconduit.maintenance.changes import ChangeParams, score_changes
from otconduit.maintenance.table import Table, read_table

TRAIN_ROWS = 400  # SKAB's protocol: the first 400 rows of each file train the detector


@dataclass(slots=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: np.ndarray, pred: np.ndarray) -> None:
        t, p = np.asarray(truth) != 0, np.asarray(pred) != 0
        self.tp += int((t & p).sum())
        self.fp += int((~t & p).sum())
        self.fn += int((t & ~p).sum())
        self.tn += int((~t & ~p).sum())

    def __iadd__(self, other: Confusion) -> Confusion:
        self.tp, self.fp = self.tp + other.tp, self.fp + other.fp
        self.fn, self.tn = self.fn + other.fn, self.tn + other.tn
        return self

    @property
    def f1(self) -> float:
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if self.tp else 0.0

    @property
    def far(self) -> float:
        n = self.fp + self.tn
        return self.fp / n if n else 0.0

    @property
    def mar(self) -> float:
        n = self.fn + self.tp
        return self.fn / n if n else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "f1": round(self.f1, 4),
            "far": round(self.far, 4),
            "mar": round(self.mar, 4),
            "rows": self.tp + self.fp + self.fn + self.tn,
            "anomalous": self.tp + self.fn,
        }


@dataclass(slots=True)
class Evaluation:
    per_file: dict[str, Confusion] = field(default_factory=dict)
    per_folder: dict[str, Confusion] = field(default_factory=dict)
    overall: Confusion = field(default_factory=Confusion)


def skab_files(root: Path, folders: Iterable[str] | None = None) -> list[Path]:
    """The CSV files of a SKAB tree (``root/<folder>/*.csv``), by folder then number."""

    def key(p: Path) -> tuple[str, int, str]:
        return (p.parent.name, int(p.stem) if p.stem.isdigit() else -1, p.stem)

    wanted = set(folders) if folders is not None else None
    files = [p for p in root.glob("*/*.csv") if wanted is None or p.parent.name in wanted]
    return sorted(files, key=key)


def evaluate(
    files: Iterable[Path], train_rows: int = TRAIN_ROWS, params: ChangeParams | None = None
) -> Evaluation:
    """Score each file with SKAB's protocol and sum the confusion counts per folder and
    overall. Files without an ``anomaly`` column count as all normal."""
    return _evaluate(_load(files, train_rows), train_rows, params)


def _load(files: Iterable[Path], train_rows: int) -> list[tuple[Path, Table]]:
    return [(path, read_table(path, train_rows=train_rows)) for path in files]


def _evaluate(
    tables: list[tuple[Path, Table]], train_rows: int, params: ChangeParams | None
) -> Evaluation:
    ev = Evaluation()
    for path, table in tables:
        scored = score_changes(table.values, train_rows, table.columns, params)
        truth = (
            table.labels[train_rows:]
            if table.labels is not None
            else np.zeros(len(scored.anomaly), dtype=np.int8)
        )
        c = Confusion()
        c.add(truth, scored.anomaly)
        ev.per_file[f"{path.parent.name}/{path.name}"] = c
        ev.per_folder.setdefault(path.parent.name, Confusion())
        ev.per_folder[path.parent.name] += c
        ev.overall += c
    return ev


@dataclass(slots=True)
class LeaveOneOut:
    """Each file scored with the grid point chosen on the other files alone."""

    overall: Confusion = field(default_factory=Confusion)
    chosen: dict[str, ChangeParams] = field(default_factory=dict)


def leave_one_out(
    files: Iterable[Path],
    grid: Sequence[ChangeParams],
    far_max: float = 0.15,
    train_rows: int = TRAIN_ROWS,
) -> LeaveOneOut:
    """Honest validation of a choice of hyper-parameters: for each file, take the grid
    point with the best F1 over the *other* files (FAR at most ``far_max`` there; the
    first such point on a tie), score the held-out file with it, and sum the held-out
    confusion counts."""
    tables = _load(files, train_rows)
    evs = [_evaluate(tables, train_rows, params) for params in grid]
    out = LeaveOneOut()
    for name in evs[0].per_file:
        best: tuple[float, int] | None = None
        for k, ev in enumerate(evs):
            rest = Confusion()
            for other, c in ev.per_file.items():
                if other != name:
                    rest += c
            if rest.far <= far_max and (best is None or rest.f1 > best[0]):
                best = (rest.f1, k)
        k = best[1] if best is not None else 0
        out.overall += evs[k].per_file[name]
        out.chosen[name] = grid[k]
    return out
