"""`conduit sense` (the sensor) and `conduit sensor status`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from otconduit.cli.hub_cmd import SiteOpt, UplinkOpt, uplink_options
from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.cli.process_opts import HistorianOpt, LiveAnnotation, load_process
from otconduit.store import Store, StoreError
from otconduit.store.backend import database_errors, display

sensor_app = typer.Typer(help="The sensor's health.", no_args_is_help=True)
out = make_console()


STATUS_KEYS = (
    "state", "interface", "started_at", "packets", "bytes", "drops_kernel", "drops_capture",
    "lag_s", "ring_dir", "ring_bytes", "oldest_packet", "files_done",
)  # fmt: skip


def _syslog(text: str | None, tcp: bool) -> tuple[str, int, str] | None:
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise fail(f"--syslog {text!r} must be HOST:PORT, e.g. 127.0.0.1:514")
    return (host.strip("[]"), int(port), "tcp" if tcp else "udp")


def sense(
    interface: Annotated[
        str | None, typer.Option("--interface", "-i", help="Capture on this interface.")
    ] = None,
    follow: Annotated[
        Path | None,
        typer.Option("--follow", help="Follow a ring folder another tool writes instead."),
    ] = None,
    bpf: Annotated[str | None, typer.Option("--filter", help="Capture filter (BPF).")] = None,
    ring: Annotated[
        Path | None, typer.Option("--ring", help="Ring folder (default: DB path + .ring).")
    ] = None,
    ring_size: Annotated[
        int, typer.Option("--ring-size", help="Ring size in MB (all files).", min=8)
    ] = 1024,
    ring_files: Annotated[
        int, typer.Option("--ring-files", help="Files in the ring.", min=2, max=100000)
    ] = 16,
    db: DbOpt = Path("conduit.db"),
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Check traffic against this policy.")
    ] = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="Detection rules file.")] = None,
    gateway: Annotated[
        Path | None,
        typer.Option(
            "--gateway",
            help="Gateway config: its device names label assets, and alerts about writes "
            "say which tags they changed.",
        ),
    ] = None,
    historian: HistorianOpt = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.", min=0)
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="dumpcap (default) or tcpdump.")
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", help="Connections kept open at most.", min=1000),
    ] = 50_000,
    syslog: Annotated[
        str | None, typer.Option("--syslog", help="Send alerts to this syslog HOST:PORT.")
    ] = None,
    tcp: Annotated[bool, typer.Option("--tcp", help="Syslog over TCP (default UDP).")] = False,
    export_format: Annotated[
        str, typer.Option("--export-format", help="jsonl or cef (SIEM export).")
    ] = "jsonl",
    export_file: Annotated[
        Path | None, typer.Option("--export-file", help="Append alerts to this file (JSONL/CEF).")
    ] = None,
    uplink: UplinkOpt = None,
    site: SiteOpt = None,
) -> None:
    """Watch a mirror port (or a ring of capture files) continuously: analyse, detect,
    alert. Stops cleanly on Ctrl-C or SIGTERM; a restart resumes where it stopped."""
    from otconduit.cli.detect_cmd import load_policy_opt, load_rules
    from otconduit.sensor.engine import CaptureEngineError, find_tool
    from otconduit.sensor.run import SenseOptions, Sensor, SensorError, check_ring, ring_folder

    if (interface is None) == (follow is None):
        raise fail("give exactly one of --interface IFACE or --follow DIR")
    if engine is not None and engine not in ("dumpcap", "tcpdump"):
        raise fail(f"unknown capture engine {engine!r}: use dumpcap or tcpdump")
    if export_format not in ("jsonl", "cef"):
        raise fail(f"unknown export format {export_format!r}: use jsonl or cef")
    up_opts = uplink_options(uplink, site, db)
    if interface is not None:
        if not Path("/sys/class/net", interface).exists() and interface != "any":
            import os

            ifaces = sorted(os.listdir("/sys/class/net")) if Path("/sys/class/net").is_dir() else []
            raise fail(f"no interface named {interface!r}: this host has {', '.join(ifaces)}")
        try:
            find_tool(engine)
        except CaptureEngineError as exc:
            raise fail(str(exc)) from None
    names: list[tuple[str, str]] = []
    process = load_process(gateway, historian)
    if gateway is not None:
        from otconduit.gateway.config import load_gateway
        from otconduit.yamlconf import ConfigError

        try:
            gw = load_gateway(gateway)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        names = [(d.host, d.name) for d in gw.devices if d.host]
    load_rules(rules)
    load_policy_opt(policy)
    opts = SenseOptions(
        db=db, interface=interface, follow=follow, bpf=bpf, ring_dir=ring,
        ring_size_mb=ring_size, ring_files=ring_files, duration=duration, tool=engine,
        rules=rules, policy=policy, syslog=_syslog(syslog, tcp), export_format=export_format,
        export_file=export_file, names=names, max_connections=max_connections,
        on_alerts=LiveAnnotation(process) if process is not None else None,
    )  # fmt: skip
    try:
        check_ring(ring_folder(opts), create=follow is None)
    except SensorError as exc:
        raise fail(str(exc)) from None
    try:
        store = Store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    up = None
    try:
        sensor = Sensor(store, opts)
        where = interface or str(follow)

        def started(s: Sensor) -> None:
            err.print(
                f"sensing {where} (ring {s.folder}) into {display(db)}; Ctrl-C stops",
                highlight=False,
                markup=False,
            )

        sensor.on_start = started
        if up_opts is not None:
            from otconduit.uplink.publisher import Uplink

            up = Uplink(up_opts)
            up.start()
        h = sensor.run()
    except SensorError as exc:
        raise fail(str(exc)) from None
    except StoreError as exc:
        raise fail(str(exc)) from None
    except database_errors() as exc:  # disk full, locked too long, server gone
        raise fail(f"database {display(db)}: {exc}; what was stored before it is intact") from None
    finally:
        if up is not None:
            up.stop()
        store.close()
        if process is not None:
            process.close()
    if up is not None and up.error:
        err.print(f"warning: uplink stopped early: {up.error}", highlight=False, markup=False)
    err.print(
        f"stopped: {h.packets} packets, {h.alerts_raised} alerts raised, "
        f"{h.drops_kernel + h.drops_capture} dropped",
        highlight=False,
        markup=False,
    )


@sensor_app.command("status")
def status(
    db: DbOpt = Path("conduit.db"),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """Each sensor's health: packets, drops, lag, ring."""
    from otconduit.store.backend import store_exists
    from otconduit.store.sensing import sensor_rows

    if not store_exists(db):
        raise fail(f"no database at {db}: start a sensor with `conduit sense --db {db}`")
    try:
        store = Store(db, readonly=True)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        rows = [_status_row(r) for r in sensor_rows(store)]
    finally:
        store.close()
    if not rows:
        raise fail(f"no sensor has run on {display(db)}: start one with `conduit sense`", 1)
    if fmt is Format.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return
    emit(rows, fmt, columns=["name", *STATUS_KEYS], title="Sensors", console=out)


def _status_row(r: dict[str, Any]) -> dict[str, Any]:
    h = r["health"]
    row: dict[str, Any] = {"name": r["name"]}
    for k in STATUS_KEYS:
        row[k] = h.get(k)
    row["state"] = r["state"]
    row["interface"] = r["interface"]
    row["ring_dir"] = r["ring_dir"]
    row["updated_at"] = r["updated_at"]
    for k in (
        "engine",
        "engine_restarts",
        "engine_events",
        "files_lost",
        "open_connections",
        "evicted_connections",
        "alerts_raised",
        "evidence_packets",
        "problems",
        "error",
    ):
        if k in h:
            row[k] = h[k]
    return row
