"""Render rows as a table, JSON or CSV: one place so every command behaves the same."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


# Messages to the user. Every console is built without emoji codes: ":ab:" inside a MAC
# address or a certificate thumbprint is data, not 🆎.
err = Console(stderr=True, emoji=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Say in one line what was wrong (the message is text, never markup) and return the
    exit to raise: user errors end this way, never with a traceback."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def make_console(*, stderr: bool = False) -> Console:
    """A console that does not squeeze tables to 80 columns when piped or captured."""
    probe = Console(stderr=stderr, emoji=False)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200, emoji=False)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ",".join(_cell(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    return str(v)


def emit(
    rows: Iterable[dict[str, Any]],
    fmt: Format,
    *,
    columns: Sequence[str],
    title: str | None = None,
    console: Console | None = None,
) -> int:
    """Write rows to stdout; tables show ``columns``, JSON and CSV carry every key."""
    n = 0
    if fmt is Format.json:
        out = sys.stdout
        out.write("[")
        for row in rows:
            n += 1
            out.write(("\n" if n == 1 else ",\n") + json.dumps(row, sort_keys=False))
        out.write("\n]\n" if n else "]\n")
        return n
    if fmt is Format.csv:
        writer: Any = None
        for row in rows:
            n += 1
            if writer is None:
                writer = csv.DictWriter(sys.stdout, fieldnames=list(row.keys()))
                writer.writeheader()
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return n
    # Cells are plain Text: values come from the wire and the user, and must never be read
    # as rich markup ("[/]" in a tag name) or emoji codes (":ab:" inside a MAC address).
    table = Table(title=Text(title) if title else None, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        n += 1
        table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    (console or make_console()).print(table)
    return n
