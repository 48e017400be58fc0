"""The watch model (Monitor) on synthetic data whose answer is known, and its parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from otconduit.maintenance.model import ModelError, Monitor, Params, learn, monitor_rows

COLS = ("a", "b", "c")


def _noise(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * [1.0, 0.5, 2.0] + [10.0, 5.0, 100.0]


def test_a_step_is_flagged_from_its_change_point_and_released_after_it() -> None:
    x = _noise(1400)
    x[800:1100, 0] += 4.0  # sensor a shifts by 4 sd for 300 rows
    out = monitor_rows(x, 400, COLS)
    flags = out.anomaly
    assert flags[: 800 - 400 - 15].sum() == 0  # nothing before the change
    hit = np.flatnonzero(flags)
    assert 800 - 400 - 15 <= hit[0] <= 800 - 400 + 15  # onset moved back to the change
    assert flags[800 - 400 + 30 : 1100 - 400].all()
    assert flags[1100 - 400 + 60 :].sum() == 0  # released once the sensor is back


def test_noise_alone_raises_nothing() -> None:
    out = monitor_rows(_noise(5000, seed=3), 400, COLS)
    assert out.anomaly.sum() == 0
    assert out.score.max() < 1.0


def test_slow_drift_is_followed_by_the_adaptive_reference_but_not_the_fixed_one() -> None:
    x = _noise(4000, seed=5)
    x[:, 2] += np.linspace(0, 60.0, 4000)  # 30 sd over an hour: warming up, not a fault
    assert monitor_rows(x, 400, COLS).anomaly.mean() < 0.05
    fixed = monitor_rows(x, 400, COLS, Params(ref_tau=0.0))
    assert fixed.anomaly[-1000:].all()


def test_deviations_name_the_sensor_that_moved() -> None:
    x = _noise(900)
    mon = Monitor(learn(x[:400], COLS))
    for row in x[400:600]:
        mon.update(row)
    for _ in range(60):
        step = mon.update(np.array([10.0, 5.0 + 5.0, 100.0]))
    assert step.alarm
    top = mon.deviations()[0]
    assert top.column == "b" and top.sigmas > 3 and top.normal == pytest.approx(5.0, abs=0.3)


def test_constant_sensor_and_too_few_rows() -> None:
    x = _noise(500)
    x[:, 1] = 7.0
    assert monitor_rows(x, 400, COLS).anomaly.sum() == 0
    with pytest.raises(ModelError, match="too few"):
        learn(x[:50], COLS)
    with pytest.raises(ModelError, match="missing or infinite"):
        bad = x[:400].copy()
        bad[3, 0] = np.nan
        learn(bad, COLS)


@pytest.mark.parametrize(
    "kw", [{"window": 0}, {"ref_tau": -1}, {"alarm": 0}, {"release": 1.5}, {"shrink": 2}]
)
def test_params_are_checked(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Params(**kw)  # type: ignore[arg-type]
