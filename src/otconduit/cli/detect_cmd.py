"""Detection commands: alerts and their lifecycle, evidence, ATT&CK coverage, rules,
baselines, re-detection. Thin wrappers over :mod:`otconduit.detect`."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from otconduit.cli import filters
from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.cli.process_opts import (
    GatewayOpt,
    HistorianOpt,
    annotate_alerts,
    load_process,
    print_process_alerts,
)
from otconduit.store import Store, StoreError, seen
from otconduit.store.backend import display
from otconduit.store.match import ip_matcher, is_network, iso_ns, overlaps

_out = make_console()

FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
RulesOpt = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules file (YAML): enable/disable, severities, allow-list."),
]
PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", help="Zones-and-conduits policy for OT context.")
]
DEFAULT_DB = Path("conduit.db")
ALERT_COLUMNS = [
    "id",
    "severity",
    "status",
    "rule",
    "src_ip",
    "src_name",
    "dst_ip",
    "dst_name",
    "protocol",
    "operation",
    "count",
    "first_seen",
    "last_seen",
    "techniques",
]

alert_app = typer.Typer(
    help="One alert: show it with its runbook, acknowledge, close or reopen it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(
    help="Detection rules: list them, validate a rules file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
baseline_app = typer.Typer(
    help="Learned baseline of normal traffic: learn it, show it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _store(db: Path, *, readonly: bool) -> Store:
    try:
        return Store(db, readonly=readonly)
    except StoreError as exc:
        raise fail(str(exc)) from None


SEVERITY_ALIASES = {"informational": "info", "crit": "critical", "med": "medium"}
STATUS_ALIASES = {"ack": "acknowledged", "acked": "acknowledged", "new": "open"}


def load_rules(path: Path | None) -> Any:
    from otconduit.detect.config import load_config
    from otconduit.yamlconf import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def load_policy_opt(path: Path | None) -> Any:
    if path is None:
        return None
    from otconduit.policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        raise fail(str(exc)) from None


def print_detect_summary(reports: list[Any]) -> None:
    sev: dict[str, int] = {}
    new = updated = 0
    for r in reports:
        new += r.store.new_alerts
        updated += r.store.updated_alerts
        for k, v in r.store.by_severity.items():
            sev[k] = sev.get(k, 0) + v
    order = ["critical", "high", "medium", "low", "info"]
    parts = [f"{k} {sev[k]}" for k in order if sev.get(k)]
    _out.print(
        f"detection: {new} new alerts, {updated} updates"
        + (f" (findings by severity: {', '.join(parts)})" if parts else "")
        + " - conduit alerts",
        highlight=False,
    )


def alerts(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    severity: Annotated[
        str | None, typer.Option("--severity", "-s", help="Minimum severity.")
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Rule id.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="open, acknowledged or closed.")
    ] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Source or destination IP.")] = None,
    technique: Annotated[
        str | None, typer.Option("--technique", help="ATT&CK for ICS id, e.g. T0843.")
    ] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Active at or after (ISO 8601 or -1h).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Active before (ISO 8601 or -1h).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many.")] = None,
) -> None:
    """Alerts (deduplicated, with ATT&CK for ICS techniques and evidence)."""
    from otconduit.detect.alerts import STATUSES, AlertFilter, list_alerts
    from otconduit.detect.attack import attack_table
    from otconduit.detect.rules import RULES, Severity

    sev = filters.pick(
        "--severity",
        severity,
        [s.label for s in Severity],
        noun="severity",
        aliases=SEVERITY_ALIASES,
    )
    status = filters.pick("--status", status, STATUSES, noun="status", aliases=STATUS_ALIASES)
    lo, hi = filters.time_range(start, end)
    ip = filters.ip("--ip", ip)
    with _store(db, readonly=True) as store:
        rule = filters.pick(
            "--rule", rule, {*RULES, *seen.alert_values(store, "rule")}, noun="rule"
        )
        known = {*attack_table().techniques, *seen.alert_values(store, "techniques")}
        technique = filters.pick("--technique", technique, known, noun="technique")
        protos = filters.protocol("--protocol", protocol, seen.protocols(store, "alerts"))
        exact_ip = ip if ip is not None and not is_network(ip) else None
        # Networks, protocol families and time ranges are matched here, after the query.
        narrow = protos is not None or lo is not None or hi is not None or ip != exact_ip
        flt = AlertFilter(sev, rule, status, exact_ip, technique, limit=None if narrow else limit)
        rows = list_alerts(store, flt)
    if narrow:
        hit = ip_matcher(ip) if ip is not None else None
        rows = [
            r
            for r in rows
            if (hit is None or hit(r["src_ip"]) or hit(r["dst_ip"]))
            and (protos is None or set(protos) & set((r["protocol"] or "").split(",")))
            and overlaps(iso_ns(r["first_seen"]), iso_ns(r["last_seen"]), lo, hi)
        ][:limit]
    if fmt is Format.table:
        for r in rows:
            r["techniques"] = ",".join(r["techniques"])
            for key in ("first_seen", "last_seen"):  # seconds are enough on a screen
                r[key] = (r[key] or "")[:19].replace("T", " ")
    emit(rows, fmt, columns=ALERT_COLUMNS, title="Alerts", console=_out)


@alert_app.command("show")
def alert_show(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
) -> None:
    """An alert with evidence, decoded operations, techniques and its runbook."""
    from otconduit.detect.alerts import AlertError, get_alert
    from otconduit.detect.attack import attack_table
    from otconduit.detect.runbooks import runbook

    with _store(db, readonly=True) as store:
        try:
            a = get_alert(store, alert_id)
        except AlertError as exc:
            raise fail(str(exc)) from None
    table = attack_table()
    a["technique_details"] = [
        {
            "id": t,
            "name": table.name(t),
            "tactics": [table.tactic_name(x) for x in table.techniques[t].tactics]
            if t in table.techniques
            else [],
            "url": table.techniques[t].url if t in table.techniques else None,
        }
        for t in a["techniques"]
    ]
    a["runbook"] = runbook(a["category"]).to_dict()
    if fmt is not Format.table:
        emit([a], fmt, columns=list(a), console=_out)
        return

    # Summaries, paths, tag names and comments come from captures and users: printed as
    # plain text (``t``), never read as markup; only our own headings use markup (``h``).
    def t(text: str) -> None:
        _out.print(text, highlight=False, markup=False)

    def h(markup: str) -> None:
        _out.print(markup, highlight=False)

    h(
        f"[bold]Alert {a['id']}[/] \\[{escape(str(a['severity']))}] {escape(str(a['title']))}"
        f"  ({escape(str(a['status']))})"
    )
    t(a["summary"])
    t(f"rule {a['rule']} - {a['count']} events, {a['first_seen']} .. {a['last_seen']}")
    if a["context"]:
        t("context: " + ", ".join(f"{k}={v}" for k, v in a["context"].items() if v))
    if a["process"]:
        h("[bold]In process terms[/] (gateway tags the writes changed)")
        for e in a["process"]:
            t(f"  {e.get('ts') or ''} {e['text']}")
    h("[bold]ATT&CK for ICS[/]")
    for tq in a["technique_details"]:
        t(f"  {tq['id']} {tq['name']} ({', '.join(tq['tactics'])}) {tq['url'] or ''}")
    h("[bold]Evidence[/]")
    for e in a["evidence"]:
        frames = ", ".join(map(str, e["frames"][:30]))
        t(f"  {e['capture']} frames {frames}")
    for r in a["records"][:5]:
        t(
            f"  {r.get('ts')} {r.get('src_ip')} -> {r.get('dst_ip')} {r.get('protocol')} "
            f"{r.get('function')} status={r.get('status')}"
        )
    rb = a["runbook"]
    h(f"[bold]Runbook: {escape(rb['title'])}[/]")
    t("  involve: " + "; ".join(rb["involve"]))
    h("  [bold red]do not:[/]")
    for line in rb["do_not"]:
        t(f"    - {line}")
    t("  IT steps:")
    for line in rb["it_steps"]:
        t(f"    - {line}")
    t("  OT steps:")
    for line in rb["ot_steps"]:
        t(f"    - {line}")
    for hist in a["history"]:
        t(
            f"  {hist['at']} {hist['user']}: {hist['from_status']} -> {hist['to_status']} "
            f"{hist['comment'] or ''}"
        )


def _transition(alert_id: int, status: str, db: Path, user: str | None, comment: str) -> None:
    from otconduit.detect.alerts import AlertError, set_status

    with _store(db, readonly=False) as store:
        try:
            set_status(store, alert_id, status, user or getpass.getuser(), comment)
        except AlertError as exc:
            raise fail(str(exc)) from None
    _out.print(f"alert {alert_id} {status}", highlight=False, markup=False)


UserOpt = Annotated[str | None, typer.Option("--user", help="Who (default: login name).")]
CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="Why.")]
AlertArg = Annotated[int, typer.Argument(help="Alert id.")]


@alert_app.command("ack")
def alert_ack(
    alert_id: AlertArg, db: DbOpt = DEFAULT_DB, user: UserOpt = None, comment: CommentOpt = ""
) -> None:
    """Acknowledge: someone is on it."""
    _transition(alert_id, "acknowledged", db, user, comment)


@alert_app.command("close")
def alert_close(
    alert_id: AlertArg, db: DbOpt = DEFAULT_DB, user: UserOpt = None, comment: CommentOpt = ""
) -> None:
    """Close: handled (say how in --comment)."""
    _transition(alert_id, "closed", db, user, comment)


@alert_app.command("reopen")
def alert_reopen(
    alert_id: AlertArg, db: DbOpt = DEFAULT_DB, user: UserOpt = None, comment: CommentOpt = ""
) -> None:
    """Reopen an acknowledged or closed alert."""
    _transition(alert_id, "open", db, user, comment)


def evidence(
    alert_id: AlertArg,
    write: Annotated[Path, typer.Option("--write", "-w", help="Output pcap file.")],
    db: DbOpt = DEFAULT_DB,
    capture_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--capture-dir",
            help="Look here (and below) for captures that moved, by fingerprint; "
            "where they are found is recorded in the database. Repeatable.",
        ),
    ] = None,
) -> None:
    """Write the packets an alert stands on to a pcap file."""
    from otconduit.cli.locate import locate_evidence
    from otconduit.detect.alerts import AlertError
    from otconduit.detect.evidence import evidence_frames, write_evidence
    from otconduit.store.capture_files import relocate

    dirs = capture_dir or []
    for d in dirs:
        if not d.is_dir():
            raise fail(f"--capture-dir {d}: not a folder")
    with _store(db, readonly=True) as store:
        try:
            cited = list(evidence_frames(store, alert_id))
        except AlertError as exc:
            raise fail(str(exc)) from None
        found = locate_evidence(store, cited, db, dirs)
    hint = (
        "; if it moved, pass --capture-dir DIR"
        if not dirs
        else f" under {', '.join(map(str, dirs))}"
    )
    if found.changed:
        raise fail(
            f"capture {found.changed[0]} is not the file that was analysed (its fingerprint "
            f"differs){hint}"
        )
    if found.moved:  # remembered, so the console and later commands find it too
        with _store(db, readonly=False) as store:
            for sha, path in found.moved.items():
                relocate(store, sha, path)
        for path in found.moved.values():
            err.print(
                f"found capture {escape(str(path))} (recorded in {escape(display(db))})",
                highlight=False,
            )
    with _store(db, readonly=True) as store:
        try:
            rep = write_evidence(store, alert_id, write)
        except AlertError as exc:
            raise fail(f"{exc}{hint if found.missing else ''}") from None
        except OSError as exc:
            raise fail(f"cannot write {write}: {exc.strerror or exc}") from None
    _out.print(f"wrote {rep.packets} packets to {write}", highlight=False, markup=False)
    for m in rep.missing:
        err.print(
            f"[yellow]warning:[/] capture {escape(str(m))} is no longer readable{escape(hint)}",
            highlight=False,
        )


def attack(
    fmt: FmtOpt = Format.table,
    all_: Annotated[bool, typer.Option("--all", help="List undetected techniques too.")] = False,
) -> None:
    """ATT&CK for ICS coverage: which techniques Conduit's rules detect."""
    from otconduit.detect.coverage import coverage

    cov = coverage()
    rows = [r for r in cov.rows if all_ or r["rules"]]
    if fmt is Format.table:
        for r in rows:
            r["rules"] = ", ".join(r["rules"])
            r["tactics"] = ", ".join(r["tactics"])
    emit(
        rows,
        fmt,
        columns=["id", "name", "tactics", "rules"],
        title=f"ATT&CK for ICS {cov.version}: {cov.detected} of {cov.total} techniques detected",
        console=_out,
    )


@rules_app.command("list")
def rules_list(fmt: FmtOpt = Format.table, rules: RulesOpt = None) -> None:
    """Every rule with its default (or configured) severity and techniques."""
    from otconduit.detect.rules import RULES

    cfg = load_rules(rules)
    rows = []
    for r in RULES.values():
        sev = cfg.severity_override(r.id) or r.severity
        rows.append(
            {
                "rule": r.id,
                "title": r.title,
                "category": r.category,
                "severity": sev.label,
                "enabled": cfg.enabled(r.id),
                "techniques": list(r.techniques),
                "description": r.description,
            }
        )
    if fmt is Format.table:
        for row in rows:
            row["techniques"] = ",".join(row["techniques"])
    emit(
        rows,
        fmt,
        columns=["rule", "category", "severity", "enabled", "techniques", "title"],
        title="Detection rules",
        console=_out,
    )


@rules_app.command("check")
def rules_check(rules: Annotated[Path, typer.Argument(help="Rules file (YAML).")]) -> None:
    """Validate a rules file."""
    cfg = load_rules(rules)
    off = [r for r, s in cfg.rules.items() if not s.enabled]
    _out.print(
        f"{rules}: ok - {len(cfg.allow)} allow-list entries, {len(off)} rules disabled, "
        f"dedup window {cfg.dedup_window:g} s",
        highlight=False,
        markup=False,
    )


@baseline_app.command("learn")
def baseline_learn(
    db: DbOpt = DEFAULT_DB,
    rules: RulesOpt = None,
    name: Annotated[str, typer.Option("--name", help="Baseline name.")] = "default",
) -> None:
    """Learn normal traffic from the captures in the database (the learning period)."""
    from otconduit.detect import baseline

    cfg = load_rules(rules)
    with _store(db, readonly=False) as store:
        b = baseline.learn(store, cfg, name)
        if not b.captures:
            raise fail("nothing to learn from: analyze captures of normal operation first")
        baseline.save(store, b)
    s = b.summary()
    _out.print(
        f"baseline {name}: {s['captures']} captures, {s['assets']} assets, "
        f"{s['conversations']} conversations, {s['functions']} functions, "
        f"{s['address_ranges']} address ranges, {s['cyclic_polls']} cyclic polls",
        highlight=False,
        markup=False,
    )


@baseline_app.command("show")
def baseline_show(
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    name: Annotated[str, typer.Option("--name", help="Baseline name.")] = "default",
) -> None:
    """Summary of a learned baseline."""
    from otconduit.detect import baseline

    with _store(db, readonly=True) as store:
        b = baseline.load(store, name)
    if b is None:
        raise fail(f"no baseline {name!r}: run `conduit baseline learn` first")
    s = b.summary()
    emit([s], fmt, columns=list(s), title="Baseline", console=_out)


def detect(
    db: DbOpt = DEFAULT_DB,
    rules: RulesOpt = None,
    policy: PolicyOpt = None,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Ignore the learned baseline.")
    ] = False,
    gateway: GatewayOpt = None,
    historian: HistorianOpt = None,
) -> None:
    """Re-run detection over every capture in the database (e.g. after editing rules);
    with --gateway, alerts about writes say which plant tags they changed."""
    from otconduit.detect.run import detect_all

    cfg = load_rules(rules)
    pol = load_policy_opt(policy)
    process = load_process(gateway, historian)
    try:
        with _store(db, readonly=False) as store:
            if pol is not None:
                from otconduit.policy.check import evaluate_and_store

                evaluate_and_store(store, pol)
            reports = detect_all(store, cfg, pol, use_baseline=not no_baseline)
            print_detect_summary(reports)
            if process is not None:
                annotate_alerts(store, process)
                print_process_alerts(store, _out)
    finally:
        if process is not None:
            process.close()


def export(
    db: DbOpt = DEFAULT_DB,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="jsonl (JSON lines) or cef (ArcSight CEF).")
    ] = "jsonl",
    syslog: Annotated[
        str | None,
        typer.Option("--syslog", help="Send to a syslog receiver HOST:PORT instead of stdout."),
    ] = None,
    tcp: Annotated[bool, typer.Option("--tcp", help="Syslog over TCP (default UDP).")] = False,
    sink: Annotated[
        str, typer.Option("--sink", help="Name of this destination (its own export cursor).")
    ] = "default",
    full: Annotated[
        bool, typer.Option("--full", help="Send every alert, not only new ones.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Append to this file instead of stdout.")
    ] = None,
) -> None:
    """Export alerts to a SIEM: new and changed alerts since this sink's last export."""
    import sys

    from otconduit.detect.export import ExportError, export_alerts

    if fmt not in ("jsonl", "cef"):
        raise fail(f"unknown export format {fmt!r}: use jsonl or cef")
    target: tuple[str, int, str] | None = None
    if syslog is not None:
        host, _, port = syslog.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise fail(f"--syslog {syslog!r} must be HOST:PORT, e.g. 127.0.0.1:514")
        target = (host.strip("[]"), int(port), "tcp" if tcp else "udp")
    with _store(db, readonly=False) as store:
        try:
            if target is not None:
                rep = export_alerts(store, sink=sink, fmt=fmt, syslog=target, full=full)  # type: ignore[arg-type]
            elif output is not None:
                with output.open("a", encoding="utf-8") as fh:
                    rep = export_alerts(store, sink=sink, fmt=fmt, out=fh, full=full)  # type: ignore[arg-type]
            else:
                rep = export_alerts(store, sink=sink, fmt=fmt, out=sys.stdout, full=full)  # type: ignore[arg-type]
        except ExportError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    err.print(
        f"exported {rep.sent} alerts to {rep.target} (sink {sink}, change {rep.last_change})",
        highlight=False,
        markup=False,
    )
