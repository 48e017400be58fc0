"""`conduit oee` and `conduit energy`: production KPIs from the gateway's historian, with
the model from the gateway config's ``production`` section (otconduit.production)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from otconduit.cli import filters
from otconduit.cli.gateway_cmd import HistOpt, _historian
from otconduit.cli.output import Format, emit, err, fail, make_console

_out = make_console()


class By(StrEnum):
    machine = "machine"
    line = "line"
    shift = "shift"
    day = "day"


ConfigReq = Annotated[
    Path, typer.Option("--config", "-c", help="Gateway YAML file with a production section.")
]
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
ByOpt = Annotated[
    By,
    typer.Option(
        "--by", help="One row per machine, line, shift (per machine) or local day (per machine)."
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", help="Start (ISO 8601 or relative, e.g. -8h); default: first sample."),
]
ToOpt = Annotated[
    str | None, typer.Option("--to", help="End (ISO 8601 or relative); default: last sample.")
]


def _plan(config: Path) -> Any:
    from otconduit.production.api import load_plan
    from otconduit.yamlconf import ConfigError

    try:
        return load_plan(config)[1]
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _run(config: Path, historian: Path | None, compute: Any) -> Any:
    """Run ``compute(plan, reader)`` with one-line errors for every expected failure."""
    from otconduit.gateway.historian import HistorianError
    from otconduit.production.api import HistorianReader, ProductionError

    plan = _plan(config)
    with _historian(config, historian) as store:
        try:
            return compute(plan, HistorianReader(store))
        except (ProductionError, HistorianError) as exc:
            raise fail(str(exc)) from None


def _notes(notes: list[str]) -> None:
    for n in notes:
        err.print(f"note: {n}", highlight=False, markup=False, soft_wrap=True)


def oee(
    config: ConfigReq,
    historian: HistOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    by: ByOpt = By.machine,
    fmt: FmtOpt = Format.table,
) -> None:
    """OEE per ISO 22400-2 (availability x effectiveness x quality rate) per machine,
    line, shift or day, from the historian; unknown time (no good data) is kept apart."""
    from otconduit.production.api import oee_report

    lo, hi = filters.time_range(start, end)
    rep = _run(config, historian, lambda plan, r: oee_report(plan, r, lo, hi, by.value))
    emit(rep.rows, fmt, columns=rep.columns, title=f"OEE by {by.value}", console=_out)
    _notes(rep.notes)


def energy(
    config: ConfigReq,
    historian: HistOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    by: ByOpt = By.machine,
    grid_factor: Annotated[
        float | None,
        typer.Option(
            "--grid-factor",
            min=0,
            help="kg CO2e per kWh, scope 2 location-based (default: the config's).",
        ),
    ] = None,
    market_factor: Annotated[
        float | None,
        typer.Option(
            "--market-factor",
            min=0,
            help="kg CO2e per kWh of the plant's contracts, scope 2 market-based.",
        ),
    ] = None,
    totals: Annotated[
        bool, typer.Option("--totals", help="Add the site's total (line 'total') per period.")
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="The sustainability report: totals, per line, machine, shift and day.",
        ),
    ] = False,
    fmt: FmtOpt = Format.table,
) -> None:
    """Energy (kWh), peak demand, kWh per good part and CO2e per machine, line, shift or
    day, from meters' cumulative kWh or integrated power."""
    from otconduit.production.api import energy_report, sustainability_report

    lo, hi = filters.time_range(start, end)
    factors = {"grid_factor": grid_factor, "market_factor": market_factor}
    if report:
        doc = _run(
            config, historian, lambda plan, r: sustainability_report(plan, r, lo, hi, **factors)
        )
        if fmt is Format.json:
            print(json.dumps(doc, indent=1))
        else:
            emit(
                _flatten(doc),
                fmt,
                columns=["section", *doc["columns"]],
                title=f"Energy {doc['period']['start']} - {doc['period']['end']}",
                console=_out,
            )
        _notes(doc["notes"])
        return
    rep = _run(
        config,
        historian,
        lambda plan, r: energy_report(plan, r, lo, hi, by.value, totals=totals, **factors),
    )
    emit(rep.rows, fmt, columns=rep.columns, title=f"Energy by {by.value}", console=_out)
    _notes(rep.notes)


def _flatten(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's sections as one table with a ``section`` column (for CSV)."""
    rows: list[dict[str, Any]] = []
    if doc["totals"] is not None:
        rows.append({"section": "totals", **doc["totals"]})
    for section in ("by_line", "by_machine", "by_shift", "trend"):
        rows += [{"section": section, **r} for r in doc[section]]
    return rows
