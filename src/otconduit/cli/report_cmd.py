"""`conduit report`: the assessment report as a self-contained HTML page or a PDF.
A thin wrapper over :mod:`otconduit.report`; every input it cannot use (a missing
database, a bad policy or gateway file, an output it cannot write or of an unknown kind)
is one line on stderr and exit 2, checked before any work is done."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from otconduit.cli import filters
from otconduit.cli.options import DbOpt
from otconduit.cli.output import err, fail

KINDS = {".html": "html", ".htm": "html", ".pdf": "pdf"}


def _check_output(output: Path) -> str:
    """The output's kind (html or pdf), after checking it can be written."""
    kind = KINDS.get(output.suffix.lower())
    if kind is None:
        raise fail(
            f"--output {output}: unknown kind {output.suffix or '(no extension)'!r}: "
            "name a .html or a .pdf file"
        )
    folder = output.parent
    if output.is_dir():
        raise fail(f"--output {output} is a directory: name a .{kind} file")
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise fail(f"cannot write {output}: {folder} {why}")
    if not os.access(folder, os.W_OK | os.X_OK) or (
        output.exists() and not os.access(output, os.W_OK)
    ):
        raise fail(f"cannot write {output}: permission denied")
    return kind


def _load_policy(path: Path | None) -> Any:
    if path is None:
        return None
    from otconduit.policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        raise fail(str(exc)) from None


def _load_gateway(path: Path | None) -> Any:
    if path is None:
        return None
    from otconduit.gateway.config import load_gateway
    from otconduit.yamlconf import ConfigError

    try:
        return load_gateway(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _replace(out: Path, write: Any) -> None:
    """Write through a temporary file beside ``out`` and move it into place: a failed run
    leaves no half-written report (and an older one untouched)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def report(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="report.html (self-contained) or report.pdf.")
    ],
    db: DbOpt = Path("conduit.db"),
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Zones and conduits: levels, SL-T, paths, the IDMZ KPI."),
    ] = None,
    gateway: Annotated[
        Path | None,
        typer.Option("--gateway", help="Gateway config: the read-only gateway, OEE and energy."),
    ] = None,
    historian: Annotated[
        Path | None,
        typer.Option("--historian", help="Historian SQLite file (default: the gateway config's)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Activity at or after: ISO 8601 (UTC without a zone) or -7d."),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Activity before (same forms).")] = None,
) -> None:
    """The assessment report for management and auditors: NIST CSF 2.0 functions with
    Conduit's evidence, IEC 62443 levels per zone, the roadmap KPIs, a network map."""
    from otconduit.report import ReportError
    from otconduit.report.build import build_report
    from otconduit.report.facts import Window
    from otconduit.report.render_html import render_html
    from otconduit.store import Store, StoreError

    t0 = time.perf_counter()
    kind = _check_output(output)
    lo, hi = filters.time_range(start, end)
    pol = _load_policy(policy)
    gw = _load_gateway(gateway)
    if historian is not None and not historian.exists():
        raise fail(f"no historian at {historian}")
    from otconduit.store.backend import store_exists

    if not store_exists(db):
        raise fail(f"database {db} does not exist: run `conduit analyze` first or pass --db")
    try:
        store = Store(db, readonly=True)
    except StoreError as exc:
        raise fail(str(exc)) from None
    with store:
        rep = build_report(
            store,
            db=db,
            policy=pol,
            policy_path=policy,
            gateway=gw,
            gateway_path=gateway,
            historian=historian,
            window=Window(lo, hi),
        )
    html = render_html(rep)
    try:
        if kind == "html":
            _replace(output, lambda p: p.write_text(html, encoding="utf-8"))
        else:
            from otconduit.report.pdf import write_pdf

            _replace(output, lambda p: write_pdf(html, p, footer=f"{rep.title}: {rep.plant}"))
    except ReportError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    d = rep.data
    err.print(
        f"wrote {output}: {d['assets']:,} assets, {d['violations']:,} violations, "
        f"{d['alerts']:,} alerts, {d['incidents']:,} incidents "
        f"({time.perf_counter() - t0:.1f} s)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
