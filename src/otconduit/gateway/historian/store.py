"""The historian's one storage interface, and the SQL both databases share.

:class:`HistorianStore` is what the sink's writer thread and the query functions use; it
is synchronous and owned by one thread. :class:`SqlHistorian` implements it once in
portable SQL (SQLite >= 3.24 and PostgreSQL both speak ``INSERT ... ON CONFLICT``); the
dialects add connecting, transactions, migrations and error translation.

Errors: :class:`HistorianError` for what a person must fix (a path that is not a
database, a tag that does not exist, a malformed DSN); :class:`HistorianUnavailable` for
an outage that may pass by itself (server down, database locked, disk full): the sink
buffers and retries on those.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from otconduit.gateway.historian.schema import KIND_NAMES, KIND_NONE, Row, encode_many, kind_of
from otconduit.gateway.model import TagSample

NS = 1_000_000_000
MIN_TS = -(2**63)
MAX_TS = 2**63 - 1
# (ts_ns, value, value_text, quality, flags)
SampleRow = tuple[int, float | None, str | None, int, int]
UPSERT = (
    " ON CONFLICT (tag_id, ts_ns) DO UPDATE SET value = excluded.value, "
    "value_text = excluded.value_text, quality = excluded.quality, flags = excluded.flags"
)


class HistorianError(Exception):
    """A historian problem a person must fix; the message says which and how."""


class HistorianUnavailable(HistorianError):
    """The database cannot be reached or written just now (may pass by itself)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Retention and downsampling.

    Samples older than ``retention_ns`` are deleted. Samples older than
    ``downsample_after_ns`` are thinned to one per tag per ``downsample_every_ns``
    bucket: the **last** sample of each bucket is kept as it was (its own time, value,
    quality and flags), the others are deleted. Last, because it works for every value
    type (an average means nothing for a string or a bad-quality gap) and is the value
    the tag held at the end of the bucket. Buckets are aligned to the epoch
    (``ts_ns // every``) so repeated runs agree; a watermark remembers how far thinning
    has gone, so each run only looks at data that crossed the line since the last one
    (samples that arrive later with older timestamps stay as they are).
    """

    retention_ns: int | None = None
    downsample_after_ns: int | None = None
    downsample_every_ns: int = 60 * NS

    def __post_init__(self) -> None:
        if self.downsample_every_ns <= 0:
            raise ValueError("downsample_every must be positive")
        for name in ("retention_ns", "downsample_after_ns"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name.removesuffix('_ns')} must be positive")

    @classmethod
    def from_seconds(
        cls,
        retention: float | None = None,
        downsample_after: float | None = None,
        downsample_every: float = 60.0,
    ) -> Policy:
        def ns(v: float | None) -> int | None:
            return None if v is None else round(v * NS)

        return cls(ns(retention), ns(downsample_after), round(downsample_every * NS))

    @classmethod
    def from_config(cls, cfg: Any) -> Policy:
        """From a ``Historian`` or ``Postgres`` config section."""
        return cls.from_seconds(
            getattr(cfg, "retention", None),
            getattr(cfg, "downsample_after", None),
            getattr(cfg, "downsample_every", 60.0),
        )


@dataclass(frozen=True, slots=True)
class TagSummary:
    path: str
    unit: str
    type: str
    samples: int
    last: SampleRow | None


class HistorianStore(Protocol):
    """The narrow storage interface; one thread owns an instance."""

    backend: str  # "sqlite" | "postgresql"
    target: str  # file path or redacted DSN, for messages
    readonly: bool

    def write(self, samples: Sequence[TagSample]) -> int:
        """Store a batch in one transaction (all or nothing); returns rows written."""
        ...

    def flush(self) -> int:
        """Move buffered writes to their final place (SQLite); 0 where there is none."""
        ...

    def summaries(self) -> list[TagSummary]:
        """Every tag with its sample count and last sample, by path."""
        ...

    def rows(
        self, path: str, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> tuple[str, Iterator[SampleRow]]:
        """(unit, samples of ``path`` with start <= ts < end in time order)."""
        ...

    def maintenance(self, now_ns: int, policy: Policy) -> Generator[None, None, dict[str, int]]:
        """Retention and downsampling in short transactions, yielding between them."""
        ...

    def maintain(self, now_ns: int, policy: Policy) -> dict[str, int]: ...

    def schema_version(self) -> list[str]: ...

    def close(self) -> None: ...


class SqlHistorian:
    """The shared implementation. Subclasses provide the connection and these hooks."""

    backend = "sql"
    target = ""
    readonly = False
    _ph = "?"  # placeholder

    def __init__(self) -> None:
        self._tags: dict[str, tuple[int, str, str]] = {}  # path -> (id, unit, type)

    # -- dialect hooks ---------------------------------------------------------
    def _write_txn(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _read_txn(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _translate(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _insert_rows(self, cur: Any, rows: list[Row]) -> None:
        raise NotImplementedError

    def _recent_summary(self, cur: Any) -> tuple[dict[int, int], dict[int, SampleRow]]:
        """(extra distinct samples per tag, newest buffered row per tag) of a buffer."""
        return {}, {}

    def _recent_rows(self, cur: Any, tag_id: int, lo: int, hi: int) -> list[SampleRow]:
        return []

    @contextlib.contextmanager
    def _stream(self, cur: Any) -> Iterator[Any]:
        """A cursor that fetches rows as they are consumed, within the read transaction."""
        yield cur

    def _migrations_applied(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql if self._ph == "?" else sql.replace("?", self._ph)

    # -- writing ---------------------------------------------------------------
    def write(self, samples: Sequence[TagSample]) -> int:
        if self.readonly:
            raise HistorianError(f"historian {self.target} is open read-only")
        if not samples:
            return 0
        with self._translate(), self._write_txn() as cur:
            new: dict[str, tuple[int, str, str]] = {}
            ids = self._resolve(cur, samples, new)
            rows = encode_many(ids, samples)
            self._insert_rows(cur, rows)
        self._tags.update(new)
        self._written(len(rows))
        return len(rows)

    def _written(self, n: int) -> None:
        """Called after a committed write (SQLite counts its buffer here)."""

    def _resolve(
        self, cur: Any, samples: Sequence[TagSample], new: dict[str, tuple[int, str, str]]
    ) -> dict[str, int]:
        """Tag ids for the batch's paths; creates tags and follows unit/type changes.
        Changes go to ``new`` and reach the cache only once the transaction commits."""
        cache = self._tags
        last = {s.path: s for s in samples}
        ids: dict[str, int] = {}
        for path, s in last.items():
            known = cache.get(path)
            kind = kind_of(s.value)
            if known is not None:
                tid, unit, typ = known
                want_unit = s.unit or unit
                want_type = KIND_NAMES.get(kind, typ) if kind != KIND_NONE else typ
                if want_unit != unit or want_type != typ:
                    cur.execute(
                        self._q("UPDATE tags SET unit = ?, type = ? WHERE id = ?"),
                        (want_unit, want_type, tid),
                    )
                    new[path] = (tid, want_unit, want_type)
                ids[path] = tid
                continue
            typ = KIND_NAMES.get(kind, "")
            cur.execute(
                self._q(
                    "INSERT INTO tags (path, unit, type) VALUES (?, ?, ?) "
                    "ON CONFLICT (path) DO NOTHING"
                ),
                (path, s.unit, typ),
            )
            cur.execute(self._q("SELECT id, unit, type FROM tags WHERE path = ?"), (path,))
            tid, unit, old_type = cur.fetchone()
            want_unit, want_type = s.unit or unit, typ or old_type
            if (want_unit, want_type) != (unit, old_type):
                cur.execute(
                    self._q("UPDATE tags SET unit = ?, type = ? WHERE id = ?"),
                    (want_unit, want_type, tid),
                )
            new[path] = (tid, want_unit, want_type)
            ids[path] = tid
        return ids

    def flush(self) -> int:
        return 0

    # -- reading ---------------------------------------------------------------
    def summaries(self) -> list[TagSummary]:
        with self._translate(), self._read_txn() as cur:
            cur.execute("SELECT id, path, unit, type FROM tags")
            tags = cur.fetchall()
            cur.execute("SELECT tag_id, count(*) FROM samples GROUP BY tag_id")
            counts: dict[int, int] = {tid: n for tid, n in cur.fetchall()}
            extra, recent_last = self._recent_summary(cur)
            out = []
            for tid, path, unit, typ in tags:
                cur.execute(
                    self._q(
                        "SELECT ts_ns, value, value_text, quality, flags FROM samples "
                        "WHERE tag_id = ? ORDER BY ts_ns DESC LIMIT 1"
                    ),
                    (tid,),
                )
                last: SampleRow | None = cur.fetchone()
                buffered = recent_last.get(tid)
                if buffered is not None and (last is None or buffered[0] >= last[0]):
                    last = buffered
                n = counts.get(tid, 0) + extra.get(tid, 0)
                out.append(TagSummary(path, unit, typ, n, tuple(last) if last else None))  # type: ignore[arg-type]
        return sorted(out, key=lambda t: t.path)  # code-point order, whatever the collation

    def _tag(self, path: str) -> tuple[int, str]:
        with self._translate(), self._read_txn() as cur:
            cur.execute(self._q("SELECT id, unit FROM tags WHERE path = ?"), (path,))
            row = cur.fetchone()
        if row is None:
            raise HistorianError(
                f"no tag {path!r} in the historian ({self.target}): `conduit tags` lists them"
            )
        return int(row[0]), str(row[1])

    def rows(
        self, path: str, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> tuple[str, Iterator[SampleRow]]:
        if limit is not None and limit < 0:
            raise HistorianError(f"limit must be positive, not {limit}")
        tid, unit = self._tag(path)
        lo = MIN_TS if start_ns is None else start_ns
        hi = MAX_TS if end_ns is None else end_ns
        return unit, self._iter_rows(tid, lo, hi, limit)

    def _iter_rows(self, tid: int, lo: int, hi: int, limit: int | None) -> Iterator[SampleRow]:
        if limit == 0 or lo >= hi:
            return
        with self._translate(), self._read_txn() as cur:
            # Buffered rows (SQLite) are few and win over a stored row at the same time.
            buffered = self._recent_rows(cur, tid, lo, hi)
            sql = (
                "SELECT ts_ns, value, value_text, quality, flags FROM samples "
                "WHERE tag_id = ? AND ts_ns >= ? AND ts_ns < ? ORDER BY ts_ns"
            )
            params: tuple[int, ...] = (tid, lo, hi)
            if limit is not None:
                sql += " LIMIT ?"
                params += (limit,)
            left = MAX_TS if limit is None else limit
            i = 0
            with self._stream(cur) as rows:
                rows.execute(self._q(sql), params)
                while left > 0:
                    chunk = rows.fetchmany(2000)
                    if not chunk:
                        break
                    for row in chunk:
                        ts = row[0]
                        while i < len(buffered) and buffered[i][0] < ts and left > 0:
                            yield buffered[i]
                            i += 1
                            left -= 1
                        if left <= 0:
                            break
                        if i < len(buffered) and buffered[i][0] == ts:
                            yield buffered[i]
                            i += 1
                        else:
                            yield tuple(row)
                        left -= 1
                        if left <= 0:
                            break
            while i < len(buffered) and left > 0:
                yield buffered[i]
                i += 1
                left -= 1

    # -- retention and downsampling --------------------------------------------
    def maintenance(self, now_ns: int, policy: Policy) -> Generator[None, None, dict[str, int]]:
        report = {"retention_deleted": 0, "downsample_deleted": 0, "steps": 0}
        if self.readonly:
            raise HistorianError(f"historian {self.target} is open read-only")
        self.flush()
        with self._translate(), self._read_txn() as cur:
            cur.execute("SELECT id FROM tags ORDER BY id")
            tag_ids = [int(r[0]) for r in cur.fetchall()]
        keep_from = MIN_TS
        if policy.retention_ns is not None:
            keep_from = now_ns - policy.retention_ns
            for tid in tag_ids:
                with self._translate(), self._write_txn() as cur:
                    cur.execute(
                        self._q("DELETE FROM samples WHERE tag_id = ? AND ts_ns < ?"),
                        (tid, keep_from),
                    )
                    report["retention_deleted"] += max(cur.rowcount, 0)
                report["steps"] += 1
                yield
        if policy.downsample_after_ns is not None:
            every = policy.downsample_every_ns
            hi = (now_ns - policy.downsample_after_ns) // every * every
            mark = self._meta("downsampled_until")
            chunk = every * max(1024, 3600 * NS // every)
            for tid in tag_ids:
                lo = mark
                if lo is None:
                    with self._translate(), self._read_txn() as cur:
                        cur.execute(
                            self._q("SELECT min(ts_ns) FROM samples WHERE tag_id = ?"), (tid,)
                        )
                        lo = cur.fetchone()[0]
                    if lo is None:
                        continue
                lo = max(lo, keep_from) // every * every
                for a in range(lo, hi, chunk):
                    b = min(a + chunk, hi)
                    with self._translate(), self._write_txn() as cur:
                        cur.execute(
                            self._q(
                                "DELETE FROM samples WHERE tag_id = ? AND ts_ns >= ? "
                                "AND ts_ns < ? AND ts_ns NOT IN (SELECT max(ts_ns) FROM samples "
                                "WHERE tag_id = ? AND ts_ns >= ? AND ts_ns < ? "
                                "GROUP BY ts_ns / ?)"
                            ),
                            (tid, a, b, tid, a, b, every),
                        )
                        report["downsample_deleted"] += max(cur.rowcount, 0)
                    report["steps"] += 1
                    yield
            if mark is None or hi > mark:
                with self._translate(), self._write_txn() as cur:
                    cur.execute(
                        self._q(
                            "INSERT INTO meta (key, value) VALUES ('downsampled_until', ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                        ),
                        (hi,),
                    )
        return report

    def maintain(self, now_ns: int, policy: Policy) -> dict[str, int]:
        """Run :meth:`maintenance` to the end; returns how many samples each part deleted."""
        gen = self.maintenance(now_ns, policy)
        while True:
            try:
                next(gen)
            except StopIteration as done:
                return dict(done.value)

    def _meta(self, key: str) -> int | None:
        with self._translate(), self._read_txn() as cur:
            cur.execute(self._q("SELECT value FROM meta WHERE key = ?"), (key,))
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def schema_version(self) -> list[str]:
        with self._translate():
            return self._migrations_applied()

    def __enter__(self) -> SqlHistorian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
