"""`conduit policy check FILE` and `conduit violations [--policy FILE]`: thin wrappers over
:mod:`otconduit.policy`; a bad policy or database is one line on stderr and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from otconduit.cli import filters
from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.store import Store, StoreError, seen
from otconduit.store.violations import ViolationFilter, stored_violations
from otconduit.store.violations import count as count_violations

if TYPE_CHECKING:  # the policy models (pydantic) load only for commands that use them
    from otconduit.policy.model import Policy

policy_app = typer.Typer(
    help="Zones-and-conduits policy (IEC 62443): validate and inspect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PolicyArg = Annotated[Path, typer.Argument(help="Policy YAML file.")]
CheckOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        "-p",
        help="Check the database against this policy first (and store the result); "
        "without it, list the violations stored by the last check.",
    ),
]
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
VIOLATION_COLUMNS = [
    "rule",
    "src_ip",
    "dst_ip",
    "src_zone",
    "dst_zone",
    "protocol",
    "operation",
    "conduit",
    "count",
    "targets",
    "first_seen",
    "reason",
]


def _load(path: Path) -> Policy:
    from otconduit.policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        raise fail(str(exc)) from None


@policy_app.command("check")
def check(policy: PolicyArg, fmt: FmtOpt = Format.table) -> None:
    """Validate a policy and summarise its zones and conduits."""
    pol = _load(policy)
    zones = [
        {
            "zone": z.name,
            "level": f"{z.level:g}",
            "sl_t": z.sl_t,
            "owner": z.owner,
            "members": [m if isinstance(m, str) else f"vlan {m.vlan}" for m in z.members],
            "description": z.description,
        }
        for z in pol.zones
    ]
    conduits = [
        {
            "conduit": c.name,
            "from": c.from_,
            "to": c.to,
            "from_hosts": c.from_hosts,
            "to_hosts": c.to_hosts,
            "window": c.window,
            "protocols": {
                name: f"{r.ports or 'any'} "
                + (
                    ",".join(r.operations)
                    if r.operations is not None
                    else "not " + ",".join(r.deny_operations)
                    if r.deny_operations
                    else "all"
                )
                for name, r in c.protocols.items()
            },
        }
        for c in pol.conduits
    ]
    if fmt is not Format.table:
        emit(
            [{"kind": "zone", **z} for z in zones] + [{"kind": "conduit", **c} for c in conduits],
            fmt,
            columns=[],
        )
        return
    console = make_console()
    console.print(
        f"policy {pol.plant}: {len(pol.zones)} zones, {len(pol.conduits)} conduits, "
        f"default {pol.default}, timezone {pol.timezone}",
        highlight=False,
        markup=False,
    )
    emit(zones, fmt, columns=list(zones[0]), title="Zones", console=console)
    if conduits:
        emit(conduits, fmt, columns=list(conduits[0]), title="Conduits", console=console)


def violations(
    policy: CheckOpt = None,
    db: DbOpt = Path("conduit.db"),
    fmt: FmtOpt = Format.table,
    rule: Annotated[str | None, typer.Option("--rule", help="Violation rule.")] = None,
    ip: Annotated[
        str | None, typer.Option("--ip", help="Source or destination: IP or CIDR.")
    ] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol.")] = None,
    zone: Annotated[str | None, typer.Option("--zone", help="Source or destination zone.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Seen at or after (ISO 8601 or -1h).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Seen before (ISO 8601 or -1h).")] = None,
) -> None:
    """List policy violations: those stored by `analyze --policy` or the last check, or,
    with --policy, check the database against that policy first and store the result."""
    from otconduit.policy.check import RULE_ORDER

    pol = _load(policy) if policy is not None else None
    lo, hi = filters.time_range(start, end)
    ip = filters.ip("--ip", ip)
    from otconduit.store.backend import store_exists

    if not store_exists(db):
        raise fail(f"database {db} does not exist: run `conduit analyze` first or pass --db")
    try:
        with Store(db, readonly=pol is None) as store:
            if pol is not None:
                from otconduit.policy.check import evaluate_and_store

                evaluate_and_store(store, pol)
            flt = ViolationFilter(
                pol.plant if pol is not None else None,
                filters.pick(
                    "--rule",
                    rule,
                    {*RULE_ORDER, *seen.violation_values(store, "rule")},
                    noun="rule",
                ),
                ip,
                filters.protocol("--protocol", protocol, seen.protocols(store, "violations")),
                filters.pick("--zone", zone, _zones(store, pol), noun="zone"),
                lo,
                hi,
            )
            rows = stored_violations(store, flt)
            stored = count_violations(store)
    except StoreError as exc:
        raise fail(str(exc)) from None
    emit(rows, fmt, columns=VIOLATION_COLUMNS, title="Violations")
    if pol is None and not stored:
        err.print(
            "no violations stored: none were found, or no policy was checked yet "
            "(`conduit violations --policy FILE` or `conduit analyze --policy FILE`)",
            highlight=False,
            markup=False,
        )


def _zones(store: Store, pol: Policy | None) -> set[str]:
    """Zones a --zone filter may name: the policy's, and those stored violations name."""
    names = seen.violation_values(store, "zone")
    if pol is not None:
        names.update(z.name for z in pol.zones)
    return names
