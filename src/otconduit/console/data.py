"""Access to the monitor's store from the console: read-only connections per worker
thread (the datasette habit), and writes -- only alert lifecycle changes and incident
numbers, owners and status -- through a short-lived writable store under one lock."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from otconduit.console.bounded import BoundedLRU
from otconduit.store import Store, StoreError, counts
from otconduit.store.backend import store_exists

T = TypeVar("T")


class StoreAccess:
    """Hands out a read-only :class:`Store` per thread and serialises the few writes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not store_exists(path):
            raise StoreError(
                f"database {self.path} does not exist: run `conduit analyze` first or pass --db"
            )
        # Bring the schema forward once (a read-only open refuses an old database).
        Store(self.path, readonly=False).close()
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def reader(self) -> Store:
        st: Store | None = getattr(self._local, "store", None)
        if st is None:
            st = Store(self.path, readonly=True)
            # Connections cross threads only through this object (one per thread).
            self._local.store = st
            with self._lock:
                self._all.append(st)
        return st

    def write(self, fn: Callable[[Store], T]) -> T:
        with self._write_lock, Store(self.path, readonly=False) as st:
            return fn(st)

    def close(self) -> None:
        with self._lock:
            for st in self._all:
                with contextlib.suppress(Exception):  # a connection of another thread
                    st.close()
            self._all.clear()
        self._local = threading.local()


__all__ = ["StoreAccess", "StoreError"]


def fingerprint(store: Store, *, alerts: bool = True) -> tuple[Any, ...]:
    """The key of everything the console caches (:func:`otconduit.store.counts.fingerprint`):
    it changes whenever analysis, detection, a policy check or (with ``alerts``) an alert
    change commits."""
    return counts.fingerprint(store, alerts=alerts)


CACHE_MAX = 32  # named results; a flood of distinct ``window`` values only evicts


class Cache:
    """Results keyed by (name, store fingerprint); an old fingerprint is simply dropped.
    Names come partly from request parameters (``incidents:<window>:...``), so at most
    ``maxsize`` of them are kept, least recently used first out."""

    def __init__(self, maxsize: int = CACHE_MAX) -> None:
        self._items: BoundedLRU[str, tuple[tuple[Any, ...], Any]] = BoundedLRU(maxsize)

    @property
    def maxsize(self) -> int:
        return self._items.maxsize

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        hit = self._items.get(name)
        if hit is not None and hit[0] == key:
            value: T = hit[1]
            return value
        value = make()
        self._items.put(name, (key, value))
        return value
