"""TLS and HTTP against real peers on loopback: Python's ``ssl`` and ``http.server``
as servers, ``urllib``, ``http.client`` and curl as clients, captured with tcpdump and
compared frame by frame with tshark (server names, ALPN, Host, User-Agent, Server,
methods and status codes), then the claims the decoders make."""

from __future__ import annotations

import http.client
import http.server
import shutil
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from otconduit.protocols.base import Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.it import http as ithttp
from otconduit.protocols.it import tls as ittls
from otconduit.protocols.it.claims import ItClaim
from tests.streams import flows

from .it_helpers import free_port, loopback_capture, needs_capture, tshark

pytestmark = [pytest.mark.slow, pytest.mark.tshark, *needs_capture]

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PlantPortal/2.1"
    sys_version = "(Ubuntu)"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"line one\n", b"x" * 3000, b"end\n"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        body = b"<html>plant portal</html>" * (200 if self.path == "/big" else 1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "12345")
        self.end_headers()

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.send_response(204)
        self.end_headers()


@contextmanager
def serve(port: int, context: ssl.SSLContext | None = None) -> Iterator[None]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def decode(pcap: Path, port: int, factory: type) -> tuple[list[object], list[object]]:
    decoders, events = [], []
    for flow in flows(pcap, {port}):
        dec = factory(flow.endpoints)
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
        events += dec.finish()
        decoders.append(dec)
    return decoders, events


# -- HTTP -------------------------------------------------------------------------------
def test_http_exchanges_agree_with_tshark(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    pcap = tmp_path / "http.pcap"
    with serve(port), loopback_capture(pcap, f"host 127.0.0.1 and tcp port {port}"):
        urllib.request.urlopen(f"{base}/", timeout=10).read()
        req = urllib.request.Request(
            f"{base}/big", headers={"User-Agent": BROWSER_UA, "Host": "hmi.plant.example"}
        )
        urllib.request.urlopen(req, timeout=10).read()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for method, path, body in (
            ("GET", "/chunked", None),
            ("HEAD", "/", None),
            ("POST", "/setpoint", b"value=42"),
            ("GET", "/", None),
        ):
            conn.request(
                method, path, body=body, headers={"Host": f"historian.plant.example:{port}"}
            )
            conn.getresponse().read()
        conn.close()
        if shutil.which("curl"):
            subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-H", "Host: eng.plant.example", f"{base}/"],
                check=True,
                timeout=20,
            )
    decoders, events = decode(pcap, port, ithttp.HttpDecoder)
    assert not [e for e in events if isinstance(e, Malformed)]
    # One row per message. tshark reports a message in the frame that completes its
    # body, ours in the frame that completes its header block: rows are compared as
    # sorted lists, not by frame.
    requests, responses = [], []
    for dec in decoders:
        for m in dec.messages:
            if m.request:
                requests.append((m.method, m.header("Host") or "", m.header("User-Agent") or ""))
            else:
                responses.append((str(m.status), m.header("Server") or ""))
    rows = tshark(
        pcap,
        [
            "http.request.method",
            "http.host",
            "http.user_agent",
            "http.response.code",
            "http.server",
        ],
        "http",
        ["-d", f"tcp.port=={port},http"],
    ).values()
    t_requests = [(r[0][0], *(c[0] if c else "" for c in r[1:3])) for r in rows if r[0]]
    t_responses = [(r[3][0], r[4][0] if r[4] else "") for r in rows if r[3]]
    assert len(requests) == 6 + (1 if shutil.which("curl") else 0)
    assert sorted(requests) == sorted(t_requests)
    assert sorted(responses) == sorted(t_responses)
    claims = {(c.ip, c.attribute, c.value) for c in events if isinstance(c, ItClaim)}
    assert ("127.0.0.1", "server_name", "hmi.plant.example") in claims
    assert ("127.0.0.1", "server_name", "historian.plant.example") in claims
    assert ("127.0.0.1", "user_agent", BROWSER_UA) in claims
    assert ("127.0.0.1", "os", "Windows 10 / Server 2016 or later") in claims
    assert ("127.0.0.1", "browser", "Chrome 120") in claims
    assert ("127.0.0.1", "browser", "Python-urllib 3") in claims
    assert ("127.0.0.1", "software", "PlantPortal/2.1 (Ubuntu)") in claims
    assert ("127.0.0.1", "os", "Ubuntu") in claims
    assert ("127.0.0.1", "role", "web_server") in claims
    assert not any(v == "127.0.0.1" for _, a, v in claims if a == "server_name")


# -- TLS --------------------------------------------------------------------------------
def _context(tmp_path: Path) -> ssl.SSLContext:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scada.plant.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def test_tls_hellos_agree_with_tshark(tmp_path: Path) -> None:
    port = free_port()
    pcap = tmp_path / "tls.pcap"
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_alpn_protocols(["h2", "http/1.1"])
    with (
        serve(port, _context(tmp_path)),
        loopback_capture(pcap, f"host 127.0.0.1 and tcp port {port}"),
    ):
        for host in ("scada.plant.example", "opc.plant.example"):
            conn = http.client.HTTPSConnection(host, port, context=client, timeout=10)
            conn.sock = None
            conn._create_connection = lambda *a, **k: __import__("socket").create_connection(  # type: ignore[attr-defined]
                ("127.0.0.1", port), timeout=10
            )
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
        if shutil.which("curl"):
            subprocess.run(
                [
                    "curl",
                    "-sk",
                    "-o",
                    "/dev/null",
                    "--resolve",
                    f"mes.plant.example:{port}:127.0.0.1",
                    f"https://mes.plant.example:{port}/",
                ],
                check=True,
                timeout=20,
            )
    decoders, events = decode(pcap, port, ittls.TlsDecoder)
    assert not [e for e in events if isinstance(e, Malformed)]
    mine: dict[int, list[list[str]]] = {}
    for dec in decoders:
        for frame, hello in dec.hellos:
            row = mine.setdefault(frame, [[], [], []])
            row[0].append(str(hello.kind))
            row[1] += list(hello.server_names)
            row[2] += list(hello.alpn)
    oracle = tshark(
        pcap,
        [
            "tls.handshake.type",
            "tls.handshake.extensions_server_name",
            "tls.handshake.extensions_alpn_str",
        ],
        "tls.handshake.type == 1 || tls.handshake.type == 2",
        ["-d", f"tcp.port=={port},tls"],
    )
    for row in oracle.values():  # TLS 1.3 servers send more handshake messages encrypted
        row[0] = [t for t in row[0] if t in ("1", "2")]
    n = 3 if shutil.which("curl") else 2
    assert sum(len(r[0]) for r in mine.values()) == 2 * n
    assert mine == oracle
    claims = {(c.ip, c.attribute, c.value) for c in events if isinstance(c, ItClaim)}
    names = {v for _, a, v in claims if a == "server_name"}
    assert names == {"scada.plant.example", "opc.plant.example"} | (
        {"mes.plant.example"} if n == 3 else set()
    )
    assert ("127.0.0.1", "role", "web_server") in claims


def test_tls_mid_stream_and_non_tls_are_quiet() -> None:
    ep = Endpoints(
        transport="tcp",
        client_ip="10.0.0.1",
        client_port=5000,
        server_ip="10.0.0.2",
        server_port=443,
    )
    dec = ittls.TlsDecoder(ep)
    dec.feed(0, bytes.fromhex("1503010016") + bytes(22), 1, 1)  # an encrypted alert
    assert dec.finish() == [] and dec.not_tls[0]
