"""Storage: the monitor store, SQLite or PostgreSQL, behind one narrow interface.

Every statement against the monitor store lives in this package -- a module per subject
(``assets``, ``conversations``, ``violations``, ``alerts``/``alert_writes``, ``incidents``,
``captures``, ``chunks``, ...) -- so the CLI, the console, detection and the policy check
share one query, and one WHERE-clause builder, per listing. The schema is the files in
``migrations/``, applied by :mod:`otconduit.store.migrate`. ``Store(target)`` takes a
SQLite file or a ``postgresql://`` URL (:mod:`otconduit.store.backend`); on PostgreSQL the
operations are partitioned by day (:mod:`.partitions`, :mod:`.retention`)."""

from otconduit.store.sqlite import Store, StoreError

__all__ = ["Store", "StoreError"]
