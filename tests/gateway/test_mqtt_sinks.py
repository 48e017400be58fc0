"""The UNS and Sparkplug B sinks against a real Mosquitto broker, read by a separate paho
subscriber; Sparkplug payloads are decoded with the specification's schema compiled by
protoc, not by our own decoder."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.sinks.mqtt import Message, MqttLink, MqttSink, mqtt_sinks
from otconduit.gateway.sinks.sparkplug import SparkplugSink, sparkplug_metrics
from otconduit.gateway.sinks.uns import UnsSink
from tests.gateway.mqttbroker import (
    Broker,
    Seen,
    Subscriber,
    compile_sparkplug_schema,
    needs_mosquitto,
)

pytestmark = needs_mosquitto

ENT, SITE = "acme", "plant1"
TAGS: dict[str, list[dict[str, Any]]] = {
    "plc1": [
        {"path": "pack/l1/filler/count", "address": "hr:0", "type": "int32"},
        {"path": "pack/l1/filler/temp", "address": "hr:2", "type": "int16", "unit": "degC"},
        {
            "path": "pack/l1/filler/speed",
            "address": "hr:3",
            "type": "uint16",
            "unit": "m/s",
            "scale": {"factor": 0.1},
        },
    ],
    "plc2": [
        {"path": "pack/l1/capper/running", "address": "co:1", "type": "bool"},
        {"path": "pack/l1/capper/recipe", "address": "hr:10", "type": "string", "length": 8},
        {"path": "pack/l1/capper/energy", "address": "hr:20", "type": "float32", "unit": "kWh"},
    ],
}


def full(path: str) -> str:
    return f"{ENT}/{SITE}/{path}"


def gw_config(tmp: Path, port: int, **mqtt: Any) -> GatewayConfig:
    buffer = mqtt.pop("buffer", {})
    return GatewayConfig.model_validate(
        {
            "name": "gw1",
            "enterprise": ENT,
            "site": SITE,
            "devices": [
                {"name": name, "protocol": "modbus", "host": "127.0.0.1", "tags": tags}
                for name, tags in TAGS.items()
            ],
            "sinks": {
                "mqtt": {
                    "port": port,
                    "reconnect": {"initial": 0.05, "max": 0.3},
                    "connect_timeout": 2,
                    "sparkplug": {"enabled": True},
                    **mqtt,
                }
            },
            "buffer": {"disk_path": str(tmp / "buffer.db"), **buffer},
        }
    )


def sample(path: str, value: Any, **kw: Any) -> TagSample:
    kw.setdefault("quality", Quality.GOOD)
    return TagSample(path=full(path), value=value, recv_ts_ns=time.time_ns(), **kw)


def run(coro: Awaitable[None], timeout: float = 15.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return compile_sparkplug_schema(tmp_path_factory.mktemp("spb"))


def decode(pb: Any, m: Seen) -> Any:
    p = pb.Payload()
    p.ParseFromString(m.payload)
    return p


def metric_value(m: Any, datatype: int | None = None) -> Any:
    """The value; DATA metrics carry no datatype, so give the one from the birth."""
    field = m.WhichOneof("value")
    if field is None:
        return None
    v = getattr(m, field)
    dt = m.datatype if m.HasField("datatype") else datatype
    if dt in (1, 2, 3) and v >= 1 << 31:
        v -= 1 << 32  # Int8/16/32 travel as 32-bit two's complement
    return v


# -- Unified Namespace -------------------------------------------------------------------


def test_uns_retained_json_on_the_isa95_path(broker: Broker, tmp_path: Path) -> None:
    cfg = gw_config(tmp_path, broker.port, sparkplug={"enabled": False})
    t0 = time.time_ns()

    async def main() -> None:
        sink = UnsSink(cfg)
        await sink.start()
        await sink.write(
            [
                sample("pack/l1/filler/temp", 20, unit="degC"),
                sample("pack/l1/filler/temp", -3, unit="degC", source_ts_ns=t0 - 10**9),
                sample("pack/l1/filler/count", None, quality=Quality.BAD, reason="exception 2"),
                sample("pack/l1/capper/energy", math.nan, unit="kWh"),
                sample("pack/l1/capper/recipe", "IPA-33"),
            ]
        )
        await until(lambda: sink.sent == 5, what="5 samples confirmed")
        assert sink.status()["connected"] and sink.status()["queued_memory"] == 0
        # a subscriber that connects afterwards gets the retained last values
        sub = Subscriber(broker.port, [f"{ENT}/#"], client_id="late").start()
        seen = sub.wait_for(lambda ms: len(ms) >= 5)
        by_topic = {m.topic: m for m in seen}
        sub.stop()
        assert all(m.retain and m.qos == 1 for m in seen)
        temp = json.loads(by_topic[full("pack/l1/filler/temp")].payload)
        assert temp["value"] == -3 and temp["unit"] == "degC" and temp["quality"] == "good"
        assert temp["timestamp"].endswith("Z") and "historical" not in temp
        assert temp["source_timestamp"] < temp["timestamp"]
        assert set(temp) == {"value", "unit", "quality", "timestamp", "source_timestamp"}
        bad = json.loads(by_topic[full("pack/l1/filler/count")].payload)
        assert bad["value"] is None and bad["quality"] == "bad" and bad["reason"] == "exception 2"
        assert json.loads(by_topic[full("pack/l1/capper/energy")].payload)["value"] is None
        assert json.loads(by_topic[full("pack/l1/capper/recipe")].payload)["value"] == "IPA-33"
        status = json.loads(by_topic[f"{ENT}/{SITE}/_gateway/gw1/status"].payload)
        assert status["online"] is True
        await sink.close()
        sub = Subscriber(broker.port, [f"{ENT}/{SITE}/_gateway/#"], client_id="late2").start()
        (st,) = sub.wait_for(lambda ms: len(ms) >= 1)
        sub.stop()
        assert json.loads(st.payload)["online"] is False and st.retain

    run(main())
    # the ISO timestamps are the samples' own times, in UTC
    assert t0 // 10**9 > 1_600_000_000


# -- Sparkplug B ---------------------------------------------------------------------------


def test_sparkplug_births_and_data_decode_with_the_standard_schema(
    broker: Broker, tmp_path: Path, pb: Any
) -> None:
    cfg = gw_config(tmp_path, broker.port, uns={"enabled": False})
    defs = {m.path: m for m in sparkplug_metrics(cfg)}
    sub = Subscriber(broker.port, ["spBv1.0/#"]).start()

    async def main() -> None:
        sink = SparkplugSink(cfg)
        assert [s.kind for s in mqtt_sinks(cfg)] == ["sparkplug"]
        # values known before the first connection go into the DBIRTH
        await sink.write([sample("pack/l1/filler/temp", -12, unit="degC")])
        await sink.start()
        await until(lambda: sink.sent == 1, what="first sample")
        await sink.write(
            [
                sample("pack/l1/filler/count", 70000),
                sample("pack/l1/filler/temp", -5, unit="degC"),
                sample("pack/l1/filler/speed", 2.5, unit="m/s"),
                sample("pack/l1/capper/running", True),
                sample("pack/l1/capper/recipe", "IPA-33"),
                sample("pack/l1/capper/energy", None, quality=Quality.STALE, reason="timeout"),
            ]
        )
        await until(lambda: sink.sent == 7, what="7 samples")
        await sink.close()

    run(main())
    seen = sub.wait_for(lambda ms: any("NDEATH" in m.topic for m in ms))
    sub.stop()
    topics = [m.topic for m in seen]
    node = f"spBv1.0/{SITE}/%s/gw1"
    assert topics[0] == node % "NBIRTH"
    assert topics[1:3] == [node % "DBIRTH" + "/plc1", node % "DBIRTH" + "/plc2"]
    assert topics[-1] == node % "NDEATH"
    assert all(m.qos == 0 and not m.retain for m in seen[:-1])  # §6.4.19-22: QoS 0

    payloads = [decode(pb, m) for m in seen]
    # seq: 0 on NBIRTH, then +1 per message; none on NDEATH
    seqs = [p.seq for p in payloads[:-1]]
    assert seqs == list(range(len(seqs)))
    assert not payloads[-1].HasField("seq")
    now_ms = time.time() * 1000
    assert all(now_ms - 60_000 < p.timestamp <= now_ms for p in payloads)

    nbirth = {m.name: m for m in payloads[0].metrics}
    assert nbirth["bdSeq"].datatype == pb.UInt64 and nbirth["bdSeq"].long_value == 0
    rebirth = nbirth["Node Control/Rebirth"]
    assert rebirth.datatype == pb.Boolean and rebirth.boolean_value is False
    ndeath = payloads[-1].metrics
    assert [(m.name, m.long_value) for m in ndeath] == [("bdSeq", 0)]

    aliases: dict[int, str] = {m.alias: m.name for m in payloads[0].metrics}
    for p, device in zip(payloads[1:3], ("plc1", "plc2"), strict=True):
        births = {m.name: m for m in p.metrics}
        assert set(births) == {t["path"] for t in TAGS[device]}
        for name, m in births.items():
            d = defs[full(name)]
            assert m.alias == d.alias and m.datatype == int(d.datatype)
            assert m.HasField("timestamp") and m.alias not in aliases
            aliases[m.alias] = name
            units = dict(zip(m.properties.keys, m.properties.values, strict=True))
            if d.unit:
                assert units["engUnit"].type == pb.String
                assert units["engUnit"].string_value == d.unit
        assert births["pack/l1/filler/temp"].datatype == pb.Int16 if device == "plc1" else True
    plc1 = {m.name: m for m in payloads[1].metrics}
    assert metric_value(plc1["pack/l1/filler/temp"]) == -12  # known before connecting
    assert plc1["pack/l1/filler/speed"].datatype == pb.Double  # scaled
    assert plc1["pack/l1/filler/count"].is_null  # nothing known yet

    data = [(m.topic, p) for m, p in zip(seen, payloads, strict=True) if "/DDATA/" in m.topic]
    values: dict[str, Any] = {}
    for _topic, p in data:
        for m in p.metrics:
            assert not m.HasField("name") and not m.HasField("datatype")
            assert m.HasField("alias") and m.HasField("timestamp")
            values[aliases[m.alias]] = m
    assert metric_value(values["pack/l1/filler/count"]) == 70000
    assert metric_value(values["pack/l1/filler/temp"], pb.Int16) == -5
    assert values["pack/l1/filler/speed"].double_value == 2.5
    assert values["pack/l1/capper/running"].boolean_value is True
    assert values["pack/l1/capper/recipe"].string_value == "IPA-33"
    stale = values["pack/l1/capper/energy"]
    assert stale.is_null
    q = dict(zip(stale.properties.keys, stale.properties.values, strict=True))["Quality"]
    assert q.type == pb.Int32 and q.int_value == 500
    # one DDATA per device run, on the device's topic
    assert [t for t, _ in data][-2:] == [node % "DDATA" + "/plc1", node % "DDATA" + "/plc2"]
    # clean close: DDEATH per device before NDEATH
    assert topics[-3:-1] == [node % "DDEATH" + "/plc1", node % "DDEATH" + "/plc2"]


def test_sparkplug_will_rebirth_and_commands(broker: Broker, tmp_path: Path, pb: Any) -> None:
    cfg = gw_config(tmp_path, broker.port, uns={"enabled": False})
    sub = Subscriber(broker.port, ["spBv1.0/#"]).start()
    ncmd = f"spBv1.0/{SITE}/NCMD/gw1"

    def command(topic: str, name: str, value: bool) -> None:
        p = pb.Payload()
        p.timestamp = int(time.time() * 1000)
        m = p.metrics.add()
        m.name, m.datatype, m.boolean_value = name, pb.Boolean, value
        sub.client.publish(topic, p.SerializeToString(), qos=0)

    def births() -> list[Seen]:
        return [m for m in sub.snapshot() if "/NBIRTH/" in m.topic]

    async def main() -> None:
        sink = SparkplugSink(cfg)
        await sink.start()
        await until(lambda: len(births()) == 1, what="NBIRTH")
        await sink.write([sample("pack/l1/filler/count", 1)])
        await until(lambda: sink.sent == 1)
        # a host asks for a rebirth: same bdSeq, seq back to 0, DBIRTHs again
        command(ncmd, "Node Control/Rebirth", True)
        await until(lambda: len(births()) == 2, what="rebirth")
        # commands that would write are ignored: DCMD, other NCMD metrics, garbage
        command(f"spBv1.0/{SITE}/DCMD/gw1/plc1", "pack/l1/filler/count", True)
        command(ncmd, "Node Control/Reboot", True)
        command(ncmd, "Node Control/Rebirth", False)
        sub.client.publish(ncmd, b"\x12\x05\x0a\x10abc", qos=0)
        await until(lambda: sink.commands_ignored == 3 and sink.commands_malformed == 1)
        # the connection dies without DISCONNECT: the broker publishes our will (NDEATH
        # with this session's bdSeq); the next session's NBIRTH has bdSeq + 1
        assert sink._link is not None
        sink._link._force_close()
        await until(lambda: len(births()) == 3, what="NBIRTH after reconnect")
        await sink.write([sample("pack/l1/filler/count", 2)])
        await until(lambda: sink.sent == 2)
        st = sink.status()
        assert st["rebirths"] == 1 and st["sessions"] == 2 and st["bdseq"] == 1
        await sink.close()

    run(main())
    seen = sub.wait_for(lambda ms: sum("/NDEATH/" in m.topic for m in ms) == 2)
    sub.stop()
    kinds = [(m.topic.split("/")[2], decode(pb, m)) for m in seen if "CMD" not in m.topic]

    def bdseq(p: Any) -> int:
        return next(m.long_value for m in p.metrics if m.name == "bdSeq")

    births_ = [p for k, p in kinds if k == "NBIRTH"]
    deaths = [p for k, p in kinds if k == "NDEATH"]
    assert [bdseq(p) for p in births_] == [0, 0, 1]
    assert [bdseq(p) for p in deaths] == [0, 1]  # the will, then the clean close
    assert [p.seq for p in births_] == [0, 0, 0]
    order = [k for k, _ in kinds]
    first_rebirth = order.index("NBIRTH", 1)
    assert order[first_rebirth : first_rebirth + 3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    # after the rebirth, seq continues from the new NBIRTH's 0
    after = [p.seq for _, p in kinds[first_rebirth:] if _ != "NDEATH"][:3]
    assert after == [0, 1, 2]


# -- TLS and authentication ----------------------------------------------------------------


def make_pki(d: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1/localhost."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("conduit test CA"))
        .issuer_name(name("conduit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    d.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = d / "ca.pem", d / "server.pem", d / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


def test_tls_and_password(tmp_path: Path) -> None:
    import subprocess

    from tests.gateway.mqttbroker import MOSQUITTO_PASSWD

    if MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    ca, cert, key = make_pki(tmp_path / "pki")
    passwd = tmp_path / "passwd"
    subprocess.run(
        [MOSQUITTO_PASSWD, "-b", "-c", str(passwd), "gateway", "s3cret pass"], check=True
    )
    subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), "reader", "r"], check=True)
    b = Broker(
        tmp_path / "broker",
        anonymous=False,
        extra=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\npassword_file {passwd}\n",
    )
    b.start()
    try:
        sub = Subscriber(b.port, [f"{ENT}/#"], tls_ca=ca, username="reader", password="r").start()
        tls = {"ca": str(ca)}

        async def main() -> None:
            good = UnsSink(
                gw_config(
                    tmp_path / "good",
                    b.port,
                    tls=tls,
                    username="gateway",
                    password="s3cret pass",
                    sparkplug={"enabled": False},
                )
            )
            wrong = UnsSink(
                gw_config(
                    tmp_path / "wrong",
                    b.port,
                    tls=tls,
                    username="gateway",
                    password="guess",
                    sparkplug={"enabled": False},
                    client_id="intruder",
                )
            )
            plain = UnsSink(  # a TLS listener refuses a client that does not speak it
                gw_config(
                    tmp_path / "plain",
                    b.port,
                    username="gateway",
                    password="s3cret pass",
                    allow_plaintext=True,
                    sparkplug={"enabled": False},
                    client_id="cleartext",
                )
            )
            for s in (good, wrong, plain):
                await s.start()
                await s.write([sample("pack/l1/filler/temp", 7, unit="degC")])
            await until(lambda: good.sent == 1, what="TLS + password delivery")
            await until(lambda: bool(wrong.last_error) and bool(plain.last_error))
            assert good.status()["connected"] and good.status()["tls"]
            assert "refused" in wrong.last_error and "authori" in wrong.last_error.lower()
            assert not wrong.status()["connected"] and wrong.status()["queued_memory"] == 1
            assert not plain.status()["connected"] and plain.sent == 0
            for s in (good, wrong, plain):
                await s.close()

        run(main())
        seen = sub.wait_for(lambda ms: any(m.topic == full("pack/l1/filler/temp") for m in ms))
        sub.stop()
        temp = next(m for m in seen if m.topic == full("pack/l1/filler/temp"))
        assert json.loads(temp.payload)["value"] == 7
    finally:
        b.stop()


def test_untrusted_broker_certificate_is_refused(tmp_path: Path) -> None:
    ca, cert, key = make_pki(tmp_path / "pki")
    other_ca, _, _ = make_pki(tmp_path / "other")
    b = Broker(tmp_path / "broker", extra=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    b.start()
    try:

        async def main() -> None:
            sink = UnsSink(
                gw_config(tmp_path, b.port, tls={"ca": str(other_ca)}, sparkplug={"enabled": False})
            )
            await sink.start()
            await until(lambda: bool(sink.last_error), what="a TLS error")
            assert "CERTIFICATE_VERIFY_FAILED" in sink.last_error
            assert not sink.connected
            await sink.close()

        run(main())
    finally:
        b.stop()


# -- store-and-forward across a broker outage ---------------------------------------------


def uns_values(seen: list[Seen]) -> list[tuple[int, bool, float]]:
    out = []
    for m in seen:
        if "/_gateway/" in m.topic or not m.topic.startswith(ENT):
            continue
        doc = json.loads(m.payload)
        out.append((doc["value"], bool(doc.get("historical")), m.at))
    return out


def first_occurrences(items: list[Any], key: Callable[[Any], int]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for it in items:
        k = key(it)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def test_store_and_forward_across_a_broker_restart(
    tmp_path: Path, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When the replay leaves the gateway (what its rate limit governs): the durable
    # subscriber may reconnect after the gateway and get the broker's backlog in one burst,
    # so arrival times there say nothing about the limiter.
    sent_hist: list[float] = []
    real_publish = MqttLink.publish

    def publish(self: MqttLink, msg: Message) -> Any:
        if msg.topic.startswith(f"{ENT}/") and b'"historical":true' in msg.payload.replace(
            b" ", b""
        ):
            sent_hist.append(time.monotonic())
        return real_publish(self, msg)

    monkeypatch.setattr(MqttLink, "publish", publish)
    b = Broker(tmp_path / "broker")
    b.start()
    rate = 1000.0
    cfg = gw_config(tmp_path, b.port, buffer={"memory_samples": 50, "replay_rate": rate})
    sub = Subscriber(b.port, [f"{ENT}/#", "spBv1.0/#"], client_id="durable", durable=True)
    sub.start()
    tag = "pack/l1/filler/count"
    n_live, n_outage, n_after = 150, 400, 150
    total = n_live + n_outage + n_after
    marks: dict[str, float] = {}

    async def main() -> None:
        sinks: list[MqttSink] = mqtt_sinks(cfg)
        assert [s.kind for s in sinks] == ["uns", "sparkplug"]
        for s in sinks:
            await s.start()
        await until(lambda: all(s.connected for s in sinks), what="connected")
        i = 0

        async def write(n: int, pause: float) -> None:
            nonlocal i
            for _ in range(n):
                i += 1
                batch = [sample(tag, i, seq=i)]
                for s in sinks:
                    await s.write(batch)
                if i % 10 == 0:
                    await asyncio.sleep(pause)

        await write(n_live, 0.005)
        await until(lambda: all(s.sent >= n_live - 20 for s in sinks), what="live delivery")
        b.stop()  # mid-stream: some samples may be in flight
        await until(lambda: not any(s.connected for s in sinks), what="outage noticed")
        await write(n_outage, 0.001)
        for s in sinks:
            st = s.status()
            assert st["queued_disk"] > 0 and st["queued_memory"] <= 50 + 12, st
            assert "connection lost" in st["last_error"] or "refused" in st["last_error"]
        b.start()
        marks["restart"] = time.monotonic()
        await write(n_after, 0.01)
        await until(
            lambda: all(len(s.buffer) == 0 and s.sent >= total for s in sinks),
            timeout=10,
            what="the queue drained",
        )
        for s in sinks:
            st = s.status()
            assert st["dropped"] == 0 and st["sessions"] == 2, st
            assert st["sent_historical"] >= n_outage
        for s in sinks:
            await s.close()

    try:
        run(main(), timeout=30)
        snap = sub.wait_for(
            lambda ms: {v for v, _, _ in uns_values(ms)} >= set(range(1, total + 1)), timeout=5
        )
    finally:
        sub.stop()
        b.stop()

    # UNS: every sample arrived, in order; the ones from the outage flagged historical
    uns = uns_values(snap)
    firsts = first_occurrences(uns, key=lambda x: x[0])
    assert [v for v, _, _ in firsts] == list(range(1, total + 1))
    flags = {v: h for v, h, _ in firsts}
    assert all(flags[v] for v in range(n_live + 1, n_live + n_outage + 1))
    assert not flags[1] and not flags[total]
    # replay was rate-limited: sending the historical samples took at least their share of
    # time (a burst of rate/10 allowed)
    n_hist = len(sent_hist)
    assert n_hist >= n_outage
    assert max(sent_hist) - min(sent_hist) >= (n_hist - rate / 10) / rate * 0.9

    # Sparkplug: the new session's births come before any replayed data
    spb = [(m.topic.split("/")[2], decode(pb, m)) for m in snap if m.topic.startswith("spBv1.0")]
    verbs = [v for v, _ in spb]
    second = [i for i, v in enumerate(verbs) if v == "NBIRTH"][1]
    assert verbs[second : second + 3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    bd = [
        next(m.long_value for m in p.metrics if m.name == "bdSeq") for v, p in spb if v == "NBIRTH"
    ]
    assert bd == [0, 1]
    metrics = [(m.long_value or m.int_value, m.is_historical, i) for i, (v, p) in enumerate(spb)
               if v == "DDATA" for m in p.metrics]  # fmt: skip
    firsts_spb = first_occurrences(metrics, key=lambda x: x[0])
    assert [v for v, _, _ in firsts_spb] == list(range(1, total + 1))
    replayed = [i for v, h, i in firsts_spb if h]
    assert replayed and min(replayed) > second + 2  # after the fresh NBIRTH/DBIRTHs
    assert all(h for v, h, _ in firsts_spb if n_live < v <= n_live + n_outage)
    # seq runs 0..255 and wraps, without a gap, inside each session
    for start, end in ((0, second), (second, len(spb))):
        seqs = [p.seq for v, p in spb[start:end] if v != "NDEATH"]
        assert seqs == [k % 256 for k in range(len(seqs))]


def test_sparkplug_device_death_and_rebirth_follow_staleness(
    broker: Broker, tmp_path: Path, pb: Any
) -> None:
    cfg = gw_config(tmp_path, broker.port, uns={"enabled": False})
    sub = Subscriber(broker.port, ["spBv1.0/#"]).start()
    plc2 = [t["path"] for t in TAGS["plc2"]]

    async def main() -> None:
        sink = SparkplugSink(cfg)
        await sink.start()
        await until(lambda: sink.connected)
        stale = [sample(p, None, quality=Quality.STALE, reason="timeout") for p in plc2]
        await sink.write(stale[:2])  # not yet every tag: still alive
        await sink.write([sample("pack/l1/filler/count", 5)])
        await sink.write(stale[2:])  # now every tag of plc2 is stale
        await sink.write(stale)  # a dead device stays quiet
        await sink.write([sample("pack/l1/capper/running", True)])  # it answers again
        await until(lambda: sink.sent == 8)
        st = sink.status()
        assert st["device_deaths"] == 1 and st["device_births"] == 1
        await sink.close()

    run(main())
    seen = sub.wait_for(lambda ms: any("/NDEATH/" in m.topic for m in ms))
    sub.stop()
    flow = [(m.topic.split("/", 2)[2], decode(pb, m)) for m in seen]
    names = [t for t, _ in flow]
    dev = "gw1/plc2"
    assert names == [
        "NBIRTH/gw1", "DBIRTH/gw1/plc1", f"DBIRTH/{dev}",
        f"DDATA/{dev}", "DDATA/gw1/plc1", f"DDATA/{dev}", f"DDEATH/{dev}",
        f"DBIRTH/{dev}", f"DDATA/{dev}",
        "DDEATH/gw1/plc1", f"DDEATH/{dev}", "NDEATH/gw1",
    ]  # fmt: skip
    assert [p.seq for t, p in flow[:-1]] == list(range(len(flow) - 1))
    death = flow[names.index(f"DDEATH/{dev}")][1]
    assert not death.metrics and death.HasField("timestamp")  # DDEATH: timestamp, seq
    reborn = flow[7][1]
    running = next(m for m in reborn.metrics if m.name == "pack/l1/capper/running")
    assert running.boolean_value is True  # the new birth carries the fresh value


def test_samples_queued_while_down_survive_a_gateway_restart(
    broker: Broker, tmp_path: Path
) -> None:
    cfg = gw_config(tmp_path, broker.port, sparkplug={"enabled": False})
    broker.stop()  # the broker is down for the whole first run of the gateway
    sub = None

    async def first_run() -> None:
        sink = UnsSink(cfg)
        await sink.start()
        await sink.write([sample("pack/l1/filler/count", i) for i in range(1, 31)])
        await until(lambda: bool(sink.last_error), what="a failed connect")
        assert not sink.connected and sink.sent == 0
        await sink.close()  # the memory tier goes to disk

    async def second_run() -> None:
        sink = UnsSink(cfg)
        assert len(sink.buffer) == 30 and sink.buffer.disk_count == 30
        await sink.start()
        await until(lambda: sink.sent == 30, what="replay after restart")
        assert sink.sent_historical == 30 and len(sink.buffer) == 0
        await sink.close()

    run(first_run())
    broker.start()
    try:
        sub = Subscriber(broker.port, [f"{ENT}/#"]).start()
        run(second_run())
        seen = sub.wait_for(lambda ms: len(uns_values(ms)) >= 30)
    finally:
        if sub is not None:
            sub.stop()
    got = uns_values(seen)
    assert [v for v, _, _ in got] == list(range(1, 31))
    assert all(h for _, h, _ in got)
