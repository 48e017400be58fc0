"""A live exchange with the real asyncua stack (the lab packaging machine's stack), on
loopback through an in-process TCP proxy that records every byte.

Golden data is asyncua's: its decoder reads the recorded bytes (service types, request
handles, service results), its client API returns what the server said (values read,
BuildInfo, endpoints, status codes of refused services), and its certificate generator
made the certificates whose thumbprints the decoder must report. No capture or root is
needed: the proxy sees the same byte stream a capture on ``lo`` would reassemble.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("asyncua")

from asyncua import Client, Server, ua, uamethod
from asyncua.server.user_managers import UserManager

from otconduit.model import OpStatus
from otconduit.protocols.base import Endpoints

from .opcua_helpers import Decoded, Recorded, decode, peer_messages, run_exchange

pytestmark = pytest.mark.slow

EP = Endpoints(
    transport="tcp",
    client_ip="127.0.0.1",
    client_port=50000,
    server_ip="127.0.0.2",
    server_port=4840,
)
BUILD = ("urn:conduit:test", "Conduit Labs", "Conduit Test Server", "1.2.3", "42")
BUILD_DATE = dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
USER, PASSWORD = "operator", "s3cret-pass"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


class _Users(UserManager):
    """Accepts the one test user (and anonymous)."""

    def get_user(
        self, iserver: Any, username: Any = None, password: Any = None, certificate: Any = None
    ) -> Any:
        from asyncua.crypto.permission_rules import User, UserRole

        if username is None:
            return User(role=UserRole.User)
        if username == USER and password == PASSWORD:
            return User(role=UserRole.Admin, name=username)
        return None


async def _server(port: int, *, secured: Path | None = None) -> Server:
    server = Server(user_manager=_Users())
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/conduit/test")
    server.set_server_name("Conduit Test Server")
    await server.set_build_info(*BUILD, BUILD_DATE)
    if secured is not None:
        server.set_security_policy(
            [
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ]
        )
        await server.load_certificate(str(secured / "server.der"))
        await server.load_private_key(str(secured / "server.pem"))
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_security_IDs(["Anonymous", "Username"])
    ns = await server.register_namespace("urn:conduit:test:ns")
    machine = await server.nodes.objects.add_object(
        ua.NodeId("Machine", ns), ua.QualifiedName("Machine", ns)
    )
    speed = await machine.add_variable(
        ua.NodeId("Machine.Speed", ns),
        ua.QualifiedName("Speed", ns),
        ua.Variant(7, ua.VariantType.Int32),
    )
    await speed.set_writable()

    @uamethod
    def start(parent: Any, x: int) -> int:
        return x * 2

    await machine.add_method(
        ua.NodeId("Machine.Start", ns),
        ua.QualifiedName("Start", ns),
        start,
        [ua.VariantType.Int32],
        [ua.VariantType.Int32],
    )
    await server.start()
    await server.historize_node_data_change(speed, period=None, count=100)
    server.conduit_ns = ns  # type: ignore[attr-defined]
    return server


async def _attempt(coro: Any) -> int:
    """Run a client call the server may refuse: its StatusCode (0: accepted)."""
    try:
        await coro
    except ua.UaStatusCodeError as e:
        return int(e.code)
    return 0


async def _plain_scenario(url: str, server: Server) -> dict[str, Any]:
    ns = server.conduit_ns  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    client = Client(url)
    client.application_uri = "urn:conduit:test:hmi"
    async with client:
        speed = client.get_node(ua.NodeId("Machine.Speed", ns))
        machine = client.get_node(ua.NodeId("Machine", ns))
        out["read"] = await speed.read_value()
        await speed.write_value(ua.Variant(11, ua.VariantType.Int32))
        out["call"] = await machine.call_method(
            ua.NodeId("Machine.Start", ns), ua.Variant(5, ua.VariantType.Int32)
        )
        out["children"] = len(await machine.get_children())
        out["build"] = [
            await client.get_node(ua.NodeId(i)).read_value() for i in (2261, 2262, 2263, 2264, 2265)
        ]
        out["history"] = len(await speed.read_raw_history())
        await client.nodes.root.get_child(["0:Objects", f"{ns}:Machine"])
        out["add_nodes"] = await _attempt(
            machine.add_object(ua.NodeId("Machine.Extra", ns), ua.QualifiedName("Extra", ns))
        )
        out["delete_nodes"] = await _attempt(client.delete_nodes([speed]))
        sub = await client.create_subscription(50, None)
        await sub.subscribe_data_change(speed)
        await asyncio.sleep(0.3)
        await sub.delete()
        out["endpoints"] = await client.get_endpoints()
        out["servers"] = await client.find_servers()
    # A second connection reads the ServerStatus and BuildInfo structures.
    status = Client(url)
    async with status:
        out["status"] = await status.get_node(ua.NodeId(2256)).read_value()
        out["build_info"] = await status.get_node(ua.NodeId(2260)).read_value()
    # A third logs in with a user name.
    user = Client(url)
    user.set_user(USER)
    user.set_password(PASSWORD)
    async with user:
        out["user_read"] = await user.get_node(ua.NodeId(2261)).read_value()
    return out


@pytest.fixture(scope="module")
def plain() -> tuple[list[Recorded], dict[str, Any]]:
    logging.disable(logging.CRITICAL)
    return run_exchange(_server, _plain_scenario)


def _decoded(record: Recorded) -> Decoded:
    return decode(EP, record.as_flow())


def test_every_message_matches_asyncua(plain: tuple[list[Recorded], dict[str, Any]]) -> None:
    """Each request asyncua decodes from the recorded bytes is one operation with its
    service and request handle; each response answers it with its service result."""
    records, _ = plain
    assert len(records) == 3
    for record in records:
        d = _decoded(record)
        assert not d.malformed
        ops = [o for o in d.operations if o.function != "Hello"]
        peer = peer_messages(record)
        requests = [m for m in peer if m.type_name and m.type_name.endswith("Request")]
        responses = [m for m in peer if m.type_name and not m.type_name.endswith("Request")]
        assert len(ops) == len(requests)
        by_handle = {o.transaction_id: o for o in ops}
        assert len(by_handle) == len(ops)
        for m in requests:
            op = by_handle[m.request_handle]
            assert op.function + "Request" == m.type_name
            assert op.detail["request_id"] == m.request_id
        for m in responses:
            op = by_handle[m.request_handle]
            if m.type_name == "ServiceFault":
                assert op.detail["response_type"] == "ServiceFault"
            else:
                assert op.function + "Response" == m.type_name
            assert op.response_frame is not None and (op.latency_ns or 0) >= 0
            result = m.service_result or 0
            if result & 0x80000000:
                assert op.status == OpStatus.EXCEPTION and op.exception_code == result
        hello = [o for o in d.operations if o.function == "Hello"]
        (hel,) = [m for m in peer if m.msg_type == "HEL"]
        assert hello[0].detail["endpoint_url"] == hel.obj.EndpointUrl
        assert hello[0].detail["hello"]["receive_buffer_size"] == hel.obj.ReceiveBufferSize


def test_values_services_and_refusals(plain: tuple[list[Recorded], dict[str, Any]]) -> None:
    records, out = plain
    d = _decoded(records[0])
    ops = d.operations
    functions = Counter(o.function for o in ops)
    for name in (
        "OpenSecureChannel",
        "CreateSession",
        "ActivateSession",
        "Read",
        "Write",
        "Call",
        "Browse",
        "HistoryRead",
        "TranslateBrowsePathsToNodeIds",
        "AddNodes",
        "DeleteNodes",
        "CreateSubscription",
        "CreateMonitoredItems",
        "Publish",
        "DeleteSubscriptions",
        "GetEndpoints",
        "FindServers",
        "CloseSession",
        "CloseSecureChannel",
    ):
        assert functions[name] >= 1, name
    first_read = next(o for o in ops if o.function == "Read")
    assert first_read.detail["values"][0]["value"] == out["read"] == 7
    write = next(o for o in ops if o.function == "Write")
    assert write.values == (11,) and write.operation == "write" and write.status == "ok"
    call = next(o for o in ops if o.function == "Call")
    assert call.operation == "control" and call.detail["methods"][0]["arguments"] == [5]
    assert call.detail["output_arguments"] == [1] and out["call"] == 10
    for name, code in (("AddNodes", out["add_nodes"]), ("DeleteNodes", out["delete_nodes"])):
        op = next(o for o in ops if o.function == name)
        assert code and op.operation == "program"
        assert op.status == OpStatus.EXCEPTION and op.exception_code == code
    history = next(o for o in ops if o.function == "HistoryRead")
    assert history.detail["details"] == "ReadRawModifiedDetails" and history.status == "ok"
    translate = next(o for o in ops if o.function == "TranslateBrowsePathsToNodeIds")
    ns = out["endpoints"] and translate.detail["paths"][0]["path"].split("/")[-1].split(":")[0]
    assert translate.detail["paths"][0]["path"] == f"/Objects/{ns}:Machine"
    endpoints = next(o for o in ops if o.function == "GetEndpoints").detail["endpoints"]
    assert [e["endpoint_url"] for e in endpoints] == [e.EndpointUrl for e in out["endpoints"]]
    servers = next(o for o in ops if o.function == "FindServers").detail["servers"]
    assert [s["application_uri"] for s in servers] == [s.ApplicationUri for s in out["servers"]]
    publish = [o for o in ops if o.function == "Publish"]
    assert any((o.quantity or 0) >= 1 for o in publish)  # a data change was delivered


def _claims(d: Decoded, source: str) -> dict[tuple[str, str], str]:
    return {(c.ip, c.attribute): c.value for c in d.claims if c.source == source}


def test_identity_claims(plain: tuple[list[Recorded], dict[str, Any]]) -> None:
    records, out = plain
    main, status, _ = (_decoded(r) for r in records)
    server = EP.server_ip
    build = _claims(main, "opcua_buildinfo")
    names = ("product_name", "product_uri", "vendor", "software_version", "build_number")
    assert [build[(server, n)] for n in names] == out["build"]
    assert out["build"] == [BUILD[2], BUILD[0], BUILD[1], BUILD[3], BUILD[4]]
    # ServerStatus and BuildInfo read as structures, on a connection of their own.
    structured = _claims(status, "opcua_buildinfo")
    bi = out["build_info"]
    assert (
        structured[(server, "vendor")]
        == bi.ManufacturerName
        == out["status"].BuildInfo.ManufacturerName
    )
    assert structured[(server, "product_name")] == bi.ProductName
    assert structured[(server, "software_version")] == bi.SoftwareVersion
    assert structured[(server, "build_date")] == bi.BuildDate.date().isoformat() == "2024-05-06"
    endpoint = out["endpoints"][0].Server
    described = _claims(main, "opcua_endpoints")
    assert described[(server, "application_uri")] == endpoint.ApplicationUri
    assert described[(server, "product_uri")] == endpoint.ProductUri
    assert described[(server, "application_name")] == endpoint.ApplicationName.Text
    client = _claims(main, "opcua_session")
    assert client[(EP.client_ip, "application_uri")] == "urn:conduit:test:hmi"
    assert all(c.ip == server for c in main.claims if c.source != "opcua_session")


def test_user_name_activation(plain: tuple[list[Recorded], dict[str, Any]]) -> None:
    records, out = plain
    d = _decoded(records[2])
    (activate,) = [o for o in d.operations if o.function == "ActivateSession"]
    peer = next(m for m in peer_messages(records[2]) if m.type_name == "ActivateSessionRequest")
    token = peer.obj.Parameters.UserIdentityToken
    assert activate.detail["identity_token"] == "username" == "username"
    assert activate.detail["user_name"] == token.UserName == USER
    assert activate.detail["password_encrypted"] == bool(token.EncryptionAlgorithm)
    assert activate.status == "ok" and out["user_read"] == BUILD[2]
    assert PASSWORD not in repr(d.events)
    anonymous = next(o for o in _decoded(records[1]).operations if o.function == "ActivateSession")
    assert anonymous.detail["identity_token"] == "anonymous"


# --- secured channels ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    where = tmp_path_factory.mktemp("ua-certs")
    server_use = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]

    async def make() -> None:
        await setup_self_signed_certificate(
            where / "server.pem",
            where / "server.der",
            "urn:conduit:test:server",
            "localhost",
            server_use,
            {"commonName": "Conduit Test Server"},
        )
        await setup_self_signed_certificate(
            where / "client.pem",
            where / "client.der",
            "urn:conduit:test:client",
            "localhost",
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "Conduit Test Client"},
        )

    asyncio.run(make())
    return where


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
def test_secured_channel(certificates: Path, mode: str) -> None:
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
    from asyncua.ua.ua_binary import header_from_binary

    async def make(port: int) -> Server:
        return await _server(port, secured=certificates)

    async def scenario(url: str, server: Server) -> list[Any]:
        client = Client(url)
        client.application_uri = "urn:conduit:test:client"
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            str(certificates / "client.der"),
            str(certificates / "client.pem"),
            server_certificate=str(certificates / "server.der"),
            mode=getattr(ua.MessageSecurityMode, mode),
        )
        async with client:
            return [await client.get_node(ua.NodeId(2261)).read_value() for _ in range(4)]

    records, values = run_exchange(make, scenario)
    (record,) = records
    d = _decoded(record)
    assert not d.malformed
    sha1 = {
        n: hashlib.sha1((certificates / f"{n}.der").read_bytes()).hexdigest()
        for n in ("server", "client")
    }
    (opn,) = [o for o in d.operations if o.function == "OpenSecureChannel"]
    assert opn.detail["security_policy_uri"] == SecurityPolicyBasic256Sha256.URI
    assert opn.detail["encrypted"] is True and opn.detail["security_mode"] == mode
    assert opn.detail["client_certificate_sha1"] == sha1["client"]
    assert opn.detail["server_certificate_sha1"] == sha1["server"]
    channel = _claims(d, "opcua_channel")
    assert channel[(EP.server_ip, "certificate_sha1")] == sha1["server"]
    assert channel[(EP.client_ip, "certificate_sha1")] == sha1["client"]
    # Count the MSG chunk headers asyncua reads from each direction (headers are clear).
    from asyncua.common.utils import Buffer

    msg_chunks = [0, 0]
    clo_chunks = 0
    for direction in (0, 1):
        buf = Buffer(b"".join(data for dr, data, _ in record.chunks if dr == direction))
        while len(buf) >= 8:
            header = header_from_binary(buf)
            buf.skip(header.body_size)
            msg_chunks[direction] += header.MessageType == ua.MessageType.SecureMessage
            clo_chunks += header.MessageType == ua.MessageType.SecureClose
    if mode == "Sign":
        reads = [o for o in d.operations if o.function == "Read"]
        assert len(reads) == 4 and all(o.status == "ok" for o in reads)
        assert _claims(d, "opcua_buildinfo")[(EP.server_ip, "product_name")] == values[0]
        assert not [o for o in d.operations if o.function == "EncryptedMessages"]
        session = _claims(d, "opcua_session")
        assert session[(EP.client_ip, "application_uri")] == "urn:conduit:test:client"
    else:
        assert not [o for o in d.operations if o.function in ("Read", "CreateSession")]
        (counted,) = [o for o in d.operations if o.function == "EncryptedMessages"]
        assert counted.quantity == sum(msg_chunks) == d.decoder.encrypted_chunks - clo_chunks
        assert [counted.detail["client_messages"], counted.detail["server_messages"]] == msg_chunks
        assert counted.detail["security_mode"] == "SignAndEncrypt"
    (close,) = [o for o in d.operations if o.function == "CloseSecureChannel"]
    assert close.detail.get("encrypted", False) == (mode == "SignAndEncrypt")
