"""`conduit policy compile|init|paths`: plain functions the main app registers.

Each is a thin wrapper over a library function; every library error becomes one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from otconduit.cli.options import DbOpt
from otconduit.cli.output import fail
from otconduit.store.backend import display

if TYPE_CHECKING:  # the policy models (pydantic) load only for commands that use them
    from otconduit.policy.spec import PolicySpec

TARGETS = ("nftables",)


def _load(policy: Path) -> PolicySpec:
    from otconduit.policy.model import PolicyError
    from otconduit.policy.spec import PolicySpecError, load_spec

    try:
        return load_spec(policy)
    except (PolicyError, PolicySpecError) as exc:
        raise fail(str(exc)) from None


def compile_cmd(
    policy: Annotated[Path, typer.Argument(help="Policy YAML file.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Firewall dialect.")] = "nftables",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Compile a policy into firewall rules for the IDMZ (load with `nft -f`)."""
    from otconduit.policy.nftables import compile_nftables
    from otconduit.policy.spec import PolicySpecError

    if target not in TARGETS:
        raise fail(f"unknown target {target!r}: use {', '.join(TARGETS)}")
    spec = _load(policy)
    try:
        text = compile_nftables(spec)
    except PolicySpecError as exc:
        raise fail(f"{policy}: {exc}") from None
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None


def init_cmd(
    db: DbOpt = Path("conduit.db"),
) -> None:
    """Propose a policy (YAML on stdout) from the assets and traffic in the database."""
    from otconduit.policy.propose import ProposalError, propose_policy
    from otconduit.store import Store, StoreError
    from otconduit.store.backend import store_exists

    if not store_exists(db):
        raise fail(f"database not found: {db} (run `conduit analyze` first)")
    try:
        store = Store(db, readonly=True)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        sys.stdout.write(propose_policy(store))
    except ProposalError as exc:
        raise fail(f"{display(db)}: {exc}") from None
    finally:
        store.close()


def paths_cmd(policy: Annotated[Path, typer.Argument(help="Policy YAML file.")]) -> None:
    """List attack paths from IT zones (level >= 4) to level 0-1 assets."""
    from otconduit.policy.paths import attack_paths
    from otconduit.policy.spec import PolicySpecError

    spec = _load(policy)
    try:
        paths = attack_paths(spec)
    except PolicySpecError as exc:
        raise fail(f"{policy}: {exc}") from None
    if not paths:
        print("no path from an IT zone (level >= 4) to a level 0-1 asset")
        return
    for p in paths:
        hops = " -> ".join(p.nodes)
        print(f"{p.source_zone} => {p.target} ({p.target_zone}): {hops}")
        print(f"    zones: {' -> '.join(p.zones)}; conduits: {', '.join(p.conduits)}")
