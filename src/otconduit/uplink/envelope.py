"""The uplink's wire format, shared by the edge (encode) and the hub (decode), sans-I/O.

Topic ``conduit/v1/<site>/<kind>``; payload one JSON object::

    {"v": 1, "site": "plant-a", "seq": 17, "sent_at": "2026-12-07T08:00:00.123Z",
     "kind": "assets", "rows": [{...}, ...]}

``(site, seq)`` is the message id: ``seq`` increases by one per message and is kept in
the site's store, so a restarted sensor never reuses one, and the hub applies each id
once. Every row of every kind is checked field by field against :data:`KINDS` before
anything is applied: a message is whole and well-typed, or it is refused with one
:class:`Refused` naming why (the hub counts and reports it; it never half-applies).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

VERSION = 1
PREFIX = "conduit/v1"
MAX_BYTES = 256 * 1024  # a message larger than this is refused unread
MAX_ROWS = 5000
SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INT64 = 1 << 63

# Field types per kind: name -> (types, nullable). Ints are 64-bit signed.
_S, _I, _F = (str,), (int,), (int, float)
KINDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "assets": {
        "ip": (_S, False), "vlan": (_I, False), "mac": (_S, True), "name": (_S, True),
        "vendor": (_S, True), "model": (_S, True), "roles": (_S, True),
        "protocols": (_S, True), "first_seen": (_I, True), "last_seen": (_I, True),
        "packets_sent": (_I, False), "packets_received": (_I, False),
    },
    "conversations": {
        "transport": (_S, False), "client_ip": (_S, False), "server_ip": (_S, False),
        "server_port": (_I, False), "vlan": (_I, False), "protocol": (_S, False),
        "connections": (_I, False), "packets": (_I, False), "bytes": (_I, False),
        "first_seen": (_I, True), "last_seen": (_I, True), "functions": (_S, True),
    },
    "alerts": {
        "alert_id": (_I, False), "rule": (_S, False), "title": (_S, False),
        "category": (_S, False), "severity": (_I, False), "techniques": (_S, True),
        "src_ip": (_S, True), "dst_ip": (_S, True), "protocol": (_S, True),
        "operation": (_S, True), "summary": (_S, False), "first_seen": (_I, False),
        "last_seen": (_I, False), "count": (_I, False), "status": (_S, False),
        "change_seq": (_I, False),
    },
    "violations": {
        "policy": (_S, False), "rule": (_S, False), "src_ip": (_S, False),
        "dst_ip": (_S, False), "protocol": (_S, False), "operation": (_S, False),
        "reason": (_S, False), "count": (_I, False), "first_seen": (_S, True),
        "last_seen": (_S, True),
    },
    "op_minutes": {
        "transport": (_S, False), "client_ip": (_S, False), "server_ip": (_S, False),
        "server_port": (_I, False), "vlan": (_I, False), "protocol": (_S, False),
        "minute": (_I, False), "operations": (_I, False),
    },
    "health": {
        "sensor": (_S, False), "state": (_S, True), "packets": (_I, True),
        "drops": (_I, True), "lag_s": (_F, True), "backlog": (_I, True),
        "dropped_uplink": (_I, True), "detail": (_S, True),
    },
}  # fmt: skip
ALERT_STATUSES = ("open", "acknowledged", "closed")


class Refused(Exception):
    """A message the hub will not apply; ``reason`` is a short stable word for counting
    (``oversized``, ``malformed``, ``topic``, ``site_mismatch``, ``unknown_site``,
    ``skew``), the message text says what exactly."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    site: str
    seq: int
    sent_at: str  # ISO 8601 UTC, the site's clock
    kind: str
    rows: tuple[dict[str, Any], ...]

    @property
    def topic(self) -> str:
        return topic_for(self.site, self.kind)


def topic_for(site: str, kind: str) -> str:
    return f"{PREFIX}/{site}/{kind}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An envelope's ``sent_at`` (raises ValueError when it is not ISO 8601 with a zone)."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("no time zone")
    return t


def encode(env: Envelope) -> bytes:
    doc = {
        "v": VERSION,
        "site": env.site,
        "seq": env.seq,
        "sent_at": env.sent_at,
        "kind": env.kind,
        "rows": list(env.rows),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def site_of_topic(topic: str) -> tuple[str, str]:
    """``(site, kind)`` of an uplink topic, or :class:`Refused` (``topic``)."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != PREFIX:
        raise Refused("topic", f"{topic[:120]!r} is not {PREFIX}/<site>/<kind>")
    site, kind = parts[2], parts[3]
    if not SITE.match(site):
        raise Refused("topic", f"site name {site[:80]!r} is not a valid site name")
    if kind not in KINDS:
        raise Refused("topic", f"unknown kind {kind[:40]!r}")
    return site, kind


def decode(topic: str, payload: bytes, *, max_bytes: int = MAX_BYTES) -> Envelope:
    """The envelope of one uplink message, fully checked, or :class:`Refused`."""
    site, kind = site_of_topic(topic)
    if len(payload) > max_bytes:
        raise Refused("oversized", f"{len(payload)} bytes (limit {max_bytes})")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Refused("malformed", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Refused("malformed", "not a JSON object")
    if doc.get("v") != VERSION:
        raise Refused("malformed", f"envelope version {str(doc.get('v'))[:20]!r} (want {VERSION})")
    if doc.get("site") != site:
        raise Refused(
            "site_mismatch", f"topic says {site!r}, envelope says {str(doc.get('site'))[:80]!r}"
        )
    if doc.get("kind") != kind:
        raise Refused("malformed", f"topic kind {kind!r} but envelope kind {doc.get('kind')!r}")
    seq = doc.get("seq")
    if type(seq) is not int or not 0 < seq < _INT64:
        raise Refused("malformed", "seq must be a positive 64-bit integer")
    sent_at = doc.get("sent_at")
    if not isinstance(sent_at, str) or len(sent_at) > 40:
        raise Refused("malformed", "sent_at must be an ISO 8601 time")
    try:
        parse_time(sent_at)
    except ValueError:
        raise Refused("malformed", f"sent_at {sent_at!r} is not an ISO 8601 time") from None
    rows = doc.get("rows")
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise Refused("malformed", f"rows must be a list of at most {MAX_ROWS}")
    spec = KINDS[kind]
    for i, row in enumerate(rows):
        _check_row(kind, spec, i, row)
    return Envelope(site=site, seq=seq, sent_at=sent_at, kind=kind, rows=tuple(rows))


def _storable(text: str) -> bool:
    """Text both databases store: no NUL (PostgreSQL refuses it), valid UTF-8 (JSON's
    ``\\ud800`` escapes decode to lone surrogates, which no encoder takes)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_row(kind: str, spec: dict[str, tuple[tuple[type, ...], bool]], i: int, row: Any) -> None:
    if not isinstance(row, dict):
        raise Refused("malformed", f"{kind} row {i} is not an object")
    extra = row.keys() - spec.keys()
    if extra:
        raise Refused("malformed", f"{kind} row {i}: unknown field {sorted(extra)[0][:40]!r}")
    for name, (types, nullable) in spec.items():
        v = row.get(name)
        if v is None:
            if not nullable:
                raise Refused("malformed", f"{kind} row {i}: {name} is missing")
            continue
        if isinstance(v, bool) or not isinstance(v, types):
            raise Refused("malformed", f"{kind} row {i}: {name} has the wrong type")
        if isinstance(v, int) and not -_INT64 <= v < _INT64:
            raise Refused("malformed", f"{kind} row {i}: {name} is out of range")
        if isinstance(v, float) and not math.isfinite(v):
            raise Refused("malformed", f"{kind} row {i}: {name} is not a finite number")
        if isinstance(v, str) and len(v) > 16384:
            raise Refused("malformed", f"{kind} row {i}: {name} is too long")
        if isinstance(v, str) and not _storable(v):
            raise Refused("malformed", f"{kind} row {i}: {name} holds NUL or invalid Unicode")
    if kind == "alerts" and row["status"] not in ALERT_STATUSES:
        raise Refused("malformed", f"alerts row {i}: unknown status {row['status'][:20]!r}")
