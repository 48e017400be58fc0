"""`conduit` entry point. Every command is a thin wrapper over a library function;
library errors become one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import copy
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from otconduit.cli import filters
from otconduit.cli.advisories_cmd import advisories_app, vulns
from otconduit.cli.console_cmd import console, user_app
from otconduit.cli.detect_cmd import (
    alert_app,
    alerts,
    attack,
    baseline_app,
    detect,
    evidence,
    export,
    load_rules,
    print_detect_summary,
    rules_app,
)
from otconduit.cli.diode_cmd import diode_app
from otconduit.cli.gateway_cmd import gateway_app
from otconduit.cli.historian_cmd import history, tags
from otconduit.cli.hub_cmd import SiteOpt, UplinkOpt, hub, publish_uplink, sites_cmd, uplink_options
from otconduit.cli.lab_cmd import lab
from otconduit.cli.maintenance_cmd import maintenance_app
from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.cli.policy_cmd import policy_app, violations
from otconduit.cli.policy_compile import compile_cmd, init_cmd, paths_cmd
from otconduit.cli.probe_cmd import probe
from otconduit.cli.process_opts import (
    GatewayOpt,
    HistorianOpt,
    annotate_alerts,
    load_process,
    print_process_alerts,
    with_process,
)
from otconduit.cli.production_cmd import energy, oee
from otconduit.cli.report_cmd import report
from otconduit.cli.risk_cmd import add_risk, risk
from otconduit.cli.sense_cmd import sense, sensor_app
from otconduit.cli.store_cmd import store_app
from otconduit.cli.summary import print_summary
from otconduit.store import Store, StoreError, seen, views

if TYPE_CHECKING:  # the analysis stack (numba) loads only for commands that analyse
    from otconduit.analysis.run import CaptureResult

app = typer.Typer(
    help="Conduit: passive OT monitoring for IT/OT convergence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = make_console()

FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", help="Active at or after: ISO 8601 (UTC without a zone) or -1h, -2d."),
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Active before (same forms as --from).")]
IpOpt = Annotated[str | None, typer.Option("--ip", help="Source or destination: IP or CIDR.")]
DEFAULT_DB = Path("conduit.db")
PROGRESS_MIN_BYTES = 16 << 20  # show a progress bar for captures at least this big


def open_store(db: Path, *, readonly: bool) -> Store:
    try:
        return Store(db, readonly=readonly)
    except StoreError as exc:
        raise fail(str(exc)) from None


@app.command()
def analyze(
    captures: Annotated[list[Path], typer.Argument(help="pcap/pcapng files (optionally .gz).")],
    db: DbOpt = DEFAULT_DB,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary tables.")] = False,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="After analysis, check the traffic against this policy."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Detection rules file (YAML): severities, allow-list."),
    ] = None,
    no_detect: Annotated[
        bool, typer.Option("--no-detect", help="Decode only; raise no alerts.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Full tables: every function, every conversation."),
    ] = False,
    gateway: GatewayOpt = None,
    historian: HistorianOpt = None,
    uplink: UplinkOpt = None,
    site: SiteOpt = None,
) -> None:
    """Decode captures into the database: operations, assets, conversations, alerts."""
    from otconduit.analysis.run import CaptureResult, analyze_file
    from otconduit.capture.reader import CaptureError

    pol = None
    if policy is not None:  # a bad policy or rules file fails before any work is done
        from otconduit.policy import PolicyError, load_policy

        try:
            pol = load_policy(policy)
        except PolicyError as exc:
            raise fail(str(exc)) from None
    cfg = load_rules(rules)
    up_opts = uplink_options(uplink, site, db)
    process = load_process(gateway, historian)
    for cap in captures:
        if not cap.exists():
            raise fail(f"capture not found: {cap}")
        if cap.is_dir():
            raise fail(f"{cap} is a directory: pass capture files (e.g. {cap}/*.pcap)")
    store = open_store(db, readonly=False)
    results: list[CaptureResult] = []
    try:
        for cap in captures:
            try:
                size = cap.stat().st_size
                if size >= PROGRESS_MIN_BYTES and not quiet and err.is_terminal:
                    with Progress(
                        TextColumn("{task.description}"),
                        BarColumn(),
                        DownloadColumn(),
                        TransferSpeedColumn(),
                        TimeRemainingColumn(),
                        console=err,
                        transient=True,
                    ) as bar:
                        task = bar.add_task(escape(cap.name), total=size)

                        def advance(done: int, _total: int, task: TaskID = task) -> None:
                            bar.update(task, completed=done)

                        res = analyze_file(store, cap, progress=advance)
                else:
                    res = analyze_file(store, cap)
            except CaptureError as exc:
                err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
                results.append(CaptureResult(str(cap), "error", 0, 0, str(exc)))
                continue
            results.append(res)
            if res.error:
                err.print(
                    f"[yellow]warning:[/] {escape(str(cap))}: {escape(res.error)}; "
                    f"kept {res.packets} packets read before it",
                    highlight=False,
                )
        if pol is not None and any(r.packets for r in results):
            from otconduit.policy.check import store_host_names

            store_host_names(store, pol)  # the summary's tables show the policy's names
        if not quiet:
            print_summary(store, results, out, verbose=verbose)
        if pol is not None and any(r.packets for r in results):
            from otconduit.policy.check import evaluate_and_store

            found = evaluate_and_store(store, pol)
            out.print(
                f"policy violations: {len(found)} (list them: conduit violations)",
                highlight=False,
                markup=False,
            )
        if not no_detect:
            from otconduit.detect import baseline
            from otconduit.detect.run import detect_capture
            from otconduit.store.captures import info as capture_info

            base = baseline.load(store)
            reports = []
            for r in results:
                done = capture_info(store, r.capture_id) if r.capture_id is not None else None
                if done is not None and done.status != "running":
                    reports.append(detect_capture(store, done.id, cfg, pol, base))
            if reports and not quiet:
                print_detect_summary(reports)
            if process is not None:
                annotate_alerts(store, process)
                if not quiet:
                    print_process_alerts(store, out)
    finally:
        store.close()
        if process is not None:
            process.close()
    if up_opts is not None:
        publish_uplink(up_opts)
    if any(r.status == "error" for r in results):
        raise typer.Exit(2)
    if not any(r.packets for r in results):
        raise fail("no packets could be read from the given captures", 1)


@app.command()
def assets(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    ip: Annotated[str | None, typer.Option(help="Only this IP, or a CIDR network.")] = None,
    role: Annotated[str | None, typer.Option(help="Only assets with this role.")] = None,
    protocol: Annotated[str | None, typer.Option(help="Only assets speaking it.")] = None,
    vendor: Annotated[str | None, typer.Option(help="Vendor contains this text.")] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Add each asset's zone and Purdue level from this policy."),
    ] = None,
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also hosts only ever seen as scan targets (they never sent traffic of "
            "their own or answered with application data).",
        ),
    ] = False,
) -> None:
    """List assets with identity, roles and protocols (and zone and level with --policy)."""
    columns = [
        "ip",
        "name",
        "mac",
        "vendor",
        "model",
        "firmware",
        "os",
        "roles",
        "protocols",
        "last_seen",
    ]
    with open_store(db, readonly=True) as store:
        ip = filters.ip("--ip", ip)
        role = filters.role("--role", role, seen.roles(store))
        protos = filters.protocol("--protocol", protocol, seen.protocols(store))
        rows = views.assets(
            store, views.AssetFilter(ip, role, protos, vendor, confirmed_only=not all_)
        )
        if policy is not None:
            from otconduit.policy import PolicyError, load_policy
            from otconduit.policy.check import asset_levels

            try:
                pol = load_policy(policy)
            except PolicyError as exc:
                raise fail(str(exc)) from None
            levels = asset_levels(store, pol)
            for row in rows:
                zone = pol.zone_of(row["ip"], row["mac"], row["vlan"])
                level, source = levels.get(row["ip"], (None, "unknown"))
                row["zone"] = zone.name if zone is not None else None
                row["level"] = level
                row["level_source"] = source  # policy | inferred | unknown
            columns[3:3] = ["zone", "level", "level_source"]
        add_risk(store, rows, pol if policy is not None else None)
        emit(rows, fmt, columns=columns, title="Assets")


@app.command()
def conversations(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    ip: Annotated[str | None, typer.Option(help="Client or server: IP or CIDR.")] = None,
    protocol: Annotated[str | None, typer.Option(help="Application protocol.")] = None,
    port: Annotated[int | None, typer.Option(help="Server port.")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
) -> None:
    """List conversations (client → server per transport, port and protocol)."""
    lo, hi = filters.time_range(start, end)
    ip = filters.ip("--ip", ip)
    with open_store(db, readonly=True) as store:
        protos = filters.protocol("--protocol", protocol, seen.protocols(store))
        flt = views.ConversationFilter(ip, protos, port, lo, hi)
        rows = views.conversations(store, flt)
        emit(
            rows,
            fmt,
            columns=[
                "transport",
                "client_ip",
                "server_ip",
                "server_port",
                "vlan",
                "protocol",
                "connections",
                "packets_c2s",
                "packets_s2c",
                "bytes_c2s",
                "bytes_s2c",
                "functions",
            ],
            title="Conversations",
        )


@app.command()
def operations(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    protocol: Annotated[str | None, typer.Option(help="e.g. modbus, s7, enip.")] = None,
    ip: IpOpt = None,
    src: Annotated[str | None, typer.Option(help="Source: IP or CIDR.")] = None,
    dst: Annotated[str | None, typer.Option(help="Destination: IP or CIDR.")] = None,
    operation: Annotated[
        str | None, typer.Option("--class", help="read, write, control, diagnostic, ...")
    ] = None,
    function: Annotated[str | None, typer.Option(help="Function name or code.")] = None,
    status: Annotated[
        str | None, typer.Option(help="ok, exception, no_response, malformed.")
    ] = None,
    unit: Annotated[int | None, typer.Option(help="Unit id.")] = None,
    capture: Annotated[str | None, typer.Option(help="Capture path or file name.")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    gateway: GatewayOpt = None,
    historian: HistorianOpt = None,
) -> None:
    """List decoded operations (one per request/response transaction); with --gateway,
    writes to tags as those tags (``process``)."""
    from otconduit.model import OpClass, OpStatus

    lo, hi = filters.time_range(start, end)
    ip, src, dst = filters.ip("--ip", ip), filters.ip("--src", src), filters.ip("--dst", dst)
    op_class = filters.pick("--class", operation, list(OpClass), noun="class")
    op_status = filters.pick("--status", status, list(OpStatus), noun="status")
    process = load_process(gateway, historian)
    with open_store(db, readonly=True) as store:
        flt = views.OperationFilter(
            filters.protocol("--protocol", protocol, seen.protocols(store)),
            ip,
            src,
            dst,
            op_class,
            filters.function("--function", function, seen.functions(store)),
            op_status,
            unit,
            filters.capture("--capture", capture, seen.capture_paths(store)),
            limit if limit is not None else (200 if fmt is Format.table else None),
            lo,
            hi,
        )
        rows = with_process(views.operations(store, flt), process, store)
        if process is not None and fmt is Format.table:
            from otconduit.process import process_text

            rows = ({**r, "process": process_text(r["process"])} for r in rows)
        n = emit(
            rows,
            fmt,
            columns=[
                "ts",
                "src_ip",
                "dst_ip",
                "unit",
                "operation",
                "function",
                "address",
                "quantity",
                "values",
                "status",
                "exception",
                "frame",
                *(["process"] if process is not None else []),
            ],
            title="Operations",
        )
        if process is not None:
            process.close()
        if fmt is Format.table and limit is None and n == 200:
            err.print("(first 200 rows; use --limit or --format json|csv for all)")


@app.command()
def captures(db: DbOpt = DEFAULT_DB, fmt: FmtOpt = Format.table) -> None:
    """List analysed captures and their status."""
    with open_store(db, readonly=True) as store:
        emit(
            store.captures(),
            fmt,
            columns=["id", "path", "status", "packets", "format", "finished_at", "error"],
            title="Captures",
        )


@app.command()
def problems(db: DbOpt = DEFAULT_DB, fmt: FmtOpt = Format.table) -> None:
    """Count what could not be decoded, by layer and reason."""
    with open_store(db, readonly=True) as store:
        emit(
            views.problem_summary(store),
            fmt,
            columns=["layer", "reason", "count"],
            title="Decode problems",
        )


app.command()(lab)
app.command()(alerts)
app.add_typer(alert_app, name="alert")
app.command()(evidence)
app.command()(attack)
app.command()(detect)
app.command()(export)
app.add_typer(rules_app, name="rules")
app.add_typer(baseline_app, name="baseline")
app.add_typer(gateway_app, name="gateway")
app.add_typer(diode_app, name="diode")
app.command()(tags)
app.command()(history)
policy_app.command("compile")(compile_cmd)
policy_app.command("init")(init_cmd)
policy_app.command("paths")(paths_cmd)
app.add_typer(policy_app, name="policy")
app.command("violations")(violations)
app.command()(console)
app.add_typer(user_app, name="user")
app.command()(sense)
app.add_typer(sensor_app, name="sensor")
app.add_typer(advisories_app, name="advisories")
app.command()(vulns)
app.command()(risk)
app.command()(probe)
app.command()(oee)
app.command()(energy)
app.command()(report)
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(store_app, name="store")
app.command()(hub)
app.command("sites")(sites_cmd)


def main() -> None:
    """The ``conduit`` command. Once a command has finished (its files closed, its
    database committed), the process ends at once: tearing down the interpreter after a
    large analysis (numba's compiled code, millions of freed objects) took longer than a
    third of a second, which a user waits for and nothing needs."""
    code = 0
    try:
        ret = _narrowed(app, sys.argv[1:2])(standalone_mode=False)
        code = ret if isinstance(ret, int) else 0
    except typer.TyperException as exc:  # usage errors: typer's own (vendored) click
        print(_usage_line(exc), file=sys.stderr)
        code = int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _narrowed(full: typer.Typer, first: list[str]) -> typer.Typer:
    """``full`` with only the command (or group) ``first`` names, when it names one: typer
    builds every command's parser before it runs any (a tenth of a second for the 36
    here, on every invocation). Anything else, help and unknown names included, gets
    the whole application."""
    name = first[0] if first else ""
    cmds = [
        c
        for c in full.registered_commands
        if (c.name or (c.callback and typer.main.get_command_name(c.callback.__name__))) == name
    ]
    groups = [
        g
        for g in full.registered_groups
        if (g.name or (g.typer_instance and g.typer_instance.info.name)) == name
    ]
    if not cmds and not groups:
        return full
    narrowed = copy.copy(full)
    narrowed.registered_commands, narrowed.registered_groups = cmds, groups
    if not groups:  # one command alone would become the program itself, not a subcommand
        narrowed.callback()(_no_options)
    return narrowed


def _no_options() -> None:
    """(the program's own options: none)"""


def _usage_line(exc: typer.TyperException) -> str:
    """A usage error as one line naming the command and where its help is (the default
    is a usage block and a framed box); ``conduit`` alone still shows the help."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "conduit"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    if type(exc).__name__ == "NoArgsIsHelpError":
        return message
    text = " ".join(message.split())
    return f"{where}: {text} (see: {where} --help)"
