"""What risk scoring reads from the store: alerts still open per address, and who talks
to whom over which protocol. Plain tuples, so the scoring stays free of SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from otconduit.store.sqlite import Store

# SQLite's default limit on host parameters is 999 in older builds: stay well below it.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class AlertCount:
    """Alerts of one severity and status that name ``ip`` as source or destination."""

    ip: str
    severity: int  # 0 info .. 4 critical (``detect.rules.Severity``)
    status: str  # open | acknowledged
    count: int


@dataclass(frozen=True, slots=True)
class Served:
    """One conversation in which ``server_ip`` served ``client_ip``."""

    client_ip: str
    server_ip: str
    server_port: int
    protocol: str


def _chunks(ips: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ips), _CHUNK):
        yield ips[i : i + _CHUNK]


def unresolved_alerts(store: Store, ips: Iterable[str] | None = None) -> list[AlertCount]:
    """Alerts not closed, counted per address (either end), severity and status; only
    for ``ips`` when given."""
    base = (
        "SELECT ip, severity, status, count(*) FROM ("
        "SELECT src_ip AS ip, severity, status FROM alerts WHERE status != 'closed' "
        "AND src_ip IS NOT NULL UNION ALL "
        "SELECT dst_ip, severity, status FROM alerts WHERE status != 'closed' "
        "AND dst_ip IS NOT NULL AND (src_ip IS NULL OR dst_ip != src_ip)) AS ends"
    )
    group = " GROUP BY ip, severity, status"
    if ips is None:
        rows = store.conn.execute(base + group).fetchall()
    else:
        rows = []
        for part in _chunks(sorted(set(ips))):
            marks = ",".join("?" * len(part))
            rows += store.conn.execute(f"{base} WHERE ip IN ({marks}){group}", part).fetchall()
    return [AlertCount(str(ip), int(sev), str(st), int(n)) for ip, sev, st, n in rows]


def served(store: Store, ips: Iterable[str] | None = None) -> list[Served]:
    """Every conversation with the server, client, port and protocol (only those whose
    server is in ``ips`` when given)."""
    base = "SELECT DISTINCT client_ip, server_ip, server_port, protocol FROM conversations"
    if ips is None:
        rows = store.conn.execute(base).fetchall()
    else:
        rows = []
        for part in _chunks(sorted(set(ips))):
            marks = ",".join("?" * len(part))
            rows += store.conn.execute(f"{base} WHERE server_ip IN ({marks})", part).fetchall()
    return [Served(str(c), str(s), int(p), str(proto)) for c, s, p, proto in rows]


__all__ = ["AlertCount", "Served", "served", "unresolved_alerts"]
