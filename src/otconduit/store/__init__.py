"""Storage: the SQLite store (PostgreSQL later) behind one narrow interface."""

from otconduit.store.sqlite import Store, StoreError

__all__ = ["Store", "StoreError"]
