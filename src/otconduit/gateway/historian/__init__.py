"""The gateway's historian: tag samples in SQLite (embedded) or PostgreSQL, one interface.

For the gateway runtime (a :class:`~otconduit.gateway.sinks.Sink`)::

    sinks = historian_sinks(cfg)          # from cfg.sinks.historian / cfg.sinks.postgres
    await sink.start(); await sink.write(batch); await sink.close()
    await sink.maintain()                 # also runs by itself every maintain_every s

For the query commands::

    with open_store(cfg.sinks.historian) as store:   # read-only
        rows = tags(store)
        for row in history(store, path, start_ns, end_ns, limit): ...

Layout and value encoding: :mod:`.schema`; retention and downsampling: :class:`Policy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otconduit.gateway.historian.queries import history, open_store, tags
from otconduit.gateway.historian.sink import HistorianSink
from otconduit.gateway.historian.store import (
    HistorianError,
    HistorianStore,
    HistorianUnavailable,
    Policy,
    TagSummary,
)


def historian_sinks(cfg: Any, **kw: Any) -> list[HistorianSink]:
    """The historian sinks a :class:`~otconduit.gateway.config.GatewayConfig` asks for:
    the SQLite historian (``sinks.historian``) and/or PostgreSQL (``sinks.postgres``)."""
    out = []
    if cfg.sinks.historian is not None:
        out.append(HistorianSink.sqlite(cfg.sinks.historian, **kw))
    if cfg.sinks.postgres is not None:
        out.append(HistorianSink.postgres(cfg.sinks.postgres, **kw))
    return out


if TYPE_CHECKING:  # mypy proves the classes keep the interfaces they implement
    from otconduit.gateway.historian.postgres import PostgresHistorian
    from otconduit.gateway.historian.sqlite import SQLiteHistorian
    from otconduit.gateway.sinks import Sink

    def _sink(s: HistorianSink) -> Sink:
        return s

    def _stores(a: SQLiteHistorian, b: PostgresHistorian) -> list[HistorianStore]:
        return [a, b]


__all__ = [
    "HistorianError",
    "HistorianSink",
    "HistorianStore",
    "HistorianUnavailable",
    "Policy",
    "TagSummary",
    "historian_sinks",
    "history",
    "open_store",
    "tags",
]
