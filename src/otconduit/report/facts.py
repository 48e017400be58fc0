"""What the report reads from the store, read once and cut to the report's window.

Every section of the report draws on the same few lists (assets placed in zones,
conversations with the classes of operation they carried, alerts, stored violations),
so they are read here once through the store's own views, not once per section. The
window ``[start, end)`` keeps what was active in it, as the listing commands'
``--from``/``--to`` do; without one, everything the store holds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from otconduit.console.zoning import Zoning
from otconduit.detect.alerts import list_alerts
from otconduit.policy import Policy
from otconduit.store import Store, views
from otconduit.store.match import iso_ns, overlaps
from otconduit.store.opchunks import OP_CLASSES
from otconduit.store.sensing import sensors_brief
from otconduit.store.violations import ViolationFilter, policies, stored_violations

ConvKey = tuple[str, str, int, str]  # client, server, server port, protocol


@dataclass(frozen=True, slots=True)
class Window:
    """The report's period, ``[start_ns, end_ns)``; None: open on that side."""

    start_ns: int | None = None
    end_ns: int | None = None

    def holds(self, first_ns: int | None, last_ns: int | None) -> bool:
        return overlaps(first_ns, last_ns, self.start_ns, self.end_ns)

    def holds_iso(self, first: str | None, last: str | None) -> bool:
        return self.holds(iso_ns(first), iso_ns(last))

    @property
    def bounded(self) -> bool:
        return self.start_ns is not None or self.end_ns is not None


@dataclass(slots=True)
class Facts:
    """The store's content the report is made of (see the module docstring)."""

    db: Path
    policy: Policy | None
    gateway: Any | None  # otconduit.gateway.config.GatewayConfig
    window: Window
    zoning: Zoning
    assets: list[dict[str, Any]]  # confirmed, with zone, level, level_source
    scan_targets: list[dict[str, Any]]  # hosts only ever seen as scan targets
    conversations: list[dict[str, Any]]  # with "classes": Counter of operation classes
    alerts: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    violation_policies: list[str]  # plant names with violations stored (any window)
    captures: list[dict[str, Any]]
    sensors: list[dict[str, Any]]
    generated_at: str = field(default_factory=lambda: _now())
    placement: dict[str, tuple[str | None, float | None, str]] = field(default_factory=dict)
    # Security modes seen when OPC UA secure channels opened, per (client, server):
    # "None", "Sign", "SignAndEncrypt" (empty when OPC UA is not decoded).
    opcua_modes: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def place(self, ip: str | None) -> tuple[str | None, float | None, str]:
        """(zone, Purdue level, level source) of any address: an asset's placement, or
        the policy's zone for an address that is no asset (a scan target)."""
        if ip is None:
            return (None, None, "unknown")
        got = self.placement.get(ip)
        if got is None:
            p = self.zoning.place(ip)
            got = (p.zone, p.level, p.level_source)
            self.placement[ip] = got
        return got

    @property
    def plant(self) -> str | None:
        return self.policy.plant if self.policy is not None else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _count_classes(store: Store, convs: list[dict[str, Any]], window: Window) -> None:
    """Give each conversation ``classes``: its operations per class (read, write,
    program, firmware, ...) inside the window -- what access actually happened.

    Chunks are stored per conversation, so only each chunk's class column (and, with a
    window, its timestamps) is decoded and counted: no operation is built."""
    index: dict[ConvKey, Counter[str]] = {}
    for c in convs:
        c["classes"] = Counter()
        key = (c["client_ip"], c["server_ip"], c["server_port"], c["protocol"])
        index.setdefault(key, c["classes"])
    lo, hi = window.start_ns, window.end_ns
    for cap in store.captures():
        for ch in views.capture_chunks(store, cap["id"]):
            conv = ch.conv
            hit = index.get(
                (conv["client_ip"], conv["server_ip"], conv["server_port"], conv["protocol"])
            )
            if hit is None:
                continue
            classes = ch.batch.ints["op_class"]
            if window.bounded:
                ts = ch.batch.ints["ts"]
                mask = np.ones(len(ts), bool)
                if lo is not None:
                    mask &= ts >= lo
                if hi is not None:
                    mask &= ts < hi
                classes = classes[mask]
            classes = classes[classes >= 0]  # (no class stored: the NULL sentinel)
            for code, n in enumerate(np.bincount(classes, minlength=len(OP_CLASSES)).tolist()):
                if n:
                    hit[str(OP_CLASSES[code])] += n


def collect(
    store: Store, policy: Policy | None, gateway: Any | None, window: Window, db: Path
) -> Facts:
    """Read the store once for every section of the report."""
    zoning = Zoning(policy)
    rows = views.assets(store)
    placement: dict[str, tuple[str | None, float | None, str]] = {}
    assets: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for a in rows:
        if not window.holds_iso(a["first_seen"], a["last_seen"]):
            continue
        p = zoning.place(a["ip"], a["mac"], a["vlan"], a["roles"])
        a["zone"], a["level"], a["level_source"] = p.zone, p.level, p.level_source
        placement.setdefault(a["ip"], (p.zone, p.level, p.level_source))
        (assets if a["confirmed"] else targets).append(a)

    convs = views.conversations(
        store, views.ConversationFilter(start_ns=window.start_ns, end_ns=window.end_ns)
    )
    _count_classes(store, convs, window)

    alerts = [a for a in list_alerts(store) if window.holds_iso(a["first_seen"], a["last_seen"])]
    plant = policy.plant if policy is not None else None
    violations = stored_violations(
        store, ViolationFilter(policy=plant, start_ns=window.start_ns, end_ns=window.end_ns)
    )
    stored_for = policies(store)
    sensors = sensors_brief(store)
    modes = _opcua_modes(store, window) if any(c["protocol"] == OPCUA for c in convs) else {}
    return Facts(
        db=db,
        policy=policy,
        gateway=gateway,
        window=window,
        zoning=zoning,
        assets=assets,
        scan_targets=targets,
        conversations=convs,
        alerts=alerts,
        violations=violations,
        violation_policies=stored_for,
        captures=store.captures(),
        sensors=sensors,
        placement=placement,
        opcua_modes=modes,
    )


OPCUA = "opcua"
NO_SECURITY = "None"


def _opcua_modes(store: Store, window: Window) -> dict[tuple[str, str], set[str]]:
    """The security mode of each OPC UA secure channel opened in the window, from the
    decoder's OpenSecureChannel operations (``security_mode``; a channel opened under
    the ``#None`` policy has no message security whatever mode it states)."""
    flt = views.OperationFilter(
        protocol=(OPCUA,),
        function="OpenSecureChannel",
        start_ns=window.start_ns,
        end_ns=window.end_ns,
    )
    out: dict[tuple[str, str], set[str]] = {}
    for op in views.operations(store, flt):
        d = op["detail"]
        mode = d.get("security_mode")
        if str(d.get("security_policy_uri") or "").endswith("#None"):
            mode = NO_SECURITY
        if mode:
            out.setdefault((op["src_ip"], op["dst_ip"]), set()).add(str(mode))
    return out
