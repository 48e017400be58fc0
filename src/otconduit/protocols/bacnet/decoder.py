"""BACnet/IP (UDP 47808) as a :class:`~otconduit.protocols.base.ConnectionDecoder`.

One ``feed`` is one datagram holding one BVLL message (135 Annex J): nothing carries
over between datagrams except the session (:mod:`.session`: requests waiting for
replies, segmented messages being reassembled). ``gap`` does not happen for UDP and is
ignored.

Per datagram: BVLC (:func:`.bvlc.parse_bvlc`) -> NPDU (:func:`.bvlc.parse_npdu`) ->
network layer message or APDU (:func:`.apdu.parse_apdu`) -> service data
(:mod:`.services`). What comes out:

- one Operation per confirmed service (request and reply), unconfirmed service, network
  layer message and BVLL management request (BDT/FDT, foreign device registration);
- IdentityClaims from I-Am / I-Have and from device object properties read
  (:func:`.ops.message_claims`, :func:`.ops.transaction_claims`), each once per flow;
- a Malformed event for every problem, at any layer, with the datagram (first
  :data:`MAX_MALFORMED_DATA` octets) as its data; an operation with a problem has status
  ``malformed``. ``offset`` is where the datagram starts in its direction's bytes.

Counters for conformance (per flow): ``bvlc_counts`` (BVLC function), ``pdu_counts``
((APDU type, service choice or None) per datagram, segments included),
``network_message_counts``; the session keeps its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Final, Self

from otconduit.model import IdentityClaim
from otconduit.protocols.bacnet import enums as E
from otconduit.protocols.bacnet import services
from otconduit.protocols.bacnet.apdu import parse_apdu
from otconduit.protocols.bacnet.bvlc import network_message_detail, parse_bvlc, parse_npdu
from otconduit.protocols.bacnet.ops import (
    bvlc_operation,
    message_claims,
    message_operation,
    transaction_claims,
    transaction_operation,
)
from otconduit.protocols.bacnet.session import BacnetSession, Message, Transaction
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed

MAX_MALFORMED_DATA: Final = 1500
MAX_CLAIMS: Final = 1024


class BacnetConnectionDecoder:
    """Both directions of one BACnet/IP flow."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.session = BacnetSession()
        self.bvlc_counts: Counter[int] = Counter()
        self.pdu_counts: Counter[tuple[int, int | None]] = Counter()
        self.network_message_counts: Counter[int] = Counter()
        self.datagrams = 0
        self.empty_datagrams = 0
        self.malformed = 0
        self._offsets = [0, 0]
        self._out: list[DecoderEvent] = []
        self._claimed: set[tuple[str, str, str]] = set()

    # -- ConnectionDecoder ---------------------------------------------------------------
    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        if not data:  # a UDP datagram without payload (port probes): nothing to decode
            self.empty_datagrams += 1
            return
        offset = self._offsets[direction]
        self._offsets[direction] += len(data)
        self.datagrams += 1
        done, cut = self.session.expire(ts_ns)
        self._cut(cut)
        self._transactions(done)
        self._datagram(direction, bytes(data), frame, ts_ns, offset)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        """Datagrams are never partial: nothing to do."""

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        done, cut = self.session.flush()
        self._cut(cut)  # a request cut short still waits: flush again
        self._transactions(done + self.session.flush()[0])
        return self.events()

    def fork(self) -> Self:
        return type(self)(self.endpoints)

    # -- layers ------------------------------------------------------------------------
    def _malformed(self, reason: str, data: bytes, offset: int, frame: int, ts_ns: int) -> None:
        self.malformed += 1
        self._out.append(
            Malformed(
                reason=reason,
                offset=offset,
                frame=frame,
                ts_ns=ts_ns,
                data=data[:MAX_MALFORMED_DATA],
            )
        )

    def _datagram(self, direction: int, data: bytes, frame: int, ts_ns: int, offset: int) -> None:
        def bad(reason: str) -> None:
            self._malformed(reason, data, offset, frame, ts_ns)

        bvlc = parse_bvlc(data)
        if isinstance(bvlc, str):
            bad(bvlc)
            return
        self.bvlc_counts[bvlc.function] += 1
        msg = Message(direction=direction, frame=frame, ts_ns=ts_ns, bvlc=bvlc)
        if bvlc.length_note is not None:
            bad(f"BVLC: {bvlc.length_note}")
        if bvlc.problem is not None:
            bad(f"BVLC: {bvlc.problem}")
            msg.problems.append(bvlc.problem)
        if bvlc.npdu is None:
            self._bvlc(msg)
            return
        npdu = parse_npdu(bvlc.npdu)
        if isinstance(npdu, str):
            bad(f"NPDU: {npdu}")
            return
        msg.npdu = npdu
        if npdu.problem is not None:
            bad(f"NPDU: {npdu.problem}")
            msg.problems.append(npdu.problem)
        if npdu.message_type is not None:
            self.network_message_counts[npdu.message_type] += 1
            detail, problem = network_message_detail(npdu)
            msg.detail = detail
            if problem is not None:
                bad(f"network layer message: {problem}")
                msg.problems.append(problem)
            self._emit_message(msg)
            return
        apdu = parse_apdu(npdu.payload)
        if isinstance(apdu, str):
            bad(f"APDU: {apdu}")
            return
        msg.apdu = apdu
        self.pdu_counts[(apdu.pdu_type, apdu.service)] += 1
        if apdu.problem is not None:
            bad(f"APDU: {apdu.problem}")
            msg.problems.append(apdu.problem)
        if apdu.segmented:
            whole, abandoned = self.session.segment(msg)
            self._cut(abandoned)
            if whole is not None:
                self._application(whole, b"", offset)
            return
        if apdu.pdu_type == E.SEGMENT_ACK:
            self.session.segment_ack(msg)
            return
        self._application(msg, data, offset)

    def _application(self, msg: Message, data: bytes, offset: int) -> None:
        """A whole APDU (possibly reassembled): decode its service and match it."""
        apdu = msg.apdu
        assert apdu is not None
        kind, service = apdu.pdu_type, apdu.service
        problem = None
        if kind == E.CONFIRMED_REQUEST and service is not None:
            msg.detail, problem = services.decode(services.CONFIRMED_REQUESTS, service, apdu.body)
            where = f"{E.confirmed_service_name(service)} request"
        elif kind == E.UNCONFIRMED_REQUEST and service is not None:
            msg.detail, problem = services.decode(services.UNCONFIRMED_REQUESTS, service, apdu.body)
            where = E.unconfirmed_service_name(service)
        elif kind == E.COMPLEX_ACK and service is not None:
            msg.detail, problem = services.decode(services.COMPLEX_ACKS, service, apdu.body)
            where = f"{E.confirmed_service_name(service)} ACK"
        elif kind == E.ERROR:
            error_class, error_code, problem = services.decode_error(apdu.body)
            if error_class is not None and error_code is not None:
                msg.detail = {
                    "error_class": E.error_class_name(error_class),
                    "error": E.error_code_name(error_code),
                    "error_code": error_code,
                }
            where = "Error"
        else:
            where = apdu.type_name
        if problem is not None:
            msg.problems.append(f"{where}: {problem}")
            msg.unreported.append(f"{where}: {problem}")
        if msg.unreported:  # what the layers below found was reported with its datagram
            self._malformed("; ".join(msg.unreported), data, offset, msg.frame, msg.ts_ns)
            msg.unreported.clear()
        if kind == E.CONFIRMED_REQUEST:
            self._transactions(self.session.request(msg))
        elif kind == E.UNCONFIRMED_REQUEST:
            self._emit_message(msg)
        else:
            self._transactions([self.session.reply(msg)])

    def _bvlc(self, msg: Message) -> None:
        function = msg.bvlc.function
        if function in E.BVLC_REQUESTS:
            self._transactions(self.session.bvlc_request(msg))
        elif function == E.BVLC_RESULT or function in E.BVLC_ACK_OF:
            self._transactions([self.session.bvlc_reply(msg)])
        # Secure-BVLL and unknown functions: counted (and reported by parse_bvlc)

    # -- events --------------------------------------------------------------------------
    def _emit_message(self, msg: Message) -> None:
        self._out.append(message_operation(msg, self.endpoints, self._heard(msg)))
        for claim in message_claims(msg, self.endpoints):
            self._claim(claim)

    def _transactions(self, txs: list[Transaction]) -> None:
        for tx in txs:
            first = tx.first
            if first.apdu is None:
                self._out.append(bvlc_operation(tx, self.endpoints))
                continue
            self._out.append(transaction_operation(tx, self.endpoints, self._heard(first)))
            for claim in transaction_claims(tx, self.endpoints):
                self._claim(claim)

    def _heard(self, msg: Message) -> bool:
        """Has the side ``msg`` went to sent anything on this flow (a station that asked
        or subscribed, not a broadcast address)?"""
        return self._offsets[1 - msg.direction] > 0

    def _cut(self, messages: list[Message]) -> None:
        """Segmented messages that will never be completed: decode what there is."""
        for msg in messages:
            self._application(msg, b"", self._offsets[msg.direction])

    def _claim(self, claim: IdentityClaim) -> None:
        key = (claim.ip, claim.attribute, claim.value)
        if key not in self._claimed and len(self._claimed) < MAX_CLAIMS:
            self._claimed.add(key)
            self._out.append(claim)
