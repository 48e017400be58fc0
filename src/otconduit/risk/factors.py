"""The risk score's factors as pure functions of plain facts, each returning the points it
adds and a sentence saying why.

The score is a sum, so every point can be traced to one reason and an analyst can argue
with each of them. Weights (the most each part can add):

=================  ===  =====================================================================
criticality         20  the zone's (or the asset's own) criticality; else the Purdue level
exposure            30  reachable from an IT zone (15), conduits allowing program/firmware or
                        write/control to it (10), cleartext control protocols across zones (5)
vulnerabilities     30  affected advisories: 2.5 x highest CVSS + 1 per further advisory;
                        version_unknown candidates apart: up to the highest CVSS, at most 10
alerts              20  highest open alert (critical 15, high 10, medium 6, low 3) + 1 per
                        further open alert above info
=================  ===  =====================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CRITICALITY_POINTS = {"critical": 20, "high": 15, "medium": 10, "low": 5}
# Criticality a zone's Purdue level suggests when nobody stated one.
LEVEL_CRITICALITY = ((1.0, "high"), (2.0, "medium"), (3.5, "low"))
REACH_DIRECT = 15  # IT reaches it without passing the IDMZ
REACH_VIA_IDMZ = 10
DANGEROUS_ENGINEERING = 10  # program / firmware allowed
DANGEROUS_PROCESS = 5  # write / control allowed
WINDOWED_FACTOR = 0.5  # only inside a maintenance window
CLEARTEXT = 5
VULN_MAX = 30
AFFECTED_PER_CVSS = 2.5
AFFECTED_EXTRA_MAX = 5
UNCONFIRMED_MAX = 10
ALERT_POINTS = {"critical": 15, "high": 10, "medium": 6, "low": 3, "info": 0}
ALERTS_MAX = 20
RATINGS = ((70, "critical"), (45, "high"), (20, "medium"), (0, "low"))


@dataclass(frozen=True, slots=True)
class Reason:
    """One factor's contribution: ``points`` is what it adds to the score."""

    factor: str
    group: str  # criticality | exposure | vulnerabilities | alerts
    points: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "group": self.group,
            "points": self.points,
            "detail": self.detail,
        }


def rating(score: int) -> str:
    """A word for the score, so tables can be scanned."""
    return next(name for floor, name in RATINGS if score >= floor)


def _level_text(level: float | None) -> str:
    return "unknown level" if level is None else f"level {level:g}"


def criticality(stated: str | None, where: str, level: float | None, level_source: str) -> Reason:
    """Points for how much the plant depends on the asset. ``stated`` is the zone's or
    the asset's own criticality (``where`` says which); otherwise the level decides:
    basic control and below high, supervisory medium, operations and IDMZ low, IT none."""
    if stated in CRITICALITY_POINTS:
        return Reason(
            "criticality", "criticality", CRITICALITY_POINTS[stated], f"{where}: {stated}"
        )
    if level is None:
        return Reason(
            "criticality",
            "criticality",
            CRITICALITY_POINTS["low"],
            "no criticality stated and level unknown: counted as low",
        )
    for ceiling, name in LEVEL_CRITICALITY:
        if level <= ceiling:
            how = "from the policy" if level_source == "policy" else f"{level_source} from roles"
            return Reason(
                "criticality",
                "criticality",
                CRITICALITY_POINTS[name],
                f"no criticality stated; {_level_text(level)} ({how}) counts as {name}",
            )
    return Reason("criticality", "criticality", 0, f"{_level_text(level)} is IT: no OT criticality")


def reachability(
    path: Sequence[str] | None, via_idmz: bool, in_it: str | None, in_idmz: bool = False
) -> Reason:
    """Points when an attacker on an IT host could reach the asset through conduits the
    policy allows (the shortest such path, as ``conduit policy paths`` finds them): less
    when the path passes an IDMZ host, or the asset is one (IT is meant to reach it)."""
    if in_it is not None:
        return Reason("it_reachability", "exposure", 0, f"in IT zone {in_it} itself")
    if not path:
        return Reason("it_reachability", "exposure", 0, "no allowed conduit path from an IT zone")
    route = " -> ".join(path)
    if in_idmz:
        return Reason(
            "it_reachability",
            "exposure",
            REACH_VIA_IDMZ,
            f"reachable from IT as an IDMZ host: {route}",
        )
    if via_idmz:
        return Reason(
            "it_reachability",
            "exposure",
            REACH_VIA_IDMZ,
            f"reachable from IT through the IDMZ: {route}",
        )
    return Reason(
        "it_reachability",
        "exposure",
        REACH_DIRECT,
        f"reachable from IT without passing an IDMZ: {route}",
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """A conduit that lets some zone send state-changing operations to the asset."""

    conduit: str
    from_zone: str
    operations: tuple[str, ...]
    window: str | None


def dangerous_operations(grants: Sequence[Grant]) -> Reason:
    """Points for conduits that allow changing the program or firmware (most), or writing
    to the process or controlling it; halved when only open in a maintenance window."""
    if not grants:
        return Reason(
            "dangerous_operations",
            "exposure",
            0,
            "no conduit allows write, control, program or firmware to it",
        )
    best = 0.0
    parts = []
    for g in grants:
        engineering = any(op in ("program", "firmware") for op in g.operations)
        pts = float(DANGEROUS_ENGINEERING if engineering else DANGEROUS_PROCESS)
        if g.window:
            pts *= WINDOWED_FACTOR
        best = max(best, pts)
        when = f" in window {g.window}" if g.window else ""
        parts.append(f"{g.conduit} ({g.from_zone}: {'/'.join(g.operations)}{when})")
    return Reason(
        "dangerous_operations",
        "exposure",
        round(best),
        "conduits allow state changes to it: " + "; ".join(parts),
    )


def cleartext_control(crossings: dict[str, set[str]]) -> Reason:
    """Points when it is commanded over unauthenticated control protocols (Modbus, DNP3,
    S7comm, EtherNet/IP) from another zone: ``crossings`` maps protocol -> client zones
    (``(no zone)`` for a client no zone holds)."""
    if not crossings:
        return Reason(
            "cleartext_control",
            "exposure",
            0,
            "no cleartext control protocol reaches it from another zone",
        )
    parts = [f"{p} from {', '.join(sorted(z))}" for p, z in sorted(crossings.items())]
    return Reason(
        "cleartext_control",
        "exposure",
        CLEARTEXT,
        "cleartext control across zones: " + "; ".join(parts),
    )


def vulnerabilities(advisories: Sequence[dict[str, Any]]) -> list[Reason]:
    """Points for known vulnerabilities: confirmed (``affected``) matches by their highest
    CVSS and number; ``version_unknown`` candidates apart and weighed less (the firmware
    could not be checked); ``fixed`` ones add nothing."""
    affected = [a for a in advisories if a.get("status") == "affected"]
    unknown = [a for a in advisories if a.get("status") == "version_unknown"]
    fixed = [a for a in advisories if a.get("status") == "fixed"]
    out: list[Reason] = []
    used = 0
    if affected:
        top = max((a.get("cvss") or 0.0) for a in affected)
        extra = min(AFFECTED_EXTRA_MAX, len(affected) - 1)
        pts = min(VULN_MAX, round(top * AFFECTED_PER_CVSS) + extra)
        used = pts
        ids = ", ".join(str(a["id"]) for a in affected[:3])
        more = f" and {len(affected) - 3} more" if len(affected) > 3 else ""
        out.append(
            Reason(
                "vulnerabilities",
                "vulnerabilities",
                pts,
                f"{len(affected)} advisor{'ies affect' if len(affected) != 1 else 'y affects'} "
                f"its firmware, highest CVSS {top:g} ({ids}{more})",
            )
        )
    else:
        note = f"; {len(fixed)} fixed in its firmware" if fixed else ""
        out.append(
            Reason(
                "vulnerabilities",
                "vulnerabilities",
                0,
                f"no advisory confirmed to affect it{note}",
            )
        )
    if unknown:
        top_u = max((a.get("cvss") or 0.0) for a in unknown)
        pts = min(UNCONFIRMED_MAX, round(top_u), VULN_MAX - used)
        out.append(
            Reason(
                "unconfirmed_vulnerabilities",
                "vulnerabilities",
                pts,
                f"{len(unknown)} advisor{'ies' if len(unknown) != 1 else 'y'} may apply "
                f"(version_unknown: firmware not stated or range unreadable), highest CVSS "
                f"{top_u:g}",
            )
        )
    return out


SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def alerts(open_by_severity: dict[str, int], acknowledged: int) -> Reason:
    """Points for alerts still open that name the asset (as source or target): the most
    severe sets the base, each further one above info adds one. Acknowledged alerts are
    mentioned, not counted: someone is on them."""
    total = sum(open_by_severity.values())
    ack = f"; {acknowledged} acknowledged (not counted)" if acknowledged else ""
    if not total:
        return Reason("alerts", "alerts", 0, f"no open alerts{ack}")
    top = next(s for s in SEVERITY_ORDER if open_by_severity.get(s))
    counted = sum(n for s, n in open_by_severity.items() if s != "info")
    pts = min(ALERTS_MAX, ALERT_POINTS[top] + max(0, counted - 1))
    parts = ", ".join(
        f"{open_by_severity[s]} {s}" for s in SEVERITY_ORDER if open_by_severity.get(s)
    )
    return Reason("alerts", "alerts", pts, f"open alerts: {parts}{ack}")


__all__ = [
    "Grant",
    "Reason",
    "alerts",
    "cleartext_control",
    "criticality",
    "dangerous_operations",
    "rating",
    "reachability",
    "vulnerabilities",
]
