"""Severity from OT context: the same command matters differently depending on who sent
it, from which zone, and whether a conduit allowed it in its maintenance window.

With a zones-and-conduits policy:
- a command from an enterprise/IT zone (level >= 4) is critical;
- from an address in no zone, at least high;
- allowed by a conduit without a window: informational (the policy says it is normal);
- allowed only by windowed conduits: informational inside the window, one level up
  outside it (the finding is split per operation timestamp);
- allowed by no conduit: one level up (the policy breach is its own alert too).
Reconnaissance and abuse from an IT zone go one level up; identity reads that conduits
allow to every target (an engineering station checking its PLCs) are informational.
Without a policy, the rule's default (or the site's override) stands.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from otconduit.detect.findings import Finding
from otconduit.detect.rules import RULES, Severity
from otconduit.policy.model import Policy

COMMAND_CATEGORIES = frozenset(
    {"controller-state", "program-change", "process-write", "configuration", "authentication"}
)
IT_LEVEL = 4.0


def _up(sev: Severity, n: int = 1) -> Severity:
    return Severity(min(int(sev) + n, int(Severity.CRITICAL)))


def _in_window(policy: Policy, name: str, ts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(ts), bool)
    for i, t in enumerate(ts.tolist()):
        out[i] = policy.in_window(name, datetime.fromtimestamp(t / 1e9, UTC))
    return out


def apply(f: Finding, base: Severity, policy: Policy | None) -> list[Finding]:
    """The finding (possibly split in two) with ``severity`` set and context noted."""
    f.severity = base
    if policy is None or f.src_ip is None:
        return [f]
    sz = policy.zone_of(f.src_ip)
    dz = policy.zone_of(f.dst_ip) if f.dst_ip else None
    f.context.update({"src_zone": sz.name if sz else None, "dst_zone": dz.name if dz else None})
    category = RULES[f.rule].category
    if sz is not None and sz.level >= IT_LEVEL:
        if category in COMMAND_CATEGORIES:
            f.severity = Severity.CRITICAL
        elif category in ("reconnaissance", "protocol-abuse"):
            f.severity = _up(base)
        f.context["verdict"] = f"source in IT zone {sz.name} (level {sz.level:g})"
        return [f]
    if f.rule == "identity-sweep" and f.context.get("targets"):
        protocols = (f.protocol or "").split(",")
        if all(
            any(
                c.allows(p, None, "identity")
                for c in policy.conduits_between(f.src_ip, t)
                for p in protocols
            )
            for t in f.context["targets"]
        ):
            f.severity = Severity.INFO
            f.context["verdict"] = "identity reads allowed by conduits to every target"
        return [f]
    if category not in COMMAND_CATEGORIES:
        return [f]
    if sz is None:
        f.severity = max(base, Severity.HIGH)
        f.context["verdict"] = "source in no zone of the policy"
        return [f]
    if f.dst_ip is None or f.protocol is None:
        return [f]
    allowing = [
        c
        for c in policy.conduits_between(f.src_ip, f.dst_ip)
        if c.allows(f.protocol, f.dst_port, f.op_class or None)
    ]
    if not allowing:
        f.severity = _up(base)
        f.context["verdict"] = "no conduit allows this operation"
        return [f]
    open_conduit = next((c for c in allowing if c.window is None), None)
    if open_conduit is not None:
        f.severity = Severity.INFO
        f.context["verdict"] = f"allowed by conduit {open_conduit.name}"
        return [f]
    windowed = allowing[0]
    assert windowed.window is not None
    ts = f.ts if f.ts is not None else np.array([f.first_ts], np.int64)
    if f.ts is None:
        f.ts = ts
    inside, outside = f.split(_in_window(policy, windowed.window, ts))
    out = []
    if inside is not None:
        inside.severity = Severity.INFO
        inside.context["verdict"] = (
            f"allowed by conduit {windowed.name} inside window {windowed.window}"
        )
        out.append(inside)
    if outside is not None:
        outside.severity = _up(base)
        outside.context["verdict"] = (
            f"conduit {windowed.name} allows this only in window {windowed.window}"
        )
        out.append(outside)
    return out
