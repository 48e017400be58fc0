"""What detectors emit before alerts are aggregated: one :class:`Finding` per rule and
group of like events, with its time span, count and bounded evidence."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from otconduit.detect.rules import Severity

MAX_EVIDENCE = 20  # evidence records kept per finding (frames of the rest are counted)


@dataclass(slots=True)
class Evidence:
    frames: list[int]
    ts: int | None
    record: dict[str, Any]
    # (chunk id, row) of a stored operation whose record is read once the finding's
    # evidence is settled (a scan keeps the earliest few of many chunks' samples)
    source: tuple[int, int] | None = None


@dataclass(slots=True)
class Finding:
    rule: str
    first_ts: int
    last_ts: int
    count: int = 1
    src_ip: str | None = None
    dst_ip: str | None = None
    protocol: str | None = None
    operation: str | None = None  # the function/command, as decoded
    op_class: str | None = None
    dst_port: int | None = None
    severity: Severity | None = None  # None: the rule's default (config may override)
    note: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    # Per-event timestamps (ns), when the finding stands for many events: lets time
    # windows (allow-list, maintenance windows) split it exactly.
    ts: np.ndarray | None = None
    # The device's answer to the operations it stands for (ok | exception | malformed |
    # no_response ...), when they all share one: a refused command did not happen.
    status: str | None = None

    def split(self, mask: np.ndarray) -> tuple[Finding | None, Finding | None]:
        """(events where mask is true, the rest), each None when empty."""
        if self.ts is None:
            raise ValueError("finding has no per-event timestamps")
        out: list[Finding | None] = []
        for m in (mask, ~mask):
            ts = self.ts[m]
            if not len(ts):
                out.append(None)
                continue
            lo, hi = int(ts.min()), int(ts.max())
            ev = [e for e in self.evidence if e.ts is None or lo <= e.ts <= hi]
            out.append(
                replace(self, first_ts=lo, last_ts=hi, count=len(ts), ts=ts, evidence=ev,
                        context=dict(self.context))
            )  # fmt: skip
        return out[0], out[1]
