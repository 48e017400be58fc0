"""Learned normal: which assets, conversations, functions, address ranges and polling
periods a plant shows during a learning period, and the deviations from it.

``conduit baseline learn`` stores one named baseline (JSON in the ``baselines`` table)
from the captures in the store, limited to the first ``learning_period`` of data when
the rules file sets one. Captures wholly learned from are never judged against it; one
that the learning period ends in is judged on what happened after the end.

Polling periods: cyclic reads are keyed by (client, server, function, unit, address,
quantity); period = median gap between requests, jitter = median absolute deviation of
the gaps. A later capture drifts when its median period differs by more than the
tolerance (relative) and by more than three times the learned jitter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from otconduit.detect.config import DetectConfig
from otconduit.detect.findings import Finding
from otconduit.detect.scan import ConvStats, ScanResult, scan_capture
from otconduit.store import baselines, captures
from otconduit.store.sqlite import Store

SEP = "|"


def _k(*parts: object) -> str:
    return SEP.join("" if p is None else str(p) for p in parts)


def _period(parts: list[np.ndarray]) -> tuple[float, float, int] | None:
    ts = np.sort(np.concatenate(parts))
    if len(ts) < 3:
        return None
    gaps = np.diff(ts) / 1e9
    med = float(np.median(gaps))
    mad = float(np.median(np.abs(gaps - med)))
    return med, mad, len(ts)


@dataclass(slots=True)
class Baseline:
    name: str = "default"
    captures: list[str] = field(default_factory=list)  # sha256
    until_ts: int | None = None
    assets: set[str] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)
    functions: dict[str, set[str]] = field(default_factory=dict)
    addresses: dict[str, list[int]] = field(default_factory=dict)  # key -> [min, max]
    polls: dict[str, list[float]] = field(default_factory=dict)  # key -> [period, jitter, n]

    def to_json(self) -> str:
        return json.dumps(
            {
                "assets": sorted(self.assets),
                "conversations": sorted(self.conversations),
                "functions": {k: sorted(v) for k, v in sorted(self.functions.items())},
                "addresses": dict(sorted(self.addresses.items())),
                "polls": dict(sorted(self.polls.items())),
            }
        )

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "captures": len(self.captures),
            "until": self.until_ts,
            "assets": len(self.assets),
            "conversations": len(self.conversations),
            "functions": sum(len(v) for v in self.functions.values()),
            "address_ranges": len(self.addresses),
            "cyclic_polls": len(self.polls),
        }

    def _add_stats(self, stats: dict[tuple[str, str, str, int], ConvStats]) -> None:
        for (src, dst, proto, port), st in stats.items():
            ck = _k(src, dst, proto, port)
            self.functions.setdefault(ck, set()).update(st.functions)
            for (fn, unit), tally in st.addresses.items():
                a, _ = tally.counts()
                key = _k(ck, fn, unit)
                lo, hi = int(a[0]), int(a[-1])
                old = self.addresses.get(key)
                self.addresses[key] = [min(lo, old[0]), max(hi, old[1])] if old else [lo, hi]
            for (fn, unit, addr, qty), parts in st.polls.items():
                p = _period(parts)
                if p is not None:
                    key = _k(ck, fn, unit, addr, qty)
                    old_n = self.polls.get(key, [0.0, 0.0, 0])[2]
                    if p[2] > old_n:  # keep the best-sampled estimate
                        self.polls[key] = [p[0], p[1], p[2]]


def learn(store: Store, config: DetectConfig, name: str = "default") -> Baseline:
    """Learn from every complete capture in the store (first learning_period only)."""
    caps = captures.finished(store)
    b = Baseline(name=name)
    if not caps:
        return b
    start = min((c.first_ts for c in caps if c.first_ts is not None), default=None)
    if config.learning_period is not None and start is not None:
        b.until_ts = start + int(config.learning_period * 1e9)
    for c in caps:
        if b.until_ts is not None and c.first_ts is not None and c.first_ts > b.until_ts:
            continue
        b.captures.append(c.sha256)
        scan = scan_capture(store, c.id, b.until_ts, polls=True)
        b._add_stats(scan.stats)
        b.assets.update(captures.learned_assets(store, c.id, b.until_ts))
        for r in captures.learned_conversations(store, c.id, b.until_ts):
            b.conversations.add(
                _k(r["transport"], r["client_ip"], r["server_ip"], r["server_port"], r["protocol"])
            )
    return b


def save(store: Store, b: Baseline) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    baselines.save(store, b.name, now, json.dumps(b.captures), b.until_ts, b.to_json())


def load(store: Store, name: str = "default") -> Baseline | None:
    row = baselines.load(store, name)
    if row is None:
        return None
    data = json.loads(row.data)
    return Baseline(
        name=name,
        captures=json.loads(row.captures),
        until_ts=row.until_ts,
        assets=set(data["assets"]),
        conversations=set(data["conversations"]),
        functions={k: set(v) for k, v in data["functions"].items()},
        addresses=data["addresses"],
        polls=data["polls"],
    )


def deviations(
    store: Store, capture_id: int, scan: ScanResult, b: Baseline, config: DetectConfig
) -> list[Finding]:
    """Baseline rules for one capture (nothing for captures the baseline learned from)."""
    cap = captures.info(store, capture_id)
    if cap is None:
        return []
    if cap.sha256 in b.captures and (b.until_ts is None or (cap.last_ts or 0) <= b.until_ts):
        return []  # wholly learned from; a capture the learning period ends in is judged
    after = b.until_ts
    out: list[Finding] = []
    for r in captures.sightings(store, capture_id):
        if r["ip"] not in b.assets:
            out.append(
                Finding(
                    rule="new-asset",
                    first_ts=r["first_seen"],
                    last_ts=r["last_seen"],
                    src_ip=r["ip"],
                    note=f"{r['ip']} sent {r['packets_sent']} packets; not seen while learning",
                )
            )
    for r in captures.conversation_stats(store, capture_id):
        key = _k(r["transport"], r["client_ip"], r["server_ip"], r["server_port"], r["protocol"])
        if key not in b.conversations:
            out.append(
                Finding(
                    rule="new-conversation",
                    first_ts=r["first_seen"],
                    last_ts=r["last_seen"],
                    count=r["connections"] or 1,
                    src_ip=r["client_ip"],
                    dst_ip=r["server_ip"],
                    protocol=r["protocol"],
                    dst_port=r["server_port"],
                    note=f"{r['transport']}/{r['server_port']} {r['protocol']}",
                )
            )
    th = config.thresholds
    for (src, dst, proto, port), st in scan.stats.items():
        ck = _k(src, dst, proto, port)
        known = b.functions.get(ck)
        if known is None:
            continue  # a new conversation: reported above
        for fn, n in st.functions.items():
            if fn not in known:
                out.append(
                    Finding(
                        rule="new-function",
                        first_ts=st.first_ts,
                        last_ts=st.last_ts,
                        count=n,
                        src_ip=src,
                        dst_ip=dst,
                        protocol=proto,
                        operation=fn,
                        dst_port=port,
                        note=f"{fn} x{n}; learned: {', '.join(sorted(known))[:200]}",
                    )
                )
        for (fn, unit), tally in st.addresses.items():
            rng = b.addresses.get(_k(ck, fn, unit))
            if rng is None:
                continue
            a, counts = tally.counts()
            away = (a < rng[0]) | (a > rng[1])
            outside = a[away]
            if len(outside):
                out.append(
                    Finding(
                        rule="new-address-range",
                        first_ts=st.first_ts,
                        last_ts=st.last_ts,
                        count=int(counts[away].sum()),
                        src_ip=src,
                        dst_ip=dst,
                        protocol=proto,
                        operation=fn,
                        dst_port=port,
                        note=f"addresses {int(outside.min())}-{int(outside.max())} (unit {unit}) "
                        f"outside learned {rng[0]}-{rng[1]}",
                    )
                )
        for (fn, unit, addr, qty), parts in st.polls.items():
            learned = b.polls.get(_k(ck, fn, unit, addr, qty))
            cur = _period(parts)
            if learned is None or cur is None or cur[2] < th.drift_min_samples:
                continue
            period, jitter, _ = learned
            if period <= 0:
                continue
            delta = abs(cur[0] - period)
            if delta / period > th.drift_tolerance and delta > 3 * jitter:
                ts = np.concatenate(parts)
                out.append(
                    Finding(
                        rule="poll-period-drift",
                        first_ts=int(ts.min()),
                        last_ts=int(ts.max()),
                        count=cur[2],
                        src_ip=src,
                        dst_ip=dst,
                        protocol=proto,
                        operation=fn,
                        dst_port=port,
                        note=f"{fn} unit {unit} address {addr} x{qty}: period {cur[0]:.3f} s, "
                        f"learned {period:.3f} s (jitter {jitter:.3f} s)",
                        context={"period_s": cur[0], "learned_period_s": period},
                    )
                )
    if after is not None:
        out = [f for f in out if f.last_ts > after]
    return out
