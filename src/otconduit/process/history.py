"""The gateway historian as the witness of what a tag was: its last good sample before a
write (the ``previous`` of a process entry) and its trend around it.

Read-only, opened on first use and kept open for one caller's batch (the historian's
rule: one thread owns an instance). A historian that cannot be read answers nothing:
the operations' own reads are the fallback, and the caller says where ``previous``
came from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from otconduit.gateway.model import Value

log = logging.getLogger(__name__)
NS = 1_000_000_000
# Windows searched backwards for the last sample before a time: a cyclic tag has one
# within seconds, an on-change tag may have none for hours.
_LOOKBACK_NS = (10 * NS, 600 * NS, 86_400 * NS)
MAX_TREND_ROWS = 5_000


class HistorianLookup:
    """Previous values and trends from one historian (a SQLite file or a DSN)."""

    def __init__(self, target: str | Path | None) -> None:
        self.target = None if target is None else str(target)
        self._store: Any = None
        self._failed = False

    def _open(self) -> Any:
        if self._store is not None or self._failed or self.target is None:
            return self._store
        from otconduit.gateway.historian import HistorianError, open_store

        try:
            self._store = open_store(self.target, readonly=True)
        except (HistorianError, OSError) as exc:
            log.info("historian %s unavailable: %s", type(exc).__name__, exc)
            self._failed = True
        return self._store

    @property
    def available(self) -> bool:
        return self._open() is not None

    def before(self, path: str, ts_ns: int) -> tuple[Value, int] | None:
        """(value, time) of the tag's last good sample strictly before ``ts_ns``."""
        store = self._open()
        if store is None:
            return None
        from otconduit.gateway.historian import HistorianError, history

        for back in _LOOKBACK_NS:
            try:
                rows = list(history(store, path, ts_ns - back, ts_ns))
            except HistorianError:
                return None  # the historian has no such tag
            good = [r for r in rows if r["quality"] == "good"]
            if good:
                return good[-1]["value"], int(good[-1]["ts_ns"])
        return None

    def trend(self, path: str, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
        """Samples of one tag in ``[start_ns, end_ns)``, oldest first (at most
        ``MAX_TREND_ROWS``); [] for an unknown tag or an unreadable historian."""
        store = self._open()
        if store is None:
            return []
        from otconduit.gateway.historian import HistorianError, history

        try:
            return list(history(store, path, start_ns, end_ns, MAX_TREND_ROWS))
        except HistorianError:
            return []

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> HistorianLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
