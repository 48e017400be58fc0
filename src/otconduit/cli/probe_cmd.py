"""`conduit probe`: safe active identification, opt-in. A thin wrapper over
:mod:`otconduit.probe`: resolve the targets against the allow-list, print the plan
(``--dry-run``: and stop), run the dialogues one at a time, store what was learnt."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from otconduit.cli.options import DbOpt
from otconduit.cli.output import Format, emit, err, fail, make_console
from otconduit.cli.risk_cmd import load_policy_or_fail
from otconduit.store import Store, StoreError

_out = make_console()
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
DEFAULT_DB = Path("conduit.db")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*$")
MAX_RATE = 100.0  # requests per second: a probe is not a scanner
COLUMNS = ["ip", "name", "protocol", "port", "status", "requests", "detail", "identity"]


def _rate(text: str) -> float:
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise fail(f"--rate {text!r}: give requests per second, e.g. 5/s or 0.5")
    value = float(m.group(1))
    if value > MAX_RATE:
        raise fail(f"--rate {text}: at most {MAX_RATE:g}/s")
    return value


def _protocols(values: list[str] | None) -> list[str]:
    from otconduit.probe import PROBES, protocol_name

    if not values:
        return list(PROBES)
    out: list[str] = []
    for v in values:
        for part in v.split(","):
            name = protocol_name(part)
            if name is None:
                raise fail(f"--protocol {part!r}: use one of {', '.join(PROBES)}")
            if name not in out:
                out.append(name)
    return out


def _ports(values: list[str] | None, protocols: list[str]) -> dict[str, int]:
    from otconduit.probe import protocol_name

    out: dict[str, int] = {}
    for v in values or []:
        name, _, port = v.partition("=")
        proto = protocol_name(name)
        if proto is None or not port.isdigit() or not 0 < int(port) < 65536:
            raise fail(f"--port {v!r}: give PROTOCOL=PORT, e.g. modbus=5020")
        if proto not in protocols:
            raise fail(f"--port {v}: {proto} is not probed in this run")
        out[proto] = int(port)
    return out


def probe(
    targets: Annotated[
        list[str],
        typer.Argument(help="IP addresses, CIDR networks or host names the policy names."),
    ],
    db: DbOpt = DEFAULT_DB,
    fmt: FmtOpt = Format.table,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Only hosts of zones marked 'probe: true' are probed."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Also allow this CIDR (needed without a policy)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print every request (hex) and send nothing."),
    ] = False,
    rate: Annotated[
        str, typer.Option("--rate", help="Requests per second over the whole run, e.g. 5/s.")
    ] = "5/s",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for a connection or answer.")
    ] = 3.0,
    protocol: Annotated[
        list[str] | None,
        typer.Option(
            "--protocol",
            help="modbus, s7comm, enip, bacnet, opcua (repeat or comma-separate; default all).",
        ),
    ] = None,
    port: Annotated[
        list[str] | None,
        typer.Option("--port", help="PROTOCOL=PORT instead of the well-known port."),
    ] = None,
    modbus_unit: Annotated[
        int, typer.Option("--modbus-unit", help="Modbus unit id to ask (1-255).")
    ] = 255,
) -> None:
    """Ask devices who they are: one read-only identity request per device and protocol."""
    from otconduit.probe.targets import TargetError, resolve

    pol = load_policy_or_fail(policy)
    per_second = _rate(rate)
    if not 0 < timeout <= 60:
        raise fail(f"--timeout {timeout:g}: between 0 and 60 seconds")
    if not 1 <= modbus_unit <= 255:
        raise fail(f"--modbus-unit {modbus_unit}: 1-255 (0 is broadcast)")
    protos = _protocols(protocol)
    ports = _ports(port, protos)
    try:
        found = resolve(targets, pol, allow or [])
    except TargetError as exc:
        raise fail(str(exc)) from None
    if dry_run:
        _print_plan(found, protos, ports, modbus_unit, fmt)
        return
    _run(found, protos, ports, modbus_unit, per_second, timeout, db, fmt)


def _print_plan(
    found: list[Any], protos: list[str], ports: dict[str, int], unit: int, fmt: Format
) -> None:
    from otconduit.probe import dialogue

    rows: list[dict[str, Any]] = []
    for t in found:
        for p in protos:
            d = dialogue(p, t.ip, ports.get(p), unit)
            for i, m in enumerate(d.plan(), start=1):
                rows.append(
                    {
                        "ip": t.ip,
                        "name": t.name,
                        "allowed_by": t.allowed_by,
                        "protocol": p,
                        "transport": d.transport,
                        "port": d.port,
                        "step": i,
                        "description": m.description,
                        "hex": m.data.hex(),
                        "bytes": len(m.data),
                        "note": m.note,
                    }
                )
    if fmt is not Format.table:
        emit(rows, fmt, columns=list(rows[0]) if rows else [], console=_out)
        return
    for t in found:
        who = f" ({t.name})" if t.name else ""
        _out.print(f"{t.ip}{who}: allowed by {t.allowed_by}", highlight=False, markup=False)
        for r in (r for r in rows if r["ip"] == t.ip):
            _out.print(
                f"  {r['protocol']} {r['transport']}/{r['port']} #{r['step']}: "
                f"{r['description']} ({r['bytes']} bytes)",
                highlight=False,
                markup=False,
            )
            _out.print(f"    {r['hex']}", highlight=False, markup=False, soft_wrap=True)
            if r["note"]:
                _out.print(f"    ({r['note']})", highlight=False, markup=False)
    err.print("dry run: nothing was sent", highlight=False)


def _run(
    found: list[Any],
    protos: list[str],
    ports: dict[str, int],
    unit: int,
    per_second: float,
    timeout: float,
    db: Path,
    fmt: Format,
) -> None:
    from otconduit.probe import dialogue
    from otconduit.probe.base import ANSWERED, IDENTIFIED, REFUSED
    from otconduit.probe.runner import RateLimiter, run
    from otconduit.store.probes import record

    try:
        store = Store(db, readonly=False)
    except StoreError as exc:
        raise fail(str(exc)) from None
    limiter = RateLimiter(per_second)
    rows: list[dict[str, Any]] = []
    with store:
        for t in found:
            for p in protos:
                for res in run(dialogue(p, t.ip, ports.get(p), unit), timeout, limiter):
                    if res.status in (IDENTIFIED, ANSWERED, REFUSED):
                        record(store, res.ip, res.protocol, res.port, res.claims, time.time_ns())
                    rows.append(
                        {
                            "ip": res.ip,
                            "name": t.name,
                            "protocol": res.protocol,
                            "port": res.port,
                            "transport": res.transport,
                            "status": res.status,
                            "requests": res.requests,
                            "detail": res.detail,
                            "identity": {a: v for a, v in res.claims},
                            "seconds": res.seconds,
                        }
                    )
    emit(rows, fmt, columns=COLUMNS, title="Probe", console=_out)
    if not any(r["status"] == IDENTIFIED for r in rows) and fmt is Format.table:
        err.print("no device stated an identity", highlight=False)
