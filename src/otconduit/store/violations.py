"""Stored policy violations: what ``analyze --policy`` and ``violations --policy``
stored, read back without the policy file at hand -- by the CLI in full, by the console
a page at a time, both through one filter -- and the statement that replaces them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from otconduit.store.captures import ids_by_path
from otconduit.store.match import ip_matcher, is_network, iso_ns, names, overlaps
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
    start_ns: int | None = None  # times are matched after SQL (they are stored as text)
    end_ns: int | None = None


def where(flt: ViolationFilter) -> tuple[str, list[Any]]:
    """`` WHERE ...`` over ``v`` (or ``""``) and its parameters. ``ip`` is matched as one
    address; a listing that accepts networks clears it and matches networks itself."""
    cond: list[str] = []
    params: list[Any] = []
    for column, value in (("v.policy", flt.policy), ("v.rule", flt.rule)):
        if value:
            cond.append(f"{column} = ?")
            params.append(value)
    if flt.ip:
        cond.append("(v.src_ip = ? OR v.dst_ip = ?)")
        params += [flt.ip, flt.ip]
    if flt.zone:
        cond.append("(v.src_zone = ? OR v.dst_zone = ?)")
        params += [flt.zone, flt.zone]
    protos = names(flt.protocol)
    if protos:
        cond.append(f"v.protocol IN ({', '.join('?' * len(protos))})")
        params += protos
    return (" WHERE " + " AND ".join(cond)) if cond else "", params


def stored_violations(store: Store, flt: ViolationFilter | None = None) -> list[dict[str, Any]]:
    """Violations in the order the check stored them (rule, then time), with the keys of
    ``Violation.to_dict`` plus ``policy``."""
    flt = flt or ViolationFilter()
    network = flt.ip if flt.ip and is_network(flt.ip) else None
    cond, params = where(replace(flt, ip=None) if network else flt)
    rows = store.query(
        "SELECT v.*, c.path AS capture_path FROM violations v "
        f"LEFT JOIN captures c ON c.id = v.capture_id{cond} ORDER BY v.id",
        params,
    )
    hit = ip_matcher(network) if network else None
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


def page(
    store: Store, flt: ViolationFilter, *, limit: int, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page newest first) -- ``flt``'s times are not applied."""
    cond, params = where(flt)
    (total,) = store.conn.execute(f"SELECT count(*) FROM violations v{cond}", params).fetchone()
    rows = store.query(
        "SELECT v.id, v.policy, v.rule, v.src_ip, v.dst_ip, v.src_zone, v.dst_zone, "
        "v.protocol, v.operation, v.conduit, v.reason, v.count, v.first_seen, v.last_seen, "
        "c.path AS capture, v.frame, v.checked_at, v.targets FROM violations v "
        f"LEFT JOIN captures c ON c.id = v.capture_id{cond} "
        "ORDER BY v.first_seen DESC, v.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return int(total), [dict(r) for r in rows]


def count(store: Store) -> int:
    """Every stored violation, of any policy."""
    return int(store.conn.execute("SELECT count(*) FROM violations").fetchone()[0])


def counts_by_rule(store: Store, policy: str | None) -> dict[str, int]:
    sql = "SELECT rule, count(*) FROM violations"
    params: list[Any] = []
    if policy:
        sql += " WHERE policy = ?"
        params.append(policy)
    return {r: n for r, n in store.conn.execute(sql + " GROUP BY rule ORDER BY rule", params)}


def policies(store: Store) -> list[str]:
    """Plant names of the policies that have violations stored, sorted."""
    return sorted(r for (r,) in store.conn.execute("SELECT DISTINCT policy FROM violations"))


def pairs(store: Store, policy: str | None) -> list[tuple[str, str | None, str]]:
    """(source, destination, rule) of every violation with a source (of ``policy`` when
    given); a sweep's rows have no destination."""
    sql = "SELECT src_ip, dst_ip, rule FROM violations WHERE src_ip IS NOT NULL"
    params: list[Any] = []
    if policy:
        sql += " AND policy = ?"
        params.append(policy)
    return [(src, dst, rule) for src, dst, rule in store.conn.execute(sql, params)]


def of_capture(store: Store, capture_id: int) -> list[dict[str, Any]]:
    """Whole rows of the violations a capture evidenced."""
    return list(store.query("SELECT * FROM violations WHERE capture_id = ?", (capture_id,)))


class Found(Protocol):
    """What :func:`replace_all` stores of one finding (``policy.check.Violation``)."""

    rule: str
    src_ip: str | None
    dst_ip: str | None
    src_zone: str | None
    dst_zone: str | None
    protocol: str | None
    operation: str | None
    conduit: str | None
    reason: str
    count: int
    first_seen: str | None
    last_seen: str | None
    capture: str | None  # path, as analysed
    frame: int | None
    targets: int


def replace_all(store: Store, policy: str, found: Iterable[Found], checked_at: str) -> None:
    """Replace ``policy``'s stored violations with ``found`` in one transaction."""
    captures = ids_by_path(store)
    with store.transaction():
        store.conn.execute("DELETE FROM violations WHERE policy = ?", (policy,))
        store.conn.executemany(
            "INSERT INTO violations (policy, capture_id, rule, src_ip, dst_ip, src_zone, "
            "dst_zone, protocol, operation, conduit, reason, count, first_seen, last_seen, "
            "frame, checked_at, targets) VALUES (" + ", ".join("?" * 17) + ")",
            [
                (
                    policy,
                    captures.get(v.capture) if v.capture else None,
                    v.rule,
                    v.src_ip,
                    v.dst_ip,
                    v.src_zone,
                    v.dst_zone,
                    v.protocol,
                    v.operation,
                    v.conduit,
                    v.reason,
                    v.count,
                    v.first_seen,
                    v.last_seen,
                    v.frame,
                    checked_at,
                    v.targets,
                )
                for v in found
            ],
        )
