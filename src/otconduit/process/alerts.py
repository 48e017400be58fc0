"""Stored alerts in process terms: for each alert whose evidence holds writes to a device
the gateway reads, the tags those writes changed (``process`` of the alert's JSON).

The evidence records are the decoded operations of the alert. What the device held
before them comes from the historian, else from the device's own operations in the ten
minutes before (the HMI's polls read the setpoint back every second), which are read
from the store for that device alone.
"""

from __future__ import annotations

import json
from typing import Any

from otconduit.detect.alerts import set_process
from otconduit.process.annotate import WRITE_TABLE, ProcessAnnotator, distinct, op_ts_ns
from otconduit.process.history import HistorianLookup
from otconduit.process.tagmap import TagMap
from otconduit.store import alerts as stored
from otconduit.store.sqlite import Store
from otconduit.store.views import OperationFilter, operations

NS = 1_000_000_000
LOOKBACK_NS = 600 * NS  # the device's operations read before a write, for its old value


def _is_write(rec: dict[str, Any]) -> bool:
    if rec.get("protocol") == "modbus":
        return rec.get("function_code") in WRITE_TABLE and rec.get("values") is not None
    return rec.get("protocol") == "s7comm" and rec.get("function_code") == 0x05


def writes_in(records: list[dict[str, Any]], tagmap: TagMap) -> list[dict[str, Any]]:
    """The evidence records that are writes to a device of the tag map, oldest first."""
    found = [r for r in records if _is_write(r) and r.get("dst_ip") in tagmap.hosts]
    return sorted(found, key=lambda r: str(r.get("ts") or ""))


def process_of_writes(
    store: Store | None,
    writes: list[dict[str, Any]],
    tagmap: TagMap,
    history: HistorianLookup | None = None,
) -> list[dict[str, Any]]:
    """Process entries of ``writes`` (operations of one or more devices). With a store,
    each device's operations from ``LOOKBACK_NS`` before the first write up to the last
    are replayed first, so ``previous`` can come from what the device was last seen to
    hold; without one, the writes are read alone."""
    if not writes:
        return []
    wanted = {(w.get("capture"), w.get("frame"), w.get("ts")) for w in writes}
    out: list[dict[str, Any]] = []
    if store is not None:
        for device in sorted({str(w["dst_ip"]) for w in writes}):
            mine = [w for w in writes if w["dst_ip"] == device]
            times = [t for t in (op_ts_ns(w.get("ts")) for w in mine) if t is not None]
            if not times:
                continue
            ann = ProcessAnnotator(tagmap, history)
            flt = OperationFilter(dst_ip=device, start_ns=min(times) - LOOKBACK_NS,
                                  end_ns=max(times) + 1)  # fmt: skip
            for op in operations(store, flt):
                entries = ann.feed(op)
                if entries and (op.get("capture"), op.get("frame"), op.get("ts")) in wanted:
                    out += entries
        if out:
            return out
    ann = ProcessAnnotator(tagmap, history)
    for w in writes:
        out += ann.feed(w)
    return out


def annotate_alerts(
    store: Store,
    tagmap: TagMap,
    history: HistorianLookup | None = None,
    since_change: int | None = None,
) -> list[int]:
    """Give every alert about a write to a mapped device its ``process`` (idempotent: an
    alert whose entries did not change is not touched); ``since_change``: only alerts
    changed after that change number (a sensor's last pass). Returns the alerts changed."""
    if not len(tagmap):
        return []
    changed = []
    for alert_id in stored.with_records_about(store, tagmap.hosts, since_change):
        records = [json.loads(r) for r in stored.records(store, alert_id)]
        writes = writes_in(records, tagmap)
        if not writes:
            continue
        entries = distinct(process_of_writes(store, writes, tagmap, history))
        if set_process(store, alert_id, entries):
            changed.append(alert_id)
    return changed


def last_change(store: Store) -> int:
    """The newest alert change number (a watermark for ``since_change``)."""
    return stored.last_change(store)
