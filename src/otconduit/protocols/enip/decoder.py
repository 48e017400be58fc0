"""The EtherNet/IP + CIP :class:`~otconduit.protocols.base.ConnectionDecoder`.

One decoder per TCP connection or UDP flow. TCP bytes go through an
:class:`~otconduit.protocols.enip.stream.EncapStream` per direction; a UDP datagram holds
encapsulation messages (port 44818, Vol 2 §2-2.2) or, on port 2222, one implicit I/O
packet: a CPF block with a sequenced address item and a connected data item (Vol 2
§2-6.2.3, §3-2.2) and no encapsulation header.

Matching requests and replies:

* Encapsulation commands that are not CIP carriers (ListIdentity, RegisterSession, ...)
  by command and sender context (Vol 2 §2-3.1: the target echoes the context).
* CIP in SendRRData (unconnected) in order, preferring a request with the reply's
  sender context.
* CIP in SendUnitData (connected, class 3) by connection and sequence count (Vol 1
  §3-4.4.6): requests carry the O->T connection id, replies the T->O id and the same
  sequence count. The pairing of the two ids comes from Forward Open replies or, for
  connections opened before the capture, from the first reply whose sequence count
  matches an open request; it is remembered for the rest of the connection.

Open requests are bounded (``max_pending`` per table); the oldest falls out as
``no_response``, as does everything still open at :meth:`finish`. Tracked connections
and id pairings are bounded by ``max_connections``, implicit I/O tallies by four times
that (the oldest tally is reported early).

Implicit I/O is not a transaction: each (direction, connection id) becomes one
``IMPLICIT_IO`` operation at :meth:`finish` (class ``read``, function code 0, quantity =
packets seen, source = the producer), never one per packet.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from otconduit.model import OpClass, Operation, OpStatus
from otconduit.protocols.base import CLIENT_TO_SERVER, DecoderEvent, Endpoints, Pending
from otconduit.protocols.enip import cip, cm, encap, identity, transactions
from otconduit.protocols.enip.classify import encap_op_class
from otconduit.protocols.enip.encap import (
    CIP_CARRIERS,
    HEADER_SIZE,
    NO_REPLY_COMMANDS,
    EncapHeader,
    command_name,
    header_problem,
    parse_carrier,
    parse_cpf,
    parse_header,
    status_name,
)
from otconduit.protocols.enip.stream import EncapMessage, EncapStream
from otconduit.protocols.events import Malformed

IO_PORT: Final = 2222  # Vol 2 §2-2.3: UDP port for class 0/1 (implicit) I/O
IMPLICIT_IO: Final = "IMPLICIT_IO"
MAX_MALFORMED_DATA: Final = 512  # bytes of a message kept in a Malformed event
MAX_CLAIMS_REMEMBERED: Final = 4096
_LIST_COMMANDS: Final = frozenset({encap.LIST_IDENTITY, encap.LIST_SERVICES, encap.LIST_INTERFACES})


@dataclass(slots=True)
class _EncapRequest:
    direction: int
    msg: EncapMessage


@dataclass(slots=True)
class _CipPending:
    node: transactions.Node
    direction: int
    msg: EncapMessage
    conn: int | None
    seq: int | None


@dataclass(slots=True)
class _Connection:
    """A connection opened by a Forward Open seen in this TCP connection."""

    ot_id: int
    to_id: int
    serial: tuple[int, int, int]  # connection serial, originator vendor, originator serial
    routed: bool
    ot_rpi_us: int
    to_rpi_us: int


@dataclass(slots=True)
class _IoFlow:
    first_ts: int
    first_frame: int
    last_frame: int
    last_ts: int
    packets: int
    first_seq: int | None
    last_seq: int | None
    data_length: int


@dataclass(frozen=True, slots=True)
class EnipState:
    """What an EtherNet/IP connection hands a fast path: the T->O -> O->T connection id
    pairings it learned (oldest first) and the connections it saw opened, as
    (O->T id, connection serial, O->T RPI in µs)."""

    pairs: tuple[tuple[int, int], ...]
    connections: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class EnipResume:
    """What a fast path learned: T->O -> O->T pairings, in the order it made them."""

    pairs: tuple[tuple[int, int], ...]


class EnipDecoder:
    """EtherNet/IP and CIP over one TCP connection or UDP flow (sans-I/O).

    Besides events it keeps counters: ``command_counts`` (encapsulation messages per
    command, both directions), ``cip_request_counts`` (CIP requests per service code,
    embedded ones included) and ``io_packets`` (implicit I/O datagrams).
    """

    def __init__(
        self, endpoints: Endpoints, *, max_pending: int = 1024, max_connections: int = 256
    ) -> None:
        if max_pending < 1 or max_connections < 1:
            raise ValueError("bounds must be >= 1")
        self.endpoints = endpoints
        self.max_pending = max_pending
        self.max_connections = max_connections
        self._tcp = endpoints.transport == "tcp"
        self._streams = (EncapStream(), EncapStream())
        self._udp_offsets = [0, 0]
        self._out: list[DecoderEvent] = []
        self._encap_pending: deque[_EncapRequest] = deque()
        self._rr_pending: deque[_CipPending] = deque()
        self._conn_pending: OrderedDict[tuple[int, int], deque[_CipPending]] = OrderedDict()
        self._conn_pending_count = 0
        self._connections: OrderedDict[int, _Connection] = OrderedDict()  # by O->T id
        self._reply_ids: OrderedDict[int, int] = OrderedDict()  # T->O id -> O->T id
        self._paired_ot: set[int] = set()
        self._io: dict[tuple[int, int], _IoFlow] = {}
        self._claimed: set[tuple[str, str, str]] = set()
        self._finished = False
        self.command_counts: Counter[int] = Counter()
        self.cip_request_counts: Counter[int] = Counter()
        self.io_packets = 0

    # --- ConnectionDecoder ----------------------------------------------------------

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self._tcp:
            self._streams[direction].feed(data, frame, ts_ns)
            self._pump(direction)
        else:
            self._datagram(direction, data, frame, ts_ns)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        if self._tcp and not self._finished:
            self._streams[direction].gap(nbytes, frame, ts_ns)
            self._pump(direction)

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        if not self._finished:
            self._finished = True
            if self._tcp:
                for direction in (0, 1):
                    self._streams[direction].end()
                    self._pump(direction)
            while self._encap_pending:
                req = self._encap_pending.popleft()
                self._out.append(self._encap_operation(req, None, 1 - req.direction, {}))
            while self._rr_pending:
                self._unanswered(self._rr_pending.popleft())
            for queue in self._conn_pending.values():
                for pending in queue:
                    self._unanswered(pending)
            self._conn_pending.clear()
            self._conn_pending_count = 0
            self._out += [self._io_operation(key, flow) for key, flow in self._io.items()]
            self._io.clear()
        return self.events()

    # --- Resumable (TCP) -------------------------------------------------------------

    def quiescent(self) -> bool:
        return (
            self._tcp
            and not self._finished
            and not self._out
            and all(s.idle for s in self._streams)
            and not (self._encap_pending or self._rr_pending or self._conn_pending)
        )

    def export_state(self) -> EnipState:
        return EnipState(
            pairs=tuple(self._reply_ids.items()),
            connections=tuple(
                (c.ot_id, c.serial[0], c.ot_rpi_us) for c in self._connections.values()
            ),
        )

    def resume(self, state: EnipResume | None, pending: Sequence[Pending]) -> None:
        if state is not None:
            for to_id, ot_id in state.pairs:
                self._pair(to_id, ot_id)
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def fork(self) -> Self:
        other = type(self)(
            self.endpoints, max_pending=self.max_pending, max_connections=self.max_connections
        )
        other._connections = OrderedDict(self._connections)
        other._reply_ids = OrderedDict(self._reply_ids)
        other._paired_ot = set(self._paired_ot)
        return other

    # --- plumbing -------------------------------------------------------------------

    def _addr(self, direction: int) -> tuple[str, int]:
        """The sender of ``direction``."""
        ep = self.endpoints
        if direction == CLIENT_TO_SERVER:
            return ep.client_ip, ep.client_port
        return ep.server_ip, ep.server_port

    def _pump(self, direction: int) -> None:
        for event in self._streams[direction].events():
            if isinstance(event, Malformed):
                self._out.append(event)
            else:
                self._message(direction, event)

    def _malformed(self, msg: EncapMessage, reason: str, data: bytes | None = None) -> None:
        raw = msg.body if data is None else data
        self._out.append(
            Malformed(
                reason=reason,
                offset=msg.offset,
                frame=msg.frame,
                ts_ns=msg.ts_ns,
                data=raw[:MAX_MALFORMED_DATA],
            )
        )

    def _claims(self, info: identity.IdentityInfo, ip: str, ts_ns: int) -> None:
        for claim in info.claims(ip, ts_ns):
            key = (claim.ip, claim.attribute, claim.value)
            if key in self._claimed:
                continue
            if len(self._claimed) < MAX_CLAIMS_REMEMBERED:
                self._claimed.add(key)
            self._out.append(claim)

    # --- UDP ------------------------------------------------------------------------

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        offset = self._udp_offsets[direction]
        self._udp_offsets[direction] += len(data)
        ep = self.endpoints
        io_port = IO_PORT in (ep.client_port, ep.server_port)
        if io_port and self._io_packet(direction, data, frame, ts_ns):
            return
        messages, problem = _udp_messages(data, offset, frame, ts_ns)
        if not messages and not io_port and self._io_packet(direction, data, frame, ts_ns):
            return
        for msg in messages:
            self._message(direction, msg)
        if problem is not None:
            kind = "implicit I/O or encapsulation" if io_port else "encapsulation"
            self._out.append(
                Malformed(
                    reason=f"UDP {kind}: {problem}",
                    offset=offset,
                    frame=frame,
                    ts_ns=ts_ns,
                    data=data[:MAX_MALFORMED_DATA],
                )
            )

    def _io_packet(self, direction: int, data: bytes, frame: int, ts_ns: int) -> bool:
        parsed = parse_io(data)
        if parsed is None:
            return False
        conn, seq, size = parsed
        self.io_packets += 1
        flow = self._io.get((direction, conn))
        if flow is None:
            if len(self._io) >= 4 * self.max_connections:  # report the oldest early
                key = next(iter(self._io))
                self._out.append(self._io_operation(key, self._io.pop(key)))
            self._io[(direction, conn)] = _IoFlow(
                first_ts=ts_ns,
                first_frame=frame,
                last_frame=frame,
                last_ts=ts_ns,
                packets=1,
                first_seq=seq,
                last_seq=seq,
                data_length=size,
            )
        else:
            flow.packets += 1
            flow.last_frame, flow.last_ts, flow.last_seq = frame, ts_ns, seq
            flow.data_length = size
        return True

    def _io_operation(self, key: tuple[int, int], flow: _IoFlow) -> Operation:
        direction, conn = key
        (src_ip, src_port), (dst_ip, dst_port) = self._addr(direction), self._addr(1 - direction)
        detail: dict[str, Any] = {
            "connection_id": conn,
            "packets": flow.packets,
            "first_sequence": flow.first_seq,
            "last_sequence": flow.last_seq,
            "data_length": flow.data_length,
            "last_frame": flow.last_frame,
            "duration_ns": flow.last_ts - flow.first_ts,
        }
        return Operation(
            ts_ns=flow.first_ts,
            protocol=transactions.PROTOCOL,
            src_ip=src_ip,
            src_port=src_port,
            dst_ip=dst_ip,
            dst_port=dst_port,
            operation=OpClass.READ,
            function=IMPLICIT_IO,
            function_code=0,
            quantity=flow.packets,
            request_frame=flow.first_frame,
            transaction_id=conn,
            detail={k: v for k, v in detail.items() if v is not None},
        )

    # --- encapsulation --------------------------------------------------------------

    def _message(self, direction: int, msg: EncapMessage) -> None:
        self.command_counts[msg.header.command] += 1
        if msg.header.command in CIP_CARRIERS:
            self._carrier(direction, msg)
        else:
            self._encap_command(direction, msg)

    @staticmethod
    def _is_reply(direction: int, h: EncapHeader) -> bool:
        """List* requests carry no data (Vol 2 §2-4.2.2): tell them apart by content,
        since scanners and devices may both use port 44818. Otherwise by direction."""
        if h.command in _LIST_COMMANDS:
            return h.length > 0 or h.status != 0
        return direction != CLIENT_TO_SERVER

    def _encap_command(self, direction: int, msg: EncapMessage) -> None:
        h = msg.header
        if h.command in NO_REPLY_COMMANDS:
            self._out.append(self._encap_operation(_EncapRequest(direction, msg), None, 0, {}))
            return
        if not self._is_reply(direction, h):
            self._encap_pending.append(_EncapRequest(direction, msg))
            if len(self._encap_pending) > self.max_pending:
                old = self._encap_pending.popleft()
                self._out.append(self._encap_operation(old, None, 1 - old.direction, {}))
            return
        request = None
        for i, pending in enumerate(self._encap_pending):
            ph = pending.msg.header
            same_session = ph.session in (0, h.session)  # RegisterSession asks with 0
            if ph.command == h.command and ph.context == h.context and same_session:
                request = pending
                del self._encap_pending[i]
                break
        extra = self._encap_reply(direction, msg)
        self._out.append(self._encap_operation(request, msg, direction, extra))

    def _encap_reply(self, direction: int, msg: EncapMessage) -> dict[str, Any]:
        """Detail (and identity claims) from the reply of a non-carrier command."""
        h = msg.header
        extra: dict[str, Any] = {}
        if h.command == encap.REGISTER_SESSION and len(msg.body) >= 4:
            extra["protocol_version"] = int.from_bytes(msg.body[0:2], "little")
            extra["options_flags"] = int.from_bytes(msg.body[2:4], "little")
        if h.command not in _LIST_COMMANDS or not msg.body:
            return extra
        items, problem = parse_cpf(msg.body)
        if problem is not None:
            self._malformed(msg, f"{command_name(h.command)} reply: {problem}")
        extra["items"] = len(items)
        replier = self._addr(direction)[0]
        identities: list[dict[str, Any]] = []
        services: list[dict[str, Any]] = []
        for item in items:
            if item.type_id == encap.ITEM_LIST_IDENTITY and h.command == encap.LIST_IDENTITY:
                info, why = identity.parse_list_identity_item(item.data)
                if info is None:
                    self._malformed(msg, f"List Identity reply: {why}", item.data)
                    continue
                ip = replier
                if info.sockaddr is not None and info.sockaddr.ip != "0.0.0.0":
                    ip = info.sockaddr.ip
                identities.append({**info.detail(), "ip": ip})
                self._claims(info, ip, msg.ts_ns)
            elif item.type_id == encap.ITEM_LIST_SERVICES:
                entry = encap.parse_service_entry(item.data)
                if entry is not None:
                    services.append(
                        {"name": entry.name, "version": entry.version, "flags": entry.flags}
                    )
        if len(identities) == 1:
            extra.update(identities[0])
        elif identities:
            extra["identities"] = identities
        if services:
            extra["services"] = services
        return extra

    def _encap_operation(
        self,
        request: _EncapRequest | None,
        reply: EncapMessage | None,
        reply_direction: int,
        extra: dict[str, Any],
    ) -> Operation:
        base = request.msg if request is not None else reply
        assert base is not None
        requester = request.direction if request is not None else 1 - reply_direction
        (src_ip, src_port), (dst_ip, dst_port) = self._addr(requester), self._addr(1 - requester)
        h = base.header
        detail: dict[str, Any] = {
            "enip_command": command_name(h.command),
            "session_handle": h.session,
            "sender_context": h.context.hex(),
        }
        if request is not None:
            detail["request_length"] = request.msg.header.length
        status, exception, code = OpStatus.OK, None, None
        if reply is not None:
            rh = reply.header
            detail["response_length"] = rh.length
            detail["enip_status"] = status_name(rh.status)
            if rh.session != h.session:
                detail["request_session_handle"] = h.session
                detail["session_handle"] = rh.session  # RegisterSession: the new session
            if rh.status != 0:
                status, exception, code = OpStatus.EXCEPTION, status_name(rh.status), rh.status
        elif h.command not in NO_REPLY_COMMANDS:
            status = OpStatus.NO_RESPONSE
        detail.update(extra)
        if request is None:
            detail["orphan_reply"] = True
        latency = None
        if request is not None and reply is not None:
            latency = reply.ts_ns - request.msg.ts_ns
        return Operation(
            ts_ns=base.ts_ns,
            protocol="enip",
            src_ip=src_ip,
            src_port=src_port,
            dst_ip=dst_ip,
            dst_port=dst_port,
            operation=encap_op_class(h.command),
            function=command_name(h.command),
            function_code=h.command,
            status=status,
            exception=exception,
            exception_code=code,
            latency_ns=latency,
            request_frame=request.msg.frame if request is not None else None,
            response_frame=reply.frame if reply is not None else None,
            detail=detail,
        )

    # --- CIP carriers ---------------------------------------------------------------

    def _carrier(self, direction: int, msg: EncapMessage) -> None:
        h = msg.header
        name = command_name(h.command)
        if not msg.body and h.status != 0:
            self._carrier_error(msg)
            return
        prefix, problem = parse_carrier(msg.body)
        if prefix is None or problem is not None:
            self._malformed(msg, f"{name}: {problem}")
            return
        conn = seq = None
        sockaddrs: dict[str, Any] = {}
        for item in prefix.items:
            if item.type_id in (encap.ITEM_SOCKADDR_OT, encap.ITEM_SOCKADDR_TO):
                sa = encap.parse_sockaddr(item.data)
                key = "ot" if item.type_id == encap.ITEM_SOCKADDR_OT else "to"
                sockaddrs[f"sockaddr_{key}"] = f"{sa.ip}:{sa.port}"
        if h.command == encap.SEND_RR_DATA:
            data = _first(prefix.items, encap.ITEM_UNCONNECTED_DATA)
            if data is None:
                self._malformed(msg, f"{name}: no Unconnected Data item")
                return
            message = data
        else:
            address = _first(prefix.items, encap.ITEM_CONNECTED_ADDRESS)
            data = _first(prefix.items, encap.ITEM_CONNECTED_DATA)
            if address is None or data is None or len(data) < 2:
                self._malformed(msg, f"{name}: no Connected Address and Data items")
                return
            conn = int.from_bytes(address, "little")
            seq = int.from_bytes(data[:2], "little")
            message = data[2:]
        if not message:
            self._malformed(msg, f"{name}: empty CIP message")
            return
        if cip.is_reply(message):
            self._cip_reply(direction, msg, message, conn, seq, sockaddrs)
        else:
            self._cip_request(direction, msg, message, conn, seq)

    def _carrier_error(self, msg: EncapMessage) -> None:
        """A carrier reply with an error status and no data: it answers the oldest open
        unconnected request with the same sender context."""
        if msg.header.command != encap.SEND_RR_DATA:
            return
        pending = self._pop_rr(msg.header.context, strict=True)
        if pending is None:
            return
        ctx = self._context(pending, msg, None, {})
        for node, _ in transactions.assign(pending.node, None):
            op = transactions.operation(node, None, ctx)
            self._out.append(_with_status(op, msg, exception=status_name(msg.header.status)))

    def _cip_request(
        self, direction: int, msg: EncapMessage, message: bytes, conn: int | None, seq: int | None
    ) -> None:
        node = transactions.build(message)
        if node is None:
            self._malformed(msg, "empty CIP request", message)
            return
        for part in node.walk():
            self.cip_request_counts[part.request.service] += 1
            for problem in part.problems:
                self._malformed(msg, f"CIP request: {problem}", message)
        pending = _CipPending(node=node, direction=direction, msg=msg, conn=conn, seq=seq)
        if conn is None or seq is None:
            self._rr_pending.append(pending)
            if len(self._rr_pending) > self.max_pending:
                self._unanswered(self._rr_pending.popleft())
            return
        self._conn_pending.setdefault((conn, seq), deque()).append(pending)
        self._conn_pending_count += 1
        if self._conn_pending_count > self.max_pending:
            key, queue = next(iter(self._conn_pending.items()))
            self._unanswered(queue.popleft())
            self._conn_pending_count -= 1
            if not queue:
                del self._conn_pending[key]

    def _cip_reply(
        self,
        direction: int,
        msg: EncapMessage,
        message: bytes,
        conn: int | None,
        seq: int | None,
        sockaddrs: dict[str, Any],
    ) -> None:
        reply, problem = cip.parse_response(message)
        if problem is not None:
            self._malformed(msg, f"CIP reply: {problem}", message)
        if reply is None:
            return
        if conn is None or seq is None:
            pending = self._pop_rr(msg.header.context, strict=False)
        else:
            pending = self._pop_connected(conn, seq)
        if pending is None:
            requester = 1 - direction
            (src_ip, src_port), (dst_ip, dst_port) = self._addr(requester), self._addr(direction)
            h = msg.header
            detail: dict[str, Any] = {
                "enip_command": command_name(h.command),
                "session_handle": h.session,
                "sender_context": h.context.hex(),
                "response_length": h.length,
                "enip_status": status_name(h.status),
                "response_connection_id": conn,
                "sequence_count": seq,
            }
            ctx = transactions.Context(
                src_ip=src_ip,
                src_port=src_port,
                dst_ip=dst_ip,
                dst_port=dst_port,
                ts_ns=msg.ts_ns,
                frame=msg.frame,
                reply_ts_ns=msg.ts_ns,
                reply_frame=msg.frame,
                transaction_id=seq,
                detail={k: v for k, v in detail.items() if v is not None},
            )
            self._out.append(transactions.orphan_operation(reply, ctx))
            return
        ctx = self._context(pending, msg, conn, sockaddrs)
        for node, node_reply in transactions.assign(pending.node, reply):
            extra = self._reply_effects(node, node_reply, pending, direction, msg.ts_ns)
            self._out.append(transactions.operation(node, node_reply, ctx, extra))

    # --- matching -------------------------------------------------------------------

    def _pop_rr(self, context: bytes, *, strict: bool) -> _CipPending | None:
        for i, pending in enumerate(self._rr_pending):
            if pending.msg.header.context == context:
                del self._rr_pending[i]
                return pending
        if strict or not self._rr_pending:
            return None
        return self._rr_pending.popleft()

    def _pop_connected(self, reply_conn: int, seq: int) -> _CipPending | None:
        ot = self._reply_ids.get(reply_conn)
        if ot is not None:
            return self._take_connected((ot, seq))
        for key in self._conn_pending:
            if key[1] == seq and key[0] not in self._paired_ot:
                self._pair(reply_conn, key[0])
                return self._take_connected(key)
        return None

    def _take_connected(self, key: tuple[int, int]) -> _CipPending | None:
        queue = self._conn_pending.get(key)
        if not queue:
            return None
        pending = queue.popleft()
        self._conn_pending_count -= 1
        if not queue:
            del self._conn_pending[key]
        return pending

    def _pair(self, to_id: int, ot_id: int) -> None:
        previous = self._reply_ids.pop(to_id, None)
        if previous is not None:
            self._paired_ot.discard(previous)
        self._reply_ids[to_id] = ot_id
        self._paired_ot.add(ot_id)
        while len(self._reply_ids) > self.max_connections:
            _, old_ot = self._reply_ids.popitem(last=False)
            self._paired_ot.discard(old_ot)

    # --- completing transactions ----------------------------------------------------

    def _context(
        self,
        pending: _CipPending,
        reply: EncapMessage | None,
        reply_conn: int | None,
        sockaddrs: dict[str, Any],
    ) -> transactions.Context:
        h = pending.msg.header
        detail: dict[str, Any] = {
            "enip_command": command_name(h.command),
            "session_handle": h.session,
            "sender_context": h.context.hex(),
            "request_length": h.length,
            "connection_id": pending.conn,
            "sequence_count": pending.seq,
            "response_connection_id": reply_conn,
            **sockaddrs,
        }
        if reply is not None:
            detail["response_length"] = reply.header.length
            detail["enip_status"] = status_name(reply.header.status)
        connection = self._connections.get(pending.conn) if pending.conn is not None else None
        if connection is not None:
            detail["connection_serial"] = connection.serial[0]
            detail["connection_rpi_us"] = connection.ot_rpi_us
        (src_ip, src_port) = self._addr(pending.direction)
        (dst_ip, dst_port) = self._addr(1 - pending.direction)
        return transactions.Context(
            src_ip=src_ip,
            src_port=src_port,
            dst_ip=dst_ip,
            dst_port=dst_port,
            ts_ns=pending.msg.ts_ns,
            frame=pending.msg.frame,
            reply_ts_ns=reply.ts_ns if reply is not None else None,
            reply_frame=reply.frame if reply is not None else None,
            transaction_id=pending.seq,
            detail={k: v for k, v in detail.items() if v is not None},
        )

    def _unanswered(self, pending: _CipPending) -> None:
        ctx = self._context(pending, None, None, {})
        for node, _ in transactions.assign(pending.node, None):
            self._out.append(transactions.operation(node, None, ctx))

    def _reply_effects(
        self,
        node: transactions.Node,
        reply: cip.CipResponse | None,
        pending: _CipPending,
        reply_direction: int,
        ts_ns: int,
    ) -> dict[str, Any]:
        """Connection tracking and identity facts a reply brings; extra detail."""
        extra: dict[str, Any] = {}
        if reply is None or reply.service != node.request.service:
            return extra
        ok = reply.general_status == 0
        if node.forward_open is not None:
            fo = cm.parse_forward_open_reply(reply.data, success=ok)
            if (
                fo is not None
                and fo.ot_connection_id is not None
                and fo.to_connection_id is not None
            ):
                extra.update(
                    ot_connection_id=fo.ot_connection_id,
                    to_connection_id=fo.to_connection_id,
                    ot_api_us=fo.ot_api_us,
                    to_api_us=fo.to_api_us,
                )
                self._open_connection(node, node.forward_open, fo)
        elif node.forward_close is not None and ok:
            self._close_connection(node.forward_close)
        if node.class_id == cip.CLASS_IDENTITY and ok:
            info = _identity_from_reply(node, reply)
            if info is not None:
                extra["identity"] = info.detail()
                if not self._routed(node, pending):
                    self._claims(info, self._addr(reply_direction)[0], ts_ns)
        return extra

    def _routed(self, node: transactions.Node, pending: _CipPending) -> bool:
        """Whether the target is behind the device that answered (a routed Unconnected
        Send, or a connection whose path crosses a port): its identity is not the IP's."""
        if node.route is not None and node.route.segments:
            return True
        connection = self._connections.get(pending.conn) if pending.conn is not None else None
        return connection is not None and connection.routed

    def _open_connection(
        self, node: transactions.Node, request: cm.ForwardOpenRequest, reply: cm.ForwardOpenReply
    ) -> None:
        assert reply.ot_connection_id is not None and reply.to_connection_id is not None
        routed = bool(request.path.ports) or (node.route is not None and bool(node.route.segments))
        self._connections[reply.ot_connection_id] = _Connection(
            ot_id=reply.ot_connection_id,
            to_id=reply.to_connection_id,
            serial=(reply.connection_serial, reply.originator_vendor, reply.originator_serial),
            routed=routed,
            ot_rpi_us=request.ot_rpi_us,
            to_rpi_us=request.to_rpi_us,
        )
        self._paired_ot.discard(reply.ot_connection_id)
        self._pair(reply.to_connection_id, reply.ot_connection_id)
        while len(self._connections) > self.max_connections:
            self._connections.popitem(last=False)

    def _close_connection(self, close: cm.ForwardClose) -> None:
        serial = (close.connection_serial, close.originator_vendor, close.originator_serial)
        for ot_id, connection in list(self._connections.items()):
            if connection.serial == serial:
                del self._connections[ot_id]
                self._reply_ids.pop(connection.to_id, None)
                self._paired_ot.discard(ot_id)


def _first(items: list[encap.CpfItem], type_id: int) -> bytes | None:
    for item in items:
        if item.type_id == type_id:
            return item.data
    return None


def _with_status(op: Operation, msg: EncapMessage, *, exception: str) -> Operation:
    """``op`` answered by an encapsulation-level error (no CIP reply)."""
    return dataclasses.replace(
        op,
        status=OpStatus.EXCEPTION,
        exception=exception,
        exception_code=msg.header.status,
        response_frame=msg.frame,
        latency_ns=msg.ts_ns - op.ts_ns,
        detail={**op.detail, "enip_status": exception, "response_length": msg.header.length},
    )


def _identity_from_reply(
    node: transactions.Node, reply: cip.CipResponse
) -> identity.IdentityInfo | None:
    service = node.request.service
    if service == cip.GET_ATTRIBUTES_ALL:
        return identity.parse_get_attributes_all(reply.data)
    if service == cip.GET_ATTRIBUTE_SINGLE:
        return identity.parse_get_attribute_single(node.request.path.attribute_id, reply.data)
    if service == cip.GET_ATTRIBUTE_LIST:
        return identity.parse_get_attribute_list(reply.data)
    return None


def parse_io(data: bytes) -> tuple[int, int | None, int] | None:
    """(connection id, sequence number or None, data length) of an implicit I/O packet:
    a CPF block (Vol 2 §2-6) with a sequenced address item (0x8002: connection id UDINT,
    sequence number UDINT) or a connected address item (0x00A1), and a connected data
    item (0x00B1). None when ``data`` is not one."""
    items, problem = parse_cpf(data)
    if problem is not None or len(items) < 2:
        return None
    address = items[0]
    payload = _first(items[1:], encap.ITEM_CONNECTED_DATA)
    if payload is None:
        return None
    if address.type_id == encap.ITEM_SEQUENCED_ADDRESS:
        conn = int.from_bytes(address.data[0:4], "little")
        return conn, int.from_bytes(address.data[4:8], "little"), len(payload)
    if address.type_id == encap.ITEM_CONNECTED_ADDRESS:
        return int.from_bytes(address.data, "little"), None, len(payload)
    return None


def _udp_messages(
    data: bytes, offset: int, frame: int, ts_ns: int
) -> tuple[list[EncapMessage], str | None]:
    """Encapsulation messages of one datagram, and a problem with what follows them.

    Vol 2 §2-2.2: a datagram holds whole messages, so the length must fit the datagram
    exactly; there is no resynchronisation on UDP, a bad header ends the datagram.
    """
    out: list[EncapMessage] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < HEADER_SIZE:
            return out, f"{len(data) - pos} bytes cannot hold a {HEADER_SIZE}-byte header"
        header = parse_header(data, pos)
        problem = header_problem(header)
        if problem is not None:
            return out, f"invalid encapsulation header: {problem}"
        end = pos + HEADER_SIZE + header.length
        if end > len(data):
            return out, (
                f"length {header.length} exceeds the {len(data) - pos - HEADER_SIZE} bytes"
                " left in the datagram"
            )
        out.append(
            EncapMessage(
                header=header,
                body=data[pos + HEADER_SIZE : end],
                offset=offset + pos,
                frame=frame,
                ts_ns=ts_ns,
            )
        )
        pos = end
    return out, None
