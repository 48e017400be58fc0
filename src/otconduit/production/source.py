"""Reading the gateway's historian (SQLite or PostgreSQL) for the production model: the
only module here that does I/O. The rest works on :class:`~.series.Reading` lists."""

from __future__ import annotations

from collections.abc import Iterable

from otconduit.gateway.historian.schema import QUALITY_OF_CODE, decode_value
from otconduit.gateway.historian.store import HistorianError, HistorianStore
from otconduit.gateway.model import Quality
from otconduit.production.series import Reading

NS = 1_000_000_000
# How far back to look for a counter's last value before a window, widening each time.
_LOOKBACKS = (3600 * NS, 86400 * NS, 31 * 86400 * NS, None)


class HistorianReader:
    """Reads tag samples; remembers tags the historian does not have (for the notes)."""

    def __init__(self, store: HistorianStore) -> None:
        self.store = store
        self.missing: set[str] = set()

    def readings(self, path: str, start: int | None, end: int | None) -> list[Reading]:
        """Samples of ``path`` with start <= ts < end, oldest first ([] for an unknown
        tag, which is remembered in ``missing``)."""
        try:
            _unit, rows = self.store.rows(path, start, end, None)
            return list(_decode(rows))
        except HistorianError:
            if path in self._known():
                raise
            self.missing.add(path)
            return []

    def last_before(self, path: str, ts: int, within: int | None) -> Reading | None:
        """The last sample before ``ts``, looking back at most ``within`` ns (None: as
        far as it takes, widening from an hour to the whole history)."""
        spans = (within,) if within is not None else _LOOKBACKS
        for back in spans:
            rows = self.readings(path, None if back is None else ts - back, ts)
            if rows:
                return rows[-1]
        return None

    def last_good_before(self, path: str, ts: int) -> Reading | None:
        for back in _LOOKBACKS:
            rows = [r for r in self.readings(path, None if back is None else ts - back, ts)]
            good = [r for r in rows if r.good]
            if good:
                return good[-1]
        return None

    def extent(self, paths: Iterable[str]) -> tuple[int, int] | None:
        """(first, last) sample time over ``paths``: the default report window."""
        wanted = set(paths)
        first: int | None = None
        last: int | None = None
        for t in self.store.summaries():
            if t.path not in wanted or t.last is None:
                continue
            last = t.last[0] if last is None else max(last, t.last[0])
            _u, rows = self.store.rows(t.path, None, None, 1)
            for row in rows:
                first = row[0] if first is None else min(first, row[0])
        if first is None or last is None:
            return None
        return first, last

    def _known(self) -> set[str]:
        return {t.path for t in self.store.summaries()}


def _decode(rows: Iterable[tuple[int, float | None, str | None, int, int]]) -> Iterable[Reading]:
    good = Quality.GOOD
    for ts, value, text, quality, flags in rows:
        q = QUALITY_OF_CODE.get(quality, Quality.BAD)
        yield Reading(int(ts), decode_value(value, text, flags), q is good)
