"""Watch machines in the gateway historian and raise ``maintenance-anomaly`` alerts.

A *machine* is one device of the gateway config; its *condition tags* are its numeric tags
that measure the machine's health rather than its production: vibration, temperatures,
currents and pressures, recognised by unit or name (``--tag`` picks others). A boolean tag
named ``running`` on the same device (``--running-tag``) gates the model: a stopped
machine's vibration and current are not its running behaviour, so only running samples
are learnt and judged, and the first window after each start (warm-up) is skipped.

Each machine's tags are put on a regular grid at its poll interval, or at the pace its
values really change when that is slower (each tag's last value at each step, until a bad
or stale sample ends it), the first part of the
history (``learn``) trains a fixed-reference :class:`~.model.Baseline`, and the rest runs
through a :class:`~.model.Monitor`. Every alarm becomes one finding: which tags deviate,
their value against normal and by how many standard deviations, since when (the
change point), and when the alarm was raised (the row that crossed the alarm level: what
an online watch would have reported). Findings go into the alert store keyed by the
historian and machine, so a re-run replaces what the last one stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from otconduit.detect.findings import Finding
from otconduit.maintenance.model import ModelError, Monitor, Params, learn

RULE = "maintenance-anomaly"
WATCH_PARAMS = Params(ref_tau=0.0)  # fixed reference: wear is drift away from normal
_UNITS = {
    "mm/s", "in/s", "ips", "g", "m/s2", "m/s²", "um", "µm",  # vibration
    "°c", "degc", "c", "°f", "degf", "k",  # temperature
    "a", "ma",  # current
    "bar", "mbar", "pa", "kpa", "mpa", "psi",  # pressure
}  # fmt: skip
_NAMES = re.compile(r"vib|temp|current|amps|pressure|bearing", re.I)


class WatchError(ValueError):
    """Nothing can be watched (no machine, no samples, too little history); one line."""


@dataclass(frozen=True, slots=True)
class Machine:
    name: str
    host: str | None
    protocol: str
    step_s: float
    tags: tuple[str, ...]  # full paths
    units: tuple[str, ...]
    running: str | None  # full path of the running tag


@dataclass(slots=True)
class Episode:
    """One alarm on one machine (times in ns)."""

    machine: Machine
    onset_ns: int
    raised_ns: int
    last_ns: int
    peak: float
    open: bool
    tags: list[dict[str, Any]] = field(default_factory=list)


def _is_condition(path: str, unit: str, type_: str) -> bool:
    if type_ in ("bool", "string"):
        return False
    return unit.strip().casefold() in _UNITS or bool(_NAMES.search(path.rsplit("/", 1)[-1]))


def machines(cfg: Any, patterns: Sequence[str] = (), running_tag: str = "running") -> list[Machine]:
    """The machines of a gateway config with their condition tags (or the tags matching
    ``patterns``, globs on the tag path); devices without any are left out."""
    out = []
    for dev in cfg.devices:
        chosen, units, running = [], [], None
        for t in dev.tags:
            full = cfg.full_path(t)
            name = t.path.rsplit("/", 1)[-1]
            if t.type == "bool" and name.casefold() == running_tag.casefold():
                running = full
                continue
            if patterns:
                ok = t.type not in ("bool", "string") and any(
                    fnmatchcase(full.casefold(), p.casefold())
                    or fnmatchcase(t.path.casefold(), p.casefold())
                    for p in patterns
                )
            else:
                ok = _is_condition(t.path, t.unit, t.type)
            if ok:
                chosen.append(full)
                units.append(t.unit)
        if chosen:
            steps = [t.interval or dev.interval for t in dev.tags if cfg.full_path(t) in chosen]
            out.append(
                Machine(
                    dev.name, dev.host or dev.endpoint, dev.protocol, float(min(steps)),
                    tuple(chosen), tuple(units), running,
                )
            )  # fmt: skip
    return out


def _series(store: Any, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, value) of a tag's samples, NaN where the sample is not good; empty when
    the tag has none."""
    from otconduit.gateway.historian import HistorianError
    from otconduit.gateway.historian.schema import QUALITY_OF_CODE
    from otconduit.gateway.model import Quality

    try:
        _unit, rows = store.rows(path, None, None, None)
        ts, vals = [], []
        for t, value, _text, quality, _flags in rows:
            ts.append(t)  # a bad or stale sample ends the last good value's reign
            good = value is not None and QUALITY_OF_CODE.get(quality) == Quality.GOOD
            vals.append(float(value) if good else np.nan)
    except HistorianError:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.asarray(ts, dtype=np.int64), np.asarray(vals, dtype=float)


def _on_grid(ts: np.ndarray, vals: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Each grid time's last value at or before it: the gateway writes on change and
    marks a tag bad or stale itself when its device is away, so a value holds until the
    next sample (NaN before the first)."""
    out = np.full(len(grid), np.nan)
    if not len(ts):
        return out
    idx = np.searchsorted(ts, grid, side="right") - 1
    ok = idx >= 0
    out[ok] = vals[idx[ok]]
    return out


def watch_machine(
    store: Any, m: Machine, learn_share: float = 0.25, params: Params = WATCH_PARAMS
) -> list[Episode]:
    """Learn the first ``learn_share`` of a machine's running history, then judge the
    rest; every alarm is an :class:`Episode`."""
    series = [_series(store, p) for p in m.tags]
    firsts = [s[0][0] for s in series if len(s[0])]
    if not firsts:
        raise WatchError(f"{m.name}: the historian has no good samples of {', '.join(m.tags)}")
    # the poll interval, or the pace the values really change at when that is slower
    # (a device that refreshes its registers less often than it is polled)
    gaps = [float(np.median(np.diff(ts))) for ts, _ in series if len(ts) > 1]
    step_ns = max(int(m.step_s * 1e9), int(max(gaps)) if gaps else 0)
    lasts = [s[0][-1] for s in series if len(s[0])]
    grid = np.arange(min(firsts), max(lasts) + 1, step_ns, dtype=np.int64)
    x = np.column_stack([_on_grid(ts, v, grid) for ts, v in series])
    usable = np.isfinite(x).all(axis=1)
    if m.running is not None:
        rts, rv = _series(store, m.running)
        run = _on_grid(rts, rv, grid) > 0.5
        # skip the warm-up: the first window of rows after each start
        started = np.flatnonzero(run & ~np.r_[False, run[:-1]])
        settle = np.zeros(len(grid), dtype=bool)
        for first in started:
            settle[first : first + params.window] = True
        usable &= run & ~settle
    rows = np.flatnonzero(usable)
    n_learn = max(int(len(rows) * learn_share), params.min_train)
    if len(rows) <= n_learn:
        raise WatchError(
            f"{m.name}: {len(rows)} usable samples (running, every tag fresh) at a "
            f"{step_ns / 1e9:g} s step: at least {params.min_train + 1} are needed to learn "
            "and then watch"
        )
    try:
        mon = Monitor(learn(x[rows[:n_learn]], m.tags, params))
    except ModelError as exc:
        raise WatchError(f"{m.name}: {exc}") from None
    episodes: list[Episode] = []
    cur: Episode | None = None
    scored = rows[n_learn:]
    for r in scored:
        s = mon.update(x[r])
        if s.raised and s.onset is not None:
            cur = Episode(m, int(grid[scored[s.onset]]), int(grid[r]), int(grid[r]), s.score, True)
            cur.tags = _explain(mon, m)
            episodes.append(cur)
        elif cur is not None and s.alarm:
            cur.last_ns = int(grid[r])
            if s.score > cur.peak:
                cur.peak = s.score
                cur.tags = _explain(mon, m)
        elif cur is not None and not s.alarm:
            cur.open = False
            cur = None
    return episodes


def _explain(mon: Monitor, m: Machine, limit: float = 3.0) -> list[dict[str, Any]]:
    """The tags that deviate by at least ``limit`` standard deviations (at least the
    largest one), largest first."""
    units = dict(zip(m.tags, m.units, strict=True))
    devs = mon.deviations()
    keep = [d for d in devs if abs(d.sigmas) >= limit] or devs[:1]
    return [
        {
            "path": d.column,
            "value": round(d.value, 4),
            "normal": round(d.normal, 4),
            "unit": units.get(d.column, ""),
            "sigmas": round(d.sigmas, 1),
        }
        for d in keep
    ]


def iso(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def finding(ep: Episode) -> Finding:
    """The alert-store form of an episode."""
    parts = []
    for t in ep.tags[:3]:
        tag = t["path"].rsplit("/", 1)[-1]
        unit = f" {t['unit']}" if t["unit"] else ""
        parts.append(
            f"{tag} {t['value']:.4g}{unit} (normal {t['normal']:.4g}, {t['sigmas']:+.1f} sd)"
        )
    note = f"{ep.machine.name}: {', '.join(parts)} since {iso(ep.onset_ns)}"
    return Finding(
        rule=RULE,
        first_ts=ep.onset_ns,
        last_ts=ep.last_ns,
        count=1,
        dst_ip=ep.machine.host,
        protocol=ep.machine.protocol,
        note=note,
        context={
            "machine": ep.machine.name,
            "since": iso(ep.onset_ns),
            "raised_at": iso(ep.raised_ns),
            "raised_at_ns": ep.raised_ns,
            "last_seen": iso(ep.last_ns),
            "ongoing": ep.open,
            "peak_score": round(ep.peak, 2),
            "tags": ep.tags,
        },
    )


def store_episodes(db: Any, source: str, machine: str, episodes: Iterable[Episode]) -> int:
    """Put one machine's episodes into the alert store, replacing what an earlier watch
    of the same historian stored for it; returns the number of new alerts."""
    from otconduit.detect.alerts import store_findings

    rep = store_findings(
        db, f"maintenance:{source}#{machine}", source, [finding(e) for e in episodes], 3600.0
    )
    return rep.new_alerts
