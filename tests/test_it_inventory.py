"""The IT side through the engine into the inventory: host names, operating systems and
IT roles on the assets, against tshark's reading of the same corpus captures; own names
beating DNS answers, policy names beating both; hostile IT input counted as problems;
the caps that keep IT traffic from costing industrial analysis anything."""

from __future__ import annotations

import functools
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rrset
import pytest

from otconduit.analysis import it_side
from otconduit.analysis.engine import Analyzer
from otconduit.analysis.run import analyze_file
from otconduit.capture.packet import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    Packet,
)
from otconduit.capture.reader import ReadReport
from otconduit.lab.sniffer import capture_unavailable_reason
from otconduit.protocols.it import SPECS as IT_SPECS
from otconduit.protocols.it.hints import windows_version
from otconduit.protocols.registry import default_protocols
from otconduit.store import Store, views
from otconduit.store.assets import set_policy_names
from tests.conftest import CORPUS, needs_shared

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
PROFINET_MIXED = "icsnpp/profinet/profinet_io_cm_mixed_2/profinet_io_cm_mixed_2.pcapng"


# -- helpers -------------------------------------------------------------------------------
def _tshark(
    capture: Path, display_filter: str, fields: list[str], extra: tuple[str, ...] = ()
) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(capture), "-Y", display_filter, "-T", "fields", *extra]
    cmd += ["-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    return [line.split("\t") for line in out.splitlines()]


def _corpus_assets(tmp: Path, rel: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    with Store(tmp / "c.db") as store:
        result = analyze_file(store, CORPUS / rel)
        flt = views.AssetFilter()
        return {a["ip"]: a for a in views.assets(store, flt)}, result.stats


def _claims(asset: dict[str, Any], attribute: str) -> dict[str, float]:
    """value -> best confidence of one attribute's claims."""
    out: dict[str, float] = {}
    for c in asset["identity_claims"]:
        if c["attribute"] == attribute:
            out[c["value"]] = max(out.get(c["value"], 0.0), c["confidence"])
    return out


class Wire:
    """Packets as the frame decoder makes them, numbered in order, for the engine."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.seq: dict[tuple[str, int, str, int], int] = {}

    def _add(self, **kw: Any) -> None:
        n = len(self.packets) + 1
        payload = kw.get("payload", b"")
        kw.setdefault("ip_version", 4)
        kw.setdefault("ip_len", 40 + len(payload))
        self.packets.append(
            Packet(frame=n, ts_ns=n * 1_000_000, caplen=100, wirelen=100, linktype=1, **kw)
        )

    def udp(self, src: str, sport: int, dst: str, dport: int, payload: bytes, mac: str) -> None:
        self._add(
            src_mac=mac,
            dst_mac="ff:ff:ff:ff:ff:ff",
            src_ip=src,
            dst_ip=dst,
            ip_proto=IPPROTO_UDP,
            sport=sport,
            dport=dport,
            payload=payload,
            ethertype=0x0800,
        )

    def _tcp(self, src: str, sport: int, dst: str, dport: int, flags: int, data: bytes) -> None:
        key, back = (src, sport, dst, dport), (dst, dport, src, sport)
        seq = self.seq.setdefault(key, 1000)
        ack = self.seq.get(back, 0)
        self._add(
            src_mac="02:00:00:00:00:" + src.rsplit(".", 1)[1].zfill(2)[-2:],
            dst_mac="02:00:00:00:00:" + dst.rsplit(".", 1)[1].zfill(2)[-2:],
            src_ip=src,
            dst_ip=dst,
            ip_proto=IPPROTO_TCP,
            sport=sport,
            dport=dport,
            tcp_seq=seq,
            tcp_ack=ack,
            tcp_flags=flags,
            payload=data,
            ethertype=0x0800,
        )
        self.seq[key] = (seq + len(data) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) % 2**32

    def tcp(
        self, client: tuple[str, int], server: tuple[str, int], said: list[tuple[int, bytes]]
    ) -> None:
        """A whole connection: handshake, ``said`` (direction, bytes) each acknowledged,
        FINs."""
        c, s = client, server
        self._tcp(*c, *s, TCP_SYN, b"")
        self.seq.setdefault((*s, *c), 5000)
        self._tcp(*s, *c, TCP_SYN | TCP_ACK, b"")
        self._tcp(*c, *s, TCP_ACK, b"")
        for d, data in said:
            a, b = (c, s) if d == 0 else (s, c)
            self._tcp(*a, *b, TCP_ACK | TCP_PSH, data)
            self._tcp(*b, *a, TCP_ACK, b"")
        self._tcp(*c, *s, TCP_ACK | TCP_FIN, b"")
        self._tcp(*s, *c, TCP_ACK | TCP_FIN, b"")
        self._tcp(*c, *s, TCP_ACK, b"")

    def frame(self, src_mac: str, ethertype: int, payload: bytes) -> None:
        self._add(
            src_mac=src_mac,
            dst_mac="01:80:c2:00:00:0e",
            ip_version=0,
            ethertype=ethertype,
            payload=payload,
            ip_len=0,
        )


def _run(tmp: Path, wire: Wire) -> tuple[Analyzer, dict[str, dict[str, Any]]]:
    with Store(tmp / "w.db") as store:
        cid = store.begin_capture(str(tmp / "synthetic.pcap"), "0" * 64, 0, "pcap")
        an = Analyzer(store, cid)
        for p in wire.packets:
            an.feed(p, p.ts_ns)
        an.finish(ReadReport(path="synthetic.pcap", format="pcap", compressed=False, file_size=0))
        assets = {a["ip"]: a for a in views.assets(store, views.AssetFilter())}
        an.stats_extra["conversation_protocols"] = sorted(
            {c["protocol"] for c in views.conversations(store)}
        )
        for ip, a in assets.items():  # what alerts and violations call the hosts
            a["alert_name"] = views.asset_name(store, ip)
        set_policy_names(store, "plant", {"Filler-PLC": "10.0.0.5"})
        for ip, a in assets.items():
            a["name_with_policy"] = views.asset_name(store, ip)
    return an, assets


def _dhcp_request(mac: str, hostname: bytes, vendor: bytes) -> bytes:
    """A BOOTREQUEST (RFC 2131 §2) with options 53 (REQUEST), 12 and 60 (RFC 2132)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    head = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, 0x1234, 0, 0, *(b"\0" * 4,) * 4)
    opts = b"\x35\x01\x03" + bytes([12, len(hostname)]) + hostname
    opts += bytes([60, len(vendor)]) + vendor + b"\xff"
    return head + hw.ljust(16, b"\0") + b"\0" * 192 + b"\x63\x82\x53\x63" + opts


def _dns_answer(qname: str, *addresses: str) -> bytes:
    query = dns.message.make_query(qname, "A")
    resp = dns.message.make_response(query)
    resp.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", *addresses))
    return bytes(resp.to_wire())


# -- corpus captures against tshark ------------------------------------------------------
@needs_shared
@needs_tshark
def test_profinet_mixed_names_agree_with_tshark(tmp_path: Path) -> None:
    capture = CORPUS / PROFINET_MIXED
    assets, stats = _corpus_assets(tmp_path, PROFINET_MIXED)
    by_mac: dict[str, list[dict[str, Any]]] = {}
    for a in assets.values():
        by_mac.setdefault(a["mac"] or "", []).append(a)
    # DHCP option 12 and 60 -> every address of the client's MAC.
    dhcp = _tshark(
        capture,
        "dhcp.option.hostname",
        ["eth.src", "dhcp.option.hostname", "dhcp.option.vendor_class_id"],
    )
    assert dhcp
    for mac, hostname, vendor in dhcp:
        for a in by_mac.get(mac, []):
            assert hostname in _claims(a, "hostname")
            if vendor.startswith("MSFT"):
                assert _claims(a, "os") == {"Windows": 0.6}
    # NetBIOS name registrations (unique names only: a group name is the workgroup).
    nbns = _tshark(
        capture,
        "nbns.flags.opcode == 5 && nbns.flags.response == 0",
        ["ip.src", "nbns.name", "nbns.nb_flags.group"],
    )
    assert nbns
    for ip, name, group in nbns:
        text = name.split("<", 1)[0]
        assert text in (
            _claims(assets[ip], "workgroup") if group == "1" else _claims(assets[ip], "hostname")
        )
    # Browser announcements: the datagram's source name.
    for ip, source in _tshark(capture, "browser", ["ip.src", "nbdgm.source_name"]):
        assert source.split("<", 1)[0] in _claims(assets[ip], "hostname")
    # One name per host: the best claim.
    assert assets["169.254.216.43"]["name"] == "LT-US-DSWANSON"
    assert assets["169.254.216.43"]["os"] == "Windows"
    assert assets["192.168.1.1"]["name"] == "KW-VLIPC"
    assert stats["it"]["hosts_named"] >= 3
    assert "malformed" not in stats["it"]


@needs_shared
@needs_tshark
def test_browser_announcement_names_and_os(tmp_path: Path) -> None:
    rel = "iti/IEC60870-5-104/090813_diverse.pcap"
    assets, _ = _corpus_assets(tmp_path, rel)
    rows = _tshark(
        CORPUS / rel,
        "browser.server",
        ["ip.src", "browser.server", "browser.os_major", "browser.os_minor"],
    )
    assert rows
    for ip, server, major, minor in rows:
        assert assets[ip]["name"] == server
        assert assets[ip]["os"] == windows_version(int(major), int(minor))
        assert assets[ip]["os"] == "Windows XP"  # 5.1


@needs_shared
@needs_tshark
def test_cdp_switch_becomes_a_named_asset(tmp_path: Path) -> None:
    rel = "iti/openics/EIP-SoftwareUpload.pcap"
    assets, _ = _corpus_assets(tmp_path, rel)
    rows = _tshark(
        CORPUS / rel,
        "cdp",
        [
            "cdp.deviceid",
            "cdp.platform",
            "cdp.nrgyz.ip_address",
            "cdp.capabilities.switch",
            "eth.src",
        ],
    )
    assert rows
    for device, platform, address, switch, mac in rows:
        a = assets[address]  # its management address, though it sent no IP traffic
        assert a["name"] == device
        assert a["model"] == platform
        assert a["mac"] == mac
        assert ("switch" in a["roles"]) == (switch in ("1", "True"))
        assert a["os"] and a["os"].startswith("Cisco IOS")
        assert a["packets_sent"] == 0


@needs_shared
@needs_tshark
def test_dns_answers_name_only_hosts_on_the_wire(tmp_path: Path) -> None:
    rel = "iti/bro/modbus/modbusSmall.pcap"
    assets, stats = _corpus_assets(tmp_path, rel)
    answers = _tshark(CORPUS / rel, "dns.flags.response == 1", ["ip.src", "dns.a"])
    assert answers
    for server, _ in answers:
        assert "dns_server" in assets[server]["roles"]
    resolved = {a for _, found in answers for a in found.split(",") if a}
    # The answers name google and canonical addresses nobody here talked to: no assets.
    assert resolved and not resolved & set(assets)
    assert stats["it"]["claims_unattached"] >= len(resolved)


# -- the engine on synthetic traffic --------------------------------------------------------
PLC_MAC = "02:00:00:00:00:05"


def test_own_name_beats_a_dns_answer_and_policy_beats_both(tmp_path: Path) -> None:
    w = Wire()
    w.udp(
        "10.0.0.5", 68, "10.0.0.1", 67, _dhcp_request(PLC_MAC, b"filler-01", b"MSFT 5.0"), PLC_MAC
    )
    w.udp(
        "10.0.0.53",
        53,
        "10.0.0.9",
        40000,
        _dns_answer("plc.example.", "10.0.0.5"),
        "02:00:00:00:00:53",
    )
    _, assets = _run(tmp_path, w)
    plc = assets["10.0.0.5"]
    names = _claims(plc, "hostname")
    assert names["filler-01"] > names["plc.example"]  # the host's own name wins
    assert plc["name"] == "filler-01"
    assert plc["os"] == "Windows"
    assert plc["alert_name"] == "filler-01"  # alerts and violations name it too
    assert plc["name_with_policy"] == "Filler-PLC"  # a policy host name wins over both
    assert "dns_server" in assets["10.0.0.53"]["roles"]
    evidence = {c["attribute"]: c for c in plc["identity_claims"]}
    assert evidence["hostname"]["source"] in ("dhcp", "dns")


def test_http_tls_ssh_first_bytes_on_any_port(tmp_path: Path) -> None:
    w = Wire()
    w.tcp(
        ("10.0.0.7", 50001),
        ("10.0.0.8", 8081),
        [
            (
                0,
                b"GET / HTTP/1.1\r\nHost: historian.plant.local\r\n"
                b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n\r\n",
            ),
            (1, b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Length: 0\r\n\r\n"),
        ],
    )
    w.tcp(
        ("10.0.0.7", 50002),
        ("10.0.0.9", 2222),
        [
            (1, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            (0, b"SSH-2.0-OpenSSH_9.6\r\n"),
        ],
    )
    an, assets = _run(tmp_path, w)
    web, ssh = assets["10.0.0.8"], assets["10.0.0.9"]
    assert "web_server" in web["roles"]
    assert "nginx/1.24.0" in _claims(web, "software")
    assert "historian.plant.local" in _claims(web, "server_name")
    assert assets["10.0.0.7"]["os"] and "Windows" in assets["10.0.0.7"]["os"]
    assert "ssh_server" in ssh["roles"]
    assert ssh["os"] == "Debian 12"
    st = an.it.stats() if an.it else {}
    assert st["connections_http"] == 1 and st["connections_ssh"] == 1
    # IT protocols stay out of the industrial tables: the conversations keep the
    # engine's verdict, and the registry knows none of them.
    assert an.stats_extra["conversation_protocols"] == ["unknown"]
    assert not {s.name for s in default_protocols()} & {s.name for s in IT_SPECS}


def test_modbus_connections_never_reach_the_it_decoders(tmp_path: Path) -> None:
    w = Wire()
    read = bytes.fromhex("000100000006010300000002")
    answer = bytes.fromhex("00010000000701030400010002")
    w.tcp(("10.0.0.7", 50003), ("10.0.0.5", 502), [(0, read), (1, answer)] * 20)
    an, _ = _run(tmp_path, w)
    assert an.operations == 20
    assert an.it is not None
    assert not any(k.startswith("connections_") for k in an.it.stats())
    assert not an.it._tcp  # nothing kept per connection once folded


def test_hostile_it_input_is_counted_never_a_crash(tmp_path: Path) -> None:
    w = Wire()
    mac = "02:00:00:00:00:66"
    header = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
    loop = header + b"\xc0\x0c\x00\x01\x00\x01"  # a question name pointing at itself
    w.udp("10.0.0.53", 53, "10.0.0.9", 40001, loop, mac)
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\0"  # 320 octets
    w.udp("10.0.0.53", 53, "10.0.0.9", 40002, header + long_name + b"\x00\x01\x00\x01", mac)
    w.udp("10.0.0.66", 137, "10.0.0.255", 137, b"\xff" * 40, mac)
    w.udp("10.0.0.66", 68, "10.0.0.1", 67, _dhcp_request(mac, b"X" * 255, b"MSFT 5.0"), mac)
    w.tcp(("10.0.0.7", 50004), ("10.0.0.8", 443), [(0, bytes(range(256)) * 4)])
    w.frame(mac, 0x88CC, b"\x02\x07\x04")  # LLDP: chassis id TLV cut short
    an, assets = _run(tmp_path, w)
    layers = {layer for layer, _ in an.problem_counts}
    assert {"dns", "netbios-ns", "tls", "lldp"} <= layers
    reasons = " ".join(p[3] for p in an.problems)
    assert "compression loop" in reasons and "not TLS" in reasons
    assert an.it is not None and an.it.stats()["malformed"] >= 4
    names = _claims(assets["10.0.0.66"], "hostname")
    assert names and all(len(n) <= 256 for n in names)


def test_values_per_attribute_are_capped(tmp_path: Path) -> None:
    w = Wire()
    for i in range(3 * it_side.MAX_VALUES):
        w.udp(
            "10.0.0.53",
            53,
            "10.0.0.9",
            41000 + i,
            _dns_answer(f"n{i}.example.", "10.0.0.5"),
            "02:00:00:00:00:53",
        )
    w.udp("10.0.0.5", 40000, "10.0.0.53", 53, b"", PLC_MAC)
    w.tcp(("10.0.0.5", 50005), ("10.0.0.53", 80), [(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")])
    an, assets = _run(tmp_path, w)
    assert len(_claims(assets["10.0.0.5"], "hostname")) == it_side.MAX_VALUES
    assert an.it is not None and an.it.stats()["claims_over_cap"] == 2 * it_side.MAX_VALUES


# -- real peers on loopback -------------------------------------------------------------
OFFICE, WEB, SSH_HOST, RESOLVER = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
UA = "Mozilla/5.0 (X11; Linux x86_64) conduit-it-test"
LIVE = [
    pytest.mark.slow,
    pytest.mark.tshark,
    needs_tshark,
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo and port 53 need root"),
    pytest.mark.skipif(
        not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None, reason="no OpenSSH"
    ),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
]


def _port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


@contextmanager
def _tcpdump(pcap: Path, bpf: str) -> Iterator[None]:
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", str(pcap), bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not pcap.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        yield
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def _thread(target: Callable[[], None]) -> Iterator[None]:
    t = threading.Thread(target=target, daemon=True)
    t.start()
    yield
    t.join(timeout=10)


def _resolver(sock: socket.socket) -> None:
    """A DNS server of one answer, built by dnspython: web.plant.test is the web host."""
    data, peer = sock.recvfrom(512)
    query = dns.message.from_wire(data)
    resp = dns.message.make_response(query)
    resp.answer.append(dns.rrset.from_text("web.plant.test.", 60, "IN", "A", WEB))
    sock.sendto(resp.to_wire(), peer)


class _Page(http.server.BaseHTTPRequestHandler):
    server_version = "plant-intranet/2.1"
    sys_version = ""

    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _office_traffic(tmp: Path, pcap: Path) -> int:
    """DNS, HTTP, TLS with SNI and SSH from the office PC, real servers answering;
    returns the SSH port."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=historian", "-days", "1", "-keyout", str(tmp / "k.pem"),
         "-out", str(tmp / "c.pem")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    http_port, tls_port, ssh_port = _port(WEB), _port(WEB), _port(SSH_HOST)
    web = http.server.HTTPServer((WEB, http_port), _Page)
    tls = socket.create_server((WEB, tls_port))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")

    def serve_tls() -> None:
        conn, _ = tls.accept()
        with sctx.wrap_socket(conn, server_side=True) as s:
            s.recv(100)
            s.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((RESOLVER, 53))
    key = tmp / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null", "-h", str(key), "-p", str(ssh_port),
         "-o", f"ListenAddress={SSH_HOST}", "-o", "PidFile=none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with (
            _tcpdump(pcap, f"host {OFFICE}"),
            _thread(web.handle_request),
            _thread(serve_tls),
            _thread(lambda: _resolver(udp)),
        ):
            ask = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            ask.bind((OFFICE, 0))
            dns.query.udp(dns.message.make_query("web.plant.test", "A"), RESOLVER, timeout=5,
                          sock=ask)  # fmt: skip
            ask.close()
            c = http.client.HTTPConnection(WEB, http_port, timeout=5, source_address=(OFFICE, 0))
            c.request("GET", "/", headers={"Host": "intranet.plant.test", "User-Agent": UA})
            c.getresponse().read()
            c.close()
            cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            cctx.check_hostname, cctx.verify_mode = False, ssl.CERT_NONE
            raw = socket.create_connection((WEB, tls_port), timeout=5, source_address=(OFFICE, 0))
            with cctx.wrap_socket(raw, server_hostname="historian.plant.test") as s:
                s.sendall(b"GET / HTTP/1.1\r\n\r\n")
                s.recv(100)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection((SSH_HOST, ssh_port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            subprocess.run(
                ["ssh", "-b", OFFICE, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-p", str(ssh_port), f"nobody@{SSH_HOST}",
                 "true"],
                capture_output=True, timeout=30,
            )  # fmt: skip
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        web.server_close()
        tls.close()
        udp.close()
    return ssh_port


@pytest.mark.parametrize("bulk", [True, False], ids=["fast-path", "per-packet"])
def test_real_peers_name_the_it_hosts(tmp_path: Path, bulk: bool) -> None:
    pcap = tmp_path / "office.pcap"
    ssh_port = _office_traffic(tmp_path, pcap)
    with Store(tmp_path / "c.db") as store:
        analyze_file(store, pcap, bulk=bulk)
        assets = {a["ip"]: a for a in views.assets(store, views.AssetFilter())}
    (qname, answer), *_ = _tshark(pcap, "dns.flags.response == 1", ["dns.qry.name", "dns.a"])
    assert answer == WEB and qname in _claims(assets[WEB], "hostname")
    assert "dns_server" in assets[RESOLVER]["roles"]
    ((host, agent),) = _tshark(pcap, "http.request", ["http.host", "http.user_agent"])
    (served,) = _tshark(pcap, "http.response", ["http.server"])
    assert host in _claims(assets[WEB], "server_name")
    assert agent in _claims(assets[OFFICE], "user_agent")
    assert served[0].strip() in _claims(assets[WEB], "software")  # header value, trimmed
    assert "web_server" in assets[WEB]["roles"]
    (sni,) = _tshark(pcap, "tls.handshake.type == 1", ["tls.handshake.extensions_server_name"])
    assert sni[0] == "historian.plant.test" and sni[0] in _claims(assets[WEB], "server_name")
    banners = _tshark(
        pcap, "ssh.protocol", ["ip.src", "ssh.protocol"], ("-d", f"tcp.port=={ssh_port},ssh")
    )
    (banner,) = [b for ip, b in banners if ip == SSH_HOST]
    assert "ssh_server" in assets[SSH_HOST]["roles"]
    assert banner.split("-", 2)[2].split(" ")[0] in _claims(assets[SSH_HOST], "software")
    assert assets[WEB]["name"] == "web.plant.test"


test_real_peers_name_the_it_hosts = functools.reduce(
    lambda f, mark: mark(f), LIVE, test_real_peers_name_the_it_hosts
)


def test_kerberos_and_ldap_served_make_a_domain_controller(tmp_path: Path) -> None:
    w = Wire()
    mac = "02:00:00:00:00:10"
    w.udp("10.0.0.7", 50010, "10.0.0.10", 88, b"\x6a\x03\x02\x01\x05", "02:00:00:00:00:07")
    w.udp("10.0.0.10", 88, "10.0.0.7", 50010, b"\x6b\x03\x02\x01\x05", mac)
    w.tcp(("10.0.0.7", 50011), ("10.0.0.10", 389), [(0, b"\x30\x05"), (1, b"\x30\x07")])
    _, assets = _run(tmp_path, w)
    assert "domain_controller" in assets["10.0.0.10"]["roles"]
    assert "domain_controller" not in assets["10.0.0.7"]["roles"]


# -- what the analyst sees: CLI and console ----------------------------------------------
@needs_shared
def test_cli_and_console_show_names_and_os(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from otconduit.cli.main import app
    from tests.console.conftest import make_env

    db = tmp_path / "c.db"
    with Store(db) as store:
        analyze_file(store, CORPUS / "iti/openics/EIP-SoftwareUpload.pcap")
    out = CliRunner().invoke(app, ["assets", "--db", str(db), "-f", "json"])
    assert out.exit_code == 0, out.output
    rows = {r["ip"]: r for r in json.loads(out.output)}
    switch = rows["192.168.10.253"]
    assert switch["name"] == "Ns5gt" and switch["os"].startswith("Cisco IOS")
    table = CliRunner().invoke(app, ["assets", "--db", str(db)], env={"COLUMNS": "400"})
    assert table.exit_code == 0 and "Ns5gt" in table.output and "Cisco IOS" in table.output
    env = make_env(db, tmp_path, policy=None)
    try:
        c = env.client("viewer")
        api = c.get("/api/assets/192.168.10.253").json()["asset"]
        assert api["name"] == "Ns5gt" and api["os"] == switch["os"]
        page = c.get("/assets/192.168.10.253").text
        assert 'id="asset-os">' + switch["os"] in page and "Ns5gt" in page
        listing = c.get("/assets").text
        assert "Ns5gt" in listing and switch["os"] in listing
    finally:
        env.ctx.close()


@pytest.mark.parametrize("port", [445, 8445], ids=["smb-port", "any-port"])
def test_smb_session_claims_reach_the_assets(tmp_path: Path, port: int) -> None:
    """A real smbclient/smbd SMB3 session with NTLMSSP (recorded bytes): through the
    engine, the assets hold exactly what the SMB decoder claims on its own."""
    from otconduit.protocols.base import Endpoints
    from otconduit.protocols.it.claims import ItClaim
    from otconduit.protocols.it.smb import SmbDecoder
    from tests.protocols.it_seeds import SMB3

    client, server = ("10.0.0.7", 50020), ("10.0.0.20", port)
    dec = SmbDecoder(Endpoints(transport="tcp", client_ip=client[0], client_port=client[1],
                               server_ip=server[0], server_port=port))  # fmt: skip
    for i, (d, data) in enumerate(SMB3):
        dec.feed(d, data, i, i)
    expected = {(c.ip, c.attribute, c.value) for c in dec.finish() if isinstance(c, ItClaim)}
    assert ("10.0.0.20", "role", "file_server") in expected
    w = Wire()
    w.tcp(client, server, SMB3)
    an, assets = _run(tmp_path, w)
    got = {
        (ip, c["attribute"], c["value"])
        for ip, a in assets.items()
        for c in a["identity_claims"]
        if c["source"] in ("smb", "ntlmssp")
    } | {(ip, "role", r) for ip, a in assets.items() for r in a["roles"] if r == "file_server"}
    assert got == expected
    assert assets["10.0.0.7"]["name"] == "ENGWS01"
    assert an.it is not None and an.it.stats()["connections_smb"] == 1


def test_rdp_connection_request_names_the_user_and_the_host(tmp_path: Path) -> None:
    cookie = b"Cookie: mstshash=operator\r\n"
    neg = bytes([1, 0, 8, 0, 3, 0, 0, 0])  # RDP_NEG_REQ, TLS|HYBRID ([MS-RDPBCGR] 2.2.1.1.1)
    x224 = bytes([6 + len(cookie) + len(neg), 0xE0, 0, 0, 0, 0, 0]) + cookie + neg
    rsp = bytes([2, 0, 8, 0, 1, 0, 0, 0])  # RDP_NEG_RSP: TLS (2.2.1.2.1)
    cc = bytes([6 + len(rsp), 0xD0, 0, 0, 0x12, 0x34, 0]) + rsp

    def tpkt(tpdu: bytes) -> bytes:  # RFC 1006 §6
        return bytes([3, 0]) + struct.pack("!H", 4 + len(tpdu)) + tpdu

    w = Wire()
    w.tcp(("10.0.0.7", 50030), ("10.0.0.30", 3389), [(0, tpkt(x224)), (1, tpkt(cc))])
    _, assets = _run(tmp_path, w)
    assert "rdp_server" in assets["10.0.0.30"]["roles"]
    assert "operator" in {v for a in assets.values() for v in _claims(a, "user")}


@pytest.mark.parametrize("port", [443, 10443], ids=["tls-port", "any-port"])
def test_tls_client_hello_sni_names_the_server(tmp_path: Path, port: int) -> None:
    """The ClientHello of Python's own TLS stack (OpenSSL), captured from memory."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="scada.plant.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    w = Wire()
    w.tcp(("10.0.0.7", 50040), ("10.0.0.40", port), [(0, hello[:100]), (0, hello[100:])])
    an, assets = _run(tmp_path, w)
    assert set(_claims(assets["10.0.0.40"], "server_name")) == {"scada.plant.test"}
    assert an.it is not None and an.it.stats()["connections_tls"] == 1


# -- the lab plant's IT side ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.tshark
@needs_tshark
@pytest.mark.skipif(
    capture_unavailable_reason() is not None or os.geteuid() != 0,
    reason=f"the plant needs root and loopback capture ({capture_unavailable_reason()})",
)
def test_lab_it_servers_and_office_pcs(tmp_path: Path) -> None:
    """The lab's office browsing (plain HTTP, no name traffic: the lab sends no DNS, DHCP
    or NetBIOS, so its hosts get roles and software, not names)."""
    from otconduit.lab import addresses as A
    from otconduit.lab.plant import check_ports_free

    busy = check_ports_free()
    if busy:  # another run of the plant (a concurrent test session) holds its addresses
        pytest.skip(f"the plant's endpoints are in use: {busy[:3]}")
    pcap = tmp_path / "plant.pcap"
    conduit = Path(sys.executable).with_name("conduit")
    run = subprocess.run(
        [str(conduit), "lab", "--scenario", "normal", "--duration", "10", "--speed", "20",
         "--seed", "3", "--pcap", str(pcap)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    with Store(tmp_path / "c.db") as store:
        analyze_file(store, pcap)
        assets = {a["ip"]: a for a in views.assets(store, views.AssetFilter())}
    port = ("-d", f"tcp.port=={A.HTTP_PORT},http")
    servers = _tshark(pcap, "http.response", ["ip.src", "http.server"], port)
    agents = _tshark(pcap, "http.request", ["ip.src", "http.user_agent"], port)
    assert servers and agents
    for ip, server in servers:
        assert "web_server" in assets[ip]["roles"]
        assert server in _claims(assets[ip], "software")
    for ip, agent in agents:
        assert agent in _claims(assets[ip], "user_agent")
    assert {ip for ip, _ in servers} <= {A.IT_WEB.ip, A.HISTORIAN.ip}


def test_repeats_are_decoded_once_bad_copies_each_counted(tmp_path: Path) -> None:
    w = Wire()
    header = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
    loop = header + b"\xc0\x0c\x00\x01\x00\x01"
    for i in range(3):
        w.udp("10.0.0.53", 53, "10.0.0.9", 40100, loop, "02:00:00:00:00:53")
        answer = bytearray(_dns_answer("plc.example.", "10.0.0.9"))
        answer[0:2] = struct.pack("!H", 100 + i)  # only the transaction id differs
        w.udp("10.0.0.53", 53, "10.0.0.9", 40100, bytes(answer), "02:00:00:00:00:53")
    an, assets = _run(tmp_path, w)
    assert an.problem_counts[("dns", "dns")] == 3  # every bad copy counted
    assert an.it is not None and an.it.stats()["repeats_skipped"] == 2
    assert "plc.example" in _claims(assets["10.0.0.9"], "hostname")
