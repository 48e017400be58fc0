"""`conduit store retention|info`: the monitor store itself, on SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, fail

store_app = typer.Typer(
    help="The monitor store: retention of operations, schema and partitions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_DB = Path("conduit.db")


@store_app.command("retention")
def retention_cmd(
    keep: Annotated[
        str, typer.Option("--keep", help="Keep operations this recent: e.g. 90d, 12h (>= 1d).")
    ],
    db: DbOpt = DEFAULT_DB,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """Drop operations older than --keep (cut at a UTC midnight). On PostgreSQL whole day
    partitions go; assets, conversations and alerts stay. On a hub's database the sites'
    per-minute summaries go too, and message ids older than 8 days."""
    from otconduit.detect.config import parse_duration
    from otconduit.store import Store, StoreError
    from otconduit.store import hub as hub_q
    from otconduit.store.backend import store_exists
    from otconduit.store.match import iso
    from otconduit.store.retention import prune_hub, prune_operations

    try:
        keep_ns = round(parse_duration(keep) * 1e9)
    except ValueError as exc:
        raise fail(f"--keep: {exc}") from None
    if not store_exists(db):
        raise fail(f"database {db} does not exist: run `conduit analyze` first or pass --db")
    try:
        with Store(db) as store:
            done = prune_operations(store, keep_ns)
            hub = prune_hub(store, keep_ns) if hub_q.has_hub_rows(store) else None
    except StoreError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:
        raise fail(f"--keep: {exc}") from None
    row: dict[str, object] = {
        "before": iso(done.cutoff_ns),
        "chunks": done.chunks,
        "operations": done.operations,
        "partitions_dropped": len(done.partitions),
    }
    if hub is not None:  # a hub's database: its per-minute summaries and message ids too
        row["site_minutes"] = hub.minutes
        row["message_ids"] = hub.message_ids
    emit([row], fmt, columns=tuple(row))


@store_app.command("info")
def info_cmd(
    db: DbOpt = DEFAULT_DB,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """The backend, the migrations recorded and (PostgreSQL) the operation partitions."""
    from otconduit.store import Store, StoreError
    from otconduit.store.backend import PgConnection, store_exists
    from otconduit.store.partitions import existing

    if not store_exists(db):
        raise fail(f"database {db} does not exist: run `conduit analyze` first or pass --db")
    try:
        with Store(db, readonly=True) as store:
            names = store.schema_version()
            parts = existing(store.conn) if isinstance(store.conn, PgConnection) else []
            row = {
                "backend": store.kind,
                "database": store.label,
                "migrations": len(names),
                "last_migration": names[-1] if names else None,
                "partitions": len(parts),
                "oldest_partition": parts[0].name if parts else None,
                "newest_partition": parts[-1].name if parts else None,
            }
    except StoreError as exc:
        raise fail(str(exc)) from None
    emit([row], fmt, columns=tuple(row))
