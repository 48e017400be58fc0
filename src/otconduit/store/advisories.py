"""Advisories in the store: saving CSAF documents, reading product entries for matching,
listings, one document, and what the sync client fetched.

A document is stored once per publisher namespace and tracking id: importing it again
changes nothing, a newer ``tracking.version`` replaces it (its product rows with it), an
older one is refused. The document itself is kept compressed so ``show`` and later
versions of Conduit can read everything it says.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from otconduit.advisories.csaf import Advisory
from otconduit.advisories.match import ProductIndex, ProductRecord, match_asset
from otconduit.advisories.normalise import vendor_keys
from otconduit.advisories.versions import parse_version
from otconduit.store.sqlite import Store


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def transaction(store: Store) -> Iterator[None]:
    """One write transaction (imports commit in batches: one per document is slow)."""
    store.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        store.conn.execute("ROLLBACK")
        raise
    store.conn.execute("COMMIT")


def _newer(a: str, b: str) -> int:
    """Compare two tracking versions (integers or semantic versions, CSAF §3.1.11)."""
    va, vb = parse_version(a, lenient=True), parse_version(b, lenient=True)
    if va is None or vb is None:
        return (a > b) - (a < b)
    return va.compare(vb)


def save(store: Store, adv: Advisory, raw: bytes, source: str) -> str:
    """Store one parsed document (inside the caller's transaction). Returns ``new``,
    ``updated``, ``unchanged`` or ``older`` (a later version is already stored)."""
    sha = hashlib.sha256(raw).hexdigest()
    row = store.conn.execute(
        "SELECT id, version, sha256 FROM advisories WHERE namespace = ? "
        "AND lower(tracking_id) = lower(?)",
        (adv.namespace, adv.tracking_id),
    ).fetchone()
    if row is not None:
        old_id, old_version, old_sha = row
        if old_sha == sha:
            return "unchanged"
        order = _newer(adv.version, old_version)
        if order < 0:
            return "older"
        store.conn.execute("DELETE FROM advisory_products WHERE advisory_id = ?", (old_id,))
        store.conn.execute("DELETE FROM advisories WHERE id = ?", (old_id,))
    cur = store.conn.execute(
        "INSERT INTO advisories (namespace, publisher, tracking_id, version, doc_status, title, "
        "initial_release, current_release, url, cves, cvss, vector, vendors, source, sha256, "
        "imported_at, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (
            adv.namespace,
            adv.publisher,
            adv.tracking_id,
            adv.version,
            adv.status,
            adv.title,
            adv.initial_release,
            adv.current_release,
            adv.url,
            json.dumps(adv.cves),
            adv.cvss,
            adv.vector,
            json.dumps(adv.vendors),
            source,
            sha,
            _now(),
            zlib.compress(raw, 6),
        ),
    )
    (adv_id,) = cur.fetchone()
    rows = []
    for st in adv.statuses:
        p = adv.products.get(st.product_id)
        if p is None:
            continue
        for key in sorted(vendor_keys(p.vendor)) or [""]:
            rows.append(
                (
                    adv_id,
                    p.product_id,
                    st.status,
                    key,
                    p.vendor,
                    p.family,
                    p.product,
                    p.version,
                    p.version_source,
                    p.full_name,
                    json.dumps(list(p.part_numbers)),
                    p.cpe,
                    p.purl,
                    json.dumps(list(st.cves)),
                    st.cvss,
                    st.vector,
                    st.remediation,
                )
            )
    store.conn.executemany(
        "INSERT INTO advisory_products VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return "updated" if row is not None else "new"


# -- reading ---------------------------------------------------------------------------
def count(store: Store) -> int:
    return int(store.conn.execute("SELECT count(*) FROM advisories").fetchone()[0])


def generation(store: Store) -> tuple[Any, ...]:
    """Changes whenever advisories are imported, updated or synced (a cache key)."""
    return tuple(
        store.conn.execute("SELECT count(*), max(id), max(imported_at) FROM advisories").fetchone()
    )


def product_records(store: Store) -> Iterator[ProductRecord]:
    """Every stored product entry with its advisory's id, title and link."""
    cur = store.conn.execute(
        "SELECT a.tracking_id, a.title, a.url, p.product_id, p.status, p.vendor_key, p.vendor, "
        "p.family, p.product, p.version, p.version_source, p.full_name, p.part_numbers, "
        "p.cves, p.cvss, p.vector, p.remediation "
        "FROM advisory_products p JOIN advisories a ON a.id = p.advisory_id"
    )
    for r in cur:
        yield ProductRecord(
            advisory=r[0],
            title=r[1],
            url=r[2],
            product_id=r[3],
            status=r[4],
            vendor_key=r[5],
            vendor=r[6],
            family=r[7],
            product=r[8],
            version=r[9],
            version_source=r[10],
            full_name=r[11],
            part_numbers=tuple(json.loads(r[12])),
            cves=tuple(json.loads(r[13])),
            cvss=r[14],
            vector=r[15],
            remediation=r[16],
        )


@dataclass(slots=True)
class _Cached:
    key: tuple[Any, ...]
    index: ProductIndex


# The index of one database, rebuilt when its advisories change: every `views.assets`
# call (CLI, console) would otherwise re-read and re-prepare ~17,000 product rows.
_cache: dict[str, _Cached] = {}


def index(store: Store) -> ProductIndex:
    """The product index of this database's advisories (cached while they are unchanged)."""
    key = (str(store.path.resolve()), *generation(store))
    hit = _cache.get(key[0])
    if hit is not None and hit.key == key:
        return hit.index
    idx = ProductIndex(product_records(store))
    _cache.clear()  # one database at a time: bounded
    _cache[key[0]] = _Cached(key, idx)
    return idx


def attach(store: Store, assets: list[dict[str, Any]]) -> None:
    """Add ``advisories`` to asset rows: ``[{id, cvss, status}]``, confirmed matches first,
    ``version_unknown`` candidates after them."""
    if not assets:
        return
    if count(store) == 0:
        for a in assets:
            a["advisories"] = []
        return
    idx = index(store)
    for a in assets:
        a["advisories"] = [
            {"id": m.record.advisory, "cvss": m.record.cvss, "status": m.status}
            for m in match_asset(a, idx)
        ]


def listing(store: Store, vendor: str | None = None) -> list[dict[str, Any]]:
    """Stored advisories, newest release first; ``vendor`` matches any vendor named."""
    rows = store.query(
        "SELECT tracking_id AS id, version, current_release AS released, title, vendors, "
        "cves, cvss, vector, url, publisher, source, imported_at FROM advisories "
        "ORDER BY current_release DESC, lower(tracking_id)"
    )
    want = vendor_keys(vendor) if vendor else frozenset()
    needle = (vendor or "").lower()
    out = []
    for r in rows:
        r["vendors"] = json.loads(r["vendors"])
        r["cves"] = json.loads(r["cves"])
        if vendor:
            keys = {k for v in r["vendors"] for k in vendor_keys(v)}
            if not (want & keys) and not any(needle in v.lower() for v in r["vendors"]):
                continue
        out.append(r)
    return out


def document(store: Store, tracking_id: str) -> tuple[dict[str, Any], bytes] | None:
    """One advisory's stored row and its document bytes, by tracking id (any case)."""
    rows = list(
        store.query(
            "SELECT id AS rowid, tracking_id AS id, version, current_release AS released, "
            "initial_release, title, publisher, namespace, doc_status, vendors, cves, cvss, "
            "vector, url, source, sha256, imported_at, document FROM advisories "
            "WHERE lower(tracking_id) = lower(?) ORDER BY current_release DESC",
            (tracking_id.strip(),),
        )
    )
    if not rows:
        return None
    r = rows[0]
    raw = zlib.decompress(r.pop("document"))
    r["vendors"] = json.loads(r["vendors"])
    r["cves"] = json.loads(r["cves"])
    return r, raw


def products_of(store: Store, rowid: int) -> list[dict[str, Any]]:
    """An advisory's product rows (one per product, status and vendor key)."""
    out = []
    for r in store.query(
        "SELECT product_id, status, vendor, product, version, full_name, part_numbers, "
        "cves, cvss, remediation FROM advisory_products WHERE advisory_id = ? "
        "GROUP BY product_id, status ORDER BY min(rowid)",
        (rowid,),
    ):
        r["part_numbers"] = json.loads(r["part_numbers"])
        r["cves"] = json.loads(r["cves"])
        out.append(r)
    return out


def ids(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT tracking_id FROM advisories")]


# -- sync state ------------------------------------------------------------------------
@dataclass(slots=True)
class SyncState:
    url: str
    kind: str
    updated: str | None
    etag: str | None
    last_modified: str | None
    outcome: str | None


def sync_state(store: Store, url: str) -> SyncState | None:
    row = store.conn.execute(
        "SELECT url, kind, updated, etag, last_modified, outcome FROM advisory_sync WHERE url = ?",
        (url,),
    ).fetchone()
    return SyncState(*row) if row else None


def sync_states(store: Store, kind: str) -> dict[str, SyncState]:
    return {
        r[0]: SyncState(*r)
        for r in store.conn.execute(
            "SELECT url, kind, updated, etag, last_modified, outcome FROM advisory_sync "
            "WHERE kind = ?",
            (kind,),
        )
    }


def record_sync(
    store: Store,
    url: str,
    kind: str,
    *,
    updated: str | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    outcome: str | None = None,
) -> None:
    """Remember what was fetched (inside the caller's transaction, or autocommit)."""
    store.conn.execute(
        "INSERT INTO advisory_sync (url, kind, updated, etag, last_modified, outcome, checked_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET kind = excluded.kind, "
        "updated = excluded.updated, etag = excluded.etag, "
        "last_modified = excluded.last_modified, outcome = excluded.outcome, "
        "checked_at = excluded.checked_at",
        (url, kind, updated, etag, last_modified, outcome, _now()),
    )


__all__ = [
    "SyncState",
    "attach",
    "count",
    "document",
    "generation",
    "ids",
    "index",
    "listing",
    "product_records",
    "products_of",
    "record_sync",
    "save",
    "sync_state",
    "sync_states",
    "transaction",
]
