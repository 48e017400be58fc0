"""The CSV scorer's detector: per-sensor change detection with segment hysteresis.

Why per sensor: a closing valve moves one sensor (the flow) by a step or two of its
quantised reading while the others wander as usual; a distance over all sensors dilutes
that one clear change in seven sensors' noise. Each sensor therefore runs its own test,
and the machine is in alarm while any sensor is.

The test, per sensor, in units the sensor's own normal behaviour sets:

- **deviation**: the mean of the last ``window`` rows minus a *reference* (an exponential
  average of the rows before the window, time constant ``ref_tau``), divided by the
  sensor's *spread*, the RMS of that deviation over rows known to be normal. The
  reference follows slow, harmless drift (a fluid warming for hours) that a few minutes
  of training cannot contain.
- **spread, learnt online**: it starts as the training rows' RMS deviation and keeps
  learning from every later row that, ``settle`` rows on, no alarm has claimed (rows
  judged too soon would teach the detector the start of the very change it is about to
  confirm). It never falls below the training value. A sensor that wanders more than
  four hundred training rows showed (vibration on a long run) thus earns a wider band;
  without this, a long anomaly-free run raises alarm after alarm.
- **two-sided CUSUM** on the deviation: evidence accumulates by ``deviation -
  allowance`` per row and an alarm is raised at ``evidence``. A large step is confirmed
  within a few rows, a small one that persists within a minute or two, a short wobble
  never: duration, not just size, is what tells a closed valve from noise.
- **segment hysteresis**: once raised, the sensor's reference is frozen at its value
  before the change (the alarm is judged against the state it left); the alarm starts
  at the change point (``backdate``: the first row of the excursion above one spread)
  and closes once the deviation has stayed below ``release`` of its peak for ``hold``
  rows. Then the reference restarts from the current level, so a rebound after a long
  change is not a new alarm.

Hyper-parameters are fixed once (see :class:`ChangeParams`); ``bench/maintenance_bench.py``
measures them on SKAB, and its ``--lofo`` mode re-chooses them with each file left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from otconduit.maintenance.common import ModelError, Scored, trailing_mean


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeParams:
    """Hyper-parameters in rows (SKAB: one row per second) and in spreads, fixed once.

    - ``window`` 30 and ``ref_tau`` 120: a half-minute mean (quantised flow readings
      average out) against the two minutes before it, as the watch model uses.
    - ``allowance`` 4: below four spreads (four standard deviations of a normal 30-row
      mean) nothing accumulates, so noise alone almost never starts the count.
    - ``evidence`` 100 spread-rows beyond the allowance: once the window has filled, a
      24-spread step alarms within about 5 rows, a 6-spread one within about 50, and a
      deviation that never clears 5 spreads for 100 rows not at all. Measured on SKAB
      (``bench/maintenance_bench.py``): with allowance 4, evidence 70 to 130 all give F1
      0.89-0.90; 100 sits in the middle, away from both edges (at 60 vibration steps of
      the anomaly-free run alarm, at 140 the one-step valve closures are missed).
    - ``backdate`` 1: the change began where the excursion left one spread, the size of
      normal variation.
    - ``release`` 1/3 and ``hold`` 30: the change is over when two thirds of it are gone
      for one window (the time the short mean takes to see the recovery fully).
    - ``settle`` 120 (four windows): how far back an alarm may date its start, and so how
      long a row waits before it may teach the spread.
    - ``accept`` 900: a change that has lasted a quarter of an hour is the new normal
      (0: never); a later return to the level it left is not a new alarm. SKAB's faults
      last minutes. It bounds the cost of a step that is normal: as alarm rows teach
      nothing, without it one vibration step on a long run could hold an alarm for hours.
    """

    window: int = 30
    ref_tau: float = 120.0
    allowance: float = 4.0
    evidence: float = 100.0
    backdate: float = 1.0
    release: float = 1 / 3
    hold: int = 30
    settle: int = 120
    accept: int = 900

    def __post_init__(self) -> None:
        if self.window < 1 or self.ref_tau < 1:
            raise ValueError("window and ref_tau must be at least 1 row")
        if self.allowance < 0 or self.evidence <= 0 or self.backdate < 0:
            raise ValueError("allowance and backdate must be >= 0, evidence > 0")
        if not 0 <= self.release < 1 or self.hold < 0 or self.settle < 1 or self.accept < 0:
            raise ValueError("release must be in [0, 1), hold and accept >= 0, settle >= 1")

    @property
    def min_train(self) -> int:
        """Fewest training rows giving at least ``window`` deviations to learn from."""
        return 3 * self.window


@dataclass(frozen=True, slots=True)
class Change:
    """The detector's word on one row: ``score`` >= 1 while the evidence is over the
    alarm level or keeps an alarm open; ``onset`` is the change point of an alarm raised
    on this row (None otherwise). An alarm's rows run from its change point to the end
    of the ``hold`` after its change has gone, so they include rows scored below 1."""

    index: int
    score: float
    alarm: bool
    onset: int | None = None


class ChangeDetector:
    """Learns each sensor's normal deviation on the training rows, then judges new rows
    one at a time (the same code could follow a live feed)."""

    def __init__(
        self, train: np.ndarray, columns: Sequence[str], params: ChangeParams | None = None
    ) -> None:
        p = self.p = params or ChangeParams()
        x = np.asarray(train, dtype=float)
        if x.ndim != 2 or x.shape[1] == 0 or x.shape[1] != len(columns):
            raise ModelError("training data needs one column per sensor and at least one sensor")
        m, n = x.shape
        w = p.window
        if m < p.min_train:
            raise ModelError(
                f"{m} training rows are too few: the detector needs at least {p.min_train} "
                f"(window {w})"
            )
        if not np.isfinite(x).all():
            raise ModelError("training data holds missing or infinite values")
        self.columns = tuple(columns)
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale == 0] = 1.0  # constant in training: changes in its own units
        z = (x - self.mean) / self.scale
        refs = np.empty_like(z)
        ref = z[:w].mean(axis=0)
        for t in range(m):
            refs[t] = ref
            ref = ref + (z[t] - ref) / p.ref_tau
        dev = trailing_mean(z, w)[2 * w :] - refs[w : m - w]
        self._var = (dev**2).mean(axis=0)
        self._floor = np.sqrt(self._var)
        self._floor[self._floor == 0] = 1.0
        self._spread = self._floor.copy()
        self._count = np.full(n, float(len(dev)))
        self._ref = ref
        self._lag: deque[np.ndarray] = deque(refs[m - w :], maxlen=w)
        self._win: deque[np.ndarray] = deque(z[m - w :], maxlen=w)
        self._sum = z[m - w :].sum(axis=0)
        self._on = np.zeros(n, dtype=bool)  # sensor in alarm
        self._frozen = np.zeros(n)
        self._sign = np.zeros(n)
        self._peak = np.zeros(n)
        self._quiet = np.zeros(n, dtype=int)
        self._g = np.zeros((2, n))  # upward and downward CUSUM
        self._closing = np.zeros(n, dtype=bool)
        self._age = np.zeros(n, dtype=int)
        self._known = np.zeros(n)  # the level left by a change accepted as normal
        self._known_set = np.zeros(n, dtype=bool)
        self._free_from = np.zeros(n, dtype=int)  # rows before belong to an earlier alarm
        # the last `settle` rows: deviation in spreads and in standardised units, the
        # sensors then in alarm, and whether an alarm has claimed the row (only
        # unclaimed rows teach the spread)
        self._pending: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._claimed: deque[bool] = deque()
        self._i = 0

    @property
    def alarm(self) -> bool:
        return bool(self._on.any())

    def update(self, row: np.ndarray) -> Change:
        """Judge one row of readings (engineering units, in the training column order)."""
        p, i = self.p, self._i
        self._i += 1
        z = (np.asarray(row, dtype=float) - self.mean) / self.scale
        self._sum = self._sum + z - self._win[0]
        self._win.append(z)
        short = self._sum / p.window
        free_ref = self._lag[0]
        d = short - np.where(self._on, self._frozen, free_ref)
        e = d / self._spread
        self._judge_known(e, short)
        onset = self._release_and_raise(i, e, free_ref)
        if onset is not None:
            for k in range(max(0, len(self._claimed) - (i - onset)), len(self._claimed)):
                self._claimed[k] = True
        on = self._on
        for j in np.flatnonzero(self._closing).tolist():
            self._restart(j, float(short[j]))  # from the level after the change
        self._pending.append((e, d, on.copy()))
        self._claimed.append(bool(on.any()))
        self._learn()
        self._spread = np.where(on, self._spread, np.maximum(self._floor, np.sqrt(self._var)))
        self._ref = np.where(on, self._ref, self._ref + (z - self._ref) / p.ref_tau)
        self._lag.append(self._ref.copy())
        score = np.where(
            on,
            self._sign * e / np.maximum(p.release * self._peak, 1e-9),
            self._g.max(axis=0) / p.evidence,
        )
        return Change(i, float(score.max()), bool(on.any()), onset)

    def _restart(self, j: int, level: float) -> None:
        self._ref[j] = level
        for lagged in self._lag:
            lagged[j] = level

    def _judge_known(self, e: np.ndarray, short: np.ndarray) -> None:
        """A sensor whose change was accepted as normal may go back to the level it left:
        that is a return, not a new change (``e`` is judged against the nearer level)."""
        mem = self._known_set & ~self._on
        if not mem.any():
            return
        ek = (short - self._known) / self._spread
        for j in np.flatnonzero(mem & (np.abs(ek) <= self.p.backdate)).tolist():
            self._known_set[j] = False
            self._restart(j, float(short[j]))
            e[j] = 0.0
        nearer = self._known_set & ~self._on & (np.abs(ek) < np.abs(e))
        e[nearer] = ek[nearer]

    def _release_and_raise(self, i: int, e: np.ndarray, free_ref: np.ndarray) -> int | None:
        """Close the sensors whose change is gone (or has lasted ``accept`` rows), raise
        those whose evidence is over the alarm level; returns the change point of the
        earliest alarm raised."""
        p = self.p
        on = self._on
        dev = self._sign * e
        self._peak = np.where(on, np.maximum(self._peak, dev), self._peak)
        gone = on & (dev < p.release * self._peak)
        self._quiet = np.where(gone, self._quiet + 1, 0)
        self._age = np.where(on, self._age + 1, 0)
        accepted = on & (self._age >= p.accept) if p.accept else np.zeros_like(on)
        self._known[accepted] = self._frozen[accepted]
        self._known_set |= accepted
        self._closing = on & ((self._quiet > p.hold) | accepted)
        self._on = on & ~self._closing
        self._free_from[self._closing] = i
        self._g[:, self._closing] = 0.0
        free = ~on  # sensors closed on this row start counting on the next
        g = np.maximum(0.0, self._g + np.stack([e, -e]) - p.allowance)
        self._g = np.where(free, g, self._g)
        onset = None
        for j in np.flatnonzero(free & (self._g.max(axis=0) > p.evidence)).tolist():
            self._sign[j] = 1.0 if self._g[0, j] >= self._g[1, j] else -1.0
            self._on[j] = True
            self._frozen[j] = free_ref[j]
            self._peak[j] = self._sign[j] * e[j]
            self._quiet[j] = 0
            self._g[:, j] = 0.0
            start = self._change_point(i, j)
            onset = start if onset is None else min(onset, start)
        return onset

    def _change_point(self, i: int, j: int) -> int:
        """The first row of the excursion that sensor ``j``'s alarm at row ``i`` confirms."""
        floor = self.p.backdate
        start = i
        for back, (e, _d, _on) in enumerate(reversed(self._pending), start=1):
            if i - back < self._free_from[j] or self._sign[j] * e[j] <= floor:
                break
            start = i - back
        return start

    def _learn(self) -> None:
        """Teach the spread the oldest pending row once no alarm can claim it any more
        (the running mean of squared deviations over every unclaimed row)."""
        if len(self._pending) <= self.p.settle:
            return
        _e, d, on = self._pending.popleft()
        if self._claimed.popleft():
            return
        ok = ~on
        self._count[ok] += 1
        self._var[ok] += (d[ok] ** 2 - self._var[ok]) / self._count[ok]


def score_changes(
    x: np.ndarray, train_rows: int, columns: Sequence[str], params: ChangeParams | None = None
) -> Scored:
    """Learn on the first ``train_rows`` rows and score the rest (SKAB's protocol). An
    alarm's rows start at its change point."""
    x = np.asarray(x, dtype=float)
    det = ChangeDetector(x[:train_rows], columns, params)
    rest = x[train_rows:]
    score = np.zeros(len(rest))
    flag = np.zeros(len(rest), dtype=np.int8)
    for i, row in enumerate(rest):
        c = det.update(row)
        score[i] = c.score
        if c.onset is not None:
            flag[c.onset : i + 1] = 1
        if c.alarm:
            flag[i] = 1
    return Scored(score, flag)
