"""``conduit advisories sync``: fetch a CSAF provider's documents, only what changed.

What a CSAF 2.0 provider publishes (CSAF 2.0 §7.1):

- ``provider-metadata.json`` (§7.1.7), at ``/.well-known/csaf/`` of the provider's host,
  naming its distributions: ROLIE feeds and/or directories.
- ROLIE feeds (§7.1.20): one entry per document with its link, the ``updated`` time and
  links to its hash and signature files.
- Directories (§7.1.13-§7.1.17): ``changes.csv`` (path and time of the last change, newest
  first) and ``index.txt`` (paths only), relative to the directory. CISA's own index
  names paths from its repository's root (``csaf_files/OT/white/2024/...``): a leading
  part that ends with the directory's own name is dropped.

Incremental: a feed or index is fetched with the validators of the last fetch
(``If-None-Match``, ``If-Modified-Since``; a 304 ends the sync), and a document is
fetched only when its ``updated`` time differs from the one recorded when it was last
imported (``index.txt`` gives no times: only documents never fetched). Each document's
SHA-512 or SHA-256 file is checked when the provider publishes one; a mismatch rejects
the document. Documents are fetched a few at a time and imported in batches.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from otconduit.advisories.csaf import MAX_DOCUMENT_BYTES
from otconduit.advisories.importer import BATCH, ImportReport, import_one
from otconduit.store import advisories as db
from otconduit.store.sqlite import Store

# CISA's ROLIE feed of ICS advisories (TLP:WHITE), as its own documents link it.
DEFAULT_URL = (
    "https://raw.githubusercontent.com/cisagov/CSAF/develop/csaf_files/OT/white/"
    "cisa-csaf-ot-feed-tlp-white.json"
)
MAX_FEED_BYTES = 256 << 20
USER_AGENT = "conduit-advisories-sync"
WELL_KNOWN = "/.well-known/csaf/provider-metadata.json"


def _list(v: Any) -> list[Any]:
    """A JSON array, or nothing: documents come from outside and may say anything."""
    return v if isinstance(v, list) else []


class SyncError(Exception):
    """The provider cannot be read at all (feed or index unreachable or unusable)."""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


Fetch = Callable[[str, dict[str, str], int], Response]


def http_get(url: str, headers: dict[str, str], limit: int, timeout: float = 30.0) -> Response:
    """GET with a size bound; a 304 or 404 is a response, other failures raise SyncError."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise SyncError(f"{url}: only http and https URLs can be synced")
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read(limit + 1)
            if len(body) > limit:
                raise SyncError(f"{url}: larger than {limit >> 20} MiB")
            return Response(resp.status, body, {k.lower(): v for k, v in resp.headers.items()})
    except urllib.error.HTTPError as exc:
        if exc.code in (304, 404, 410):
            return Response(exc.code, b"", {k.lower(): v for k, v in exc.headers.items()})
        raise SyncError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SyncError(f"{url}: {reason}") from None


@dataclass(slots=True)
class Listed:
    """One document a feed or index lists."""

    url: str
    updated: str | None
    hash_urls: tuple[str, ...]


@dataclass(slots=True)
class SyncReport:
    source: str = ""  # the feed or index read
    kind: str = ""  # rolie | changes.csv | index.txt
    not_modified: bool = False
    listed: int = 0
    current: int = 0  # listed and already up to date
    fetched: int = 0
    verified: int = 0
    unverified: int = 0  # the provider publishes no hash for it
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, reason): retried
    imported: ImportReport = field(default_factory=ImportReport)
    seconds: float = 0.0

    def summary(self) -> str:
        if self.not_modified:
            return f"{self.source}: not modified since the last sync; nothing fetched"
        imp = self.imported
        parts = [
            f"{self.kind} {self.source}: {self.listed} listed",
            f"{self.current} up to date",
            f"{self.fetched} fetched in {self.seconds:.1f} s",
            f"{imp.new} new",
            f"{imp.updated} updated",
        ]
        if imp.skipped:
            parts.append(f"{imp.skipped} rejected")
        if self.failed:
            parts.append(f"{len(self.failed)} failed (retried next time)")
        parts.append(f"hashes checked: {self.verified}, none published: {self.unverified}")
        return ", ".join(parts)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _dir_join(base: str, path: str) -> str:
    """A directory index's path as a URL (see the module note on CISA's paths)."""
    path = path.strip()
    if urllib.parse.urlsplit(path).scheme in ("http", "https"):
        return path
    base_dir = base if base.endswith("/") else base.rsplit("/", 1)[0] + "/"
    own = [s for s in urllib.parse.urlsplit(base_dir).path.split("/") if s]
    segs = [s for s in path.split("/") if s]
    if own and own[-1] in segs[:-1]:
        cut = len(segs) - 1 - segs[::-1].index(own[-1])
        if cut < len(segs) - 1:
            segs = segs[cut + 1 :]
    return urllib.parse.urljoin(base_dir, "/".join(segs))


def _rolie(feed_url: str, doc: dict[str, Any]) -> list[Listed]:
    out: list[Listed] = []
    feed: dict[str, Any] = doc["feed"] if isinstance(doc.get("feed"), dict) else {}
    for e in _list(feed.get("entry")):
        if not isinstance(e, dict):
            continue
        src, hashes = None, []
        content = e.get("content")
        if isinstance(content, dict) and isinstance(content.get("src"), str):
            src = content["src"]
        for link in _list(e.get("link")):
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                continue
            if link.get("rel") == "self" and src is None:
                src = link["href"]
            elif link.get("rel") == "hash":
                hashes.append(urllib.parse.urljoin(feed_url, link["href"]))
        if src is None:
            continue
        updated = e.get("updated") if isinstance(e.get("updated"), str) else None
        out.append(Listed(urllib.parse.urljoin(feed_url, src), updated, tuple(hashes)))
    return out


def _changes(url: str, body: bytes) -> list[Listed]:
    out: list[Listed] = []
    text = body.decode("utf-8", "replace")
    for rec in csv.reader(io.StringIO(text)):
        if len(rec) >= 2 and rec[0].strip().lower().endswith(".json"):
            doc = _dir_join(url, rec[0])
            out.append(Listed(doc, rec[1].strip(), (doc + ".sha512", doc + ".sha256")))
    return out


def _index(url: str, body: bytes) -> list[Listed]:
    out: list[Listed] = []
    for line in body.decode("utf-8", "replace").splitlines():
        if line.strip().lower().endswith(".json"):
            doc = _dir_join(url, line)
            out.append(Listed(doc, None, (doc + ".sha512", doc + ".sha256")))
    return out


class _Syncer:
    def __init__(self, store: Store, fetch: Fetch, workers: int) -> None:
        self.store, self.fetch, self.workers = store, fetch, workers

    def get_listing(self, url: str) -> Response:
        """Fetch a feed or index with the validators of its last fetch."""
        state = db.sync_state(self.store, url)
        headers = {}
        if state is not None and state.etag:
            headers["If-None-Match"] = state.etag
        if state is not None and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        return self.fetch(url, headers, MAX_FEED_BYTES)

    def resolve(self, url: str, depth: int = 0) -> tuple[str, str, Response] | None:
        """(listing url, kind, response) for what ``url`` names; None on 304."""
        if depth > 3:
            raise SyncError(f"{url}: provider metadata points in circles")
        path = urllib.parse.urlsplit(url).path
        if path in ("", "/"):  # a provider's host: its metadata is at a well-known place
            return self.resolve_file(urllib.parse.urljoin(url, WELL_KNOWN), depth)
        if path.endswith("/"):
            for name in ("changes.csv", "index.txt"):
                got = self.resolve_file(url + name)
                if got is None or got[2].status != 404:
                    return got
            raise SyncError(f"{url}: no changes.csv or index.txt in this directory")
        return self.resolve_file(url, depth)

    def resolve_file(self, url: str, depth: int = 0) -> tuple[str, str, Response] | None:
        low = urllib.parse.urlsplit(url).path.lower()
        kind = (
            "changes.csv" if low.endswith(".csv") else "index.txt" if low.endswith(".txt") else ""
        )
        resp = self.get_listing(url)
        if resp.status == 304:
            return None
        if resp.status in (404, 410):
            if kind:
                return url, kind, resp
            raise SyncError(f"{url}: not found (HTTP {resp.status})")
        if kind:
            return url, kind, resp
        doc = _json(resp.body)
        if isinstance(doc, dict) and isinstance(doc.get("feed"), dict):
            return url, "rolie", resp
        if isinstance(doc, dict) and isinstance(doc.get("distributions"), list):
            feeds, dirs = [], []
            for d in doc["distributions"]:
                if not isinstance(d, dict):
                    continue
                rolie = d.get("rolie")
                if isinstance(rolie, dict):
                    for f in _list(rolie.get("feeds")):
                        if isinstance(f, dict) and isinstance(f.get("url"), str):
                            feeds.append(urllib.parse.urljoin(url, f["url"]))
                if isinstance(d.get("directory_url"), str):
                    dirs.append(urllib.parse.urljoin(url, d["directory_url"]))
            target = feeds[0] if feeds else dirs[0] if dirs else None
            if target is None:
                raise SyncError(f"{url}: provider metadata names no ROLIE feed or directory")
            if len(feeds) > 1:
                raise SyncError(
                    f"{url}: several ROLIE feeds ({', '.join(feeds)}): pass one with --url"
                )
            if target in dirs and not target.endswith("/"):
                target += "/"
            return self.resolve(target, depth + 1)
        raise SyncError(f"{url}: neither a ROLIE feed, provider metadata nor a CSAF index")

    def record_listing(self, url: str, kind: str, resp: Response) -> None:
        db.record_sync(
            self.store,
            url,
            "index" if kind in ("changes.csv", "index.txt") else "feed",
            etag=resp.headers.get("etag"),
            last_modified=resp.headers.get("last-modified"),
            outcome="read",
        )

    def download(self, item: Listed) -> tuple[Listed, bytes | None, str | None, bool | None]:
        """(item, body, failure, verified): verified is None when no hash is published."""
        try:
            resp = self.fetch(item.url, {}, MAX_DOCUMENT_BYTES)
        except SyncError as exc:
            return item, None, str(exc), None
        if resp.status != 200:
            return item, None, f"HTTP {resp.status}", None
        for hash_url in item.hash_urls:
            algo = "sha512" if hash_url.lower().endswith(".sha512") else "sha256"
            try:
                h = self.fetch(hash_url, {}, 4096)
            except SyncError:
                continue
            if h.status != 200:
                continue
            want = h.body.decode("ascii", "replace").split()[:1]
            got = hashlib.new(algo, resp.body).hexdigest()
            if not want or want[0].lower() != got:
                return item, None, f"{algo} does not match {hash_url}", False
            return item, resp.body, None, True
        return item, resp.body, None, None


def sync(
    store: Store,
    url: str = DEFAULT_URL,
    *,
    fetch: Fetch | None = None,
    workers: int = 8,
    on_problem: Callable[[str, str], None] | None = None,
) -> SyncReport:
    """Bring the store up to date with a provider's feed or directory."""
    t0 = time.perf_counter()
    s = _Syncer(store, fetch or http_get, max(1, workers))
    rep = SyncReport(imported=ImportReport(on_problem=on_problem))
    got = s.resolve(url)
    if got is None:
        rep.source, rep.not_modified = url, True
        return rep
    listing_url, kind, resp = got
    rep.source, rep.kind = listing_url, kind
    if kind == "rolie":
        listed = _rolie(listing_url, _json(resp.body))
    elif resp.status in (404, 410):
        raise SyncError(f"{listing_url}: not found (HTTP {resp.status})")
    elif kind == "changes.csv":
        listed = _changes(listing_url, resp.body)
    else:
        listed = _index(listing_url, resp.body)
    rep.listed = len(listed)
    known = db.sync_states(store, "document")
    todo: list[Listed] = []
    for item in dict((i.url, i) for i in listed).values():
        st = known.get(item.url)
        if st is not None and (item.updated is None or st.updated == item.updated):
            rep.current += 1
        else:
            todo.append(item)
    _fetch_and_import(s, todo, rep)
    if not rep.failed:  # an interrupted or partial sync reads the listing again
        s.record_listing(listing_url, kind, resp)
    rep.seconds = time.perf_counter() - t0
    return rep


def _results(
    s: _Syncer, todo: list[Listed]
) -> Iterator[tuple[Listed, bytes | None, str | None, bool | None]]:
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=s.workers) as pool:
        yield from pool.map(s.download, todo)


def _fetch_and_import(s: _Syncer, todo: list[Listed], rep: SyncReport) -> None:
    store, imp = s.store, rep.imported
    pending = 0
    with store.transaction() as tx:
        for item, body, failure, verified in _results(s, todo):
            if body is None:
                if verified is False:  # a wrong hash: rejected until the feed changes it
                    rep.fetched += 1
                    imp.problem(item.url, failure or "hash mismatch")
                    db.record_sync(
                        store, item.url, "document", updated=item.updated, outcome="rejected"
                    )
                else:
                    rep.failed.append((item.url, failure or "failed"))
                    if imp.on_problem is not None:
                        imp.on_problem(item.url, f"{failure} (retried next time)")
                continue
            rep.fetched += 1
            if verified:
                rep.verified += 1
            else:
                rep.unverified += 1
            outcome = import_one(store, imp, item.url, body)
            db.record_sync(
                store,
                item.url,
                "document",
                updated=item.updated,
                outcome="rejected" if outcome == "skipped" else outcome,
            )
            pending += 1
            if pending >= BATCH:
                tx.checkpoint()
                pending = 0


__all__ = ["DEFAULT_URL", "Listed", "Response", "SyncError", "SyncReport", "http_get", "sync"]
