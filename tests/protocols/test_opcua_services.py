"""Services and channel behaviour the corpus and the live exchange do not show, on bytes
built by asyncua's own encoder and chunker (a peer implementation of OPC 10000-6), plus
the few messages asyncua cannot build (ReverseHello), built by hand after §7.1.2.

Covered: every identity token type, HistoryUpdate, node management, BrowseNext,
FindServers with one and several servers, ServiceFault, Error after Hello, ReverseHello,
chunked messages (joined, interleaved, aborted), Publish notification counts, Variants of
every built-in type, the reassembly and buffer limits, gaps, reordered directions,
encrypted traffic without a handshake, and OpenSecureChannel renewals.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("asyncua")

from asyncua import ua
from asyncua.common.connection import MessageChunk
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.ua.ua_binary import (
    header_to_binary,
    struct_to_binary,
    uatcp_to_binary,
    variant_to_binary,
)

from otconduit.model import OpClass, OpStatus
from otconduit.protocols.events import Malformed
from otconduit.protocols.opcua.binary import Reader, plain
from otconduit.protocols.opcua.secure import POLICY_PREFIX

from .opcua_helpers import (
    C2S,
    ENDPOINTS,
    S2C,
    Decoded,
    Peer,
    decode,
    request,
    response,
    split_chunks,
)

Msg = tuple[int, bytes]


def run(messages: Sequence[Msg], **kw: Any) -> Decoded:
    chunks = [(d, data, len(data), i + 1, (i + 1) * 1000) for i, (d, data) in enumerate(messages)]
    return decode(ENDPOINTS, chunks, **kw)


def exchange(req: Any, resp: Any, rid: int = 2) -> Decoded:
    return run([(C2S, Peer().frame(req, rid)), (S2C, Peer().frame(resp, rid))])


def only(d: Decoded, function: str) -> Any:
    ops = [o for o in d.operations if o.function == function]
    assert len(ops) == 1, [o.function for o in d.operations]
    return ops[0]


# --- identity tokens ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate() -> bytes:
    from asyncua.crypto.cert_gen import generate_private_key, generate_self_signed_app_certificate
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    key = generate_private_key()
    names = [x509.UniformResourceIdentifier("urn:conduit:user")]
    cert = generate_self_signed_app_certificate(
        key, "urn:conduit:user", {"commonName": "user"}, names, extended=[]
    )
    return bytes(cert.public_bytes(Encoding.DER))


def _activate(token: Any) -> dict[str, Any]:
    req = request(ua.ActivateSessionRequest, 9, UserIdentityToken=token)
    resp = response(ua.ActivateSessionResponse, 9)
    op = only(exchange(req, resp), "ActivateSession")
    assert op.operation == OpClass.SESSION and op.status == OpStatus.OK
    return dict(op.detail)


def test_identity_token_types(certificate: bytes) -> None:
    assert _activate(ua.AnonymousIdentityToken(PolicyId="anon"))["identity_token"] == "anonymous"
    plain_user = _activate(ua.UserNameIdentityToken(PolicyId="u", UserName="bob", Password=b"pw"))
    assert plain_user["identity_token"] == "username" and plain_user["user_name"] == "bob"
    assert plain_user["password_present"] and not plain_user["password_encrypted"]
    sealed = _activate(
        ua.UserNameIdentityToken(
            PolicyId="u",
            UserName="bob",
            Password=b"\x01" * 256,
            EncryptionAlgorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep",
        )
    )
    assert sealed["password_encrypted"] and sealed["password_encryption"].endswith("rsa-oaep")
    x509 = _activate(ua.X509IdentityToken(PolicyId="cert", CertificateData=certificate))
    assert x509["identity_token"] == "x509"
    assert x509["user_certificate_sha1"] == hashlib.sha1(certificate).hexdigest()
    issued = _activate(ua.IssuedIdentityToken(PolicyId="jwt", TokenData=b"abc.def.ghi"))
    assert issued["identity_token"] == "issued" and issued["token_length"] == 11
    assert "password" not in plain_user and "bob" not in str(plain_user.get("password_present"))


# --- services the captures lack ---------------------------------------------------------------


def test_history_update_is_a_write() -> None:
    details = [
        ua.UpdateDataDetails(NodeId=ua.NodeId("Temp", 2)),
        ua.DeleteRawModifiedDetails(NodeId=ua.NodeId(99, 3)),
    ]
    req = request(ua.HistoryUpdateRequest, 4, HistoryUpdateDetails=details)
    results = [ua.HistoryUpdateResult(StatusCode=ua.StatusCode(0)) for _ in details]
    resp = response(ua.HistoryUpdateResponse, 4)
    resp.Results = results
    op = only(exchange(req, resp), "HistoryUpdate")
    assert op.operation == OpClass.WRITE and op.function_code == 700 and op.quantity == 2
    assert op.detail["updates"] == [
        {"details": "UpdateDataDetails", "node": "ns=2;s=Temp"},
        {"details": "DeleteRawModifiedDetails", "node": "ns=3;i=99"},
    ]
    assert op.status == OpStatus.OK and op.transaction_id == 4


def test_node_management_is_program() -> None:
    add = request(
        ua.AddReferencesRequest,
        5,
        ReferencesToAdd=[
            ua.AddReferencesItem(
                SourceNodeId=ua.NodeId(85),
                ReferenceTypeId=ua.NodeId(35),
                IsForward=True,
                TargetNodeId=ua.ExpandedNodeId("Pump", 2),
                TargetNodeClass=ua.NodeClass.Object,
            )
        ],
    )
    bad = ua.StatusCodes.BadNodeIdUnknown
    d = exchange(add, response(ua.AddReferencesResponse, 5, Results=[ua.StatusCode(bad)]))
    op = only(d, "AddReferences")
    assert op.operation == OpClass.PROGRAM and op.status == OpStatus.EXCEPTION
    assert op.exception == "BadNodeIdUnknown" and op.exception_code == bad
    assert op.detail["references"] == [
        {"source": "i=85", "reference_type": "i=35", "target": "ns=2;s=Pump", "forward": True}
    ]
    delete = request(
        ua.DeleteNodesRequest,
        6,
        NodesToDelete=[
            ua.DeleteNodesItem(NodeId=ua.NodeId("Pump", 2), DeleteTargetReferences=True)
        ],
    )
    op = only(
        exchange(delete, response(ua.DeleteNodesResponse, 6, Results=[ua.StatusCode(0)])),
        "DeleteNodes",
    )
    assert op.operation == OpClass.PROGRAM and op.status == OpStatus.OK
    assert op.detail["nodes"] == [{"node": "ns=2;s=Pump", "delete_target_references": True}]
    drop = request(
        ua.DeleteReferencesRequest,
        8,
        ReferencesToDelete=[
            ua.DeleteReferencesItem(
                SourceNodeId=ua.NodeId(85),
                ReferenceTypeId=ua.NodeId(35),
                IsForward=False,
                TargetNodeId=ua.ExpandedNodeId("Pump", 2),
                DeleteBidirectional=True,
            )
        ],
    )
    op = only(
        exchange(drop, response(ua.DeleteReferencesResponse, 8, Results=[ua.StatusCode(0)])),
        "DeleteReferences",
    )
    assert op.operation == OpClass.PROGRAM and op.detail["references"][0]["forward"] is False


def test_browse_next() -> None:
    req = request(
        ua.BrowseNextRequest,
        3,
        ReleaseContinuationPoints=False,
        ContinuationPoints=[b"cp1", b"cp2"],
    )
    result = ua.BrowseResult(
        StatusCode=ua.StatusCode(0),
        References=[ua.ReferenceDescription(BrowseName=ua.QualifiedName("Valve", 2))],
    )
    resp = response(ua.BrowseNextResponse, 3, Results=[result, ua.BrowseResult()])
    op = only(exchange(req, resp), "BrowseNext")
    assert op.operation == OpClass.READ and op.quantity == 2
    assert op.detail["browse_names"] == ["2:Valve"] and op.detail["references"] == [1, 0]


def _app(uri: str, name: str) -> Any:
    return ua.ApplicationDescription(
        ApplicationUri=uri,
        ProductUri=f"{uri}:product",
        ApplicationName=ua.LocalizedText(name),
        ApplicationType=ua.ApplicationType.Server,
    )


def test_find_servers_claims_only_a_single_server() -> None:
    req = request(ua.FindServersRequest, 2, EndpointUrl="opc.tcp://lds:4840")
    one = exchange(req, response(ua.FindServersResponse, 2, Servers=[_app("urn:a", "A")]))
    op = only(one, "FindServers")
    assert op.operation == OpClass.IDENTITY and op.detail["endpoint_url"] == "opc.tcp://lds:4840"
    claims = {(c.attribute, c.value, c.source) for c in one.claims}
    assert claims == {
        ("application_uri", "urn:a", "opcua_endpoints"),
        ("product_uri", "urn:a:product", "opcua_endpoints"),
        ("application_name", "A", "opcua_endpoints"),
    }
    assert all(c.ip == ENDPOINTS.server_ip for c in one.claims)
    many = exchange(
        req, response(ua.FindServersResponse, 2, Servers=[_app("urn:a", "A"), _app("urn:b", "B")])
    )
    assert [s["application_uri"] for s in only(many, "FindServers").detail["servers"]] == [
        "urn:a",
        "urn:b",
    ]
    assert not many.claims  # a discovery server listing others: not about itself


def test_service_fault_answers_a_write() -> None:
    req = request(
        ua.WriteRequest,
        12,
        NodesToWrite=[
            ua.WriteValue(
                NodeId=ua.NodeId("Setpoint", 2), AttributeId=13, Value=ua.DataValue(ua.Variant(3.5))
            )
        ],
    )
    fault = ua.ServiceFault()
    fault.ResponseHeader.RequestHandle = 12
    fault.ResponseHeader.ServiceResult = ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
    op = only(exchange(req, fault), "Write")
    assert op.status == OpStatus.EXCEPTION and op.exception == "BadUserAccessDenied"
    assert op.detail["response_type"] == "ServiceFault"
    assert op.detail["nodes"][0]["value"] == 3.5 and op.values is None  # not an integer


def test_error_after_hello() -> None:
    hello = ua.Hello(
        EndpointUrl="opc.tcp://plc:4840/x", ReceiveBufferSize=8192, SendBufferSize=8192
    )
    error = ua.ErrorMessage(
        Error=ua.StatusCode(ua.StatusCodes.BadTcpEndpointUrlInvalid), Reason="no such endpoint"
    )
    d = run(
        [
            (C2S, uatcp_to_binary(ua.MessageType.Hello, hello)),
            (S2C, uatcp_to_binary(ua.MessageType.Error, error)),
        ]
    )
    op = only(d, "Hello")
    assert op.status == OpStatus.EXCEPTION and op.exception == "BadTcpEndpointUrlInvalid"
    assert (
        op.detail["reason"] == "no such endpoint"
        and op.detail["endpoint_url"] == "opc.tcp://plc:4840/x"
    )
    assert op.detail["hello"]["receive_buffer_size"] == 8192 and op.latency_ns == 1000


def _reverse_hello(server_uri: str, url: str) -> bytes:
    """OPC 10000-6 §7.1.2.6: 'RHEF', size, ServerUri String, EndpointUrl String."""
    body = b"".join(struct.pack("<i", len(s.encode())) + s.encode() for s in (server_uri, url))
    return b"RHEF" + struct.pack("<I", 8 + len(body)) + body


def test_reverse_hello_turns_the_roles() -> None:
    """A server that dials out (reverse connect) is the TCP client: the OPC UA client's
    requests then run from the TCP server side."""
    hello = uatcp_to_binary(ua.MessageType.Hello, ua.Hello(EndpointUrl="opc.tcp://plc:4840"))
    ack = uatcp_to_binary(ua.MessageType.Acknowledge, ua.Acknowledge())
    read = request(
        ua.ReadRequest, 1, NodesToRead=[ua.ReadValueId(NodeId=ua.NodeId(2258), AttributeId=13)]
    )
    answer = response(
        ua.ReadResponse, 1, Results=[ua.DataValue(ua.Variant(5, ua.VariantType.Int32))]
    )
    d = run(
        [
            (C2S, _reverse_hello("urn:plc", "opc.tcp://plc:4840")),
            (S2C, hello),
            (C2S, ack),
            (S2C, Peer().frame(read, 1)),
            (C2S, Peer().frame(answer, 1)),
        ]
    )
    rhe, hel, rd = d.operations
    assert rhe.function == "ReverseHello" and rhe.src_ip == ENDPOINTS.client_ip
    assert rhe.detail["server_uri"] == "urn:plc" and rhe.status == OpStatus.OK
    assert hel.function == "Hello" and hel.src_ip == ENDPOINTS.server_ip and hel.status == "ok"
    assert (
        rd.function == "Read"
        and rd.src_ip == ENDPOINTS.server_ip
        and rd.dst_ip == ENDPOINTS.client_ip
    )
    assert rd.detail["values"] == [{"type": "Int32", "value": 5}] and "from_server" not in rd.detail


# --- chunking ----------------------------------------------------------------------------------


def _big_write(handle: int, text: str) -> Any:
    value = ua.DataValue(ua.Variant(text, ua.VariantType.String))
    return request(
        ua.WriteRequest,
        handle,
        NodesToWrite=[ua.WriteValue(NodeId=ua.NodeId("Recipe", 2), AttributeId=13, Value=value)],
    )


def test_chunked_messages_are_joined_and_may_interleave() -> None:
    peer = Peer(max_chunk=256)
    first = split_chunks(peer.frame(_big_write(1, "A" * 1500), 11))
    second = split_chunks(peer.frame(_big_write(2, "B" * 900), 12))
    assert len(first) > 3 and len(second) > 2 and first[0][3:4] == b"C"
    interleaved = [c for pair in zip(first, second, strict=False) for c in pair]
    interleaved += first[len(second) :]
    answers = [
        Peer().frame(response(ua.WriteResponse, h, Results=[ua.StatusCode(0)]), r)
        for h, r in ((2, 12), (1, 11))
    ]
    d = run([(C2S, c) for c in interleaved] + [(S2C, a) for a in answers])
    writes = sorted(
        (o for o in d.operations if o.function == "Write"), key=lambda o: o.transaction_id
    )
    assert [o.detail["request_chunks"] for o in writes] == [len(first), len(second)]
    assert [o.detail["nodes"][0]["value"][:3] for o in writes] == ["AAA", "BBB"]
    assert [o.detail["request_size"] for o in writes] == [
        sum(map(len, first)),
        sum(map(len, second)),
    ]
    assert all(o.status == OpStatus.OK for o in writes) and not d.malformed


def _abort_chunk(channel_id: int, request_id: int, code: int, reason: str) -> bytes:
    chunk = MessageChunk(
        SecurityPolicyNone().symmetric_cryptography,
        struct_to_binary(ua.ErrorMessage(Error=ua.StatusCode(code), Reason=reason)),
        ua.MessageType.SecureMessage,
        ua.ChunkType.Abort,
    )
    chunk.MessageHeader.ChannelId = channel_id
    chunk.SecurityHeader.TokenId = 3
    chunk.SequenceHeader.RequestId = request_id
    chunk.SequenceHeader.SequenceNumber = 99
    return bytes(chunk.to_binary())


def test_abort_chunks() -> None:
    code = ua.StatusCodes.BadResponseTooLarge
    read = request(
        ua.ReadRequest, 21, NodesToRead=[ua.ReadValueId(NodeId=ua.NodeId(2261), AttributeId=13)]
    )
    big = split_chunks(
        Peer(max_chunk=256).frame(
            response(ua.ReadResponse, 21, Results=[ua.DataValue(ua.Variant("x" * 900))]), 4
        )
    )
    d = run(
        [
            (C2S, Peer().frame(read, 4)),
            (S2C, big[0]),
            (S2C, big[1]),
            (S2C, _abort_chunk(7, 4, code, "too big")),
        ]
    )
    op = only(d, "Read")
    assert op.status == OpStatus.EXCEPTION and op.exception == "BadResponseTooLarge"
    assert op.detail["aborted"] is True and op.detail["reason"] == "too big"
    client_gives_up = split_chunks(Peer(max_chunk=256).frame(_big_write(5, "C" * 900), 6))
    d = run(
        [
            (C2S, client_gives_up[0]),
            (C2S, _abort_chunk(7, 6, ua.StatusCodes.BadRequestCancelledByClient, "")),
        ]
    )
    op = only(d, "Abort")
    assert op.status == OpStatus.EXCEPTION and op.exception == "BadRequestCancelledByClient"
    assert not d.malformed  # the partial message is dropped by the abort, not left over


def test_publish_counts_notifications() -> None:
    items = [
        ua.MonitoredItemNotification(ClientHandle=i, Value=ua.DataValue(ua.Variant(i)))
        for i in range(3)
    ]
    resp = response(ua.PublishResponse, 30, SubscriptionId=4)
    resp.Parameters.NotificationMessage.SequenceNumber = 17
    resp.Parameters.NotificationMessage.NotificationData = [
        ua.DataChangeNotification(MonitoredItems=items)
    ]
    req = request(
        ua.PublishRequest, 30, SubscriptionAcknowledgements=[ua.SubscriptionAcknowledgement(4, 16)]
    )
    op = only(exchange(req, resp), "Publish")
    assert op.quantity == 3 and op.detail["subscription_id"] == 4
    assert op.detail["sequence_number"] == 17 and op.detail["acknowledgements"] == 1


# --- Variants of every built-in type -----------------------------------------------------------

VARIANTS = [
    ua.Variant(True),
    ua.Variant(-5, ua.VariantType.SByte),
    ua.Variant(200, ua.VariantType.Byte),
    ua.Variant(-300, ua.VariantType.Int16),
    ua.Variant(60000, ua.VariantType.UInt16),
    ua.Variant(-70000, ua.VariantType.Int32),
    ua.Variant(4000000000, ua.VariantType.UInt32),
    ua.Variant(-(2**40), ua.VariantType.Int64),
    ua.Variant(2**63, ua.VariantType.UInt64),
    ua.Variant(1.5, ua.VariantType.Float),
    ua.Variant(-2.25, ua.VariantType.Double),
    ua.Variant("héllo", ua.VariantType.String),
    ua.Variant(b"\x00\x01", ua.VariantType.ByteString),
    ua.Variant(ua.NodeId("x", 3), ua.VariantType.NodeId),
    ua.Variant(ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown), ua.VariantType.StatusCode),
    ua.Variant(ua.QualifiedName("Name", 2), ua.VariantType.QualifiedName),
    ua.Variant(ua.LocalizedText("Text", "en"), ua.VariantType.LocalizedText),
    ua.Variant([1, 2, 3], ua.VariantType.Int32),
    ua.Variant(["a", None, "c"], ua.VariantType.String),
    ua.Variant([[1, 2], [3, 4]], ua.VariantType.Int16),
    ua.Variant(list(range(100)), ua.VariantType.Double),
    ua.Variant([ua.Variant(1), ua.Variant("two")], ua.VariantType.Variant),
    ua.Variant(None),
]


def _expected(v: Any) -> Any:
    if isinstance(v, ua.Variant):
        return _expected(v.Value)
    if isinstance(v, list):
        flat = [x for row in v for x in row] if v and isinstance(v[0], list) else v
        return [_expected(x) for x in flat[:16]]
    if isinstance(v, ua.StatusCode):
        return v.value
    if isinstance(v, ua.QualifiedName):
        return [v.NamespaceIndex, v.Name]
    if isinstance(v, ua.LocalizedText):
        return [v.Locale, v.Text]
    if isinstance(v, ua.NodeId):
        return f"ns={v.NamespaceIndex};s={v.Identifier}"
    if isinstance(v, bytes):
        return v.hex()
    return v


@pytest.mark.parametrize(
    "variant",
    VARIANTS,
    ids=lambda v: f"{v.VariantType.name}{'[]' if isinstance(v.Value, list) else ''}",
)
def test_variants_read_as_asyncua_writes_them(variant: Any) -> None:
    r = Reader(variant_to_binary(variant))
    decoded = r.variant()
    assert r.remaining == 0
    got = plain(decoded)
    if variant.VariantType == ua.VariantType.Float:
        assert got == pytest.approx(variant.Value)
    else:
        assert got == _expected(variant)
    if isinstance(variant.Value, list):
        flat = (
            [x for row in variant.Value for x in row]
            if isinstance(variant.Value[0], list)
            else variant.Value
        )
        assert decoded.length == len(flat)


# --- limits, gaps, order -----------------------------------------------------------------------


def test_message_size_limit_drops_and_skips_the_rest() -> None:
    peer = Peer(max_chunk=256)
    big = split_chunks(peer.frame(_big_write(1, "Z" * 3000), 2))
    small = peer.frame(
        request(
            ua.ReadRequest, 2, NodesToRead=[ua.ReadValueId(NodeId=ua.NodeId(2258), AttributeId=13)]
        ),
        3,
    )
    d = run([(C2S, c) for c in big] + [(C2S, small)], max_message=1000)
    (bad,) = d.malformed
    assert "exceeds" in bad.reason
    functions = [o.function for o in d.operations]
    assert functions == ["Read"]  # the big Write is gone, its later chunks skipped quietly
    assert len(d.decoder.channel._partial[0]) == 0 and len(d.decoder.channel._dropping[0]) == 0


def test_too_many_partial_messages() -> None:
    peer = Peer(max_chunk=256)
    firsts = [split_chunks(peer.frame(_big_write(h, "Q" * 600), 100 + h))[0] for h in range(6)]
    d = run([(C2S, c) for c in firsts], max_partial=4)
    reasons = [m.reason for m in d.malformed]
    assert sum("too many chunked messages" in r for r in reasons) == 2
    assert sum("unfinished" in r for r in reasons) == 4  # the rest, reported at the end


def test_oversized_chunk_is_skipped_by_its_size() -> None:
    peer = Peer()
    huge = peer.frame(_big_write(1, "H" * 5000), 2)
    after = peer.frame(request(ua.ReadRequest, 2, NodesToRead=[]), 3)
    d = run(
        [(C2S, huge[i : i + 700]) for i in range(0, len(huge), 700)] + [(C2S, after)],
        max_chunk=1024,
    )
    (bad,) = d.malformed
    assert "above the 1024-byte limit" in bad.reason and len(bad.data) <= 256
    assert [o.function for o in d.operations] == ["Read"]
    assert all(s.buffered < 1024 + 4096 for s in d.decoder.streams)


def test_gap_reports_the_cut_chunk_and_resynchronises() -> None:
    peer = Peer()
    one = peer.frame(request(ua.ReadRequest, 1, NodesToRead=[]), 1)
    two = peer.frame(request(ua.ReadRequest, 2, NodesToRead=[]), 2)
    chunks = [
        (C2S, one[:20], 20, 1, 1000),
        (C2S, None, 10, 2, 2000),
        (C2S, b"junk" + two, 4 + len(two), 3, 3000),
    ]
    d = decode(ENDPOINTS, chunks)
    assert any("before a gap" in m.reason for m in d.malformed)
    assert [(o.function, o.transaction_id, o.status) for o in d.operations] == [
        ("Read", 2, OpStatus.NO_RESPONSE)
    ]


def test_response_released_before_its_request_still_pairs() -> None:
    req = Peer().frame(request(ua.ReadRequest, 8, NodesToRead=[]), 5)
    resp = Peer().frame(response(ua.ReadResponse, 8), 5)
    chunks = [(S2C, resp, len(resp), 4, 4000), (C2S, req, len(req), 3, 3000)]
    (op,) = decode(ENDPOINTS, chunks).operations
    assert op.request_frame == 3 and op.response_frame == 4 and op.latency_ns == 1000


def _opaque_msg(seq: int, size: int = 64) -> bytes:
    body = hashlib.sha256(str(seq).encode()).digest() * (size // 32)
    head = ua.Header(ua.MessageType.SecureMessage, ua.ChunkType.Single, ChannelId=9)
    head.body_size = 4 + len(body)
    return bytes(header_to_binary(head)) + struct.pack("<I", 1) + body


def test_encrypted_traffic_without_a_handshake_is_counted() -> None:
    d = run([(i % 2, _opaque_msg(i)) for i in range(12)])
    (counted,) = [o for o in d.operations if o.function == "EncryptedMessages"]
    assert counted.quantity == 12 and counted.operation == OpClass.OTHER
    assert counted.detail["client_messages"] == counted.detail["server_messages"] == 6
    assert "unreadable_reason" in counted.detail and counted.detail["security_policy_uri"] is None
    assert not d.malformed


def _encrypted_opn(channel_id: int, policy: str, cert: bytes) -> bytes:
    """An OPN under a real policy: clear asymmetric header, then opaque bytes."""
    head = b"".join(struct.pack("<i", len(x)) + x for x in (policy.encode(), cert)) + struct.pack(
        "<i", -1
    )
    body = struct.pack("<I", channel_id) + head + bytes(range(256))
    return b"OPNF" + struct.pack("<I", 8 + len(body)) + body


def test_encrypted_channel_with_renewal() -> None:
    policy = POLICY_PREFIX + "Basic256Sha256"
    server_cert = b"\x30\x82\x00\x04abcd" + b"trailing chain"
    msgs = [
        (C2S, _encrypted_opn(0, policy, b"")),
        (S2C, _encrypted_opn(9, policy, server_cert)),
        *[(i % 2, _opaque_msg(i)) for i in range(4)],
        (C2S, _encrypted_opn(9, policy, b"")),
        (S2C, _encrypted_opn(9, policy, server_cert)),
        *[(i % 2, _opaque_msg(i + 10)) for i in range(2)],
    ]
    d = run(msgs)
    functions = [o.function for o in d.operations]
    assert functions == [
        "OpenSecureChannel",
        "EncryptedMessages",
        "OpenSecureChannel",
        "EncryptedMessages",
    ]
    first, counted, renewed, last = d.operations
    assert first.detail["security_mode"] == "SignAndEncrypt" == renewed.detail["security_mode"]
    assert first.detail["server_certificate_sha1"] == hashlib.sha1(server_cert[:8]).hexdigest()
    assert counted.quantity == 4 and last.quantity == 2
    (claim,) = d.claims
    assert claim.attribute == "certificate_sha1" and claim.ip == ENDPOINTS.server_ip
    assert not any(isinstance(e, Malformed) for e in d.events)
