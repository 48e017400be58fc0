"""`conduit advisories import|sync|list|show` and `conduit vulns`: CSAF advisories and the
known vulnerabilities of the inventory. Thin wrappers over :mod:`otconduit.advisories`."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from otconduit.cli import filters
from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.store import Store, StoreError
from otconduit.store.backend import display

_out = make_console()
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
DEFAULT_DB = Path("conduit.db")
MAX_PROBLEM_LINES = 50  # one line per bad file, up to this many; the summary counts all

advisories_app = typer.Typer(
    help="CSAF 2.0 security advisories: import files, sync a provider, list, show.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _store(db: Path, *, readonly: bool) -> Store:
    try:
        return Store(db, readonly=readonly)
    except StoreError as exc:
        raise fail(str(exc)) from None


class _Problems:
    """Prints one line per bad document as it is met, at most MAX_PROBLEM_LINES."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, name: str, reason: str) -> None:
        self.n += 1
        if self.n <= MAX_PROBLEM_LINES:
            err.print(f"skipped {name}: {reason}", highlight=False, markup=False, soft_wrap=True)
        elif self.n == MAX_PROBLEM_LINES + 1:
            err.print("(further problems are only counted)", highlight=False, markup=False)


@advisories_app.command("import")
def import_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(help="CSAF JSON files, folders of them, or .tar.xz/.tar.gz/.zip archives."),
    ],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Load CSAF 2.0 advisories into the database (again: only what changed)."""
    from otconduit.advisories.importer import import_paths

    problems = _Problems()
    with _store(db, readonly=False) as store:
        rep = import_paths(store, paths, on_problem=problems)
    _out.print(rep.summary(), highlight=False, markup=False)
    if rep.documents == 0:
        raise fail("no CSAF advisory could be read from the given paths", 1)


@advisories_app.command("sync")
def sync_cmd(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Provider metadata, ROLIE feed, changes.csv/index.txt or directory URL "
            "(default: CISA's ICS advisories feed).",
        ),
    ] = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Fetch new and changed advisories from a CSAF provider (needs network access)."""
    from otconduit.advisories.sync import DEFAULT_URL, SyncError, sync

    problems = _Problems()
    with _store(db, readonly=False) as store:
        try:
            rep = sync(store, url or DEFAULT_URL, on_problem=problems)
        except SyncError as exc:
            raise fail(str(exc), 1) from None
    _out.print(rep.summary(), highlight=False, markup=False)
    if rep.failed and rep.fetched == 0:
        raise typer.Exit(1)


@advisories_app.command("list")
def list_cmd(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    vendor: Annotated[str | None, typer.Option(help="Only advisories naming this vendor.")] = None,
) -> None:
    """List stored advisories, newest first."""
    from otconduit.store import advisories as adb

    with _store(db, readonly=True) as store:
        rows = adb.listing(store, vendor)
        if not rows and adb.count(store) == 0:
            err.print("no advisories stored: conduit advisories import PATH (or sync)")
    for r in rows:
        r["cve_count"] = len(r["cves"])
    emit(
        rows,
        fmt,
        columns=["id", "version", "released", "cvss", "cve_count", "vendors", "title"],
        title="Advisories",
        console=_out,
    )


def _show_dict(
    meta: dict[str, Any], doc: dict[str, Any], products: list[dict[str, Any]]
) -> dict[str, Any]:
    from otconduit.advisories.csaf import parse

    adv = parse(doc)
    meta = {k: v for k, v in meta.items() if k != "rowid"}
    meta["vulnerabilities"] = [
        {
            "cve": v.cve,
            "title": v.title,
            "cwe": v.cwe,
            "cvss": v.cvss,
            "vector": v.vector,
            "product_status": v.status,
            "remediations": v.remediations,
        }
        for v in adv.vulnerabilities
    ]
    meta["products"] = products
    return meta


@advisories_app.command("show")
def show_cmd(
    advisory_id: Annotated[str, typer.Argument(help="Tracking id, e.g. ICSA-19-283-02.")],
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    csaf: Annotated[
        bool, typer.Option("--csaf", help="Print the stored CSAF document unchanged.")
    ] = False,
) -> None:
    """One advisory: vulnerabilities, scores, products with their status, remediations."""
    from otconduit.store import advisories as adb

    with _store(db, readonly=True) as store:
        got = adb.document(store, advisory_id)
        if got is None:
            close = difflib.get_close_matches(
                advisory_id.upper(), [i.upper() for i in adb.ids(store)], n=1, cutoff=0.8
            )
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise fail(f"no advisory {advisory_id!r} in {display(db)}{hint}")
        meta, raw = got
        products = adb.products_of(store, meta["rowid"])
    if csaf:
        sys.stdout.write(raw.decode("utf-8", "replace").rstrip("\n") + "\n")
        return
    info = _show_dict(meta, json.loads(raw), products)
    if fmt is not Format.table:
        emit([info], fmt, columns=list(info), console=_out)
        return

    def t(text: str) -> None:
        _out.print(text, highlight=False, markup=False)

    _out.print(f"[bold]{escape(info['id'])}[/] {escape(info['title'])}", highlight=False)
    t(
        f"version {info['version']}, released {info['initial_release']}, "
        f"updated {info['released']}, {info['publisher']}"
    )
    if info["url"]:
        t(info["url"])
    t(f"CVSS {info['cvss']} {info['vector'] or ''}".rstrip())
    _out.print("[bold]Vulnerabilities[/]", highlight=False)
    for v in info["vulnerabilities"]:
        title = v["title"] if v["title"] != v["cve"] else ""
        t(f"  {v['cve'] or '-'} CVSS {v['cvss']} {v['cwe'] or ''} {title or ''}".rstrip())
    _out.print("[bold]Products[/]", highlight=False)
    for p in info["products"]:
        parts = f" [{', '.join(p['part_numbers'])}]" if p["part_numbers"] else ""
        t(f"  {p['status']:<18} {p['full_name']}{parts} - version: {p['version'] or '-'}")
    _out.print("[bold]Remediations[/]", highlight=False)
    seen: set[str] = set()
    for v in info["vulnerabilities"]:
        for r in v["remediations"]:
            line = f"  {r['category']}: {r['details'] or ''} {r['url'] or ''}".rstrip()
            if line not in seen:
                seen.add(line)
                t(line)


def vulns(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    ip: Annotated[str | None, typer.Option(help="Only this IP, or a CIDR network.")] = None,
    min_cvss: Annotated[
        float | None, typer.Option("--min-cvss", help="Only advisories scored at least this.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: affected, fixed, version_unknown.")
    ] = None,
) -> None:
    """Known vulnerabilities of the inventory, from the imported advisories."""
    from otconduit.advisories.vulns import COLUMNS, STATUSES, vulnerabilities

    ip = filters.ip("--ip", ip)
    picked = filters.pick(
        "--status",
        status,
        list(STATUSES),
        noun="status",
        aliases={"unknown": "version_unknown", "vulnerable": "affected"},
    )
    if min_cvss is not None and not 0 <= min_cvss <= 10:
        raise fail(f"--min-cvss {min_cvss}: a CVSS score is between 0 and 10")
    with _store(db, readonly=True) as store:
        rep = vulnerabilities(
            store, ip=ip, min_cvss=min_cvss, statuses=(picked,) if picked else STATUSES
        )
    if rep.advisories == 0:
        err.print("no advisories stored: conduit advisories import PATH (or sync)")
    if fmt is not Format.table:
        emit(rep.rows, fmt, columns=COLUMNS, console=_out)
        return
    table_cols = ["ip", "name", "advisory", "cvss", "status", "confidence", "product", "matched_on"]
    confirmed = [r for r in rep.rows if r["status"] != "version_unknown"]
    unknown = [r for r in rep.rows if r["status"] == "version_unknown"]
    if confirmed or not unknown:
        emit(confirmed, fmt, columns=table_cols, title="Known vulnerabilities", console=_out)
    if unknown:
        emit(
            unknown,
            fmt,
            columns=table_cols,
            title="Candidates: firmware unknown or range unreadable (version_unknown)",
            console=_out,
        )
    for a in rep.unmatched:
        what = " ".join(str(x) for x in (a.get("vendor"), a.get("model"), a.get("firmware")) if x)
        err.print(
            f"{a['ip']} ({what}): no stored advisory names this identity",
            highlight=False,
            markup=False,
        )


__all__ = ["advisories_app", "vulns"]
