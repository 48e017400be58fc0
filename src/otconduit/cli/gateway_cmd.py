"""`conduit gateway run|status|check`: the one-way gateway from the command line."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from otconduit.cli.output import Format, emit, err, fail, make_console

_out = make_console()

gateway_app = typer.Typer(
    help="One-way gateway: read plant tags (Modbus, OPC UA, S7) and deliver them to IT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Gateway YAML file.")]
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def load(path: Path) -> Any:
    from otconduit.gateway.config import load_gateway
    from otconduit.yamlconf import ConfigError

    try:
        return load_gateway(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def build_sinks(cfg: Any) -> list[Any]:
    """The sinks the config asks for (each imported only when used)."""
    from otconduit.gateway.sinks.factory import sinks_for

    return sinks_for(cfg)


@gateway_app.command("run")
def run(
    config: ConfigOpt,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Collect but deliver nowhere (print counts).")
    ] = False,
) -> None:
    """Run the gateway until Ctrl-C (or --duration)."""
    from otconduit.gateway.runtime import Gateway, MemorySink

    cfg = load(config)
    sinks = [MemorySink()] if dry_run else build_sinks(cfg)
    gw = Gateway(cfg, sinks)
    err.print(
        f"gateway {cfg.name}: {len(cfg.devices)} devices, "
        f"{sum(len(d.tags) for d in cfg.devices)} tags -> "
        + (", ".join(s.name for s in sinks) or "no sinks"),
        highlight=False,
        markup=False,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await gw.run(stop, duration)

    asyncio.run(main())
    st = gw.status()
    err.print(
        f"stopped: {st['samples_dispatched']} samples delivered; "
        + ", ".join(f"{d['device']} {d['state']}" for d in st["devices"]),
        highlight=False,
        markup=False,
    )


@gateway_app.command("status")
def status(
    config: ConfigOpt,
    fmt: FmtOpt = Format.table,
) -> None:
    """Per-device and per-sink status of the running gateway (from its status file)."""
    cfg = load(config)
    if cfg.status_file is None:
        raise fail(f"{config} sets no status_file: add `status_file: gateway-status.json`")
    path = Path(cfg.status_file)
    if not path.exists():
        raise fail(f"no status at {path}: is the gateway running (`conduit gateway run`)?")
    data = json.loads(path.read_text())
    age = time.time() - float(data.get("updated", 0))
    rows = [
        {
            "device": d.get("device"),
            "protocol": d.get("protocol"),
            "state": d.get("state"),
            "requests": d.get("requests"),
            "errors": (d.get("timeouts") or 0) + (d.get("exceptions") or 0),
            "samples": d.get("samples"),
            "last_error": d.get("last_error"),
            **{k: v for k, v in d.items() if k not in ("device", "protocol", "state")},
        }
        for d in data.get("devices", [])
    ]
    if fmt is Format.json:
        print(json.dumps(data, indent=1, default=str))
        return
    emit(
        rows,
        fmt,
        columns=["device", "protocol", "state", "requests", "errors", "samples", "last_error"],
        title=f"Gateway {data.get('gateway')} (pid {data.get('pid')}, updated {age:.0f} s ago)",
        console=_out,
    )
    sinks = [
        {
            "sink": s.get("sink"),
            "status": ", ".join(f"{k}={v}" for k, v in s.items() if k != "sink"),
        }
        for s in data.get("sinks", [])
    ]
    emit(sinks, fmt, columns=["sink", "status"], title="Sinks", console=_out)
    if age > 10:
        err.print(f"[yellow]warning:[/] status is {age:.0f} s old: the gateway may have stopped")


def _opcua_identity(d: Any) -> str:
    """Make sure the gateway has its OPC UA application certificate (generated on first
    use) and say what the server's administrator must trust (one unwrapped line, so the
    thumbprint can be copied whole)."""
    from otconduit.gateway.certs import CertificateError, ensure_certificate, thumbprint

    sec = d.security
    try:
        _, created = ensure_certificate(sec.certificate, sec.private_key, sec.application_uri)
    except CertificateError as exc:
        raise fail(f"devices {d.name}: {exc}") from None
    verb = "generated" if created else "uses"
    trusted = len(sec.trust)
    return (
        f"{d.name}: gateway {verb} certificate {sec.certificate} "
        f"({thumbprint(sec.certificate)}): the server must trust it; {trusted} server "
        "certificate(s) trusted here"
    )


@gateway_app.command("check")
def check(config: Annotated[Path, typer.Argument(help="Gateway YAML file.")]) -> None:
    """Validate a config, show the read plan (requests per poll cycle per device) and the
    OPC UA application certificate's thumbprint (generated if missing)."""
    from otconduit.gateway.planner import plan

    cfg = load(config)
    rows = []
    identities: list[str] = []
    for d in cfg.devices:
        if d.protocol in ("modbus", "modbus-rtu"):
            groups: dict[float, list[Any]] = {}
            for t in d.tags:
                groups.setdefault(t.interval or d.interval, []).append(t)
            reads = [r for tags in groups.values() for r in plan(d, tags)]
            detail = "; ".join(f"FC{r.function_code} {r.start}+{r.count}" for r in reads)
        elif d.protocol == "opcua" and d.security.policy != "None":
            identities.append(_opcua_identity(d))
            reads = []
            detail = f"{d.endpoint} {d.security.policy}/{d.security.mode} (certificate below)"
        else:
            reads, detail = [], d.endpoint or d.host or ""
        rows.append(
            {
                "device": d.name,
                "protocol": d.protocol,
                "tags": len(d.tags),
                "requests_per_cycle": len(reads) if reads else None,
                "plan": detail,
            }
        )
    emit(
        rows,
        Format.table,
        columns=["device", "protocol", "tags", "requests_per_cycle", "plan"],
        title=f"{config}: ok",
        console=_out,
    )
    for line in identities:
        _out.print(line, soft_wrap=True, highlight=False, markup=False, emoji=False)


HistOpt = Annotated[
    Path | None,
    typer.Option("--historian", help="Historian SQLite file (default: the config's)."),
]
ConfigOptional = Annotated[
    Path | None, typer.Option("--config", "-c", help="Gateway YAML file (for its historian).")
]


def _historian(config: Path | None, historian: Path | None) -> Any:
    from otconduit.gateway.historian import HistorianError, open_store

    target: Any
    if historian is not None:
        target = historian
    elif config is not None:
        cfg = load(config)
        target = cfg.sinks.postgres if cfg.sinks.historian is None else cfg.sinks.historian
        if target is None:
            raise fail(f"{config} has no historian sink")
    else:
        target = Path("gateway.db")
    if isinstance(target, Path) and not target.exists():
        raise fail(f"no historian at {target}: run `conduit gateway run` first or pass --historian")
    try:
        return open_store(target, readonly=True)
    except HistorianError as exc:
        raise fail(str(exc)) from None
