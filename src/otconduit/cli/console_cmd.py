"""`conduit console` (the web console) and `conduit user add` (its accounts).

Thin wrappers over :mod:`otconduit.console`; the web stack is imported only when one of
these commands runs, so the rest of the CLI starts as fast as before."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from otconduit.cli.options import DbOpt
from otconduit.cli.output import err, fail

_out = Console(emoji=False)

AuthDbOpt = Annotated[
    Path | None,
    typer.Option(
        "--auth-db",
        help="Console users, sessions and audit log (default: <db>.console.db beside --db).",
        envvar="CONDUIT_CONSOLE_DB",
    ),
]
DEFAULT_DB = Path("conduit.db")

user_app = typer.Typer(
    help="Console users: add one (viewer, analyst or admin), list them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _auth_path(db: Path, auth_db: Path | None) -> Path:
    from otconduit.console.authdb import default_path
    from otconduit.store.backend import is_url

    if auth_db is not None:
        return auth_db
    # The console's users stay in a local SQLite file; beside a server there is no
    # folder to put it in, so it is the current one.
    return Path("conduit.console.db") if is_url(db) else default_path(db)


def console(
    db: DbOpt = DEFAULT_DB,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you mean it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    cert: Annotated[
        Path | None, typer.Option("--cert", help="TLS certificate (PEM); needs --key.")
    ] = None,
    key: Annotated[Path | None, typer.Option("--key", help="TLS private key (PEM).")] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Zones-and-conduits policy: zones, levels, map verdicts."),
    ] = None,
    auth_db: AuthDbOpt = None,
    historian: Annotated[
        str | None,
        typer.Option(
            "--historian",
            help="Gateway historian (SQLite file or PostgreSQL DSN) for the Production page.",
        ),
    ] = None,
    gateway: Annotated[
        Path | None,
        typer.Option(
            "--gateway",
            help="Gateway config: ties tags to devices (and names the historian).",
        ),
    ] = None,
    session_hours: Annotated[
        float, typer.Option("--session-hours", min=0.1, help="Sessions end after this long.")
    ] = 8.0,
    incident_window: Annotated[
        float,
        typer.Option(
            "--incident-window",
            min=1.0,
            help="Seconds within which events on one device chain into one incident.",
        ),
    ] = 900.0,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="Plant time zone for times on the pages (IANA name, e.g. Europe/Berlin; "
            "default: the policy's timezone, else UTC).",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another Host name (or address, network, '*') browsers may reach the console "
            "by; localhost, loopback and --host are always allowed. Repeatable.",
        ),
    ] = None,
) -> None:
    """Serve the web console (assets, network map, alerts, incidents) and its REST API."""
    if (cert is None) != (key is None):
        raise fail("--cert and --key go together (a PEM certificate and its private key)")
    for p in (cert, key, policy, gateway):
        if p is not None and not p.is_file():
            raise fail(f"file not found: {p}")
    from otconduit.console.hosts import HostPolicy

    hosts = tuple(allowed_host or ())
    try:
        HostPolicy(host, hosts)
    except ValueError as exc:
        raise fail(f"--allowed-host: {exc}") from None
    from otconduit.console.app import build_console, create_app
    from otconduit.console.authdb import AuthError
    from otconduit.console.context import ConsoleSettings
    from otconduit.console.server import make_server
    from otconduit.console.timefmt import TimezoneError
    from otconduit.policy import PolicyError
    from otconduit.store import StoreError
    from otconduit.yamlconf import ConfigError

    settings = ConsoleSettings(
        db=db,
        auth_db=_auth_path(db, auth_db),
        host=host,
        port=port,
        cert=cert,
        key=key,
        policy=policy,
        session_hours=session_hours,
        incident_window=incident_window,
        historian=historian,
        gateway=gateway,
        allowed_hosts=hosts,
        timezone=timezone,
    )
    try:
        ctx = build_console(settings)
    except (StoreError, AuthError, PolicyError, ConfigError, TimezoneError) as exc:
        raise fail(str(exc)) from None
    if not ctx.auth.users():
        from otconduit.store.backend import parse, redact

        shown = redact(parse(db)[1])  # a URL as typed, its password hidden
        err.print(
            f"[yellow]warning:[/] no console users yet: add one with "
            f"`conduit user add NAME --role admin --db {escape(shown)}`",
            highlight=False,
        )
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        err.print(
            f"[yellow]warning:[/] listening on {escape(host)}, not loopback: anyone who can "
            "reach it gets the login page"
            + ("" if cert else ", over plain HTTP (use --cert/--key)"),
            highlight=False,
        )
    scheme = "https" if cert else "http"
    err.print(
        f"Conduit console on {scheme}://{host}:{port}/ (Ctrl-C stops)",
        highlight=False,
        markup=False,
    )
    app = create_app(settings, console=ctx)
    make_server(app, ctx, host=host, port=port, cert=cert, key=key).run()


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (no spaces).")],
    role: Annotated[
        str, typer.Option("--role", help="viewer (read), analyst (ack/close alerts) or admin.")
    ] = "viewer",
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    update: Annotated[
        bool, typer.Option("--update", help="Change an existing user's role and password.")
    ] = False,
    db: DbOpt = DEFAULT_DB,
    auth_db: AuthDbOpt = None,
) -> None:
    """Create a console user; the password is asked for (or read with --password-stdin)."""
    from otconduit.console.authdb import ROLES, AuthDB, AuthError
    from otconduit.console.passwords import PASSWORD_MIN

    if role not in ROLES:
        raise fail(f"unknown role {role!r}: use {', '.join(ROLES)}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(
            f"Password for {name} (at least {PASSWORD_MIN} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    path = _auth_path(db, auth_db)
    try:
        auth = AuthDB(path)
        try:
            user = auth.add_user(name, role, password, replace=update)
            auth.audit(None, "user.add" if not update else "user.update", f"user:{user.name}",
                       detail={"role": role, "via": "cli"})  # fmt: skip
        finally:
            auth.close()
    except AuthError as exc:
        raise fail(str(exc)) from None
    _out.print(
        f"{'updated' if update else 'added'} {user.name} ({user.role}) in {path}", markup=False
    )


@user_app.command("list")
def user_list(db: DbOpt = DEFAULT_DB, auth_db: AuthDbOpt = None) -> None:
    """List console users and their roles."""
    from otconduit.cli.output import Format, emit
    from otconduit.console.authdb import AuthDB, AuthError

    try:
        auth = AuthDB(_auth_path(db, auth_db))
        try:
            rows = auth.users()
        finally:
            auth.close()
    except AuthError as exc:
        raise fail(str(exc)) from None
    emit(rows, Format.table, columns=["name", "role", "disabled", "created_at"], title="Users")
