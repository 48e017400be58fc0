"""Pairs OPC UA requests with responses and maps them onto Operations and identity claims.

Matching, per connection:

- Service requests and responses by RequestHandle (OPC 10000-4 §7.33: the server
  returns the client's handle in the ResponseHeader), keyed by the requester's direction.
  A response must be of the request's service (or a ServiceFault); when the handle does
  not match, the RequestId of the sequence header (which the server also echoes) is
  tried. Latency is response time minus request time (the frames that completed them).
- Hello with Acknowledge or Error; an Error without a Hello becomes an operation of its
  own, as do ReverseHello and CloseSecureChannel (which nothing answers).
- An OpenSecureChannel whose body is encrypted pairs with the next OPN of the other
  side. Its operation waits for the first MSG/CLO chunk after it, which shows the
  SecurityMode (see :mod:`.secure`), and is emitted then (or at the end).
- Encrypted MSG chunks are counted per direction and reported as one operation
  ``EncryptedMessages`` per stretch of traffic: at the next OPN, at CLO, every
  ``ENCRYPTED_EVERY`` messages and at the end of the connection.

As with S7, a response whose request has not been seen is held (bounded): after a loss
in one direction the reassembler may release its later bytes after the other direction's
answers. Open requests beyond ``max_outstanding`` complete as ``no_response``, as do
those still open at the end; held responses become response-only operations.

``function_code`` is the numeric id of the request's binary encoding (631 Read, ...),
or for the transport messages: 0x48454C Hello ("HEL"), 0x524845 ReverseHello ("RHE"),
0x455252 Error ("ERR"), 0x41 Abort ("A"), 0 EncryptedMessages.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.opcua import identity as ident
from otconduit.protocols.opcua.chunks import CLO, FINAL, OPN
from otconduit.protocols.opcua.secure import (
    MALFORMED_DATA,
    POLICY_NONE,
    Abort,
    Acknowledge,
    ChannelEvent,
    Encrypted,
    Hello,
    ReverseHello,
    SecureChannel,
    SecureMessage,
    TransportError,
)
from otconduit.protocols.opcua.services import (
    CLOSE_SECURE_CHANNEL,
    OPEN_SECURE_CHANNEL,
    Body,
    Service,
    bad_results,
    parse_body,
    sha1_thumbprint,
)
from otconduit.protocols.opcua.status import is_bad, status_name

PROTOCOL: Final = "opcua"
DEFAULT_MAX_OUTSTANDING: Final = 256
ENCRYPTED_EVERY: Final = 1000
MAX_PENDING_OPN: Final = 4
HELLO_CODE: Final = int.from_bytes(b"HEL", "big")
REVERSE_HELLO_CODE: Final = int.from_bytes(b"RHE", "big")
ERROR_CODE: Final = int.from_bytes(b"ERR", "big")
ABORT_CODE: Final = 0x41
ENCRYPTED_CODE: Final = 0
MAX_RESULT_CODES: Final = 32


@dataclass(frozen=True, slots=True)
class _Msg:
    """A message of either direction with what was decoded of it."""

    direction: int
    event: ChannelEvent
    body: Body | None
    frame: int
    ts_ns: int


@dataclass(slots=True)
class _Counts:
    """Encrypted traffic since the last EncryptedMessages operation."""

    messages: list[int] = field(default_factory=lambda: [0, 0])
    chunks: list[int] = field(default_factory=lambda: [0, 0])
    size: list[int] = field(default_factory=lambda: [0, 0])
    certain: bool = True
    first: tuple[int, int] | None = None  # (frame, ts_ns)
    last: tuple[int, int] = (0, 0)

    @property
    def total(self) -> int:
        return self.messages[0] + self.messages[1]


class OpcUaSession:
    """Transaction matching and Operation / IdentityClaim building for one connection."""

    def __init__(
        self,
        endpoints: Endpoints,
        channel: SecureChannel,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
    ) -> None:
        if max_outstanding < 1:
            raise ValueError("max_outstanding must be >= 1")
        self.endpoints = endpoints
        self.channel = channel
        self.max_outstanding = max_outstanding
        self.client_dir = 0  # the OPC UA client's side (1 after a ReverseHello)
        self._open: OrderedDict[tuple[int, int], _Msg] = OrderedDict()
        self._by_request_id: dict[tuple[int, int], tuple[int, int]] = {}
        self._held: OrderedDict[tuple[int, int], _Msg] = OrderedDict()
        self._hello: _Msg | None = None
        self._opn: list[_Msg] = []  # encrypted OPN requests awaiting their response
        self._opn_waiting: tuple[_Msg | None, _Msg | None] | None = None
        self._counts = _Counts()
        self._claimed: set[tuple[str, str, str, str]] = set()
        self._saw_hello = False
        self.evicted = 0

    @property
    def idle(self) -> bool:
        return not (
            self._open
            or self._held
            or self._hello
            or self._opn
            or self._opn_waiting
            or self._counts.chunks[0]
            or self._counts.chunks[1]
        )

    # --- entry points -------------------------------------------------------------------

    def handle(self, direction: int, event: ChannelEvent) -> list[DecoderEvent]:
        out: list[DecoderEvent] = []
        if self._opn_waiting is not None and (
            self.channel.readable is not None or isinstance(event, SecureMessage | Hello)
        ):
            out += self._release_opn()
        if isinstance(event, SecureMessage):
            if event.msg_type == OPN:
                out += self._flush_encrypted()
            out += self._secure(direction, event)
        elif isinstance(event, Encrypted):
            out += self._encrypted(direction, event)
        elif isinstance(event, Hello | Acknowledge | TransportError | ReverseHello):
            out += self._transport(direction, event)
        elif isinstance(event, Abort):
            out += self._abort(direction, event)
        return out

    def flush(self) -> list[DecoderEvent]:
        """End of the connection: everything still pending becomes an operation."""
        out: list[DecoderEvent] = []
        if self._opn_waiting is not None:
            out += self._release_opn()
        out += self._flush_encrypted()
        pending: list[tuple[int, int, _Msg | None, _Msg | None]] = [
            (m.ts_ns, m.frame, m, None) for m in self._open.values()
        ]
        pending += [(m.ts_ns, m.frame, m, None) for m in self._opn]
        if self._hello is not None:
            pending.append((self._hello.ts_ns, self._hello.frame, self._hello, None))
        pending += [(m.ts_ns, m.frame, None, m) for m in self._held.values()]
        pending.sort(key=lambda p: (p[0], p[1]))
        self._open.clear()
        self._by_request_id.clear()
        self._held.clear()
        self._opn.clear()
        self._hello = None
        for _, _, req, resp in pending:
            out.append(self._operation(req, resp))
        return out

    # --- transport messages ---------------------------------------------------------------

    def _transport(self, direction: int, ev: ChannelEvent) -> list[DecoderEvent]:
        msg = _Msg(direction, ev, None, ev.at.frame, ev.at.ts_ns)
        out: list[DecoderEvent] = []
        if isinstance(ev, ReverseHello):
            if not self._saw_hello:
                self.client_dir = 1 - direction
            return [self._operation(msg, None, one_way=True)]
        if isinstance(ev, Hello):
            self._saw_hello = True
            if self._hello is not None:
                out.append(self._operation(self._hello, None))
            self.client_dir = direction
            self._hello = msg
            return out
        if self._hello is not None and self._hello.direction != direction:
            hello, self._hello = self._hello, None
            return [self._operation(hello, msg)]
        if isinstance(ev, TransportError):
            return [self._operation(msg, None, one_way=True)]
        return [self._operation(None, msg)]  # an Acknowledge nobody asked for

    # --- secure channel messages ----------------------------------------------------------

    def _secure(self, direction: int, ev: SecureMessage) -> list[DecoderEvent]:
        if ev.body is None:
            return self._encrypted_open(direction, ev)
        body = parse_body(ev.body)
        if isinstance(body, str):
            return [
                Malformed(
                    reason=body,
                    offset=ev.at.offset,
                    frame=ev.at.frame,
                    ts_ns=ev.at.ts_ns,
                    data=ev.body[:MALFORMED_DATA],
                )
            ]
        msg = _Msg(direction, ev, body, ev.at.frame, ev.at.ts_ns)
        out: list[DecoderEvent] = []
        if body.is_request:
            if body.service is not None and body.service.name == "CreateSession" and body.client:
                out += self._claims(
                    direction,
                    ident.application_pairs(body.client)
                    + ident.certificate_pairs([body.certificate]),
                    ident.SOURCE_SESSION,
                    ev.at.ts_ns,
                )
            if ev.msg_type == OPN:
                out += self._certificate_claim(direction, ev)
            if body.service is CLOSE_SECURE_CHANNEL or ev.msg_type == CLO:
                out += self._flush_encrypted()
                out.append(self._operation(msg, None, one_way=True))
                return out
            return self._request(msg) + out
        if ev.msg_type == OPN:
            out += self._certificate_claim(direction, ev)
        return self._response(msg) + out

    def _request(self, msg: _Msg) -> list[DecoderEvent]:
        body = msg.body
        assert body is not None and isinstance(msg.event, SecureMessage)
        key = (msg.direction, body.handle)
        out: list[DecoderEvent] = []
        held = self._held.pop(key, None)
        if held is not None:
            if (held.ts_ns, held.frame) >= (msg.ts_ns, msg.frame) and _answers(msg, held):
                return self._answered(msg, held)
            out.append(self._operation(None, held))
        old = self._open.pop(key, None)
        if old is not None:  # the handle was reused before any answer
            self._forget_request_id(old)
            out.append(self._operation(old, None))
        self._open[key] = msg
        if msg.event.request_id is not None:
            self._by_request_id[(msg.direction, msg.event.request_id)] = key
        while len(self._open) > self.max_outstanding:
            _, oldest = self._open.popitem(last=False)
            self._forget_request_id(oldest)
            self.evicted += 1
            out.append(self._operation(oldest, None))
        return out

    def _response(self, msg: _Msg) -> list[DecoderEvent]:
        body = msg.body
        assert body is not None and isinstance(msg.event, SecureMessage)
        req_dir = 1 - msg.direction
        key = (req_dir, body.handle)
        request = self._open.get(key)
        if request is None or not _answers(request, msg):
            alt = None
            if msg.event.request_id is not None:
                alt = self._by_request_id.get((req_dir, msg.event.request_id))
            other = self._open.get(alt) if alt is not None else None
            if alt is not None and other is not None and _answers(other, msg):
                key, request = alt, other
            else:
                return self._hold(key, msg)
        del self._open[key]
        self._forget_request_id(request)
        return self._answered(request, msg)

    def _forget_request_id(self, msg: _Msg) -> None:
        if isinstance(msg.event, SecureMessage) and msg.event.request_id is not None:
            self._by_request_id.pop((msg.direction, msg.event.request_id), None)

    def _hold(self, key: tuple[int, int], msg: _Msg) -> list[DecoderEvent]:
        out: list[DecoderEvent] = []
        old = self._held.pop(key, None)
        if old is not None:
            out.append(self._operation(None, old))
        self._held[key] = msg
        while len(self._held) > self.max_outstanding:
            _, oldest = self._held.popitem(last=False)
            out.append(self._operation(None, oldest))
        return out

    def _answered(self, request: _Msg, response: _Msg) -> list[DecoderEvent]:
        out: list[DecoderEvent] = [self._operation(request, response)]
        out += self._response_claims(request, response)
        return out

    # --- encrypted traffic ------------------------------------------------------------------

    def _encrypted_open(self, direction: int, ev: SecureMessage) -> list[DecoderEvent]:
        msg = _Msg(direction, ev, None, ev.at.frame, ev.at.ts_ns)
        out = self._certificate_claim(direction, ev)
        if direction == self.client_dir:
            self._opn.append(msg)
            if len(self._opn) > MAX_PENDING_OPN:
                out.append(self._operation(self._opn.pop(0), None))
            return out
        request = self._opn.pop(0) if self._opn else None
        if self.channel.readable is not None:  # a renewal: the mode is already known
            out.insert(0, self._operation(request, msg))
            return out
        self._opn_waiting = (request, msg)
        return out

    def _release_opn(self) -> list[DecoderEvent]:
        assert self._opn_waiting is not None
        request, response = self._opn_waiting
        self._opn_waiting = None
        return [self._operation(request, response)]

    def _encrypted(self, direction: int, ev: Encrypted) -> list[DecoderEvent]:
        out: list[DecoderEvent] = []
        if ev.msg_type == CLO:
            if ev.chunk_type != FINAL:
                return []
            out += self._flush_encrypted()
            msg = _Msg(direction, ev, None, ev.at.frame, ev.at.ts_ns)
            out.append(self._operation(msg, None, one_way=True))
            return out
        c = self._counts
        if c.first is None:
            c.first = (ev.at.frame, ev.at.ts_ns)
        c.last = (ev.at.frame, ev.at.ts_ns)
        c.chunks[direction] += 1
        c.size[direction] += ev.at.size
        c.certain = c.certain and ev.certain
        if ev.chunk_type != ord("C"):
            c.messages[direction] += 1
            if c.total >= ENCRYPTED_EVERY:
                out += self._flush_encrypted()
        return out

    def _flush_encrypted(self) -> list[DecoderEvent]:
        c = self._counts
        if c.first is None:
            return []
        self._counts = _Counts()
        detail: dict[str, Any] = {
            "client_messages": c.messages[self.client_dir],
            "server_messages": c.messages[1 - self.client_dir],
            "client_chunks": c.chunks[self.client_dir],
            "server_chunks": c.chunks[1 - self.client_dir],
            "client_bytes": c.size[self.client_dir],
            "server_bytes": c.size[1 - self.client_dir],
            "security_policy_uri": self.channel.policy,
            "security_mode": self.channel.mode,
            "encrypted": True,
        }
        if not c.certain:
            detail["unreadable_reason"] = "no OpenSecureChannel seen; bodies do not decode"
        return [
            Operation(
                ts_ns=c.first[1],
                protocol=PROTOCOL,
                **self.endpoints.addresses(self.client_dir),
                operation=OpClass.OTHER,
                function="EncryptedMessages",
                function_code=ENCRYPTED_CODE,
                quantity=c.total,
                request_frame=c.first[0],
                response_frame=c.last[0],
                detail=detail,
            )
        ]

    def _abort(self, direction: int, ev: Abort) -> list[DecoderEvent]:
        msg = _Msg(direction, ev, None, ev.at.frame, ev.at.ts_ns)
        if direction != self.client_dir:
            key = self._by_request_id.get((1 - direction, ev.request_id))
            request = self._open.pop(key, None) if key is not None else None
            if request is not None:
                self._forget_request_id(request)
                return [self._operation(request, msg)]
        return [self._operation(msg, None, one_way=True)]

    # --- identity -------------------------------------------------------------------------

    def _response_claims(self, request: _Msg, response: _Msg) -> list[DecoderEvent]:
        req, resp = request.body, response.body
        if req is None or resp is None or response.direction == self.client_dir:
            return []
        if resp.is_fault or (resp.service_result is not None and is_bad(resp.service_result)):
            return []
        name = req.service.name if req.service is not None else ""
        ts = response.ts_ns
        d = response.direction
        if name in ("GetEndpoints", "FindServers"):
            pairs: list[tuple[str, str]] = []
            app = ident.single_application(resp.servers)
            if app is not None:
                pairs += ident.application_pairs(app)
            pairs += ident.certificate_pairs(e.certificate for e in resp.endpoints)
            return self._claims(d, pairs, ident.SOURCE_ENDPOINTS, ts)
        if name == "CreateSession":
            pairs = []
            app = ident.single_application(resp.servers)
            if app is not None:
                pairs += ident.application_pairs(app)
            pairs += ident.certificate_pairs([resp.certificate])
            return self._claims(d, pairs, ident.SOURCE_SESSION, ts)
        if name == "Read" and any(n.numeric in ident.BUILD_INFO_NODES for n, _ in req.read_nodes):
            pairs = ident.build_info_pairs(req.read_nodes, resp.read_values)
            return self._claims(d, pairs, ident.SOURCE_BUILDINFO, ts)
        return []

    def _certificate_claim(self, direction: int, ev: SecureMessage) -> list[DecoderEvent]:
        pairs = ident.certificate_pairs([ev.sender_certificate])
        return self._claims(direction, pairs, ident.SOURCE_CHANNEL, ev.at.ts_ns)

    def _claims(
        self, direction: int, pairs: list[tuple[str, str]], source: str, ts_ns: int
    ) -> list[DecoderEvent]:
        """Claims about the application that sent in ``direction``, once per source."""
        ip = self.endpoints.client_ip if direction == 0 else self.endpoints.server_ip
        out: list[DecoderEvent] = []
        for attribute, value in pairs:
            if (ip, attribute, value, source) in self._claimed:
                continue
            self._claimed.add((ip, attribute, value, source))
            out.append(
                IdentityClaim(
                    ip=ip,
                    attribute=attribute,
                    value=value,
                    source=source,
                    confidence=ident.CONFIDENCE[source],
                    ts_ns=ts_ns,
                )
            )
        return out

    # --- operations -----------------------------------------------------------------------

    def _operation(
        self, request: _Msg | None, response: _Msg | None, *, one_way: bool = False
    ) -> Operation:
        """One Operation from a request and/or its response (never both missing)."""
        first = request if request is not None else response
        assert first is not None
        # A message passed as the response was sent by the other side of the requester.
        direction = request.direction if request is not None else 1 - first.direction
        fields: dict[str, Any] = {
            "ts_ns": first.ts_ns,
            "request_frame": request.frame if request else None,
            "response_frame": response.frame if response else None,
            "latency_ns": response.ts_ns - request.ts_ns if request and response else None,
            "status": OpStatus.OK,
            **self.endpoints.addresses(direction),
        }
        detail: dict[str, Any] = {}
        if request is None:
            detail["orphan_response"] = True
        elif response is None and not one_way:
            fields["status"] = OpStatus.NO_RESPONSE
        if direction != self.client_dir:
            detail["from_server"] = True
        event = first.event
        if isinstance(event, Hello | Acknowledge | TransportError | ReverseHello):
            _transport_fields(request, response, fields, detail)
        elif isinstance(event, Abort):
            fields.update(operation=OpClass.OTHER, function="Abort", function_code=ABORT_CODE)
        elif isinstance(event, Encrypted):  # an encrypted CloseSecureChannel
            _service_fields(CLOSE_SECURE_CHANNEL, fields)
            detail.update(encrypted=True, secure_channel_id=event.channel_id)
        else:
            self._secure_fields(request, response, fields, detail)
        last = response.event if response is not None else event
        if isinstance(last, Abort):
            _abort_fields(last, fields, detail)
        return Operation(protocol=PROTOCOL, **fields, detail=detail)

    def _secure_fields(
        self,
        request: _Msg | None,
        response: _Msg | None,
        fields: dict[str, Any],
        detail: dict[str, Any],
    ) -> None:
        req = request.body if request is not None else None
        resp = response.body if response is not None else None
        req_ev = request.event if request is not None else None
        resp_ev = response.event if response is not None else None
        base = req or resp
        service: Service | None = base.service if base is not None else None
        if base is not None and base.is_fault:
            service = None
        if service is None:
            ev = req_ev or resp_ev
            if isinstance(ev, SecureMessage) and ev.msg_type == OPN:
                service = OPEN_SECURE_CHANNEL
            elif isinstance(ev, SecureMessage) and ev.msg_type == CLO:
                service = CLOSE_SECURE_CHANNEL
        if service is not None:
            _service_fields(service, fields)
        else:
            fields.update(operation=OpClass.OTHER, function=base.name if base else "Unknown")
            fields["function_code"] = base.type_id if base is not None else 0
        for ev, role in ((req_ev, "request"), (resp_ev, "response")):
            if not isinstance(ev, SecureMessage):
                continue
            detail.setdefault("secure_channel_id", ev.channel_id)
            if ev.msg_type == OPN and role == "response":
                detail["secure_channel_id"] = ev.channel_id
            if ev.request_id is not None:
                detail.setdefault("request_id", ev.request_id)
            if ev.sequence_number is not None:
                detail[f"{role}_sequence_number"] = ev.sequence_number
            detail[f"{role}_size"] = ev.at.size
            if ev.at.chunks > 1:
                detail[f"{role}_chunks"] = ev.at.chunks
            if ev.token_id is not None:
                detail.setdefault("token_id", ev.token_id)
        for ev in (req_ev, resp_ev):
            if isinstance(ev, SecureMessage) and ev.msg_type == OPN:
                self._open_fields(ev, ev is req_ev, detail)
        if self.channel.mode is not None:
            detail.setdefault("security_mode", self.channel.mode)
        if req is not None:
            fields["transaction_id"] = req.handle
            detail.update(req.info)
            fields["quantity"] = req.quantity
            fields["values"] = req.values
            if req.timeout_hint:
                detail["timeout_hint"] = req.timeout_hint
        if resp is not None:
            if req is None:
                fields["transaction_id"] = resp.handle
            elif resp.handle != req.handle:
                detail["response_handle"] = resp.handle
            for k, v in resp.info.items():
                detail.setdefault(k, v)
            if fields.get("quantity") is None:
                fields["quantity"] = resp.quantity
            _result_fields(resp, fields, detail)
        problems = [b.problem for b in (req, resp) if b is not None and b.problem]
        if problems:
            detail["problems"] = problems
            if fields["status"] == OpStatus.OK:
                fields["status"] = OpStatus.MALFORMED

    def _open_fields(self, ev: SecureMessage, is_request: bool, detail: dict[str, Any]) -> None:
        detail["security_policy_uri"] = ev.policy_uri
        side = "client" if is_request else "server"
        thumb = sha1_thumbprint(ev.sender_certificate)
        if thumb:
            detail[f"{side}_certificate_sha1"] = thumb
        if is_request:
            detail["request_channel_id"] = ev.channel_id
        if ev.body is None:
            detail["encrypted"] = True
            mode = self.channel.mode if ev.policy_uri == self.channel.policy else None
            detail["security_mode"] = mode  # observed (None: not yet known)
        elif ev.policy_uri == POLICY_NONE:
            detail.setdefault("security_mode", "None")


def _answers(request: _Msg, response: _Msg) -> bool:
    """Whether ``response`` is of ``request``'s service (a ServiceFault answers any)."""
    req, resp = request.body, response.body
    if req is None or resp is None:
        return False
    return resp.is_fault or req.service is resp.service


def _service_fields(service: Service, fields: dict[str, Any]) -> None:
    fields.update(
        operation=service.op_class, function=service.name, function_code=service.request_id
    )


def _result_fields(resp: Body, fields: dict[str, Any], detail: dict[str, Any]) -> None:
    code = resp.service_result or 0
    if resp.is_fault:
        detail["response_type"] = "ServiceFault"
    if code:
        detail["service_result"] = status_name(code)
    if is_bad(code) or resp.is_fault:
        fields.update(status=OpStatus.EXCEPTION, exception=status_name(code), exception_code=code)
        return
    if resp.results:
        bad = bad_results(resp.results)
        if bad:
            detail["bad_results"] = bad
            detail["result_codes"] = [status_name(c) for c in resp.results[:MAX_RESULT_CODES]]
        if bad and bad == len(resp.results):
            first = next(c for c in resp.results if is_bad(c))
            fields.update(
                status=OpStatus.EXCEPTION, exception=status_name(first), exception_code=first
            )
            detail["error_source"] = "results"


def _transport_fields(
    request: _Msg | None, response: _Msg | None, fields: dict[str, Any], detail: dict[str, Any]
) -> None:
    first = request or response
    assert first is not None
    ev = first.event
    if isinstance(ev, ReverseHello):
        fields.update(
            operation=OpClass.SESSION, function="ReverseHello", function_code=REVERSE_HELLO_CODE
        )
        detail.update(server_uri=ev.server_uri, endpoint_url=ev.endpoint_url)
        return
    if isinstance(ev, TransportError):
        fields.update(operation=OpClass.SESSION, function="Error", function_code=ERROR_CODE)
        _error(ev, fields, detail)
        return
    fields.update(operation=OpClass.SESSION, function="Hello", function_code=HELLO_CODE)
    for msg in (request, response):
        e = msg.event if msg is not None else None
        if isinstance(e, Hello):
            detail["endpoint_url"] = e.endpoint_url
            detail["hello"] = _limits(e)
            detail["request_size"] = e.at.size
        elif isinstance(e, Acknowledge):
            detail["acknowledge"] = _limits(e)
            detail["response_size"] = e.at.size
        elif isinstance(e, TransportError):
            _error(e, fields, detail)


def _limits(e: Hello | Acknowledge) -> dict[str, int]:
    return {
        "protocol_version": e.version,
        "receive_buffer_size": e.receive_buffer,
        "send_buffer_size": e.send_buffer,
        "max_message_size": e.max_message,
        "max_chunk_count": e.max_chunks,
    }


def _error(ev: TransportError, fields: dict[str, Any], detail: dict[str, Any]) -> None:
    fields.update(status=OpStatus.EXCEPTION, exception=status_name(ev.code), exception_code=ev.code)
    if ev.reason:
        detail["reason"] = ev.reason


def _abort_fields(ev: Abort, fields: dict[str, Any], detail: dict[str, Any]) -> None:
    """The outcome of an aborted message (a request keeps its own function)."""
    code = ev.code or 0
    fields.update(status=OpStatus.EXCEPTION, exception=status_name(code), exception_code=code)
    detail.update(aborted=True, request_id=ev.request_id, secure_channel_id=ev.channel_id)
    if ev.reason:
        detail["reason"] = ev.reason
