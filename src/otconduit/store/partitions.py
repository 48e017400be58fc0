"""Operations by time on PostgreSQL: ``op_chunks`` is partitioned by range of
``first_ts``, one partition per UTC day, created when the first chunk of that day is
written and dropped whole when retention passes it.

A day is the unit because retention is asked for in days and a day of a busy plant is
a few hundred MB of chunks: small enough to drop at once, big enough that a year is a
few hundred partitions. Partition names carry the day (``op_chunks_p20231114``) so an
operator can read them in ``\\d+ op_chunks``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from otconduit.store.backend import PgConnection

DAY_NS = 86_400 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PREFIX = "op_chunks_p"


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lo: int  # first_ts >= lo (ns)
    hi: int  # first_ts < hi (ns)


def day_of(ts_ns: int) -> int:
    """The UTC day number (days since 1970-01-01) holding ``ts_ns``."""
    return ts_ns // DAY_NS


def name_of(day: int) -> str:
    return PREFIX + (_EPOCH + timedelta(days=day)).strftime("%Y%m%d")


def ensure(conn: PgConnection, days: Iterable[int], known: set[int]) -> None:
    """Create the partitions for ``days`` that ``known`` (the caller's cache of days
    already made, filled from the catalogue on first use) does not hold. Runs outside any
    transaction: creating a partition locks ``op_chunks`` briefly, once per day and
    writer; a partition made by a concurrent writer meanwhile is fine."""
    import psycopg

    wanted = set(days) - known
    if wanted and not known:  # first write of this store: learn what is there already
        known.update(day_of(p.lo) for p in existing(conn) if p.hi - p.lo == DAY_NS)
        wanted -= known
    for day in sorted(wanted):
        lo, hi = day * DAY_NS, (day + 1) * DAY_NS
        # Another writer may make it between our check and our create: that is fine.
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name_of(day)} PARTITION OF op_chunks "
                f"FOR VALUES FROM ({lo}) TO ({hi})"
            )
        known.add(day)


def existing(conn: PgConnection) -> list[Partition]:
    """The partitions of ``op_chunks``, oldest first."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'op_chunks'::regclass"
    ).fetchall()
    out = []
    for name, bound in rows:
        # FOR VALUES FROM ('1699920000000000000') TO ('1700006400000000000')
        lo_text, hi_text = bound.split("FROM (", 1)[1].split(") TO (", 1)
        out.append(Partition(name, int(lo_text.strip("'")), int(hi_text.rstrip(")").strip("'"))))
    return sorted(out, key=lambda p: p.lo)


def drop_before(conn: PgConnection, cutoff_ns: int) -> list[Partition]:
    """Drop every partition whose whole range lies before ``cutoff_ns``; returns them."""
    gone = [p for p in existing(conn) if p.hi <= cutoff_ns]
    for p in gone:
        conn.execute(f"DROP TABLE IF EXISTS {p.name}")
    return gone
