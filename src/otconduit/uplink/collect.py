"""What changed in a site's store since the last collection, as uplink messages.

State kinds (assets, conversations, violations) are sent whole per row when the row's
digest differs from the one last sent, so the hub simply upserts them and a later
message always carries the newest state. Alerts follow the store's alert change counter
(every raise, count update and status change bumps it), so their lifecycle reaches the
hub in order. Operations per conversation per minute are counted from operation chunks
once a chunk can no longer change; each message states the totals of the minutes new
chunks touched, so the hub overwrites them (a re-analysed capture is not counted twice)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from otconduit.store import assets as asset_q
from otconduit.store import hub_outbox as q
from otconduit.store.opchunks import unpack
from otconduit.store.sqlite import Store
from otconduit.uplink.envelope import MAX_BYTES, Envelope, encode, now_iso

BODY_BUDGET = MAX_BYTES // 2  # bytes of rows per message, well under the hub's limit
MAX_ROWS_PER_MESSAGE = 1000
ALERTS_PER_COLLECT = 5000
CHUNKS_PER_COLLECT = 500
NS_MINUTE = 60_000_000_000
FULL_EVERY_S = 60.0

Message = tuple[int, str, str]  # (seq, kind, body)


def _digest(row: dict[str, Any]) -> str:
    return hashlib.blake2b(
        json.dumps(row, sort_keys=True, separators=(",", ":")).encode(), digest_size=12
    ).hexdigest()


def batches(rows: Iterable[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for r in rows:
        n = len(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode())
        if batch and (size + n > BODY_BUDGET or len(batch) >= MAX_ROWS_PER_MESSAGE):
            yield batch
            batch, size = [], 0
        batch.append(r)
        size += n
    if batch:
        yield batch


def asset_rows(store: Store) -> list[dict[str, Any]]:
    base = asset_q.rows(store)
    out = []
    for base_row, rec in zip(base, asset_q.records(store, base, every_attribute=True), strict=True):
        ident = rec.get("identity", {})
        model = ident.get("model") or ident.get("product")
        name = ident.get("name") or ident.get("hostname")
        out.append(
            {
                "ip": rec["ip"],
                "vlan": int(base_row["vlan"]),
                "mac": rec["mac"],
                "name": str(name["value"]) if name else None,
                "vendor": rec["vendor"],
                "model": str(model["value"]) if model else None,
                "roles": ",".join(rec["roles"]) or None,
                "protocols": ",".join(rec["protocols"]) or None,
                "first_seen": base_row["first_seen"],
                "last_seen": base_row["last_seen"],
                "packets_sent": int(rec["packets_sent"]),
                "packets_received": int(rec["packets_received"]),
            }
        )
    return out


def conversation_rows(store: Store) -> list[dict[str, Any]]:
    funcs: dict[int, dict[str, int]] = defaultdict(dict)
    for conv_id, text in q.conversation_functions(store):
        acc = funcs[conv_id]
        for k, v in json.loads(text or "{}").items():
            acc[k] = acc.get(k, 0) + int(v)
    ids = {
        (r[1], r[2], r[3], r[4], r[5], r[6]): r[0]
        for r in store.conn.execute(
            "SELECT id, transport, client_ip, server_ip, server_port, vlan, protocol "
            "FROM conversations"
        )
    }
    out = []
    for r in q.conversation_totals(store):
        key = (r["transport"], r["client_ip"], r["server_ip"], r["server_port"], r["vlan"])
        f = funcs.get(ids[(*key, r["protocol"])])
        out.append(
            {
                **r,
                "connections": int(r["connections"] or 0),
                "packets": int(r["packets"] or 0),
                "bytes": int(r["bytes"] or 0),
                "functions": json.dumps(dict(sorted(f.items()))) if f else None,
            }
        )
    return out


def _conv_key(r: dict[str, Any]) -> str:
    return "|".join(
        str(r[k])
        for k in ("transport", "client_ip", "server_ip", "server_port", "vlan", "protocol")
    )


def _viol_key(r: dict[str, Any]) -> str:
    return "|".join(
        str(r[k]) for k in ("policy", "rule", "src_ip", "dst_ip", "protocol", "operation")
    )


class Collector:
    """Builds and records (in the site's store) the messages for what changed."""

    def __init__(self, store: Store, site: str) -> None:
        self.store = store
        self.site = site
        # Assets, conversations and violations are compared row by row only when the
        # store's state fingerprint moved, and at least every FULL_EVERY_S regardless.
        self._fingerprint: tuple[Any, ...] | None = None
        self._full_at = 0.0

    def collect(self, health: dict[str, Any] | None = None) -> list[Message]:
        """Every message for what changed since the last call (plus ``health`` when
        given), recorded in the outbox with the cursors they advance, in one
        transaction."""
        st, site = self.store, self.site
        seq = q.next_seq(st, site)
        sent_at = now_iso()
        msgs: list[Message] = []
        cursors: dict[str, int] = {}
        changed: list[tuple[str, str, str]] = []

        def add(kind: str, rows: list[dict[str, Any]]) -> None:
            nonlocal seq
            for batch in batches(rows):
                env = Envelope(site=site, seq=seq, sent_at=sent_at, kind=kind, rows=tuple(batch))
                msgs.append((seq, kind, encode(env).decode()))
                seq += 1

        with st.snapshot():
            fp = q.state_fingerprint(st)
            full = fp != self._fingerprint or time.monotonic() - self._full_at > FULL_EVERY_S
            if full:
                for kind, rows, key in (
                    ("assets", asset_rows(st), lambda r: f"{r['ip']}|{r['vlan']}"),
                    ("conversations", conversation_rows(st), _conv_key),
                    ("violations", _violations(st), _viol_key),
                ):
                    add(kind, self._changed(kind, rows, key, changed))
            since = q.cursor(st, site, "alerts")
            alerts = q.alerts_changed_after(st, since, ALERTS_PER_COLLECT)
            if alerts:
                add("alerts", alerts)
                cursors["alerts"] = int(alerts[-1]["change_seq"])
            chunk_after = q.cursor(st, site, "op_chunks")
            chunks = q.stable_chunks_after(st, chunk_after, CHUNKS_PER_COLLECT)
            if chunks:
                add("op_minutes", op_minute_rows(st, chunks))
                cursors["op_chunks"] = int(chunks[-1][0])
        if health is not None:
            add("health", health_rows(st, health))
        q.commit(st, site, msgs, cursors, changed)
        if full:
            self._fingerprint, self._full_at = fp, time.monotonic()
        return msgs

    def pending(self) -> bool:
        """Whether a collection now would find more alerts or chunks (a backlog)."""
        st = self.store
        return bool(
            q.alerts_changed_after(st, q.cursor(st, self.site, "alerts"), 1)
            or q.stable_chunks_after(st, q.cursor(st, self.site, "op_chunks"), 1)
        )

    def _changed(
        self,
        kind: str,
        rows: list[dict[str, Any]],
        key: Callable[[dict[str, Any]], str],
        changed: list[tuple[str, str, str]],
    ) -> list[dict[str, Any]]:
        known = q.digests(self.store, self.site, kind)
        out = []
        for r in rows:
            k, d = key(r), _digest(r)
            if known.get(k) != d:
                out.append(r)
                changed.append((kind, k, d))
        return out


def _violations(store: Store) -> list[dict[str, Any]]:
    return [{**r, "count": int(r["count"])} for r in q.violation_rows(store)]


def op_minute_rows(store: Store, chunks: list[tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    """Operations per conversation per minute for every minute ``chunks`` touch, counted
    over all the conversation's published chunks (up to the last of ``chunks``): totals,
    not increments, so a re-analysed capture (its chunks replaced by new ones) states the
    right numbers again instead of adding them twice."""
    upto = max(c[0] for c in chunks)
    touched: dict[int, set[int]] = defaultdict(set)
    for _id, conv, first, last in chunks:
        touched[conv].update(range(first // NS_MINUTE, last // NS_MINUTE + 1))
    out = []
    names = ("transport", "client_ip", "server_ip", "server_port", "vlan", "protocol")
    for conv, minutes in sorted(touched.items()):
        lo, hi = min(minutes) * NS_MINUTE, (max(minutes) + 1) * NS_MINUTE
        acc: dict[int, int] = defaultdict(int)
        for data in q.chunk_data(store, conv, lo, hi, upto):
            ts = unpack(data, lazy_details=True).ints["ts"]
            found, counts = np.unique(ts // NS_MINUTE, return_counts=True)
            for m, n in zip(found.tolist(), counts.tolist(), strict=True):
                if m in minutes:
                    acc[m] += n
        key = dict(zip(names, q.conversation_key(store, conv), strict=True))
        out += [{**key, "minute": m * 60, "operations": n} for m, n in sorted(acc.items())]
    return out


def health_rows(store: Store, uplink: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per sensor in the store (or one for the site when none ran), with the
    uplink's own backlog and drops."""
    out = []
    for r in q.sensor_health(store) or [{"name": "analyze", "state": None, "health": "{}"}]:
        h = json.loads(r["health"] or "{}")
        lag = h.get("lag_s")
        out.append(
            {
                "sensor": str(r["name"]),
                "state": r["state"],
                "packets": int(h["packets"]) if isinstance(h.get("packets"), int) else None,
                "drops": int(h.get("drops_kernel") or 0) + int(h.get("drops_capture") or 0),
                "lag_s": float(lag) if isinstance(lag, int | float) else None,
                "backlog": int(uplink.get("backlog", 0)),
                "dropped_uplink": int(uplink.get("dropped", 0)),
                "detail": uplink.get("detail"),
            }
        )
    return out
