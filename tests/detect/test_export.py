"""SIEM export: CEF/JSON formatting, RFC 5424 framing, incremental cursors, and delivery
to a real rsyslog daemon over UDP and TCP on loopback.

The CEF lines are checked with a small independent parser written from the ArcSight
spec's escaping rules, not by comparing against our own output.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otconduit.detect import alerts
from otconduit.detect.export import (
    ExportError,
    SyslogSender,
    cef_line,
    cursor,
    export_alerts,
    jsonl_line,
    syslog_message,
)
from otconduit.detect.findings import Finding
from otconduit.detect.rules import Severity
from otconduit.store.sqlite import Store

T0 = 1_700_000_000_123_456_789  # ns; 2023-11-14T22:13:20.123456789Z
T0_MS = 1_700_000_000_123

# What rsyslog calls the syslog severities we map Conduit's onto (RFC 5424 table 2).
RSYSLOG_SEVERITY = {
    "info": "info",
    "low": "notice",
    "medium": "warning",
    "high": "err",
    "critical": "crit",
}

ALERT: dict[str, Any] = {
    "id": 7,
    "ts": "2023-11-14T22:13:20.123456Z",
    "first_seen": "2023-11-14T22:13:20.123456Z",
    "last_seen": "2023-11-14T22:13:22.623456Z",
    "count": 3,
    "rule": "controller-stop",
    "title": "Controller stop command",
    "category": "controller-state",
    "severity": "high",
    "techniques": ["T0881", "T0858"],
    "src_ip": "10.0.0.1",
    "dst_ip": "10.0.0.2",
    "protocol": "s7comm",
    "operation": "PLC Stop",
    "summary": "Controller stop command (s7comm PLC Stop) 10.0.0.1 -> 10.0.0.2",
    "context": {"zone": "cell-1"},
    "status": "open",
    "evidence": [{"capture": "/captures/a.pcap", "frames": [4, 5]}],
    "updated_at": "2024-01-01T00:00:00+00:00",
    "change": 12,
}


# -- an independent CEF reader ----------------------------------------------------------


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """Split a CEF line into its 7 header fields and its extension, undoing the escapes."""
    header: list[str] = []
    cur: list[str] = []
    i = 0
    while len(header) < 7:
        ch = line[i]
        if ch == "\\":
            cur.append(line[i + 1])
            i += 2
        elif ch == "|":
            header.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(ch)
            i += 1
    # Every unescaped '=' ends a key: the key is the word just before it, and what
    # precedes that word (minus one space) is the previous key's value.
    ext: dict[str, str] = {}
    key: str | None = None
    buf: list[str] = []
    rest = line[i:]
    j = 0
    while j < len(rest):
        ch = rest[j]
        if ch == "\\":
            nxt = rest[j + 1]
            buf.append({"n": "\n", "r": "\r"}.get(nxt, nxt))
            j += 2
        elif ch == "=":
            text = "".join(buf)
            if key is None:
                key = text
            else:
                value, _, newkey = text.rpartition(" ")
                ext[key] = value
                key = newkey
            buf = []
            j += 1
        else:
            buf.append(ch)
            j += 1
    if key is not None:
        ext[key] = "".join(buf)
    return header, ext


# -- formatting ----------------------------------------------------------------------------


def test_cef_maps_alert_fields_to_standard_keys() -> None:
    header, ext = parse_cef(cef_line(ALERT, version="1.2.3"))
    assert header == [
        "CEF:0",
        "Conduit",
        "Conduit",
        "1.2.3",
        "controller-stop",
        "Controller stop command",
        "8",
    ]
    assert ext == {
        "rt": str(T0_MS + 2500),
        "start": str(T0_MS),
        "end": str(T0_MS + 2500),
        "src": "10.0.0.1",
        "dst": "10.0.0.2",
        "app": "s7comm",
        "act": "PLC Stop",
        "cnt": "3",
        "msg": ALERT["summary"],
        "externalId": "7",
        "cs1": "T0881,T0858",
        "cs1Label": "ATT&CK for ICS techniques",
        "cs2": "open",
        "cs2Label": "status",
        "cs3": "controller-state",
        "cs3Label": "category",
        "cn1": "12",
        "cn1Label": "change",
    }


@pytest.mark.parametrize(
    ("severity", "cef"), [("info", 1), ("low", 3), ("medium", 5), ("high", 8), ("critical", 10)]
)
def test_cef_severity_scale(severity: str, cef: int) -> None:
    header, _ = parse_cef(cef_line({**ALERT, "severity": severity}, version="1"))
    assert header[6] == str(cef)


def test_cef_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        cef_line({**ALERT, "severity": "urgent"}, version="1")


def test_cef_escaping_exact() -> None:
    alert = {
        **ALERT,
        "rule": "r|u\\le",
        "title": "stop | now\nplease",
        "operation": "set a=b | c\\d",
        "summary": "line1\nline2\r\nline3\rend\ttab",
    }
    line = cef_line(alert, version="9|9")
    assert line.startswith("CEF:0|Conduit|Conduit|9\\|9|r\\|u\\\\le|stop \\| now please|8|")
    assert "act=set a\\=b | c\\\\d " in line  # pipes are not escaped in the extension
    assert "msg=line1\\nline2\\nline3\\rend tab " in line
    assert "\n" not in line and "\r" not in line and "\t" not in line


def test_cef_missing_fields_are_left_out_and_ipv6_uses_custom_slots() -> None:
    alert = {**ALERT, "src_ip": "fd00::1", "dst_ip": None, "operation": None, "techniques": []}
    _, ext = parse_cef(cef_line(alert, version="1"))
    assert ext["c6a2"] == "fd00::1" and ext["c6a2Label"] == "Source IPv6 Address"
    assert not {"src", "dst", "c6a3", "act", "cs1"} & ext.keys()
    assert ext["cs1Label"] == "ATT&CK for ICS techniques"


# Text that survives CEF unchanged: anything but control characters (those become spaces)
# other than \n, which is escaped.
_cef_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\t\x0b\x0c").filter(
        lambda c: c == "\n" or (ord(c) >= 32 and ord(c) != 0x7F)
    ),
    max_size=40,
)


@given(operation=_cef_text, summary=_cef_text, status=_cef_text)
def test_cef_extension_values_round_trip(operation: str, summary: str, status: str) -> None:
    alert = {**ALERT, "operation": operation, "summary": summary, "status": status}
    _, ext = parse_cef(cef_line(alert, version="1"))
    assert ext.get("act", "") == operation
    assert ext.get("msg", "") == summary
    assert ext.get("cs2", "") == status
    assert ext["externalId"] == "7"  # what follows is still found


_one_line = _cef_text.filter(lambda s: "\n" not in s)


@given(title=_one_line, rule=_one_line)
def test_cef_header_fields_round_trip(title: str, rule: str) -> None:
    header, ext = parse_cef(cef_line({**ALERT, "title": title, "rule": rule}, version="1"))
    assert header[4:6] == [rule, title]
    assert ext["cn1"] == "12"


def test_jsonl_line_is_one_compact_json_object() -> None:
    alert = {**ALERT, "summary": "Förderband\nstop"}
    line = jsonl_line(alert)
    assert "\n" not in line and ": " not in line and line.isascii()
    assert json.loads(line) == alert


def test_syslog_message_rfc5424_header() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    msg = syslog_message("CEF:0|Förder", severity="critical", hostname="plant-1", when=when)
    assert msg == "<162>1 2024-05-06T05:08:09.123456Z plant-1 conduit - - - CEF:0|Förder".encode()


@pytest.mark.parametrize(
    ("severity", "pri"),
    [("info", 166), ("low", 165), ("medium", 164), ("high", 163), ("critical", 162)],
)
def test_syslog_pri_is_local4_with_mapped_severity(severity: str, pri: int) -> None:
    msg = syslog_message("x", severity=severity, hostname="h", when=datetime.now(UTC))
    assert msg.startswith(f"<{pri}>1 ".encode())


def test_syslog_hostname_is_sanitised_and_naive_time_refused() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    msg = syslog_message("x", severity="low", hostname="my höst\n", when=when)
    assert msg.split(b" ")[2:4] == [b"myhst", b"conduit"]  # RFC 5424: PRINTUSASCII only
    assert b"Z - conduit " in syslog_message("x", severity="low", hostname=" ", when=when)
    with pytest.raises(ValueError, match="timezone"):
        syslog_message("x", severity="low", hostname="h", when=datetime(2024, 1, 1))


# -- incremental export ----------------------------------------------------------------


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as s:
        yield s


def _finding(src: str = "10.0.0.1", **kw: Any) -> Finding:
    base: dict[str, Any] = {
        "rule": "controller-stop",
        "first_ts": T0,
        "last_ts": T0 + 2_500_000_000,
        "src_ip": src,
        "dst_ip": "10.0.0.2",
        "protocol": "s7comm",
        "operation": "PLC Stop",
    }
    return Finding(**{**base, **kw})


def _detect(store: Store, capture: str, findings: list[Finding]) -> None:
    sha = hashlib.sha256(capture.encode()).hexdigest()
    alerts.store_findings(store, sha, f"/captures/{capture}.pcap", findings, 60.0)


def _export(store: Store, sink: str = "siem", **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    buf = io.StringIO()
    rep = export_alerts(store, sink=sink, fmt="jsonl", out=buf, **kw)
    text = buf.getvalue()
    assert text == "" or text.endswith("\n")
    return rep, [json.loads(x) for x in text.splitlines()]


def test_export_is_incremental_per_sink(store: Store) -> None:
    _detect(store, "a", [_finding("10.0.0.1"), _finding("10.0.0.3")])
    everything = alerts.list_alerts(store)
    top = max(a["change"] for a in everything)

    rep, got = _export(store)
    assert got == alerts.list_alerts(store, alerts.AlertFilter(since_change=0))
    assert len(got) == rep.sent == 2
    assert (rep.previous_change, rep.last_change) == (0, top) == (0, cursor(store, "siem"))

    rep, got = _export(store)
    assert got == [] and rep.sent == 0 and rep.last_change == top

    # A status change makes that alert (and only it) go again, with its new state.
    first = everything[0]["id"]
    alerts.set_status(store, first, "acknowledged", "alice", "seen on HMI")
    rep, got = _export(store)
    assert [(a["id"], a["status"]) for a in got] == [(first, "acknowledged")]
    assert rep.last_change == got[0]["change"] > top

    # New findings merged into an alert make it go again with the new count.
    _detect(store, "b", [_finding("10.0.0.3", first_ts=T0 + 10**10, last_ts=T0 + 10**10)])
    rep, got = _export(store)
    assert [(a["src_ip"], a["count"]) for a in got] == [("10.0.0.3", 2)]
    assert _export(store)[0].sent == 0

    # `full` resends everything, without moving the cursor back; other sinks are independent.
    before = cursor(store, "siem")
    rep, got = _export(store, full=True)
    assert sorted(a["id"] for a in got) == sorted(a["id"] for a in everything)
    assert rep.full and rep.last_change == before == cursor(store, "siem")
    assert _export(store, sink="other")[0].sent == 2


def test_cef_export_of_stored_alert(store: Store) -> None:
    _detect(store, "a", [_finding(severity=Severity.CRITICAL, count=4)])
    (alert,) = alerts.list_alerts(store)
    buf = io.StringIO()
    export_alerts(store, sink="s", fmt="cef", out=buf, version="0.9")
    header, ext = parse_cef(buf.getvalue().rstrip("\n"))
    assert header[3:] == ["0.9", "controller-stop", "Controller stop command", "10"]
    assert ext["externalId"] == str(alert["id"]) and ext["cn1"] == str(alert["change"])
    assert (ext["start"], ext["end"], ext["rt"]) == (str(T0_MS), str(T0_MS + 2500), ext["end"])
    assert ext["cnt"] == "4" and ext["src"] == "10.0.0.1" and ext["act"] == "PLC Stop"
    assert ext["cs1"].split(",") == alert["techniques"] and "T0881" in ext["cs1"]


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_receiver_down_keeps_cursor(store: Store, transport: str) -> None:
    if transport == "udp" and sys.platform != "linux":
        pytest.skip("relies on Linux reporting ICMP port-unreachable on loopback at once")
    _detect(store, "a", [_finding("10.0.0.1"), _finding("10.0.0.3")])
    port = _free_port(socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM)
    with pytest.raises(ExportError, match=rf"{transport}://127\.0\.0\.1:{port}: Connection ref"):
        export_alerts(store, sink="siem", fmt="cef", syslog=("127.0.0.1", port, transport))
    assert cursor(store, "siem") == 0
    assert _export(store)[0].sent == 2  # the next run sends what the failed one could not


def test_export_arguments_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        export_alerts(store, sink="s", fmt="cef")
    with pytest.raises(ValueError, match="format"):
        export_alerts(store, sink="s", fmt="xml", out=io.StringIO())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="transport"):
        export_alerts(store, sink="s", fmt="cef", syslog=("127.0.0.1", 514, "tls"))


def test_tcp_sender_uses_octet_counting() -> None:
    """RFC 6587 §3.4.1 framing, read back by a plain socket (no syslog daemon needed)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received = bytearray()

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(65536):
                    received.extend(data)

        t = threading.Thread(target=serve)
        t.start()
        with SyslogSender("127.0.0.1", port, "tcp") as sender:
            sender.send(b"hello")
            sender.send("two\nlines ü".encode())
        t.join(5)
    assert bytes(received) == b"5 hello" + b"12 " + "two\nlines ü".encode()


# -- a real syslog daemon on loopback ----------------------------------------------------


def _rsyslogd() -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return shutil.which("rsyslogd", path=path)


@dataclass
class Rsyslog:
    udp_port: int
    tcp_port: int
    out: Path
    log: Path

    def lines(self, host: str) -> list[str]:
        text = self.out.read_text("utf-8") if self.out.exists() else ""
        text = text[: text.rfind("\n") + 1]  # complete lines only
        return [x for x in text.splitlines() if x.split(" ", 2)[1:2] == [host]]

    def wait_lines(self, host: str, n: int, timeout: float = 10.0) -> list[str]:
        """The lines from ``host`` once there are at least ``n`` (omfile flushes per batch)."""
        deadline = time.monotonic() + timeout
        while len(got := self.lines(host)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"rsyslog wrote {len(got)} of {n} lines for {host}: {got}")
            time.sleep(0.02)
        return got


RSYSLOG_CONF = """\
global(workDirectory="{dir}")
module(load="imudp")
module(load="imtcp")
template(name="line" type="string"
         string="%syslogfacility-text%.%syslogseverity-text% %hostname% %app-name% %msg%\\n")
ruleset(name="siem") {{
    action(type="omfile" file="{out}" template="line")
}}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="siem")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{dir}/tcp.port"
      ruleset="siem")
"""


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    """rsyslogd in the foreground as the test user: a private config with only UDP and TCP
    inputs on loopback (no system socket, no kernel log), writing one line per message."""
    exe = _rsyslogd()
    if exe is None:
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog)")
    d = tmp_path_factory.mktemp("rsyslog")
    udp = _free_port(socket.SOCK_DGRAM)
    conf = d / "rsyslog.conf"
    out = d / "out.log"
    conf.write_text(RSYSLOG_CONF.format(dir=d, out=out, udp=udp))
    log = d / "rsyslogd.log"
    with log.open("wb") as logf:
        proc = subprocess.Popen(
            [exe, "-n", "-f", str(conf), "-i", str(d / "rsyslogd.pid")],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
    try:
        daemon = Rsyslog(udp_port=udp, tcp_port=0, out=out, log=log)
        deadline = time.monotonic() + 10
        portfile = d / "tcp.port"
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rsyslogd exited ({proc.returncode}): {log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"rsyslogd did not open its TCP port: {log.read_text()}")
            if portfile.exists() and portfile.read_text().strip():
                daemon.tcp_port = int(portfile.read_text())
                try:
                    socket.create_connection(("127.0.0.1", daemon.tcp_port), 1).close()
                    break
                except OSError:
                    pass
            time.sleep(0.02)
        # UDP has no handshake: probe until a datagram makes it to the file.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            while not daemon.lines("ready"):
                if time.monotonic() > deadline:
                    pytest.fail(f"rsyslogd did not log UDP input: {log.read_text()}")
                probe.sendto(b"<166>1 - ready probe - - - up", ("127.0.0.1", udp))
                time.sleep(0.05)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_cef_over_syslog_reaches_rsyslog_intact(
    rsyslog: Rsyslog, store: Store, transport: str
) -> None:
    _detect(
        store,
        "plant",
        [
            _finding("10.0.0.1"),
            _finding("10.0.0.3", severity=Severity.INFO),
            _finding("10.0.0.4", severity=Severity.LOW, operation="Write 'Förder|band' a=b c\\d"),
            _finding("10.0.0.5", severity=Severity.MEDIUM, note="line1\nline2\ttab"),
            _finding("fd00::7", severity=Severity.CRITICAL, rule="controller-start"),
        ],
    )
    host = f"plant-{transport}"
    port = rsyslog.udp_port if transport == "udp" else rsyslog.tcp_port
    target = ("127.0.0.1", port, transport)
    rep = export_alerts(store, sink="siem", fmt="cef", syslog=target, hostname=host)
    assert rep.sent == 5 and rep.target == f"{transport}://127.0.0.1:{port}"
    expected = [
        f"local4.{RSYSLOG_SEVERITY[a['severity']]} {host} conduit {cef_line(a)}"
        for a in alerts.list_alerts(store)
    ]
    assert sorted(rsyslog.wait_lines(host, 5)) == sorted(expected)

    # Incremental over syslog too: nothing new, then one status change goes out.
    assert export_alerts(store, sink="siem", fmt="cef", syslog=target, hostname=host).sent == 0
    acked = alerts.list_alerts(store)[2]["id"]
    alerts.set_status(store, acked, "acknowledged", "bob")
    assert export_alerts(store, sink="siem", fmt="cef", syslog=target, hostname=host).sent == 1
    rsyslog.wait_lines(host, 6)
    time.sleep(0.2)
    got = rsyslog.lines(host)
    assert len(got) == 6  # nothing was sent twice
    _, ext = parse_cef(got[-1].split(" ", 3)[3])
    assert (ext["externalId"], ext["cs2"]) == (str(acked), "acknowledged")


def test_rsyslog_reads_octet_counted_frames(rsyslog: Rsyslog) -> None:
    """A line break inside a message stays inside it over TCP (rsyslog shows it as #012)."""
    now = datetime.now(UTC)
    with SyslogSender("127.0.0.1", rsyslog.tcp_port, "tcp") as sender:
        sender.send(syslog_message("first\nsecond", severity="low", hostname="framing", when=now))
        sender.send(syslog_message("third", severity="high", hostname="framing", when=now))
    assert rsyslog.wait_lines("framing", 2) == [
        "local4.notice framing conduit first#012second",
        "local4.err framing conduit third",
    ]


def test_alert_replacing_a_withdrawn_one_is_exported(store: Store) -> None:
    _detect(store, "a", [_finding("10.0.0.1")])
    _detect(store, "b", [_finding("10.0.0.3")])
    assert _export(store)[0].sent == 2
    _detect(store, "b", [_finding("10.0.0.9", rule="controller-start")])  # b re-detected
    assert [a["rule"] for a in _export(store)[1]] == ["controller-start"]
