"""PROFINET IO context management (IO-CM) over connectionless DCE/RPC: calls
(Connect, Release, Read, Write, Control, Read Implicit) paired across UDP flows.

A PNIO call is identified by its DCE/RPC activity UUID and sequence number
(C706 §12.4), not by its UDP ports: a device typically answers a Connect sent to port
34964 from an ephemeral port, and the controller then sends its Write/Control requests
to that port. :class:`IoCmDecoder` therefore takes every PNIO datagram of a capture
(``feed_datagram``) and pairs by activity and sequence; :class:`IoCmFlowDecoder` wraps
it as a per-flow ConnectionDecoder (pairing within one UDP flow only: the spec's factory,
for the harness and tools that decode flows alone). The engine gives every PROFINET UDP
flow of a capture one shared decoder instead (:mod:`otconduit.analysis.layer2`).

Fragments (flags1 fragment / last fragment, fragment numbers) are joined per call and
direction before the body is decoded; fragment acknowledgements, pings, "working" and
"no call" answers, rejects, faults and cancels are DCE/RPC-level and end up in the
call's detail (a ping with no call of its own becomes a "Ping" operation).

Bounds: at most ``max_outstanding`` calls open (oldest completed as unanswered), at most
``max_fragments`` fragments and ``max_body`` bytes per reassembled body.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Self

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints, Pending
from otconduit.protocols.events import Malformed
from otconduit.protocols.profinet import alarms, blocks, frames, rpc
from otconduit.protocols.profinet.rpc import RpcHeader

PROTOCOL: Final = "profinet"
SOURCE: Final = "pn_iocm"
IM0_SOURCE: Final = "pn_im0"
MALFORMED_DATA: Final = 256
DEFAULT_MAX_OUTSTANDING: Final = 1024
VENDORS: Final = {0x002A: "Siemens"}

Key = tuple[uuid.UUID, int]  # activity, sequence number


@dataclass(slots=True)
class _Half:
    """One direction of a call: its first datagram and its (reassembled) body."""

    header: RpcHeader
    src: tuple[str, int]
    dst: tuple[str, int]
    frame: int
    ts_ns: int
    fragments: dict[int, bytes] = field(default_factory=dict)
    last: int | None = None  # fragment number of the last fragment, once seen
    frames: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.last is not None and len(self.fragments) == self.last + 1

    def body(self) -> bytes:
        return b"".join(self.fragments[i] for i in sorted(self.fragments))


@dataclass(slots=True)
class _Call:
    request: _Half
    response: _Half | None = None
    counts: dict[str, int] = field(default_factory=dict)  # fack, ping, working, ...
    outcome: tuple[str, int] | None = None  # DCE/RPC fault/reject: (text, status)


class IoCmDecoder:
    """Every PNIO DCE/RPC datagram of a capture: operations, identity claims, problems."""

    def __init__(
        self,
        *,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_fragments: int = 64,
        max_body: int = 65536,
    ) -> None:
        self.max_outstanding = max_outstanding
        self.max_fragments = max_fragments
        self.max_body = max_body
        self._calls: OrderedDict[Key, _Call] = OrderedDict()
        self._answering: OrderedDict[Key, _Half] = OrderedDict()  # responses being joined
        self._out: list[DecoderEvent] = []
        self._claimed: set[tuple[str, str, str]] = set()
        # (provider MAC, FrameID) -> the IOCR a Connect set up (for RT stream summaries).
        self.iocrs: dict[tuple[str, int], dict[str, Any]] = {}
        self.packet_counts: dict[str, int] = {}

    @property
    def idle(self) -> bool:
        return not (self._calls or self._answering)

    def feed_datagram(
        self,
        src_ip: str,
        src_port: int,
        dst_ip: str,
        dst_port: int,
        data: bytes,
        frame: int,
        ts_ns: int,
    ) -> None:
        """One UDP datagram (the whole payload) sent from ``src`` to ``dst``."""
        hdr = rpc.parse_rpc(data)
        if isinstance(hdr, str):
            self._malformed(hdr, frame, ts_ns, data)
            return
        name = hdr.ptype_name
        self.packet_counts[name] = self.packet_counts.get(name, 0) + 1
        key = (hdr.activity_uuid, hdr.sequence)
        src, dst = (src_ip, src_port), (dst_ip, dst_port)
        t = hdr.ptype
        if t == rpc.REQUEST:
            self._request(key, hdr, src, dst, frame, ts_ns)
        elif t == rpc.RESPONSE:
            self._response(key, hdr, src, dst, frame, ts_ns)
        elif t == rpc.PING:
            call = self._calls.get(key)
            if call is not None:
                _bump(call, "ping")
            else:
                self._open(key, _Call(_Half(hdr, src, dst, frame, ts_ns, frames=[frame])))
        elif t in (rpc.NOCALL, rpc.WORKING, rpc.FAULT, rpc.REJECT):
            self._answer_status(key, hdr, src, dst, frame, ts_ns)
        else:  # ack, fragment ack, cancel, cancel ack
            call = self._calls.get(key)
            if call is not None:
                _bump(call, {rpc.FACK: "fack", rpc.ACK: "ack"}.get(t, "cancel"))

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        """Calls still open complete unanswered; half-reassembled bodies are reported."""
        for key, half in self._answering.items():
            call = self._calls.get(key)
            if call is not None:
                call.response = half
            else:
                self._emit(None, half, {}, None)
        self._answering.clear()
        calls, self._calls = self._calls, OrderedDict()
        for call in calls.values():
            self._complete(call)
        return self.events()

    # --- calls ------------------------------------------------------------------------
    def _open(self, key: Key, call: _Call) -> None:
        old = self._calls.pop(key, None)
        if old is not None:
            self._complete(old)
        self._calls[key] = call
        while len(self._calls) > self.max_outstanding:
            _, oldest = self._calls.popitem(last=False)
            self._complete(oldest)

    def _request(
        self,
        key: Key,
        hdr: RpcHeader,
        src: tuple[str, int],
        dst: tuple[str, int],
        frame: int,
        ts_ns: int,
    ) -> None:
        call = self._calls.get(key)
        if call is not None and call.request.header.ptype == rpc.REQUEST:
            if call.request.complete:
                _bump(call, "retransmission")  # the same request again
                return
            self._fragment(call.request, hdr, frame)
            return
        half = _Half(hdr, src, dst, frame, ts_ns)
        self._fragment(half, hdr, frame)
        self._open(key, _Call(half))

    def _response(
        self,
        key: Key,
        hdr: RpcHeader,
        src: tuple[str, int],
        dst: tuple[str, int],
        frame: int,
        ts_ns: int,
    ) -> None:
        half = self._answering.get(key)
        if half is None:
            half = self._answering[key] = _Half(hdr, src, dst, frame, ts_ns)
            while len(self._answering) > self.max_outstanding:
                old_key, old = self._answering.popitem(last=False)
                call = self._calls.pop(old_key, None)
                if call is not None:
                    call.response = old
                    self._complete(call)
                else:
                    self._emit(None, old, {}, None)
        self._fragment(half, hdr, frame)
        if not half.complete:
            return
        del self._answering[key]
        call = self._calls.pop(key, None)
        if call is None or call.request.header.ptype != rpc.REQUEST:
            if call is not None:  # a ping the response answers
                self._complete(call)
            self._emit(None, half, {}, None)
            return
        call.response = half
        self._complete(call)

    def _answer_status(
        self,
        key: Key,
        hdr: RpcHeader,
        src: tuple[str, int],
        dst: tuple[str, int],
        frame: int,
        ts_ns: int,
    ) -> None:
        """No call / working answer a ping; fault and reject end a call with a status."""
        call = self._calls.get(key)
        if call is None:
            self._emit(None, _Half(hdr, src, dst, frame, ts_ns, frames=[frame]), {}, None)
            return
        if hdr.ptype == rpc.WORKING and call.request.header.ptype == rpc.REQUEST:
            _bump(call, "working")
            return
        del self._calls[key]
        if hdr.ptype == rpc.NOCALL and call.request.header.ptype == rpc.REQUEST:
            call.outcome = ("DCE/RPC no call: the server has no record of the call", 0)
        if hdr.ptype in (rpc.FAULT, rpc.REJECT) and len(hdr.body) >= 4:
            status = int.from_bytes(hdr.body[:4], "little" if hdr.little_endian else "big")
            call.outcome = (f"DCE/RPC {hdr.ptype_name.lower()} status 0x{status:08x}", status)
        call.response = _Half(hdr, src, dst, frame, ts_ns, frames=[frame])
        self._complete(call)

    def _fragment(self, half: _Half, hdr: RpcHeader, frame: int) -> None:
        half.frames.append(frame)
        if not hdr.fragmented:
            half.fragments = {0: hdr.body}
            half.last = 0
            return
        if (
            len(half.fragments) < self.max_fragments
            and sum(map(len, half.fragments.values())) < self.max_body
        ):
            half.fragments.setdefault(hdr.fragment_num, hdr.body)
        if hdr.last_fragment:
            half.last = hdr.fragment_num

    # --- operations -------------------------------------------------------------------
    def _complete(self, call: _Call) -> None:
        """Decode the bodies of a finished (or abandoned) call and emit its Operation."""
        req, resp = call.request, call.response
        extra: dict[str, Any] = dict(call.counts)
        if call.outcome is not None:
            extra["rpc_outcome"] = call.outcome[0]
        self._emit(req, resp, extra, call.outcome)

    def _emit(
        self,
        req: _Half | None,
        resp: _Half | None,
        extra: dict[str, Any],
        outcome: tuple[str, int] | None,
    ) -> None:
        first = req if req is not None else resp
        assert first is not None
        head = first.header
        pnio = head.interface_uuid in rpc.PNIO_INTERFACES
        ping = head.ptype != rpc.REQUEST and head.ptype != rpc.RESPONSE
        if req is not None:
            src, dst = req.src, req.dst
        else:
            src, dst = first.dst, first.src
        detail: dict[str, Any] = {
            "interface": head.interface,
            "activity_uuid": str(head.activity_uuid),
            "object_uuid": str(head.object_uuid),
            "server_boot": head.server_boot,
            "opnum": head.opnum,
            "drep": "little" if head.little_endian else "big",
        }
        if req is None:
            detail["orphan_response"] = True
        problems: list[str] = []
        fields: dict[str, Any] = {
            "ts_ns": first.ts_ns,
            "protocol": PROTOCOL,
            "src_ip": src[0],
            "src_port": src[1],
            "dst_ip": dst[0],
            "dst_port": dst[1],
            "transaction_id": head.sequence,
            "request_frame": req.frame if req else None,
            "response_frame": resp.frame if resp else None,
            "latency_ns": resp.ts_ns - req.ts_ns if req and resp else None,
            "status": OpStatus.OK,
        }
        if ping or not pnio:
            fields.update(
                function="Ping" if ping else f"DCE/RPC opnum {head.opnum}",
                function_code=frames.RPC_PING if ping else frames.RPC_PING + 1,
                operation=OpClass.DIAGNOSTIC if ping else OpClass.OTHER,
            )
        else:
            fields.update(
                function=blocks.OPNUMS.get(head.opnum, f"opnum {head.opnum}"),
                function_code=frames.IOCM_BASE + head.opnum,
                operation=_op_class(head.opnum),
            )
        body_req = body_resp = None
        if req is not None and req.header.ptype == rpc.REQUEST:
            detail["request_fragments"] = len(req.frames)
            if not req.complete:
                problems.append("request fragments missing")
            if pnio:
                body_req = blocks.parse_body(head.opnum, True, req.header.little_endian, req.body())
                detail.update(body_req.fields)
                if body_req.problem:
                    problems.append(body_req.problem)
        if resp is not None:
            rh = resp.header
            detail["response_type"] = rh.ptype_name
            detail["response_drep"] = "little" if rh.little_endian else "big"
            if rh.ptype == rpc.RESPONSE:
                detail["response_fragments"] = len(resp.frames)
                if not resp.complete:
                    problems.append("response fragments missing")
            if (resp.src, resp.dst) != (dst, src):
                detail["response_endpoints"] = [*resp.src, *resp.dst]
            if rh.ptype == rpc.RESPONSE and pnio:
                body_resp = blocks.parse_body(rh.opnum, False, rh.little_endian, resp.body())
                for k, v in body_resp.fields.items():
                    if k == "records" and "records" in detail:
                        detail["response_records"] = v
                    elif k == "iocrs" and "iocrs" in detail:
                        _merge_iocrs(detail["iocrs"], v)
                    else:
                        detail.setdefault(k, v)
                if body_resp.problem:
                    problems.append(body_resp.problem)
                if body_resp.status is not None and any(body_resp.status):
                    fields.update(
                        status=OpStatus.EXCEPTION,
                        exception=alarms.status_text(body_resp.status),
                        exception_code=alarms.status_code(body_resp.status),
                    )
                    detail["pnio_status"] = bytes(body_resp.status).hex()
        elif req is not None and not ping:
            fields["status"] = OpStatus.NO_RESPONSE
        if outcome is not None:
            fields.update(
                status=OpStatus.EXCEPTION, exception=outcome[0], exception_code=outcome[1]
            )
        detail.update(extra)
        _record_fields(fields, detail)
        if problems:
            detail["problems"] = problems
            if fields["status"] is OpStatus.OK:
                fields["status"] = OpStatus.MALFORMED
        op = Operation(**fields, detail=detail)
        self._out.append(op)
        if pnio and req is not None:
            self._learn(op, detail, resp is not None and fields["status"] is OpStatus.OK)

    def _learn(self, op: Operation, detail: dict[str, Any], answered: bool) -> None:
        """Identity claims and IOCRs from a call: the object UUID names the device's
        vendor and device id; a Connect the controller's station name and the frame IDs
        of its IOCRs; an I&M0 read the device's order number, serial and revisions."""
        server = op.dst_ip if detail.get("interface") == "device" else None
        ids = rpc.object_ids(uuid.UUID(detail["object_uuid"]))
        if server is not None and ids is not None and ids[2]:
            self._claim(server, "vendor_id", f"0x{ids[2]:04x}", SOURCE, 0.7, op.ts_ns)
            self._claim(server, "device_id", f"0x{ids[1]:04x}", SOURCE, 0.7, op.ts_ns)
            if ids[2] in VENDORS:
                self._claim(server, "vendor", VENDORS[ids[2]], SOURCE, 0.7, op.ts_ns)
        if op.function == "Connect" and detail.get("initiator_station"):
            self._claim(
                op.src_ip, "name_of_station", detail["initiator_station"], SOURCE, 0.8, op.ts_ns
            )
        if op.function == "Connect" and answered:
            for iocr in detail.get("iocrs", []):
                provider = (
                    detail.get("responder_mac")
                    if iocr["type"] == "input"
                    else detail.get("initiator_mac")
                )
                if provider and iocr.get("frame_id") is not None:
                    self.iocrs[(provider, iocr["frame_id"])] = {
                        "iocr": iocr["type"],
                        "ar_uuid": detail.get("ar_uuid"),
                        "controller": op.src_ip,
                        "device": op.dst_ip,
                        "station": detail.get("initiator_station"),
                    }
        im0 = detail.get("im0")
        if im0 and server is not None:
            ts = op.ts_ns
            self._claim(server, "vendor_id", f"0x{im0['vendor_id']:04x}", IM0_SOURCE, 0.9, ts)
            for attr, key in (
                ("model", "order_id"),
                ("serial_number", "serial_number"),
                ("revision", "software_revision"),
            ):
                if im0.get(key):
                    self._claim(server, attr, str(im0[key]), IM0_SOURCE, 0.9, ts)
            self._claim(
                server, "hardware_revision", str(im0["hardware_revision"]), IM0_SOURCE, 0.9, ts
            )

    def _claim(
        self, ip: str, attribute: str, value: str, source: str, conf: float, ts: int
    ) -> None:
        if (ip, attribute, value) in self._claimed:
            return
        self._claimed.add((ip, attribute, value))
        self._out.append(
            IdentityClaim(
                ip=ip, attribute=attribute, value=value, source=source, confidence=conf, ts_ns=ts
            )
        )

    def _malformed(self, reason: str, frame: int, ts_ns: int, data: bytes) -> None:
        self._out.append(
            Malformed(reason=reason, offset=0, frame=frame, ts_ns=ts_ns, data=data[:MALFORMED_DATA])
        )


def _bump(call: _Call, what: str) -> None:
    call.counts[what] = call.counts.get(what, 0) + 1


def _op_class(opnum: int) -> OpClass:
    return {
        blocks.CONNECT: OpClass.SESSION,
        blocks.RELEASE: OpClass.SESSION,
        blocks.READ: OpClass.READ,
        blocks.WRITE: OpClass.WRITE,
        blocks.CONTROL: OpClass.SESSION,
        blocks.READ_IMPLICIT: OpClass.READ,
    }.get(opnum, OpClass.OTHER)


def _merge_iocrs(requested: list[dict[str, Any]], granted: list[dict[str, Any]]) -> None:
    """The Connect response's IOCRBlockRes assign the FrameIDs (IEC 61158-6-10: an
    output CR's FrameID is the device's to choose); match by type and reference."""
    for res in granted:
        for req in requested:
            if req["type"] == res["type"] and req["reference"] == res["reference"]:
                req["frame_id"] = res["frame_id"]


def _record_fields(fields: dict[str, Any], detail: dict[str, Any]) -> None:
    """Read/Write: the (first) record's index, slot and length as address, unit and
    quantity; identity reads (I&M) as identity operations; a WriteMultiple's indices."""
    records = detail.get("records")
    if not records:
        return
    first = records[0]
    fields["address"] = first["index"]
    fields["unit"] = first["slot"]
    fields["quantity"] = first["record_data_length"]
    detail["index"] = first["index"]
    detail["index_name"] = first["index_name"]
    if first["index"] == blocks.WRITE_MULTIPLE:
        detail["indices"] = [r["index"] for r in records[1:]]
    if fields.get("operation") is OpClass.READ and (
        0xAFF0 <= first["index"] <= 0xAFFF or first["index"] == 0xF840
    ):
        fields["operation"] = OpClass.IDENTITY


class IoCmFlowDecoder:
    """:class:`IoCmDecoder` as a ConnectionDecoder for one UDP flow (each ``feed`` is one
    datagram). Calls whose answer comes on another flow stay unanswered here."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.decoder = IoCmDecoder()

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        e = self.endpoints
        client, server = (e.client_ip, e.client_port), (e.server_ip, e.server_port)
        src, dst = (client, server) if direction == 0 else (server, client)
        self.decoder.feed_datagram(src[0], src[1], dst[0], dst[1], data, frame, ts_ns)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        """Never called for UDP."""

    def events(self) -> list[DecoderEvent]:
        return self.decoder.events()

    def finish(self) -> list[DecoderEvent]:
        return self.decoder.finish()

    def quiescent(self) -> bool:
        return self.decoder.idle

    def export_state(self) -> None:
        return None

    def resume(self, state: object, pending: Sequence[Pending]) -> None:
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def fork(self) -> Self:
        return type(self)(self.endpoints)


def factory(endpoints: Endpoints) -> IoCmFlowDecoder:
    """:attr:`ProtocolSpec.factory` for PROFINET IO-CM (one UDP flow)."""
    return IoCmFlowDecoder(endpoints)
