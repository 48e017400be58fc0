"""`conduit analyze --uplink` against a real Mosquitto: sites authenticated by client
certificates (the certificate's CN is the broker user, the ACL lets each write only its
own topics), and a broker that is down during the analysis: the messages wait on disk and
the next run delivers them, once."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from otconduit.hub.sites import SiteEntry, SitesFile, mosquitto_acl
from otconduit.store import Store, StoreError, hub_outbox
from otconduit.store import hub as hub_q
from tests.conftest import DATA
from tests.gateway.mqttbroker import Broker, needs_mosquitto

pytestmark = needs_mosquitto
CONDUIT = str(Path(sys.executable).parent / "conduit")
CAPTURE = DATA / "modbus_all_functions.pcap"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])


def _pem(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_pki(d: Path, clients: list[str]) -> Path:
    """A CA, a server certificate for 127.0.0.1 and one client certificate per name
    (CN = the name): ``d/ca.pem``, ``d/server.{pem,key}``, ``d/<name>.{pem,key}``."""
    d.mkdir(parents=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("conduit test CA"))
        .issuer_name(_name("conduit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cn, usage in [("server", "server"), *((c, "client") for c in clients)]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost" if usage == "server" else cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if usage == "server":
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            ).add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False
            )
        else:
            b = b.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False
            )
        _pem(d / cn, key, b.sign(ca_key, hashes.SHA256()))
    return d


def _analyze(db: Path, url: str, site: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONDUIT, "analyze", str(CAPTURE), "--db", str(db), "-q", "--uplink", url, "--site", site],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _hub_counts(db: Path, site: str) -> dict[str, int]:
    try:
        with Store(db, readonly=True) as s:
            return hub_q.counts(s, site)
    except StoreError:
        return {}


def _start_hub(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``conduit hub`` with its stderr in ``log``, once the broker confirmed its
    subscription (before that the broker drops what sites publish)."""
    with open(log, "wb") as f:
        hub = subprocess.Popen([CONDUIT, "hub", *args], stdout=subprocess.DEVNULL, stderr=f)
    _wait(lambda: "hub: subscribed" in log.read_text() or hub.poll() is not None)
    assert hub.poll() is None, log.read_text()
    return hub


def _wait(pred: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sites_with_client_certificates(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", ["north", "south", "hub"])
    acl = tmp_path / "acl"
    acl.write_text(mosquitto_acl(SitesFile(sites=[SiteEntry(name="north"),
                                                  SiteEntry(name="south")]), "hub"))  # fmt: skip
    broker = Broker(
        tmp_path / "broker",
        anonymous=False,
        extra=f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\n"
        f"keyfile {pki / 'server.key'}\nrequire_certificate true\n"
        f"use_identity_as_username true\nacl_file {acl}\n",
    )
    broker.start()
    hub_db = tmp_path / "hub.db"

    def url(cn: str) -> str:
        return (
            f"mqtts://127.0.0.1:{broker.port}?ca={pki / 'ca.pem'}"
            f"&cert={pki / (cn + '.pem')}&key={pki / (cn + '.key')}"
        )

    hub_log = tmp_path / "hub.log"
    hub = _start_hub(["--broker", url("hub"), "--db", str(hub_db)], hub_log)
    try:
        for site in ("north", "south"):
            r = _analyze(tmp_path / f"{site}.db", url(site), site)
            assert r.returncode == 0, r.stderr
            assert "messages sent" in r.stderr and "queued" not in r.stderr
        for site in ("north", "south"):
            with Store(tmp_path / f"{site}.db", readonly=True) as s:
                truth = hub_outbox.totals(s)
            _wait(lambda site=site, truth=truth: all(  # type: ignore[misc]
                _hub_counts(hub_db, site).get(k) == v for k, v in truth.items()))  # fmt: skip
        # north's certificate cannot write as south (the broker's ACL drops it), and the
        # south database, analysed again under north's name and certificate, is refused
        r = _analyze(tmp_path / "south.db", url("north"), "south")
        assert r.returncode == 0
        time.sleep(2.0)
        assert _hub_counts(hub_db, "south")["messages"] == _hub_counts(hub_db, "north")["messages"]
        # no certificate: no connection at all
        plain = f"mqtts://127.0.0.1:{broker.port}?ca={pki / 'ca.pem'}"
        r = _analyze(tmp_path / "north.db", plain, "north")
        assert r.returncode == 0 and "queued for the next run" in r.stderr
    finally:
        hub.terminate()
        hub.wait(20)
        broker.stop()
    assert hub.returncode == 0, hub_log.read_text()


def test_broker_down_during_analysis_then_delivered_once(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")  # made, not started: its port refuses
    url = f"mqtt://127.0.0.1:{broker.port}"
    site_db = tmp_path / "site.db"
    r = _analyze(site_db, url, "plant")  # the broker is not there yet
    assert r.returncode == 0, r.stderr  # the analysis itself is never failed by the uplink
    assert "queued for the next run" in r.stderr
    buffer = tmp_path / "site.db.uplink.db"
    assert buffer.exists()
    with Store(site_db, readonly=True) as s:
        assert hub_outbox.outbox_count(s, "plant") == 0  # on the buffer's disk tier now
        truth, last = hub_outbox.totals(s), hub_outbox.next_seq(s, "plant") - 1
    broker.start()
    hub_db = tmp_path / "hub.db"
    hub = _start_hub(
        ["--broker", url, "--db", str(hub_db), "--duration", "20"], tmp_path / "hub.log"
    )
    try:
        # the same capture again (re-analysed: its operation chunks are replaced, and the
        # minutes they cover are stated again as totals, not added); the first run's queue
        # goes out first
        again = _analyze(site_db, url, "plant")
        assert again.returncode == 0 and "queued" not in again.stderr, again.stderr
        with Store(site_db, readonly=True) as s:
            last = hub_outbox.next_seq(s, "plant") - 1
        _wait(lambda: _hub_counts(hub_db, "plant").get("messages") == last)
        got = _hub_counts(hub_db, "plant")
        assert {k: got[k] for k in truth} == truth
    finally:
        hub.terminate()
        hub.wait(20)
        broker.stop()
