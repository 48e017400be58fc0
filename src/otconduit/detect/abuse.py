"""Protocol abuse: malformed PDUs and non-protocol traffic (from the capture's decode
problems), exception storms (from conversation statistics), DNP3 link CRC errors."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from otconduit.detect.config import Thresholds
from otconduit.detect.findings import Evidence, Finding
from otconduit.detect.scan import ScanResult
from otconduit.protocols import registry
from otconduit.store import captures
from otconduit.store.sqlite import Store

# Decode-problem layers that are industrial protocols (transport problems such as TCP
# gaps are capture quality, not abuse).
ICS_LAYERS = registry.problem_layers()


def _rule_for(layer: str, reason: str) -> str | None:
    if layer not in ICS_LAYERS:
        return None
    low = reason.lower()
    if low.startswith("not "):
        return "non-protocol-on-ics-port"
    if "crc" in low:
        return "dnp3-bad-crc"
    return "malformed-pdu"


def problem_findings(store: Store, capture_id: int, path: str) -> list[Finding]:
    """Decode problems grouped per (rule, src, dst, protocol)."""
    ts_of = _frame_times(store, capture_id)
    groups: dict[tuple[str, str | None, str | None, str | None], list[tuple[int | None, str]]] = (
        defaultdict(list)
    )
    for r in captures.problems(store, capture_id):
        rule = _rule_for(r["layer"], r["reason"])
        if rule is None:
            continue
        groups[(rule, r["src_ip"], r["dst_ip"], r["protocol"] or r["layer"])].append(
            (r["frame"], r["reason"])
        )
    out = []
    first, last = ts_of
    for (rule, src, dst, proto), items in groups.items():
        reasons = sorted({reason for _, reason in items})
        frames = [f for f, _ in items if f is not None]
        out.append(
            Finding(
                rule=rule,
                first_ts=first,
                last_ts=last,
                count=len(items),
                src_ip=src,
                dst_ip=dst,
                protocol=proto,
                note="; ".join(reasons[:3])
                + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""),
                evidence=[Evidence(frames[:40], None, {"reasons": reasons[:20], "capture": path})],
            )
        )
    return out


def _frame_times(store: Store, capture_id: int) -> tuple[int, int]:
    cap = captures.info(store, capture_id)
    if cap is None:
        return 0, 0
    return int(cap.first_ts or 0), int(cap.last_ts or 0)


def exception_storms(scan: ScanResult, th: Thresholds) -> list[Finding]:
    out = []
    for (src, dst, proto, port), st in scan.stats.items():
        if st.exceptions < th.exception_storm_min:
            continue
        ratio = st.exceptions / max(st.ops, 1)
        if ratio < th.exception_storm_ratio:
            continue
        ts = np.concatenate(st.exception_ts) if st.exception_ts else None
        out.append(
            Finding(
                rule="exception-storm",
                first_ts=int(ts.min()) if ts is not None else st.first_ts,
                last_ts=int(ts.max()) if ts is not None else st.last_ts,
                count=st.exceptions,
                src_ip=src,
                dst_ip=dst,
                protocol=proto,
                dst_port=port,
                note=f"{st.exceptions} of {st.ops} requests refused ({ratio:.0%})",
                evidence=[Evidence(st.exception_frames[:40], None, {})],
            )
        )
    return out
