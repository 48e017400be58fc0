"""Stored policy violations as the CLI lists them: what ``analyze --policy`` and
``violations --policy`` stored can be read back without the policy file at hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.store.match import ip_matcher, iso_ns, names, overlaps
from otconduit.store.sqlite import Store

# The keys of ``Violation.to_dict`` in order; columns added to the table later (e.g. a
# sweep's ``targets``) follow them.
KEYS = (
    "rule",
    "src_ip",
    "dst_ip",
    "src_zone",
    "dst_zone",
    "protocol",
    "operation",
    "conduit",
    "reason",
    "count",
    "first_seen",
    "last_seen",
    "capture",
    "frame",
)
_INTERNAL = {"id", "policy", "capture_id", "checked_at", "capture_path"}


@dataclass(slots=True)
class ViolationFilter:
    policy: str | None = None  # the policy's plant name
    rule: str | None = None
    ip: str | None = None  # source or destination: one address or a CIDR network
    protocol: str | tuple[str, ...] | None = None
    zone: str | None = None  # source or destination zone
    start_ns: int | None = None
    end_ns: int | None = None


def stored_violations(store: Store, flt: ViolationFilter | None = None) -> list[dict[str, Any]]:
    """Violations in the order the check stored them (rule, then time), with the keys of
    ``Violation.to_dict`` plus ``policy``."""
    flt = flt or ViolationFilter()
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("v.policy", flt.policy), ("v.rule", flt.rule)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if flt.zone is not None:
        where.append("(v.src_zone = ? OR v.dst_zone = ?)")
        params += [flt.zone, flt.zone]
    protos = names(flt.protocol)
    if protos:
        where.append(f"v.protocol IN ({', '.join('?' * len(protos))})")
        params += protos
    rows = store.query(
        "SELECT v.*, c.path AS capture_path FROM violations v "
        "LEFT JOIN captures c ON c.id = v.capture_id"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY v.id",
        params,
    )
    hit = ip_matcher(flt.ip) if flt.ip else None
    out = []
    for r in rows:
        if hit is not None and not (hit(r["src_ip"]) or hit(r["dst_ip"])):
            continue
        if not overlaps(iso_ns(r["first_seen"]), iso_ns(r["last_seen"]), flt.start_ns, flt.end_ns):
            continue
        r["capture"] = r["capture_path"]
        row = {"ts": r["first_seen"], **{k: r[k] for k in KEYS}}
        row.update((k, v) for k, v in r.items() if k not in row and k not in _INTERNAL)
        capture, frame = r["capture"], r["frame"]
        row["evidence"] = (
            None if capture is None else capture if frame is None else f"{capture}#{frame}"
        )
        row["policy"] = r["policy"]
        out.append(row)
    return out
