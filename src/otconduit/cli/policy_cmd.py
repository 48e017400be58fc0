"""`conduit policy check FILE` and `conduit violations --policy FILE`: thin wrappers over
:mod:`otconduit.policy`; a bad policy or database is one line on stderr and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from otconduit.cli.output import Format, emit, fail, make_console
from otconduit.store import Store, StoreError

if TYPE_CHECKING:  # the policy models (pydantic) load only for commands that use them
    from otconduit.policy.model import Policy

policy_app = typer.Typer(
    help="Zones-and-conduits policy (IEC 62443): validate and inspect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PolicyArg = Annotated[Path, typer.Argument(help="Policy YAML file.")]
PolicyOpt = Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")]
DbOpt = Annotated[Path, typer.Option("--db", help="SQLite database file.", envvar="CONDUIT_DB")]
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
    policy: PolicyOpt,
    db: DbOpt = Path("conduit.db"),
    fmt: FmtOpt = Format.table,
) -> None:
    """Check the database against a policy, store the findings and list them."""
    pol = _load(policy)
    if not db.exists():
        raise fail(f"database {db} does not exist: run `conduit analyze` first or pass --db")
    try:
        with Store(db) as store:
            from otconduit.policy.check import evaluate_and_store

            found = evaluate_and_store(store, pol)
    except StoreError as exc:
        raise fail(str(exc)) from None
    emit((v.to_dict() for v in found), fmt, columns=VIOLATION_COLUMNS, title="Violations")
