"""What ``conduit analyze`` prints when it is done. By default a summary that fits one
screen whatever the capture (a function-code scan used to print every scanned code, 243
lines): one line per fact and two short tables whose rows never wrap. ``--verbose`` adds
the full tables (every function, every conversation's functions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from otconduit.cli.output import Format, emit
from otconduit.store import Store, views

if TYPE_CHECKING:
    from otconduit.analysis.run import CaptureResult

TOP_ROWS = 10  # rows of each table in the default summary
CAPTURE_LINES = 5  # captures listed one per line before "... N more"
VERBOSE_ROWS = 25  # rows per table with --verbose; the listing commands show everything
CLASS_ORDER = ("read", "write", "control", "diagnostic", "program", "firmware", "identity")


def print_summary(
    store: Store, results: Sequence[CaptureResult], out: Console, *, verbose: bool
) -> None:
    """The end-of-analysis report: the short one, or every table with ``verbose``."""
    if verbose:
        _full(store, results, out)
    else:
        _short(store, results, out)


def _say(out: Console, text: str) -> None:
    out.print(text, highlight=False, markup=False, soft_wrap=True)


def _table(
    out: Console, title: str, columns: Sequence[str], rows: list[list[Any]], free: int
) -> None:
    """A compact table: one line per row. Only the last ``free`` columns (names, lists)
    give way on a narrow terminal, ending in an ellipsis; addresses and counts never do."""
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    t = Table(
        title=Text(title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for i, c in enumerate(columns):
        if i < len(columns) - free:
            width = max([len(c), *(len(r[i]) for r in cells)])
            t.add_column(c, no_wrap=True, min_width=width)
        else:
            t.add_column(c, no_wrap=True, overflow="ellipsis", max_width=48)
    for r in cells:
        t.add_row(*map(Text, r))
    out.print(t)


def _short(store: Store, results: Sequence[CaptureResult], out: Console) -> None:
    for r in results[:CAPTURE_LINES]:
        _say(
            out,
            f"capture {r.path}: {r.status}, {r.packets} packets, {r.operations} operations"
            + (f" ({r.error})" if r.error else ""),
        )
    if len(results) > CAPTURE_LINES:
        _say(out, f"... {len(results) - CAPTURE_LINES} more captures: conduit captures")
    assets = views.assets(store, views.AssetFilter(confirmed_only=True))
    industrial = [a for a in assets if a["protocols"]]
    industrial.sort(key=lambda a: -(a["packets_sent"] + a["packets_received"]))
    _table(
        out,
        f"Assets: {len(assets)}, {len(industrial)} speaking an industrial protocol "
        f"(busiest {min(TOP_ROWS, len(industrial))}; all: conduit assets)",
        ["ip", "name", "vendor", "roles", "protocols"],
        free=4,
        rows=[
            [a["ip"], a.get("name"), a["vendor"], ",".join(a["roles"]), ",".join(a["protocols"])]
            for a in industrial[:TOP_ROWS]
        ],
    )
    convs = views.conversations(store)
    ics = [c for c in convs if c["protocol"] != "unknown"]
    ics.sort(key=lambda c: -(c["packets_c2s"] + c["packets_s2c"]))
    _table(
        out,
        f"Industrial conversations: {len(ics)} of {len(convs)} "
        f"(busiest {min(TOP_ROWS, len(ics))}; all: conduit conversations)",
        ["client_ip", "server_ip", "port", "protocol", "operations", "functions"],
        free=1,
        rows=[_conv_row(c) for c in ics[:TOP_ROWS]],
    )
    functions = views.function_summary(store)
    _say(out, _operations_line(functions))
    _say(out, f"functions: {len(functions)} (each with counts: conduit analyze --verbose)")
    problems = views.problem_summary(store)
    total = sum(p["count"] for p in problems)
    top = ", ".join(f"{p['layer']} {p['reason']} {p['count']}" for p in problems[:3])
    _say(out, f"decode problems: {total}" + (f" ({top}): conduit problems" if total else ""))


def _conv_row(c: dict[str, Any]) -> list[Any]:
    funcs = sorted(c["functions"].items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v}" for k, v in funcs[:3]) + (
        f" +{len(funcs) - 3} more" if len(funcs) > 3 else ""
    )
    return [
        c["client_ip"],
        c["server_ip"],
        c["server_port"],
        c["protocol"],
        sum(c["functions"].values()),
        shown,
    ]


def _operations_line(functions: list[dict[str, Any]]) -> str:
    """Operations per class in one line: what was read, written, controlled..."""
    by_class: Counter[str] = Counter()
    exceptions = unanswered = 0
    for f in functions:
        by_class[f["operation"]] += f["count"]
        exceptions += f["exceptions"]
        unanswered += f["no_response"]
    total = sum(by_class.values())
    order = [c for c in CLASS_ORDER if by_class[c]] + sorted(
        c for c in by_class if c not in CLASS_ORDER
    )
    parts = ", ".join(f"{c} {by_class[c]}" for c in order)
    return (
        f"operations: {total}"
        + (f" ({parts})" if parts else "")
        + f", {exceptions} exceptions, {unanswered} unanswered: conduit operations"
    )


def _more(out: Console, total: int, command: str) -> None:
    if total > VERBOSE_ROWS:
        _say(out, f"  ... {total - VERBOSE_ROWS} more: conduit {command}")


def _full(store: Store, results: Sequence[CaptureResult], out: Console) -> None:
    rows = [
        {
            "capture": r.path,
            "status": r.status,
            "packets": r.packets,
            "operations": r.operations,
            "error": r.error or "",
        }
        for r in results
    ]
    emit(
        rows,
        Format.table,
        columns=["capture", "status", "packets", "operations", "error"],
        title="Captures",
        console=out,
    )
    assets = views.assets(store, views.AssetFilter(confirmed_only=True))
    # Devices that speak an industrial protocol first, then the busiest.
    assets.sort(key=lambda a: (not a["protocols"], -(a["packets_sent"] + a["packets_received"])))
    emit(
        assets[:VERBOSE_ROWS],
        Format.table,
        columns=["ip", "name", "mac", "vendor", "model", "roles", "protocols"],
        title=f"Assets ({len(assets)})",
        console=out,
    )
    _more(out, len(assets), "assets")
    convs = views.conversations(store)
    ics = [c for c in convs if c["protocol"] != "unknown"]
    ics.sort(key=lambda c: -(c["packets_c2s"] + c["packets_s2c"]))
    emit(
        ics[:VERBOSE_ROWS],
        Format.table,
        columns=[
            "client_ip",
            "server_ip",
            "server_port",
            "protocol",
            "connections",
            "packets_c2s",
            "packets_s2c",
            "functions",
        ],
        title=f"Industrial conversations ({len(ics)} of {len(convs)} conversations)",
        console=out,
    )
    _more(out, len(ics), "conversations")
    emit(
        views.function_summary(store),
        Format.table,
        columns=[
            "protocol",
            "function_code",
            "function",
            "operation",
            "count",
            "exceptions",
            "no_response",
        ],
        title="Operations by function",
        console=out,
    )
    emit(
        views.problem_summary(store),
        Format.table,
        columns=["layer", "reason", "count"],
        title="Decode problems",
        console=out,
    )
