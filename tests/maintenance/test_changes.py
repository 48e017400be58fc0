"""The CSV detector (per-sensor change detection) on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from otconduit.maintenance.changes import ChangeDetector, ChangeParams, score_changes
from otconduit.maintenance.model import ModelError, score_rows

COLS = tuple("abcdefgh")
TRAIN = 400


def _plant(n: int, seed: int = 1) -> np.ndarray:
    """Eight sensors of different scales; the last reads a flow quantised to whole units."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)) * [0.01, 0.02, 0.5, 0.1, 0.3, 0.05, 10.0, 0.45]
    x += [0.2, 0.3, 2.0, 0.1, 80.0, 26.0, 230.0, 32.0]
    return x


def _quantise(x: np.ndarray) -> np.ndarray:
    x[:, 7] = np.round(x[:, 7])
    return x


def test_a_step_is_flagged_from_its_change_point_and_released_after_it() -> None:
    x = _plant(1600)
    x[800:1200, 4] -= 1.5  # five sd for 400 rows, one sensor of eight
    flags = score_changes(x, TRAIN, COLS).anomaly
    hit = np.flatnonzero(flags) + TRAIN
    assert len(hit) and 800 - 10 <= hit[0] <= 800 + 10  # starts at the change point
    assert flags[800 + 40 - TRAIN : 1200 - TRAIN].all()
    assert hit[-1] <= 1200 + 2 * 30 + 10  # released about a window or two after the end
    assert flags[: 800 - 10 - TRAIN].sum() == 0 and flags[1300 - TRAIN :].sum() == 0


def test_one_quantisation_step_that_persists_is_found_a_short_one_is_not() -> None:
    """The SKAB valve files missed before: a closing valve moves the flow by one step."""
    x = _plant(1500, seed=2)
    x[900:1300, 7] -= 1.0
    x = _quantise(x)
    flags = score_changes(x, TRAIN, COLS).anomaly
    assert flags[950 - TRAIN : 1300 - TRAIN].all()
    assert 870 <= np.flatnonzero(flags)[0] + TRAIN <= 930
    short = _plant(1500, seed=2)
    short[900:920, 7] -= 1.0  # twenty seconds of the same drop: a wobble, not a fault
    assert score_changes(_quantise(short), TRAIN, COLS).anomaly.sum() == 0


def test_noise_alone_raises_nothing() -> None:
    out = score_changes(_quantise(_plant(6000, seed=3)), TRAIN, COLS)
    assert out.anomaly.sum() == 0
    assert out.score.max() < 1.0


def test_slow_drift_is_followed() -> None:
    x = _plant(4000, seed=5)
    x[:, 4] += np.linspace(0.0, 9.0, 4000)  # 30 sd over an hour: warming up, not a fault
    x[:, 0] -= np.linspace(0.0, 0.3, 4000)
    assert score_changes(x, TRAIN, COLS).anomaly.sum() == 0


def test_a_lasting_change_becomes_normal_and_going_back_is_no_new_alarm() -> None:
    p = ChangeParams(accept=300)
    x = _plant(2400, seed=6)
    x[700:1800, 2] += 3.0  # six sd, longer than `accept`
    flags = score_changes(x, TRAIN, COLS, p).anomaly
    run = np.flatnonzero(flags) + TRAIN
    assert 690 <= run[0] <= 710 and run[-1] < 700 + 300 + 60
    assert flags[1100 - TRAIN :].sum() == 0  # the return at 1800 is back to known normal


def test_score_over_one_means_alarm_and_cli_scorer_is_this_detector() -> None:
    x = _plant(1200, seed=7)
    x[800:, 5] += 0.5
    det = ChangeDetector(x[:TRAIN], COLS)
    steps = [det.update(row) for row in x[TRAIN:]]
    assert all(s.score < 1 for s in steps[: 800 - TRAIN])
    raised = next(s for s in steps if s.alarm)
    assert raised.score >= 1 and raised.onset is not None and raised.onset <= raised.index
    via_cli = score_rows(x, TRAIN, COLS)
    assert np.array_equal(via_cli.anomaly, score_changes(x, TRAIN, COLS).anomaly)


def test_constant_sensor_too_few_rows_and_bad_values() -> None:
    x = _plant(700)
    x[:, 1] = 7.0
    assert score_changes(x, TRAIN, COLS).anomaly.sum() == 0
    with pytest.raises(ModelError, match="too few"):
        score_changes(x, 60, COLS)
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ModelError, match="missing or infinite"):
        score_changes(bad, TRAIN, COLS)
    with pytest.raises(ModelError, match="one column per sensor"):
        ChangeDetector(x[:TRAIN], COLS[:3])


@pytest.mark.parametrize(
    "kw",
    [{"window": 0}, {"ref_tau": 0}, {"evidence": 0}, {"release": 1.0}, {"hold": -1},
     {"accept": -1}, {"settle": 0}],
)  # fmt: skip
def test_params_are_checked(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ChangeParams(**kw)  # type: ignore[arg-type]
