"""`conduit risk`: assets riskiest first, each score with the reasons that make it up.
A thin wrapper over :mod:`otconduit.risk`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from otconduit.cli import filters
from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.store import Store, StoreError

if TYPE_CHECKING:
    from otconduit.policy import Policy

_out = make_console()
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
DEFAULT_DB = Path("conduit.db")


def load_policy_or_fail(path: Path | None) -> Policy | None:
    """The policy file, or one line on stderr and exit 2."""
    if path is None:
        return None
    from otconduit.policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        raise fail(str(exc)) from None


def add_risk(store: Store, rows: list[dict[str, Any]], policy: Policy | None) -> None:
    """``risk`` on each asset row of ``conduit assets`` (fewer factors without a policy)."""
    from otconduit.risk import attach

    attach(store, rows, policy)


def risk(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Zones and conduits: zone criticality and exposure (without it those "
            "factors are missing, and said so).",
        ),
    ] = None,
    ip: Annotated[str | None, typer.Option(help="Only this IP, or a CIDR network.")] = None,
) -> None:
    """Risk per asset, riskiest first: a 0-100 score and every reason adding to it."""
    from otconduit.risk import COLUMNS, risk_rows

    pol = load_policy_or_fail(policy)
    ip = filters.ip("--ip", ip)
    try:
        store = Store(db, readonly=True)
    except StoreError as exc:
        raise fail(str(exc)) from None
    with store:
        rows = risk_rows(store, pol, ip)
    emit(rows, fmt, columns=COLUMNS, title="Risk", console=_out)
    if rows and fmt is Format.table:
        missing = sorted({m["factor"] for r in rows for m in r["missing"]})
        if missing:
            notes = {m["factor"]: m["detail"] for r in rows for m in r["missing"]}
            for f in missing:
                err.print(f"not scored: {f}: {notes[f]}", highlight=False, markup=False)
