"""`conduit maintenance detect|watch`: predictive maintenance from the command line.

``detect`` scores a table of sensor readings (SKAB layout) row by row; ``watch`` learns
each machine of a gateway config from the historian and raises ``maintenance-anomaly``
alerts. Both are thin: the work is in :mod:`otconduit.maintenance`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from otconduit.cli.gateway_cmd import HistOpt, _historian, load
from otconduit.cli.output import Format, emit, err, fail, make_console

maintenance_app = typer.Typer(
    help="Predictive maintenance: score sensor tables, watch machines in the historian.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = make_console()


class RowFormat(StrEnum):
    csv = "csv"
    json = "json"


@maintenance_app.command("detect")
def detect_cmd(
    csv_file: Annotated[
        Path, typer.Option("--csv", help="Sensor table: ';'-separated, a time column, sensors.")
    ],
    train_rows: Annotated[
        int,
        typer.Option("--train-rows", min=1, help="Leading rows that teach normal behaviour."),
    ] = 400,
    time_column: Annotated[
        str, typer.Option("--time-column", help="Name of the time column.")
    ] = "datetime",
    fmt: Annotated[RowFormat, typer.Option("--format", "-f", help="Output format.")] = (
        RowFormat.csv
    ),
) -> None:
    """Print `datetime, score, anomaly` for every row after the training rows. The score
    is the deviation over the alarm level (>= 1 opens an alarm); anomaly is 0/1, an
    alarm's rows starting at the change point it confirms."""
    from otconduit.maintenance.model import ModelError, score_rows
    from otconduit.maintenance.table import TableError, read_table

    try:
        table = read_table(csv_file, time_column=time_column, train_rows=train_rows)
        scored = score_rows(table.values, train_rows, table.columns)
    except (TableError, ModelError) as exc:
        raise fail(f"{csv_file}: {exc}" if isinstance(exc, ModelError) else str(exc)) from None
    times = table.times[train_rows:]
    rows = (
        {"datetime": t, "score": round(float(s), 4), "anomaly": int(a)}
        for t, s, a in zip(times, scored.score, scored.anomaly, strict=True)
    )
    emit(rows, Format(fmt.value), columns=("datetime", "score", "anomaly"))


@maintenance_app.command("watch")
def watch_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway YAML file.")],
    historian: HistOpt = None,
    db: Annotated[
        Path, typer.Option("--db", help="Alert store (SQLite).", envvar="CONDUIT_DB")
    ] = Path("conduit.db"),
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Watch these tags (globs) instead of the condition tags."),
    ] = None,
    running_tag: Annotated[
        str, typer.Option("--running-tag", help="Boolean tag that says a machine runs.")
    ] = "running",
    learn: Annotated[
        float,
        typer.Option("--learn", min=0.05, max=0.9, help="Share of the history to learn from."),
    ] = 0.25,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = (Format.table),
) -> None:
    """Learn each machine's normal behaviour from its condition tags in the historian and
    raise `maintenance-anomaly` alerts (which tags deviate, by how much, since when)."""
    from otconduit.maintenance.watch import (
        WatchError,
        iso,
        machines,
        store_episodes,
        watch_machine,
    )
    from otconduit.store import Store, StoreError

    cfg = load(config)
    found = machines(cfg, tag or (), running_tag)
    if not found:
        what = f"tags matching {', '.join(tag)}" if tag else "condition tags (vibration, "
        what += "" if tag else "temperature, current, pressure)"
        raise fail(f"{config}: no device has {what}; name tags with --tag")
    hist = _historian(config if historian is None else None, historian)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        store = Store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    with store, hist:
        for m in found:
            try:
                episodes = watch_machine(hist, m, learn)
            except WatchError as exc:
                problems.append(str(exc))
                continue
            store_episodes(store, hist.target, m.name, episodes)
            for e in episodes:
                rows.append(
                    {
                        "machine": m.name,
                        "since": iso(e.onset_ns),
                        "raised_at": iso(e.raised_ns),
                        "ongoing": e.open,
                        "tags": [
                            f"{t['path'].rsplit('/', 1)[-1]} {t['sigmas']:+.1f} sd" for t in e.tags
                        ],
                        "peak_score": round(e.peak, 2),
                    }
                )
    if problems and len(problems) == len(found):
        raise fail("; ".join(problems))
    for p in problems:
        err.print(f"[yellow]skipped[/] {escape(p)}", highlight=False)  # stdout stays data
    emit(
        rows,
        fmt,
        columns=("machine", "since", "raised_at", "ongoing", "tags", "peak_score"),
        title=f"maintenance-anomaly alerts ({len(found)} machines watched)",
        console=_out,
    )
