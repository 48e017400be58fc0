"""The roadmap's production figures for the report: OEE and downtime per machine and
their trend, and the energy pilot's totals, from the gateway's historian.

They come from :mod:`otconduit.production` (its public ``api``) and only when everything
they need is at hand: the package, a gateway config with a ``production`` section and a
historian with samples. Anything missing leaves the sections out with one sentence
saying why -- a security assessment must not fail because the energy pilot has not
started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAY_NS = 86_400 * 1_000_000_000


@dataclass(slots=True)
class ProductionEvidence:
    available: bool
    reason: str | None = None
    period: dict[str, str] = field(default_factory=dict)
    machines: list[dict[str, Any]] = field(default_factory=list)  # OEE over the window
    trend: list[dict[str, Any]] = field(default_factory=list)  # OEE per bucket
    trend_by: str = "day"
    energy: dict[str, Any] | None = None  # production.api.sustainability_report
    notes: list[str] = field(default_factory=list)


def historian_target(gateway: Any, historian: Path | None) -> Any:
    """Where the gateway writes: ``--historian`` if given, else the config's SQLite file
    (or PostgreSQL DSN section); None when there is none."""
    if historian is not None:
        return historian
    sinks = getattr(gateway, "sinks", None)
    if sinks is None:
        return None
    if sinks.historian is not None:
        return sinks.historian.path
    return sinks.postgres


def production_evidence(
    gateway: Any | None, historian: Path | None, start_ns: int | None, end_ns: int | None
) -> ProductionEvidence:
    """OEE, downtime and energy over the window (the data's extent when open)."""
    if gateway is None:
        return ProductionEvidence(False, "no gateway config given (--gateway)")
    if getattr(gateway, "production", None) is None:
        return ProductionEvidence(False, "the gateway config has no production section")
    try:
        from otconduit.production.api import (
            ProductionError,
            oee_report,
            open_reader,
            sustainability_report,
        )
        from otconduit.production.plan import resolve
    except ImportError as exc:
        return ProductionEvidence(False, f"the production package is not available ({exc})")
    target = historian_target(gateway, historian)
    if target is None:
        return ProductionEvidence(False, "the gateway config names no historian")
    if isinstance(target, Path) and not target.exists():
        return ProductionEvidence(False, f"no historian at {target}")
    plan = resolve(gateway)
    if plan is None:
        return ProductionEvidence(False, "the gateway config has no production section")
    ev = ProductionEvidence(True)
    try:
        with open_reader(target) as reader:
            if any(m.oee is not None for m in plan.machines):
                whole = oee_report(plan, reader, start_ns, end_ns, "machine")
                ev.machines = whole.rows
                ev.notes += whole.notes
                span = whole.end_ns - whole.start_ns
                if span >= 2 * DAY_NS:
                    ev.trend_by = "day"
                elif not plan.calendar.always:
                    ev.trend_by = "shift"
                else:
                    ev.trend_by = "machine"
                ev.trend = oee_report(plan, reader, start_ns, end_ns, ev.trend_by).rows
            if any(m.energy is not None for m in plan.machines):
                ev.energy = sustainability_report(plan, reader, start_ns, end_ns)
                ev.notes += [n for n in ev.energy["notes"] if n not in ev.notes]
    except ProductionError as exc:
        return ProductionEvidence(False, str(exc))
    except Exception as exc:  # a historian that cannot be read must not stop the report
        return ProductionEvidence(False, f"the historian could not be read: {exc}")
    if ev.machines:
        ev.period = {"start": ev.machines[0]["start"], "end": ev.machines[0]["end"]}
    elif ev.energy is not None:
        ev.period = dict(ev.energy["period"])
    if not ev.machines and ev.energy is None:
        return ProductionEvidence(False, "the production section models no OEE or energy")
    return ev
