"""One event, one alert: what a function-code scan provokes is part of the scan.

A scanner that tries every function code makes the device refuse most of them, sends
malformed requests and trips the exception-storm rule; reported one by one that reads as
a program download, a firmware replacement and a comm restart that never happened.
Those findings are folded into the scan as its steps. Commands the device refused are
attempts: their severity is capped (the scan, or a policy breach, says what matters).
"""

from __future__ import annotations

from otconduit.detect.context import COMMAND_CATEGORIES
from otconduit.detect.findings import MAX_EVIDENCE, Finding
from otconduit.detect.rules import RULES, Severity

SCAN_RULE = "function-code-scan"
FOLDED_RULES = frozenset({"exception-storm", "malformed-pdu"})
NOT_CARRIED_OUT = frozenset({"exception", "malformed"})
REFUSED_CAP = Severity.MEDIUM
MARGIN_NS = 10_000_000_000  # a step may start or end this close to the refusal burst
MAX_STEPS = 64


def cap_refused(findings: list[Finding]) -> None:
    """A command the device refused (or could not parse) did not happen: at most medium."""
    for f in findings:
        if f.status not in NOT_CARRIED_OUT or RULES[f.rule].category not in COMMAND_CATEGORIES:
            continue
        if f.severity is not None and f.severity > REFUSED_CAP:
            f.severity = REFUSED_CAP
        what = "refused by the device" if f.status == "exception" else "malformed request"
        f.context["verdict"] = f"{what}: attempted, not carried out"


def _foldable(f: Finding) -> bool:
    return f.rule in FOLDED_RULES or f.status in NOT_CARRIED_OUT


def _step(f: Finding) -> dict[str, object]:
    return {
        "rule": f.rule,
        "operation": f.operation,
        "count": f.count,
        "status": f.status,
        "severity": f.severity.name.lower() if f.severity is not None else None,
        "first_ts": f.first_ts,
        "note": f.note,
    }


def _inside(f: Finding, scan: Finding) -> tuple[Finding | None, Finding | None]:
    """(the part of ``f`` within the scan's burst, the rest)."""
    lo, hi = scan.first_ts - MARGIN_NS, scan.last_ts + MARGIN_NS
    if f.first_ts >= lo and f.last_ts <= hi:
        return f, None
    if f.last_ts < lo or f.first_ts > hi or f.ts is None:
        return None, f
    return f.split((f.ts >= lo) & (f.ts <= hi))


def fold_scans(findings: list[Finding]) -> list[Finding]:
    """Findings with each function-code scan's side effects folded into it (its
    ``context["steps"]``, evidence frames and note); a successful operation during the
    scan (a real write) stays its own finding."""
    scans = {(f.src_ip, f.dst_ip, f.protocol): f for f in findings if f.rule == SCAN_RULE}
    if not scans:
        return findings
    out: list[Finding] = []
    for f in findings:
        scan = scans.get((f.src_ip, f.dst_ip, f.protocol))
        if scan is None or f is scan or not _foldable(f):
            out.append(f)
            continue
        inside, rest = _inside(f, scan)
        if rest is not None:
            out.append(rest)
        if inside is None:
            continue
        steps = scan.context.setdefault("steps", [])
        if len(steps) < MAX_STEPS:
            steps.append(_step(inside))
        room = MAX_EVIDENCE - len(scan.evidence)
        if room > 0:
            scan.evidence.extend(inside.evidence[:room])
    for scan in scans.values():
        steps = scan.context.get("steps")
        if not steps:
            continue
        steps.sort(key=lambda s: (s["first_ts"], str(s["rule"])))
        names = sorted({str(s["operation"] or s["rule"]) for s in steps})
        shown = ", ".join(names[:6]) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
        scan.note += f"; {len(steps)} side effects folded in: {shown}"
    return out


__all__ = ["cap_refused", "fold_scans"]
