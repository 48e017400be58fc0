"""Hold decoded operations against ground-truth labels (from ``conduit lab --labels``).

A label names an injected event: when, who to whom, protocol and operation. It is *seen*
when the store holds an operation with the same endpoints and protocol, the same function
code (or, where the label has none, the same operation class), within a time tolerance.
Function codes are the protocol's own: for OPC UA the numeric id of the request's binary
encoding (673 Write, 527 Browse, 467 ActivateSession), which the lab writes from the
specification and the decoder from the wire.
Port-scan labels (a subnet as destination) are seen when the store holds connection
attempts from the scanner into that subnet.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address, ip_network
from typing import Any

from otconduit.store.sqlite import Store
from otconduit.store.views import OperationFilter, conversations, operations

TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class Match:
    label: dict[str, Any]
    seen: bool
    evidence: str  # capture frame(s) or connection count that show it


def _epoch(iso_ts: str) -> float:
    return datetime.fromisoformat(iso_ts.replace("Z", "+00:00")).timestamp()


def match_labels(
    store: Store, labels: list[dict[str, Any]], tolerance: float = TOLERANCE_S
) -> list[Match]:
    """One :class:`Match` per label, in label order."""
    by_pair: dict[tuple[str, str], list[tuple[float, dict[str, Any]]]] = {}
    pairs = {(lb["src_ip"], lb["dst_ip"]) for lb in labels}
    for src, dst in pairs:
        if "/" in dst:
            continue
        rows = [
            (_epoch(o["ts"]), o) for o in operations(store, OperationFilter(src_ip=src, dst_ip=dst))
        ]
        rows.sort(key=lambda r: r[0])
        by_pair[(src, dst)] = rows
    convs = conversations(store)
    out = []
    for lb in labels:
        dst = lb["dst_ip"]
        if "/" in dst or lb.get("protocol") == "tcp":
            net = ip_network(dst, strict=False)
            n = sum(
                c["connections"]
                for c in convs
                if c["client_ip"] == lb["src_ip"] and ip_address(c["server_ip"]) in net
            )
            out.append(Match(lb, n > 0, f"{n} connections"))
            continue
        rows = by_pair.get((lb["src_ip"], dst), [])
        times = [t for t, _ in rows]
        lo = bisect.bisect_left(times, lb["ts"] - tolerance)
        hit = None
        for t, o in rows[lo:]:
            if t > lb["ts"] + tolerance:
                break
            if lb.get("protocol") and not o["protocol"].startswith(lb["protocol"]):
                continue
            code = lb.get("function_code")
            if code is not None and o["function_code"] != code:
                continue
            if code is None and lb.get("operation") and o["operation"] != lb["operation"]:
                continue
            hit = o
            break
        out.append(Match(lb, hit is not None, f"frame {hit['frame']}" if hit is not None else ""))
    return out
