"""What ``conduit tags`` and ``conduit history`` show: plain dicts, ready for a table,
JSON or CSV, from either backend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from otconduit.gateway.historian.schema import QUALITY_OF_CODE, decode_row, decode_value, iso
from otconduit.gateway.historian.store import HistorianStore
from otconduit.gateway.model import Quality

_DSN = re.compile(r"^(postgres|postgresql)://|(^|\s)(host|dbname|service)=")


def open_store(target: Any, *, readonly: bool = True) -> HistorianStore:
    """A store for a ``sinks.historian`` or ``sinks.postgres`` section, a file path, or a
    PostgreSQL DSN (``postgresql://...`` or ``host=... dbname=...``). Read-only by
    default: what the query commands use."""
    dsn = getattr(target, "dsn", None)
    path = getattr(target, "path", None)
    if dsn is None and path is None:
        text = str(target)
        if _DSN.search(text):
            dsn = text
        else:
            path = Path(text)
    if dsn is not None:
        from otconduit.gateway.historian.postgres import PostgresHistorian

        return PostgresHistorian(str(dsn), readonly=readonly)
    from otconduit.gateway.historian.sqlite import SQLiteHistorian

    sync = getattr(target, "synchronous", "normal")
    return SQLiteHistorian(Path(str(path)), readonly=readonly, synchronous=sync)


def tags(store: HistorianStore) -> list[dict[str, Any]]:
    """One row per tag, by path: ``path, unit, type, value, quality, last_ts, samples``
    (``value``/``quality``/``last_ts`` of the newest sample; None when it has none)."""
    out = []
    for t in store.summaries():
        row: dict[str, Any] = {"path": t.path, "unit": t.unit, "type": t.type}
        if t.last is None:
            row.update(value=None, quality=None, last_ts=None)
        else:
            ts, value, text, quality, flags = t.last
            q = QUALITY_OF_CODE.get(quality, Quality.BAD)
            row.update(value=decode_value(value, text, flags), quality=q.value, last_ts=iso(ts))
        row["samples"] = t.samples
        out.append(row)
    return out


def history(
    store: HistorianStore,
    path: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Samples of one tag with ``start_ns <= time < end_ns``, oldest first, at most
    ``limit``: dicts with ``ts`` (ISO 8601 UTC), ``ts_ns``, ``value``, ``quality``,
    ``unit``, ``source_ts`` (ISO when the time came from the device, else None),
    ``historical`` and ``reason``. Raises :class:`HistorianError` at once for an
    unknown tag; the rows stream (one read transaction while iterating)."""
    unit, rows = store.rows(path, start_ns, end_ns, limit)
    return _history(unit, rows)


def _history(unit: str, rows: Iterator[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    for ts, value, text, quality, flags in rows:
        d = decode_row(ts, value, text, quality, flags)
        d["unit"] = unit
        yield d
