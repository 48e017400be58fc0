"""`conduit hub` (many sites into one database), `conduit sites` (their overview and
health), and the `--uplink/--site` options `sense` and `analyze` share."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.store import Store, StoreError
from otconduit.store.backend import (
    POSTGRESQL,
    TargetError,
    database_errors,
    display,
    parse,
    store_exists,
)

if TYPE_CHECKING:
    from otconduit.uplink.publisher import UplinkOptions

out = make_console()

UplinkOpt = Annotated[
    str | None,
    typer.Option(
        "--uplink",
        help="Publish what is learnt to a hub through this MQTT broker: "
        "mqtt[s]://[user@]host[:port][?ca=FILE&cert=FILE&key=FILE] "
        "(password: CONDUIT_MQTT_PASSWORD).",
    ),
]
SiteOpt = Annotated[
    str | None, typer.Option("--site", help="This site's name at the hub (with --uplink).")
]


def uplink_options(uplink: str | None, site: str | None, db: Path) -> UplinkOptions | None:
    """The uplink a command was asked for, or None; a wrong option fails in one line."""
    if uplink is None:
        if site is not None:
            raise fail("--site names this site at the hub: give --uplink too")
        return None
    from otconduit.gateway.config import Backoff
    from otconduit.uplink.envelope import SITE
    from otconduit.uplink.publisher import UplinkOptions
    from otconduit.uplink.url import BrokerUrlError, parse_broker

    if site is None:
        raise fail("--uplink needs --site NAME (how the hub tells this site from the others)")
    if not SITE.match(site):
        raise fail(f"--site {site!r}: letters, digits, '_', '.', '-' (at most 64)")
    try:
        mqtt = parse_broker(uplink, client_id=f"conduit-site-{site}")
    except BrokerUrlError as exc:
        raise fail(str(exc)) from None
    # back on the broker within seconds of its return (the gateway's default waits up to 15 s)
    mqtt = mqtt.model_copy(update={"reconnect": Backoff(initial=0.5, max=5.0)})
    try:
        on_server = parse(db)[0] == POSTGRESQL
    except TargetError as exc:
        raise fail(str(exc)) from None
    # the sink names its disk tier <base stem>.uplink.db: beside a SQLite file, or in the
    # working folder when the site's store is on a server
    buffer = Path(f"conduit-{site}.db") if on_server else db.with_name(f"{db.name}.db")
    return UplinkOptions(site=site, mqtt=mqtt, db=db, buffer_path=buffer)


def hub(
    broker: Annotated[
        str, typer.Option("--broker", help="mqtt[s]://[user@]host[:port][?ca=&cert=&key=]")
    ],
    db: Annotated[
        str,
        typer.Option(
            "--db", help="Hub database (SQLite file or postgresql:// URL).", envvar="CONDUIT_DB"
        ),
    ] = "hub.db",
    sites: Annotated[
        Path | None,
        typer.Option("--sites", help="YAML list of accepted sites; others are refused."),
    ] = None,
    max_skew: Annotated[
        float, typer.Option("--max-skew", help="Seconds a site's clock may run ahead.", min=1)
    ] = 300.0,
    client_id: Annotated[
        str, typer.Option("--client-id", help="Durable MQTT session id of this hub.")
    ] = "conduit-hub",
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.", min=0)
    ] = None,
) -> None:
    """Receive every site's uplink and write it to one database: applied once per
    message id, refused (and recorded) when malformed, oversized, from an unknown site or
    claiming another site. Stops on Ctrl-C or SIGTERM."""
    import threading

    from otconduit.hub.ingest import Ingest
    from otconduit.hub.sites import load_sites
    from otconduit.hub.subscriber import Hub, HubError
    from otconduit.uplink.url import BrokerUrlError, parse_broker
    from otconduit.yamlconf import ConfigError

    try:
        mqtt = parse_broker(broker, client_id=client_id)
    except BrokerUrlError as exc:
        raise fail(str(exc)) from None
    accepted = None
    if sites is not None:
        try:
            accepted = load_sites(sites).names
        except ConfigError as exc:
            raise fail(str(exc)) from None
    try:
        store = Store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    ingest = Ingest(store, accepted, max_skew_s=max_skew)
    h = Hub(mqtt, ingest, client_id=client_id)
    signal.signal(signal.SIGTERM, lambda *_: h.stop())
    h.on_subscribed = lambda: err.print(
        f"hub: subscribed as {client_id}; the broker keeps this "
        "session's messages from now on, also while the hub is stopped",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    timer = threading.Timer(duration, h.stop) if duration is not None else None
    if timer is not None:
        timer.start()
    err.print(
        f"hub: {display(broker)} -> {display(db)}; Ctrl-C stops", highlight=False, markup=False
    )
    db_errors: tuple[type[Exception], ...] = (StoreError, *database_errors())
    try:
        h.run()
    except KeyboardInterrupt:
        pass
    except HubError as exc:
        raise fail(str(exc)) from None
    except db_errors as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise fail(
            f"hub database {display(db)}: {first}; every message applied before it is intact "
            "(the one being applied was not acknowledged: the broker sends it again)"
        ) from None
    finally:
        if timer is not None:
            timer.cancel()
        store.close()
    c = ingest.counts
    err.print(
        f"stopped: {c['applied']} messages applied ({ingest.rows} rows), "
        f"{c['duplicate']} duplicates dropped, {c['refused']} refused",
        highlight=False,
        markup=False,
    )


SITE_COLUMNS = [
    "site", "last_message_at", "delay_ms", "messages", "duplicates", "missing", "refused",
    "backlog", "dropped", "drops", "assets", "conversations", "alerts_open", "operations",
    "violations",
]  # fmt: skip


def sites_cmd(
    db: Annotated[str, typer.Option("--db", help="Hub database.", envvar="CONDUIT_DB")] = "hub.db",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """Every site the hub has heard from: last message, delay, backlog, drops, refusals,
    and what it holds."""
    from otconduit.store import hub as hub_q

    try:
        exists = store_exists(db)
    except TargetError as exc:
        raise fail(str(exc)) from None
    if not exists:
        raise fail(f"no database at {db}: start `conduit hub --db {db}` first")
    try:
        store = Store(db, readonly=True)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        rows: list[dict[str, Any]] = hub_q.sites(store)
    finally:
        store.close()
    if not rows:
        raise fail(f"no site has sent anything to {db} yet", 1)
    if fmt is Format.json:
        print(json.dumps(rows, indent=2))
        return
    emit(rows, fmt, columns=SITE_COLUMNS, title="Sites", console=out)


def publish_uplink(opts: UplinkOptions) -> None:
    """Send what `analyze` stored to the hub; what the broker does not take within the
    drain time stays queued (on disk) for the next run. Never fails the analysis."""
    from otconduit.uplink.publisher import publish_once

    failures: tuple[type[Exception], ...] = (StoreError, OSError, *database_errors())
    try:
        st = publish_once(opts)
    except failures as exc:
        err.print(f"warning: uplink: {exc}", highlight=False, markup=False)
        return
    queued = int(st.get("queued_memory", 0)) + int(st.get("queued_disk", 0))
    note = f", {queued} queued for the next run ({st.get('last_error')})" if queued else ""
    err.print(
        f"uplink {opts.site}: {st.get('messages', 0)} messages sent{note}",
        highlight=False,
        markup=False,
    )
