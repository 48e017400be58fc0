"""The watch model: is this machine still behaving as it did when it was healthy?

`conduit maintenance watch` runs it on historian tags; `conduit maintenance detect`
scores CSV tables with the per-sensor change detector of :mod:`.changes` instead
(:func:`score_rows`), which finds SKAB's one-sensor valve faults that a distance over all
sensors dilutes. :func:`monitor_rows` still runs this model over a table.

Each sensor is standardised with the mean and standard deviation of the training rows. The
detector compares the mean of the last ``window`` rows (short enough to react within a
minute at 1 Hz, long enough to average out quantised and noisy readings) with a
*reference* of normal behaviour:

- adaptive (``ref_tau > 0``): the reference is an exponential average of past normal
  rows with time constant ``ref_tau``, lagging ``window`` rows behind so that it never
  contains the rows being judged. It follows slow, harmless drift
  (a pump's fluid warming up over hours) that a training window of minutes cannot
  contain; while an alarm is open the reference is frozen, so a change that persists is
  judged against the state before it (change-point hysteresis), and a change that lasts
  longer than ``cap`` rows is accepted as the new normal.
- fixed (``ref_tau == 0``, the historian watch): the reference is the training mean, for
  learning periods long enough to contain the machine's normal variation; slow drift away
  from it is exactly what wear looks like.

The difference between the short mean and the reference is measured per sensor in units
of its own normal variability at that time scale (estimated on the training rows), and
combined across sensors by a Mahalanobis distance whose covariance is estimated on the
same training deviations and shrunk towards its diagonal (a few hundred strongly
autocorrelated rows do not pin down a full covariance). An alarm opens when the distance
exceeds ``alarm`` times the largest distance seen in training and closes when it falls
below ``release`` times that level; its start is moved back to where the excursion first
left the training range (``backdate``), which is the change point the alarm confirms.

Hyper-parameters are fixed once (see ``Params``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from otconduit.maintenance.changes import ChangeParams, score_changes
from otconduit.maintenance.common import ModelError, Scored, trailing_mean

__all__ = [
    "Baseline", "ChangeParams", "Deviation", "ModelError", "Monitor", "Params", "Scored",
    "Step", "learn", "monitor_rows", "score_rows", "trailing_mean",
]  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    """The detector's hyper-parameters, in rows (SKAB: one row per second).

    Chosen once, before looking at scores, for 1 Hz machine data: a 30-row mean, a
    reference following drift slower than two minutes, an alarm at three times the
    largest training deviation (what a plant tolerates: it must not cry wolf), release at
    80 % of it, and a change lasting 30 minutes becomes the new normal. The shrinkage
    (0.3 towards the diagonal) keeps the covariance of 8 sensors invertible from a few
    hundred autocorrelated rows.
    """

    window: int = 30
    ref_tau: float = 120.0  # 0: fixed reference (the training mean)
    alarm: float = 3.0
    release: float = 0.8
    backdate: float = 1.0
    max_backdate: int = 300
    cap: int = 1800  # adaptive mode only; 0: never accept a change as normal
    shrink: float = 0.3

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("window must be at least 1 row")
        if self.ref_tau < 0:
            raise ValueError("ref_tau must be >= 0 (0: fixed reference)")
        if self.alarm <= 0 or not 0 < self.release <= 1 or self.backdate <= 0:
            raise ValueError("alarm and backdate must be > 0, release in (0, 1]")
        if self.max_backdate < 0 or self.cap < 0 or not 0 <= self.shrink <= 1:
            raise ValueError("max_backdate and cap must be >= 0, shrink in [0, 1]")

    @property
    def adaptive(self) -> bool:
        return self.ref_tau > 0

    @property
    def min_train(self) -> int:
        """Fewest training rows that give at least ``window`` deviations to learn from."""
        return (3 if self.adaptive else 2) * self.window


@dataclass(frozen=True, slots=True)
class Baseline:
    """What was learnt from the training rows (all arrays per sensor, standardised units
    unless said otherwise)."""

    columns: tuple[str, ...]
    params: Params
    mean: np.ndarray  # engineering units
    scale: np.ndarray  # engineering units per standardised unit
    spread: np.ndarray  # RMS deviation of the short mean from the reference in training
    inv_cov: np.ndarray  # of deviations / spread, shrunk
    level: float  # the largest training distance
    reference: np.ndarray  # the reference after the last training row
    lagged: np.ndarray  # the last `window` references, oldest first
    tail: np.ndarray  # the last `window` standardised training rows

    def distance(self, d: np.ndarray) -> float:
        dn = d / self.spread
        return float(np.sqrt(max(float(dn @ self.inv_cov @ dn), 0.0) / len(dn)))

    @property
    def threshold(self) -> float:
        return self.params.alarm * self.level


def learn(x: np.ndarray, columns: Sequence[str], params: Params | None = None) -> Baseline:
    """Learn normal behaviour from training rows ``x`` (rows x sensors, finite)."""
    params = params or Params()
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0 or x.shape[1] != len(columns):
        raise ModelError("training data needs one column per sensor and at least one sensor")
    m, p = x.shape
    w = params.window
    if m < params.min_train:
        raise ModelError(
            f"{m} training rows are too few: the detector needs at least {params.min_train} "
            f"(window {w})"
        )
    if not np.isfinite(x).all():
        raise ModelError("training data holds missing or infinite values")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a sensor constant in training: its changes in its own units
    z = (x - mean) / scale
    short = trailing_mean(z, w)
    if params.adaptive:
        refs = np.empty_like(z)
        ref = z[:w].mean(axis=0)
        a = 1.0 / params.ref_tau
        for t in range(m):
            refs[t] = ref
            ref = ref + a * (z[t] - ref)
        dev = short[2 * w : m] - refs[w : m - w]
        lagged = refs[m - w : m].copy()
    else:
        ref = np.zeros(p)
        dev = short[w - 1 : m]
        lagged = np.zeros((w, p))
    spread = np.sqrt((dev**2).mean(axis=0))
    spread[spread == 0] = 1.0
    dn = dev / spread
    cov = np.atleast_2d(np.cov(dn.T, bias=True))
    cov = (1 - params.shrink) * cov + params.shrink * np.diag(np.diag(cov))
    inv = np.linalg.pinv(cov)
    d2 = np.einsum("ij,jk,ik->i", dn, inv, dn) / p
    level = max(float(np.sqrt(np.clip(d2, 0, None)).max()), 1e-9)
    return Baseline(
        tuple(columns), params, mean, scale, spread, inv, level, ref, lagged, z[m - w :].copy()
    )


@dataclass(frozen=True, slots=True)
class Step:
    """The detector's word on one row: ``score`` is the distance over the alarm level
    (>= 1 opens an alarm); ``onset`` is the row the open alarm started at (moved back to
    the change point when it was raised), None outside alarms."""

    index: int
    score: float
    alarm: bool
    raised: bool = False
    onset: int | None = None


@dataclass(frozen=True, slots=True)
class Deviation:
    """One sensor's share of an alarm: the short mean against the reference, in
    engineering units and in multiples of the sensor's normal variability."""

    column: str
    value: float
    normal: float
    sigmas: float


class Monitor:
    """Runs a :class:`Baseline` over new rows, one at a time (so the same code scores a
    file and watches a live historian)."""

    def __init__(self, baseline: Baseline) -> None:
        self.b = baseline
        p = baseline.params
        self._win: deque[np.ndarray] = deque(baseline.tail, maxlen=p.window)
        self._sum = baseline.tail.sum(axis=0)
        self._recent: deque[np.ndarray] = deque(maxlen=p.max_backdate + 1)
        self._lag: deque[np.ndarray] = deque(baseline.lagged, maxlen=p.window)
        self._ref = baseline.reference.copy()
        self._frozen: np.ndarray | None = None
        self._i = 0
        self._start = 0
        self._onset = 0
        self._free_from = 0  # rows before this belong to an earlier alarm
        self._short = np.zeros_like(self._ref)

    @property
    def alarm(self) -> bool:
        return self._frozen is not None

    def update(self, x: np.ndarray) -> Step:
        b, p = self.b, self.b.params
        z = (np.asarray(x, dtype=float) - b.mean) / b.scale
        self._sum = self._sum + z - self._win[0]
        self._win.append(z)
        short = self._sum / p.window
        self._short = short
        i = self._i
        self._i += 1
        raised = False
        if self._frozen is None:
            ref = self._lag[0]
            dist = b.distance(short - ref)
            if dist > b.threshold:
                raised = True
                self._frozen = ref.copy()
                self._start = self._onset = i
                self._onset = self._backdate(i)
        if self._frozen is not None:
            dist = b.distance(short - self._frozen)
            if not raised and dist < p.release * b.threshold:
                self._close(i)
            elif p.adaptive and p.cap and i - self._start >= p.cap:
                self._close(i)
                self._ref = short.copy()  # a change this long is the new normal
                self._lag.extend([short.copy()] * p.window)
        self._recent.append(short)
        if self._frozen is None and p.adaptive:
            self._ref = self._ref + (z - self._ref) / p.ref_tau
            self._lag.append(self._ref.copy())
        alarm = self._frozen is not None
        return Step(i, dist / b.threshold, alarm, raised, self._onset if alarm else None)

    def _backdate(self, i: int) -> int:
        """The first row of the excursion that the alarm at row ``i`` confirms."""
        assert self._frozen is not None
        floor = self.b.params.backdate * self.b.level
        onset = i
        for back, short in enumerate(reversed(self._recent), start=1):
            u = i - back
            if u < self._free_from or self.b.distance(short - self._frozen) <= floor:
                break
            onset = u
        return onset

    def _close(self, i: int) -> None:
        self._frozen = None
        self._free_from = i

    def deviations(self) -> list[Deviation]:
        """Each sensor's deviation at the last row (against the frozen reference during
        an alarm), largest first."""
        b = self.b
        ref = self._frozen if self._frozen is not None else self._lag[0]
        sig = (self._short - ref) / b.spread
        out = [
            Deviation(
                column=c,
                value=float(self._short[j] * b.scale[j] + b.mean[j]),
                normal=float(ref[j] * b.scale[j] + b.mean[j]),
                sigmas=float(sig[j]),
            )
            for j, c in enumerate(b.columns)
        ]
        return sorted(out, key=lambda d: -abs(d.sigmas))


def score_rows(
    x: np.ndarray, train_rows: int, columns: Sequence[str], params: ChangeParams | None = None
) -> Scored:
    """`conduit maintenance detect`'s scorer: the per-sensor change detector of
    :mod:`.changes` (SKAB's protocol: learn on the first ``train_rows`` rows, score the
    rest)."""
    return score_changes(x, train_rows, columns, params)


def monitor_rows(
    x: np.ndarray, train_rows: int, columns: Sequence[str], params: Params | None = None
) -> Scored:
    """Run this module's :class:`Monitor` over a table like :func:`score_rows` (the
    watch's model on a CSV: learn on the first ``train_rows`` rows, score the rest). An
    alarm's rows start at its back-dated onset."""
    x = np.asarray(x, dtype=float)
    mon = Monitor(learn(x[:train_rows], columns, params))
    rest = x[train_rows:]
    score = np.zeros(len(rest))
    flag = np.zeros(len(rest), dtype=np.int8)
    for i, row in enumerate(rest):
        s = mon.update(row)
        score[i] = s.score
        if s.alarm and s.onset is not None:
            flag[s.onset : i + 1] = 1
    return Scored(score, flag)
