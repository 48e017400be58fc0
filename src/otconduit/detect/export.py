"""SIEM export of alerts: JSON lines or ArcSight CEF, to a stream or to syslog (UDP/TCP).

Export is incremental per *sink* (a name the user picks, e.g. ``splunk-tcp``): the store
keeps, in ``export_cursors``, the highest alert ``change`` number delivered to that sink.
An alert goes out again whenever it changes (new findings merged in, status change),
because every change gives it a new, higher change number. The cursor moves only after
every line was handed over, so a receiver that is down loses nothing: the next run
resends. Delivery is therefore *at least once*; a SIEM deduplicates on ``externalId`` +
``cn1`` (CEF) or ``id`` + ``change`` (JSON).

The formatting functions are pure (no I/O); :class:`SyslogSender` is the only code that
touches the network and the only place socket errors become :class:`ExportError`.

References: ArcSight "Implementing ArcSight CEF" (rev. 25): header and extension
escaping, key dictionary. RFC 5424 §6 (syslog message format), RFC 5426 (UDP transport),
RFC 6587 §3.4.1 (octet counting over TCP).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, TextIO

from otconduit import __version__
from otconduit.detect.alerts import AlertFilter, list_alerts
from otconduit.store import exports
from otconduit.store.sqlite import Store, StoreError

Format = Literal["jsonl", "cef"]
Transport = Literal["udp", "tcp"]

# Conduit severity → CEF severity (0-10; the spec's bands: 0-3 low, 4-6 medium, 7-8 high,
# 9-10 very high) and → syslog severity (RFC 5424 §6.2.1 table 2).
CEF_SEVERITY = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
SYSLOG_SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}
SYSLOG_FACILITY = 20  # local4 (RFC 5424 §6.2.1 table 1)
APP_NAME = "conduit"
MAX_UDP_PAYLOAD = 65_507  # IPv4 UDP datagram limit; RFC 5426 only promises 480/2048 bytes


class ExportError(Exception):
    """The export could not be delivered; one line saying what, where and what to do.

    ``target`` names the destination (``tcp://host:port``, ``udp://host:port`` or
    ``output``). When this is raised, the sink's cursor has not moved.
    """

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.target = target


# -- formatting (pure) ----------------------------------------------------------------


def jsonl_line(alert: dict[str, Any]) -> str:
    """The alert as one compact JSON object (ASCII only, so any sink can take it)."""
    return json.dumps(alert, separators=(",", ":"), ensure_ascii=True, default=str)


_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def _cef_header(value: object) -> str:
    # Header fields: escape backslash and pipe; the spec has no escape for line breaks
    # there, so they (and other control characters) become spaces.
    text = _CONTROL.sub(" ", _NEWLINES.sub(" ", str(value)))
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value: object) -> str:
    # Extension values: escape backslash and '=', encode line breaks as \n (\r alone as
    # \r); pipes need no escape here. Other control characters become spaces: a syslog
    # receiver would otherwise rewrite them (rsyslog: #011) and the line is no longer
    # what we sent.
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    text = text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    return _CONTROL.sub(" ", text)


def _epoch_ms(iso: str | None) -> int | None:
    if not iso:
        return None
    dt = datetime.fromisoformat(iso)
    if dt.tzinfo is None:  # the store writes UTC
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _ip_keys(ip: str | None, v4_key: str, v6_key: str) -> list[tuple[str, str]]:
    # CEF's src/dst hold IPv4 addresses; IPv6 goes to the custom IPv6 slots that ArcSight
    # reserves for source (c6a2) and destination (c6a3).
    if not ip:
        return []
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return []
    if addr.version == 4:
        return [(v4_key, str(addr))]
    label = "Source IPv6 Address" if v6_key == "c6a2" else "Destination IPv6 Address"
    return [(v6_key, str(addr)), (f"{v6_key}Label", label)]


def cef_extension(alert: dict[str, Any]) -> list[tuple[str, str]]:
    """The CEF extension of an alert as ordered (key, raw value) pairs, before escaping."""
    pairs: list[tuple[str, object]] = [
        ("rt", _epoch_ms(alert.get("last_seen"))),
        ("start", _epoch_ms(alert.get("first_seen"))),
        ("end", _epoch_ms(alert.get("last_seen"))),
    ]
    pairs += _ip_keys(alert.get("src_ip"), "src", "c6a2")
    pairs += _ip_keys(alert.get("dst_ip"), "dst", "c6a3")
    # `app` is the application protocol (CEF's `proto` is the layer-4 one, which an alert
    # does not carry).
    pairs += [
        ("app", alert.get("protocol")),
        ("act", alert.get("operation")),
        ("cnt", alert.get("count")),
        ("msg", alert.get("summary")),
        ("externalId", alert.get("id")),
        ("cs1", ",".join(alert.get("techniques") or ())),
        ("cs1Label", "ATT&CK for ICS techniques"),
        ("cs2", alert.get("status")),
        ("cs2Label", "status"),
        ("cs3", alert.get("category")),
        ("cs3Label", "category"),
        ("cn1", alert.get("change")),
        ("cn1Label", "change"),
    ]
    return [(k, str(v)) for k, v in pairs if v is not None and v != ""]


def cef_line(alert: dict[str, Any], *, version: str = __version__) -> str:
    """One ArcSight CEF:0 line for an alert (no newline)."""
    severity = alert["severity"]
    if severity not in CEF_SEVERITY:
        raise ValueError(f"unknown alert severity {severity!r}")
    header = [
        "CEF:0",
        "Conduit",
        "Conduit",
        _cef_header(version),
        _cef_header(alert["rule"]),
        _cef_header(alert["title"]),
        str(CEF_SEVERITY[severity]),
    ]
    ext = " ".join(f"{k}={_cef_value(v)}" for k, v in cef_extension(alert))
    return "|".join(header) + "|" + ext


def _hostname(name: str) -> str:
    # RFC 5424 §6.2.4: 1*255 PRINTUSASCII, or the NILVALUE.
    clean = "".join(ch for ch in name if 33 <= ord(ch) <= 126)[:255]
    return clean or "-"


def syslog_message(body: str, *, severity: str, hostname: str, when: datetime) -> bytes:
    """An RFC 5424 message: ``<PRI>1 TIMESTAMP HOST conduit - - - BODY``, facility local4.

    The body is UTF-8 without the BOM that RFC 5424 §6.4 asks for: CEF receivers expect
    the message to start with ``CEF:`` and would keep the BOM as part of it.
    """
    if severity not in SYSLOG_SEVERITY:
        raise ValueError(f"unknown alert severity {severity!r}")
    if when.tzinfo is None:
        raise ValueError("syslog timestamp must be timezone-aware")
    pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY[severity]
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = f"<{pri}>1 {stamp} {_hostname(hostname)} {APP_NAME} - - - "
    return head.encode("ascii") + body.encode("utf-8")


# -- transport ----------------------------------------------------------------------------


class SyslogSender:
    """A syslog client over UDP (one datagram per message, RFC 5426) or TCP (RFC 6587
    octet counting: ``LEN SP MSG``, so a message may even contain a line break).

    Use as a context manager. Leaving the block normally closes TCP gracefully and waits
    (up to ``timeout``) for the receiver to close too, so a receiver that drops the
    connection with data unread is reported rather than silently losing lines. UDP cannot
    confirm delivery; a refusal already reported by the local stack (ICMP port
    unreachable) is.
    """

    def __init__(self, host: str, port: int, transport: Transport, *, timeout: float = 5.0):
        if transport not in ("udp", "tcp"):
            raise ValueError(f"syslog transport must be udp or tcp, not {transport!r}")
        self.host = host
        self.port = port
        self.transport: Transport = transport
        self.timeout = timeout
        self.target = (
            f"{transport}://[{host}]:{port}" if ":" in host else f"{transport}://{host}:{port}"
        )
        self._sock: socket.socket | None = None

    def _fail(self, doing: str, exc: OSError, advice: str) -> ExportError:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return ExportError(
            f"{doing} syslog receiver {self.target}: {reason}; {advice}", target=self.target
        )

    def open(self) -> None:
        kind = socket.SOCK_STREAM if self.transport == "tcp" else socket.SOCK_DGRAM
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=kind)
        except OSError as exc:
            raise self._fail("cannot resolve", exc, "check the host name") from exc
        last: OSError | None = None
        for family, socktype, proto, _, addr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(self.timeout)
                sock.connect(addr)  # UDP: fixes the peer so ICMP refusals are reported
            except OSError as exc:
                sock.close()
                last = exc
                continue
            self._sock = sock
            return
        assert last is not None
        raise self._fail(
            "cannot connect to",
            last,
            f"check that it is running and accepts {self.transport.upper()} there",
        ) from last

    def send(self, message: bytes) -> None:
        if self._sock is None:
            raise RuntimeError("SyslogSender is not open")
        try:
            if self.transport == "tcp":
                self._sock.sendall(b"%d " % len(message) + message)
            else:
                if len(message) > MAX_UDP_PAYLOAD:
                    raise ExportError(
                        f"a {len(message)}-byte message does not fit one UDP datagram to "
                        f"{self.target}; use TCP",
                        target=self.target,
                    )
                self._sock.send(message)
        except OSError as exc:
            raise self._fail(
                "sending to", exc, "check the receiver, then run the export again"
            ) from exc

    def close(self) -> None:
        """Finish cleanly; raises :class:`ExportError` if the receiver refused or dropped data."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if self.transport == "udp":
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:  # e.g. ECONNREFUSED from an ICMP port unreachable
                    raise OSError(err, os.strerror(err))
            else:
                sock.shutdown(socket.SHUT_WR)
                try:
                    while sock.recv(4096):  # syslog receivers send nothing; wait for EOF
                        pass
                except TimeoutError:
                    pass  # still open after `timeout`: the data was handed to TCP
        except OSError as exc:
            raise self._fail(
                "delivery not confirmed by", exc, "check the receiver, then run the export again"
            ) from exc
        finally:
            sock.close()

    def abort(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> SyslogSender:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# -- incremental export --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportReport:
    sink: str
    format: Format
    target: str  # "output" or "udp://host:port" / "tcp://host:port"
    sent: int  # alerts (lines / messages) delivered
    previous_change: int  # the sink's cursor before this run
    last_change: int  # the sink's cursor now
    full: bool


def cursor(store: Store, sink: str) -> int:
    """The highest alert change number already exported to ``sink`` (0: none yet)."""
    return exports.cursor(store, sink)


def _pending(store: Store, since: int) -> list[dict[str, Any]]:
    # One read transaction, so the alerts and their evidence come from one snapshot.
    with store.snapshot():
        return list_alerts(store, AlertFilter(since_change=since))


def _advance(store: Store, sink: str, change: int, sent: int, target: str) -> int:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        return exports.advance(store, sink, change, now)
    except StoreError as exc:
        raise ExportError(
            f"sent {sent} alerts to {target} but could not record it for sink {sink!r} ({exc}); "
            "the next run sends them again",
            target=target,
        ) from exc


def _write_lines(out: TextIO, lines: Iterable[str]) -> None:
    try:
        for line in lines:
            out.write(line + "\n")
        out.flush()
    except OSError as exc:
        raise ExportError(
            f"cannot write the export: {exc.strerror or exc}; check the output file or pipe",
            target="output",
        ) from exc


def export_alerts(
    store: Store,
    *,
    sink: str,
    fmt: Format,
    out: TextIO | None = None,
    syslog: tuple[str, int, str] | None = None,
    full: bool = False,
    version: str = __version__,
    hostname: str | None = None,
) -> ExportReport:
    """Send the alerts that changed since ``sink``'s last export (all of them if ``full``)
    to ``out`` (one line each) or to ``syslog=(host, port, 'udp'|'tcp')``, then move the
    sink's cursor. On :class:`ExportError` the cursor stays, so the next run resends."""
    if not sink:
        raise ValueError("an export sink needs a name")
    if fmt not in ("jsonl", "cef"):
        raise ValueError(f"export format must be jsonl or cef, not {fmt!r}")
    if (out is None) == (syslog is None):
        raise ValueError("export to exactly one of `out` or `syslog`")

    previous = cursor(store, sink)
    alerts = _pending(store, 0 if full else previous)
    lines = [jsonl_line(a) if fmt == "jsonl" else cef_line(a, version=version) for a in alerts]

    if out is not None:
        target = "output"
        _write_lines(out, lines)
    else:
        assert syslog is not None
        host, port, transport = syslog
        if transport not in ("udp", "tcp"):
            raise ValueError(f"syslog transport must be udp or tcp, not {transport!r}")
        sender = SyslogSender(host, port, "tcp" if transport == "tcp" else "udp")
        target = sender.target
        me = hostname if hostname is not None else socket.gethostname()
        # Connect even with nothing to send: a wrong address shows on the first run.
        with sender:
            for alert, line in zip(alerts, lines, strict=True):
                when = datetime.now(UTC)
                sender.send(
                    syslog_message(line, severity=alert["severity"], hostname=me, when=when)
                )

    top = max((int(a["change"]) for a in alerts), default=previous)
    last = _advance(store, sink, top, len(alerts), target) if alerts else previous
    return ExportReport(
        sink=sink,
        format=fmt,
        target=target,
        sent=len(alerts),
        previous_change=previous,
        last_change=last,
        full=full,
    )
