"""Detection over stored captures: every detector, the site's rules file, OT context from
the policy, then aggregation into alerts. ``conduit analyze`` runs it after each capture;
``conduit detect`` re-runs it (e.g. after changing the rules file or learning a baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from otconduit.detect import abuse, baseline, context, recon
from otconduit.detect.alerts import StoreReport, store_findings
from otconduit.detect.config import DetectConfig
from otconduit.detect.findings import Finding
from otconduit.detect.fold import cap_refused, fold_scans
from otconduit.detect.rules import RULES, Severity
from otconduit.detect.scan import scan_capture
from otconduit.policy.model import Policy
from otconduit.store import captures
from otconduit.store.sqlite import Store
from otconduit.store.violations import of_capture

_BREACH_SEVERITY = {
    "asset-in-no-zone": Severity.LOW,
    "cleartext-control-crossing": Severity.INFO,  # a design gap to plan for, not an incident
    "bypasses-idmz": Severity.HIGH,
}
_COMMANDS = frozenset({"write", "control", "program", "firmware"})
_INSECURE_OPCUA = "insecure-opcua-crossing"


@dataclass(slots=True)
class DetectReport:
    capture: str
    operations: int
    store: StoreReport


def _ns(text: str | None, default: int) -> int:
    if not text:
        return default
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


def policy_findings(store: Store, capture_id: int, policy: Policy | None) -> list[Finding]:
    """Violations stored for this capture by the policy check, as findings."""
    cap = captures.info(store, capture_id)
    first, last = (cap.first_ts, cap.last_ts) if cap else (None, None)
    out = []
    for v in of_capture(store, capture_id):
        sev = _BREACH_SEVERITY.get(v["rule"])
        if v["rule"] == _INSECURE_OPCUA:
            # A conduit admits it: a design gap to plan for. None does: it is also a
            # no-conduit breach, and nobody vouched for the client.
            sev = Severity.INFO if v["conduit"] else Severity.MEDIUM
        if sev is None:
            sev = Severity.HIGH if v["operation"] in _COMMANDS else Severity.MEDIUM
        if policy is not None and v["src_ip"]:
            sz = policy.zone_of(v["src_ip"])
            if sz is not None and sz.level >= context.IT_LEVEL and v["operation"] in _COMMANDS:
                sev = Severity.CRITICAL
            elif sz is not None and sz.level >= context.IT_LEVEL and v["rule"] == _INSECURE_OPCUA:
                sev = Severity.HIGH  # an unauthenticated session into OT from IT
        f = Finding(
            rule="policy-breach",
            first_ts=_ns(v["first_seen"], first or 0),
            last_ts=_ns(v["last_seen"], last or 0),
            count=v["count"],
            src_ip=v["src_ip"],
            dst_ip=v["dst_ip"],
            protocol=v["protocol"],
            operation=v["operation"],
            severity=sev,
            note=f"{v['rule']}: {v['reason']}",
            context={
                "violation": v["rule"],
                "policy": v["policy"],
                "src_zone": v["src_zone"],
                "dst_zone": v["dst_zone"],
                "conduit": v["conduit"],
            },
        )
        if v["frame"] is not None:
            from otconduit.detect.findings import Evidence

            f.evidence.append(Evidence([v["frame"]], f.first_ts, {}))
        out.append(f)
    return out


def _allowed(config: DetectConfig, f: Finding) -> Finding | None:
    """The part of a finding no allow-list entry covers (None: all covered)."""
    for entry in config.allow:
        if not entry.matches(f.rule, f.src_ip, f.dst_ip, f.protocol, f.operation):
            continue
        if entry.window is None:
            return None
        ts = f.ts if f.ts is not None else np.array([f.first_ts], np.int64)
        if f.ts is None:
            f.ts = ts
        mask = np.array([entry.window.contains_ns(int(t)) for t in ts.tolist()], bool)
        _, rest = f.split(mask)
        if rest is None:
            return None
        f = rest
    return f


def detect_capture(
    store: Store,
    capture_id: int,
    config: DetectConfig | None = None,
    policy: Policy | None = None,
    base: baseline.Baseline | None = None,
) -> DetectReport:
    config = config or DetectConfig()
    cap = captures.info(store, capture_id)
    if cap is None:
        raise ValueError(f"no capture {capture_id} in the store")
    sha, path = cap.sha256, cap.path
    th = config.thresholds
    scan = scan_capture(store, capture_id, polls=base is not None)
    found = list(scan.findings)
    found += recon.function_scans(scan, th)
    found += recon.address_sweeps(scan, th)
    found += recon.browse_sweeps(scan, th)
    found += recon.identity_sweeps(scan, th)
    found += recon.port_sweeps(store, capture_id, th)
    found += abuse.problem_findings(store, capture_id, path)
    found += abuse.exception_storms(scan, th)
    if base is not None:
        found += baseline.deviations(store, capture_id, scan, base, config)
    found += policy_findings(store, capture_id, policy)
    final, suppressed = resolve(found, config, policy)
    rep = store_findings(store, sha, path, final, config.dedup_window)
    rep.suppressed = suppressed
    return DetectReport(path, scan.operations, rep)


def resolve(
    found: list[Finding], config: DetectConfig, policy: Policy | None
) -> tuple[list[Finding], int]:
    """Findings as the site wants them: disabled rules and allow-listed parts dropped
    (counted), severities overridden, OT context applied."""
    final: list[Finding] = []
    suppressed = 0
    for f in found:
        if not config.enabled(f.rule):
            suppressed += f.count
            continue
        kept = _allowed(config, f)
        if kept is None:
            suppressed += f.count
            continue
        suppressed += f.count - kept.count
        override = config.severity_override(kept.rule)
        base_sev = override if override is not None else kept.severity
        if base_sev is None:
            base_sev = RULES[kept.rule].severity
        if kept.rule == "policy-breach":
            kept.severity = base_sev
            final.append(kept)
        else:
            final.extend(context.apply(kept, base_sev, policy))
    cap_refused(final)
    return fold_scans(final), suppressed


def detect_all(
    store: Store,
    config: DetectConfig | None = None,
    policy: Policy | None = None,
    use_baseline: bool = True,
) -> list[DetectReport]:
    """Re-run detection over every complete capture in the store."""
    base = baseline.load(store) if use_baseline else None
    ids = [c.id for c in captures.finished(store)]
    return [detect_capture(store, i, config, policy, base) for i in ids]
