"""Shared helpers for the OPC UA tests: feeding decoders, the Zeek ICSNPP baseline
layout, and a live asyncua client/server exchange recorded through a TCP proxy.

Golden data comes from peers, never from the decoder under test: Zeek's baselines,
tshark, and the asyncua stack (its encoder builds messages, its decoder reads recorded
bytes, and the values its client API returns are what the wire said).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.connection import SecureConnection, TransportLimits
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.ua.ua_binary import struct_to_binary, uatcp_to_binary

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import CLIENT_TO_SERVER, SERVER_TO_CLIENT, DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.opcua import OpcUaDecoder
from tests.streams import flows

ENDPOINTS = Endpoints(
    transport="tcp", client_ip="10.0.0.1", client_port=40000, server_ip="10.0.0.2", server_port=4840
)
C2S, S2C = CLIENT_TO_SERVER, SERVER_TO_CLIENT

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
ICSNPP = CORPUS / "icsnpp" / "opcua"

# (direction, data or None for a gap, byte count, frame, ts_ns)
Chunks = list[tuple[int, bytes | None, int, int, int]]


@dataclass
class Decoded:
    endpoints: Endpoints
    events: list[DecoderEvent]
    decoder: OpcUaDecoder

    @property
    def operations(self) -> list[Operation]:
        return [e for e in self.events if isinstance(e, Operation)]

    @property
    def claims(self) -> list[IdentityClaim]:
        return [e for e in self.events if isinstance(e, IdentityClaim)]

    @property
    def malformed(self) -> list[Malformed]:
        return [e for e in self.events if isinstance(e, Malformed)]


def decode(
    endpoints: Endpoints, chunks: Iterable[tuple[int, bytes | None, int, int, int]], **kw: Any
) -> Decoded:
    dec = OpcUaDecoder(endpoints, **kw)
    out: list[DecoderEvent] = []
    for d, data, n, frame, ts in chunks:
        if data is None:
            dec.gap(d, n, frame, ts)
        else:
            dec.feed(d, data, frame, ts)
        out += dec.events()
    out += dec.finish()
    return Decoded(endpoints, out, dec)


def decode_capture(capture: Path, ports: set[int] | None = None) -> list[Decoded]:
    """Every OPC UA connection of a capture (port 4840 unless told otherwise)."""
    return [decode(f.endpoints, f.chunks) for f in flows(capture, ports or {4840})]


def opcua_captures() -> list[Path]:
    """Every capture of the shared corpus with OPC UA in it (by name: 'opc')."""
    if not CORPUS.is_dir():
        return []
    found = [p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng")]
    return sorted(p for p in found if "opc" in str(p.relative_to(CORPUS)).lower())


# --- Zeek ICSNPP OPC UA baselines ------------------------------------------------------------
# The baselines carry no #fields line. Their columns are the ICSNPP record fields
# (scripts/*-types.zeek) without the *_link_id fields, in record order; each list below
# is checked against the column count of every row.

CONN = "ts uid id.orig_h id.orig_p id.resp_h id.resp_p"
PREFIX = CONN + " is_orig source_h source_p destination_h destination_p"


def _node(prefix: str) -> str:
    """The six columns of a NodeId in a Zeek record (encoding mask .. opaque)."""
    return " ".join(f"{prefix}_{n}" for n in ("mask", "ns", "numeric", "string", "guid", "opaque"))


def _cols(*parts: str) -> list[str]:
    return [c for part in parts for c in part.split()]


ZEEK_COLUMNS: dict[str, list[str]] = {
    "opcua_binary": _cols(
        CONN,
        "msg_type is_final total_size error reason version rcv_buf_size snd_buf_size",
        "max_msg_size max_chunk_cnt endpoint_url sec_channel_id sec_policy_uri_len",
        "sec_policy_uri snd_cert_len snd_cert rcv_cert_len rcv_cert request_id req_msg_size",
        "req_seq_number req_encoding_mask req_namespace_idx req_identifier req_identifier_str",
        _node("req_hdr_node_id"),
        "req_hdr_timestamp req_hdr_request_handle req_hdr_return_diag req_hdr_audit_entry_id",
        "req_hdr_timeout_hint req_hdr_add_hdr_type_id req_hdr_add_hdr_enc_mask res_msg_size",
        "res_seq_number res_encoding_mask res_namespace_idx res_identifier res_identifier_str",
        "res_hdr_timestamp res_hdr_request_handle res_hdr_service_diag_encoding",
        "res_hdr_add_hdr_type_id res_hdr_add_hdr_enc_mask",
    ),
    "opcua_binary_opensecure_channel": _cols(
        PREFIX,
        "client_proto_ver sec_token_request_type message_security_mode client_nonce",
        "req_lifetime server_proto_ver sec_token_sec_channel_id sec_token_id",
        "sec_token_created_at sec_token_revised_time server_nonce",
    ),
    "opcua_binary_get_endpoints": _cols(PREFIX, "endpoint_url"),
    "opcua_binary_get_endpoints_description": _cols(
        PREFIX,
        "endpoint_url application_uri product_uri encoding_mask locale text application_type",
        "gateway_server_uri discovery_profile_uri discovery_profile_url cert_size server_cert",
        "message_security_mode security_policy_uri transport_profile_uri security_level",
    ),
    "opcua_binary_get_endpoints_user_token": _cols(
        PREFIX,
        "user_token_policy_id user_token_type user_token_issued_type user_token_endpoint_url",
        "user_token_sec_policy_uri",
    ),
    "opcua_binary_create_session": _cols(
        PREFIX,
        "application_uri product_uri encoding_mask locale text application_type",
        "gateway_server_uri discovery_profile_uri server_uri endpoint_url session_name",
        "client_nonce client_cert_size client_cert req_session_timeout max_res_msg_size",
        _node("session_id"),
        _node("auth_token"),
        "revised_session_timeout server_nonce server_cert_size server_cert algorithm",
        "signature max_req_msg_size",
    ),
    "opcua_binary_activate_session": _cols(
        PREFIX,
        "client_algorithm client_signature",
        _node("ext_obj_type_id"),
        "ext_obj_type_id_str ext_obj_encoding ext_obj_policy_id ext_obj_user_name",
        "ext_obj_password ext_obj_encryption_algorithom ext_obj_certificate_data",
        "ext_obj_token_data user_token_algorithm user_token_signature server_nonce",
    ),
    "opcua_binary_browse": _cols(
        PREFIX,
        "browse_service_type",
        _node("browse_view_id"),
        "browse_view_description_timestamp browse_view_description_view_version",
        "req_max_ref_nodes browse_next_release_continuation_point",
    ),
    "opcua_binary_browse_description": _cols(
        PREFIX,
        _node("node"),
        "browse_direction",
        _node("ref"),
        "include_subtypes node_class_mask result_mask",
    ),
    "opcua_binary_browse_response_references": _cols(
        PREFIX,
        _node("ref_type"),
        "is_forward",
        _node("target"),
        "target_namespace_uri target_server_idx name_idx name display_name_mask",
        "display_name_locale display_name_text node_class",
        _node("type_def"),
        "type_def_namespace_uri type_def_server_idx",
    ),
    "opcua_binary_browse_result": _cols(PREFIX, "continuation_point"),
    "opcua_binary_create_subscription": _cols(
        PREFIX,
        "requested_publishing_interval requested_lifetime_count requested_max_keep_alive_count",
        "max_notifications_per_publish publishing_enabled priority subscription_id",
        "revised_publishing_interval revised_lifetime_count revised_max_keep_alive_count",
    ),
    "opcua_binary_create_monitored_items": _cols(
        PREFIX, "subscription_id timestamps_to_return timestamps_to_return_str"
    ),
    "opcua_binary_create_monitored_items_create_item": _cols(
        PREFIX,
        _node("node"),
        "attribute_id_str index_range data_encoding_ns data_encoding_name monitoring_mode",
        "client_handle sampling_interval queue_size discard_oldest",
        " ".join(f"filter_{i}" for i in range(8)),
        "monitored_item_id revised_sampling_interval revised_queue_size",
    ),
    "opcua_binary_read": _cols(PREFIX, "max_age timestamps_to_return timestamps_to_return_str"),
    "opcua_binary_read_nodes_to_read": _cols(
        PREFIX,
        _node("node"),
        "attribute_id attribute_id_str index_range data_encoding_name_idx data_encoding_name",
    ),
    "opcua_binary_read_results": _cols(
        PREFIX,
        "level data_value_encoding_mask source_timestamp source_pico_sec server_timestamp",
        "server_pico_sec",
    ),
    "opcua_binary_write": _cols(
        PREFIX,
        _node("node"),
        "attribute_id attribute_id_str index_range data_value_encoding_mask source_timestamp",
        "source_pico_sec server_timestamp server_pico_sec",
    ),
    "opcua_binary_close_session": _cols(PREFIX, "del_subscriptions"),
    "opcua_binary_status_code_detail": _cols(
        PREFIX,
        "source source_str source_level status_code severity severity_str sub_code",
        "sub_code_str structure_changed semantics_changed info_type info_type_str limit_bits",
        "limit_bits_str overflow historian_bits historian_bits_str historianPartial",
        "historianExtraData historianMultiValue",
    ),
}
ZEEK_COLUMNS["opcua_binary_create_session_endpoints"] = ZEEK_COLUMNS[
    "opcua_binary_get_endpoints_description"
]
ZEEK_COLUMNS["opcua_binary_create_session_user_token"] = ZEEK_COLUMNS[
    "opcua_binary_get_endpoints_user_token"
]


def zeek_rows(case: Path, log: str) -> list[dict[str, str | None]]:
    """Rows of one baseline log as dicts ('-' is None; no file: no rows); raises if a
    row's column count is not the layout's."""
    columns = ZEEK_COLUMNS[log]
    path = case / "zeek-baseline" / f"{log}.log"
    if not path.exists():
        return []  # Zeek wrote no such row
    rows = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        values = line.split("\t")
        if len(values) != len(columns):
            raise AssertionError(f"{path.name}: {len(values)} columns, layout has {len(columns)}")
        rows.append({k: (None if v == "-" else v) for k, v in zip(columns, values, strict=True)})
    return rows


def zeek_node(row: dict[str, str | None], prefix: str) -> str | None:
    """A NodeId of a Zeek row in the OPC UA text form ("ns=1;s=x", "i=85")."""
    mask = row[f"{prefix}_mask"]
    if mask is None:
        return None
    ns = int(row[f"{prefix}_ns"] or 0)
    kind = int(mask, 16) & 0x3F
    if kind in (0, 1, 2):
        ident = f"i={row[f'{prefix}_numeric']}"
    elif kind == 3:
        ident = f"s={row[f'{prefix}_string']}"
    elif kind == 4:
        ident = f"g={zeek_guid(row[f'{prefix}_guid'] or '')}"
    else:
        ident = f"b={row[f'{prefix}_opaque']}"
    return ident if ns == 0 else f"ns={ns};{ident}"


def zeek_guid(text: str) -> str:
    """Zeek prints a Guid's first three fields in wire (little-endian) byte order; OPC UA
    text form (and tshark) prints their values. Convert Zeek's form to the value form."""
    parts = text.split("-")
    if len(parts) != 5:
        return text
    swapped = [bytes.fromhex(p)[::-1].hex() for p in parts[:3]]
    return "-".join([*swapped, *parts[3:]])


# --- a live asyncua exchange through an in-process TCP proxy ---------------------------------


@dataclass
class Recorded:
    """The bytes of one proxied TCP connection, each read with its direction and time."""

    chunks: list[tuple[int, bytes, int]] = field(default_factory=list)

    def as_flow(self) -> Chunks:
        return [(d, data, len(data), i + 1, ts) for i, (d, data, ts) in enumerate(self.chunks)]


class Proxy:
    """A loopback TCP proxy that records what passes through it, per connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections: list[Recorded] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = Recorded()
        self.connections.append(record)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer, record, C2S)),
            asyncio.ensure_future(self._pump(up_reader, writer, record, S2C)),
        ]
        for p in pumps:
            self._tasks.add(p)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for p in pumps:
            p.cancel()
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: Recorded,
        direction: int,
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            record.chunks.append((direction, data, time.time_ns()))
            writer.write(data)
            await writer.drain()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_exchange(
    make_server: Callable[[int], Awaitable[Any]],
    scenario: Callable[[str, Any], Awaitable[Any]],
) -> tuple[list[Recorded], Any]:
    """Start a server (``make_server(port)`` returns a started asyncua Server), proxy it,
    run ``scenario(proxy_url, server)`` and return the recorded connections and what the
    scenario returned."""

    async def main() -> tuple[list[Recorded], Any]:
        port = free_port()
        server = await make_server(port)
        proxy = Proxy(port)
        await proxy.start()
        try:
            result = await scenario(f"opc.tcp://127.0.0.1:{proxy.port}/conduit/test", server)
            await asyncio.sleep(0.2)
        finally:
            await proxy.stop()
            await server.stop()
        return proxy.connections, result

    return asyncio.run(main())


# --- asyncua as the peer decoder of recorded bytes ---------------------------------------------


@dataclass
class PeerMessage:
    """One message as asyncua decodes it."""

    direction: int
    msg_type: str  # HEL, ACK, OPN, MSG, CLO, ERR
    type_name: str | None  # ReadRequest, ...
    request_handle: int | None
    service_result: int | None
    request_id: int | None
    obj: Any


def peer_messages(record: Recorded) -> list[PeerMessage]:
    """Decode a recorded connection (policy None) with asyncua's own parsers."""
    from asyncua import ua
    from asyncua.common.connection import MessageChunk
    from asyncua.common.utils import Buffer
    from asyncua.crypto.security_policies import SecurityPolicyNone
    from asyncua.ua.ua_binary import header_from_binary, nodeid_from_binary, struct_from_binary

    streams = [b"".join(d for dr, d, _ in record.chunks if dr == k) for k in (C2S, S2C)]
    order: list[tuple[int, int, PeerMessage]] = []
    for direction, stream in enumerate(streams):
        buf = Buffer(stream)
        partial: dict[int, list[bytes]] = {}
        index = 0
        while len(buf) >= 8:
            header = header_from_binary(buf)
            kind = header.MessageType.decode()
            if kind in ("HEL", "ACK", "ERR"):
                cls = {"HEL": ua.Hello, "ACK": ua.Acknowledge, "ERR": ua.ErrorMessage}[kind]
                obj = struct_from_binary(cls, buf.copy(header.body_size))
                buf.skip(header.body_size)
                msg = PeerMessage(direction, kind, None, None, None, None, obj)
                order.append((direction, index, msg))
                index += 1
                continue
            chunk = MessageChunk.from_header_and_body(SecurityPolicyNone(), header, buf)
            rid = chunk.SequenceHeader.RequestId
            partial.setdefault(rid, []).append(chunk.Body)
            if header.ChunkType == ua.ChunkType.Intermediate:
                continue
            body = b"".join(partial.pop(rid))
            if header.ChunkType == ua.ChunkType.Abort:
                continue
            b = Buffer(body)
            type_id = nodeid_from_binary(b)
            cls = ua.extension_objects_by_typeid[type_id]
            obj = struct_from_binary(cls, Buffer(body))
            handle = result = None
            if hasattr(obj, "RequestHeader"):
                handle = obj.RequestHeader.RequestHandle
            if hasattr(obj, "ResponseHeader"):
                handle = obj.ResponseHeader.RequestHandle
                result = obj.ResponseHeader.ServiceResult.value
            msg = PeerMessage(direction, kind, cls.__name__, handle, result, rid, obj)
            order.append((direction, index, msg))
            index += 1
    return [m for _, _, m in order]


# --- asyncua as the peer encoder ---------------------------------------------------------------


class Peer:
    """One side's asyncua secure connection (policy None): frames service messages into
    chunks with asyncua's chunker, numbering sequence and request ids as asyncua does."""

    def __init__(self, channel_id: int = 7, token_id: int = 3, max_chunk: int = 65535) -> None:
        self.conn = SecureConnection(
            SecurityPolicyNone(),
            TransportLimits(max_send_buffer=max_chunk, max_recv_buffer=max_chunk),
        )
        self.conn.security_token.ChannelId = channel_id
        self.conn.security_token.TokenId = token_id

    def frame(self, obj: Any, request_id: int, kind: bytes = ua.MessageType.SecureMessage) -> bytes:
        return self.conn.message_to_binary(
            struct_to_binary(obj), message_type=kind, request_id=request_id
        )


def request(cls: Any, handle: int, **params: Any) -> Any:
    obj = cls()
    obj.RequestHeader.RequestHandle = handle
    target = obj.Parameters if hasattr(obj, "Parameters") else obj
    for k, v in params.items():
        setattr(target, k, v)
    return obj


def response(cls: Any, handle: int, result: int = 0, **fields: Any) -> Any:
    obj = cls()
    obj.ResponseHeader.RequestHandle = handle
    obj.ResponseHeader.ServiceResult = ua.StatusCode(result)
    target = obj.Parameters if hasattr(obj, "Parameters") else obj
    for k, v in fields.items():
        setattr(target, k, v)
    return obj


def split_chunks(data: bytes) -> list[bytes]:
    """A run of chunks cut at the chunk sizes of their headers."""
    out, at = [], 0
    while at < len(data):
        size = struct.unpack_from("<I", data, at + 4)[0]
        out.append(data[at : at + size])
        at += size
    return out


def synthetic_exchange() -> list[tuple[int, bytes]]:
    """A session's worth of messages encoded by asyncua (Hello to CloseSecureChannel,
    reads, writes, calls, browsing, a subscription, node management, a fault and a
    chunked write), for the split and fuzz tests when the corpus is absent."""
    client, server = Peer(max_chunk=512), Peer(max_chunk=512)
    out: list[tuple[int, bytes]] = [
        (C2S, uatcp_to_binary(ua.MessageType.Hello, ua.Hello(EndpointUrl="opc.tcp://plc:4840"))),
        (S2C, uatcp_to_binary(ua.MessageType.Acknowledge, ua.Acknowledge(ReceiveBufferSize=512))),
    ]
    opn = ua.OpenSecureChannelRequest()
    opn.Parameters.SecurityMode = ua.MessageSecurityMode.None_
    out.append((C2S, client.frame(opn, 1, ua.MessageType.SecureOpen)))
    opened = ua.OpenSecureChannelResponse()
    opened.Parameters.SecurityToken.ChannelId = 7
    out.append((S2C, server.frame(opened, 1, ua.MessageType.SecureOpen)))
    node = ua.NodeId("Machine.Speed", 2)
    value = ua.DataValue(ua.Variant(42, ua.VariantType.Int32))
    pairs = [
        (
            request(
                ua.CreateSessionRequest,
                2,
                ClientDescription=ua.ApplicationDescription(ApplicationUri="urn:hmi"),
            ),
            response(ua.CreateSessionResponse, 2, SessionId=ua.NodeId(5, 1)),
        ),
        (
            request(
                ua.ActivateSessionRequest,
                3,
                UserIdentityToken=ua.AnonymousIdentityToken(PolicyId="a"),
            ),
            response(ua.ActivateSessionResponse, 3),
        ),
        (
            request(
                ua.ReadRequest,
                4,
                NodesToRead=[ua.ReadValueId(NodeId=ua.NodeId(2261), AttributeId=13)],
            ),
            response(ua.ReadResponse, 4, Results=[ua.DataValue(ua.Variant("Press PLC"))]),
        ),
        (
            request(
                ua.WriteRequest,
                5,
                NodesToWrite=[ua.WriteValue(NodeId=node, AttributeId=13, Value=value)],
            ),
            response(ua.WriteResponse, 5, Results=[ua.StatusCode(0)]),
        ),
        (
            request(
                ua.CallRequest,
                6,
                MethodsToCall=[ua.CallMethodRequest(ObjectId=node, MethodId=node)],
            ),
            response(ua.CallResponse, 6, Results=[ua.CallMethodResult()]),
        ),
        (
            request(
                ua.BrowseRequest, 7, NodesToBrowse=[ua.BrowseDescription(NodeId=ua.NodeId(85))]
            ),
            response(
                ua.BrowseResponse,
                7,
                Results=[ua.BrowseResult(References=[ua.ReferenceDescription()])],
            ),
        ),
        (
            request(ua.CreateSubscriptionRequest, 8, RequestedPublishingInterval=100.0),
            response(ua.CreateSubscriptionResponse, 8, SubscriptionId=1),
        ),
        (request(ua.PublishRequest, 9), response(ua.PublishResponse, 9, SubscriptionId=1)),
        (
            request(
                ua.AddNodesRequest,
                10,
                NodesToAdd=[ua.AddNodesItem(BrowseName=ua.QualifiedName("X", 2))],
            ),
            response(ua.AddNodesResponse, 10, Results=[ua.AddNodesResult()]),
        ),
        (
            request(
                ua.WriteRequest,
                11,
                NodesToWrite=[
                    ua.WriteValue(
                        NodeId=node, AttributeId=13, Value=ua.DataValue(ua.Variant("r" * 2000))
                    )
                ],
            ),
            response(ua.WriteResponse, 11, Results=[ua.StatusCode(0)]),
        ),
    ]
    for rid, (req, resp) in enumerate(pairs, start=2):
        out += [(C2S, c) for c in split_chunks(client.frame(req, rid))]
        out += [(S2C, c) for c in split_chunks(server.frame(resp, rid))]
    fault = ua.ServiceFault()
    fault.ResponseHeader.RequestHandle = 12
    fault.ResponseHeader.ServiceResult = ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
    out.append((C2S, client.frame(request(ua.DeleteNodesRequest, 12), 20)))
    out.append((S2C, server.frame(fault, 20)))
    out.append((C2S, client.frame(ua.CloseSecureChannelRequest(), 21, ua.MessageType.SecureClose)))
    return out
