"""BACnet transactions of one UDP flow: confirmed requests matched to their replies by
invoke id, segmented messages reassembled, BVLC requests matched to their results.

Keys. A confirmed request waits under (direction it was sent in, invoke id, requester's
network address, responder's network address); the network addresses are the NPDU's
SNET/SADR and DNET/DADR (both None on the local network), which a reply carries the
other way round. Either side of the flow may be the requester: BACnet peers often both
use port 47808, and the flow's client is only the side seen first.

Segmentation (135 §5.2). A segmented Confirmed-Request or ComplexACK is collected per
(direction, PDU type, invoke id, addresses) in sequence-number order; a repeated
segment (a retransmission) is ignored, a missing one is a problem. When the segment
without "more follows" arrives, the service data is decoded as one message.

Bounds: at most :data:`MAX_OUTSTANDING` requests wait per flow (the oldest then
completes as unanswered), at most :data:`MAX_REASSEMBLIES` segmented messages are open
(the oldest is then reported cut short) and each keeps at most
:data:`MAX_SEGMENTED_OCTETS` of service data (the rest is counted, not kept). Requests
unanswered for :data:`REPLY_WAIT_NS` of capture time are completed as unanswered when
the next datagram of the flow arrives, so a long-lived flow does not hold them forever.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.protocols.bacnet import enums as E
from otconduit.protocols.bacnet.apdu import Apdu
from otconduit.protocols.bacnet.bvlc import Bvlc, Npdu

MAX_OUTSTANDING: Final = 1024
MAX_REASSEMBLIES: Final = 8
MAX_SEGMENTED_OCTETS: Final = 65536
REPLY_WAIT_NS: Final = 60_000_000_000  # APDU timeout x retries is 30 s by default

Address = tuple[int, bytes] | None


@dataclass(slots=True)
class Message:
    """One BACnet message: a datagram's BVLL, NPDU and APDU (or a reassembled segmented
    APDU), with its decoded service detail and any problems found on the way."""

    direction: int
    frame: int
    ts_ns: int
    bvlc: Bvlc
    npdu: Npdu | None = None
    apdu: Apdu | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    segments: int = 0  # segments it was reassembled from (0: not segmented)
    unreported: list[str] = field(default_factory=list)  # problems not yet a Malformed

    @property
    def source(self) -> Address:
        n = self.npdu
        return None if n is None or n.snet is None else (n.snet, n.sadr or b"")

    @property
    def destination(self) -> Address:
        n = self.npdu
        return None if n is None or n.dnet is None else (n.dnet, n.dadr or b"")


@dataclass(slots=True)
class Transaction:
    """A confirmed request and its reply (either may be missing), or a BVLC request and
    its result."""

    request: Message | None
    response: Message | None = None
    retries: int = 0
    segment_acks: int = 0
    expired: bool = False  # unanswered within REPLY_WAIT_NS

    @property
    def first(self) -> Message:
        first = self.request or self.response
        assert first is not None
        return first


@dataclass(slots=True)
class _Reassembly:
    first: Message
    last: Message
    chunks: list[bytes]
    octets: int = 0
    dropped: int = 0
    next_seq: int = 1
    count: int = 1
    problems: list[str] = field(default_factory=list)


def _expire(table: OrderedDict[Any, Transaction], now_ns: int) -> list[Transaction]:
    done = []
    while table:
        key, tx = next(iter(table.items()))
        if now_ns - tx.first.ts_ns <= REPLY_WAIT_NS:
            break
        del table[key]
        tx.expired = True
        done.append(tx)
    return done


ReassemblyKey = tuple[int, int, int, Address, Address]
PendingKey = tuple[int, int, Address, Address]


class BacnetSession:
    """Matching and reassembly state of one flow.

    Counters: ``retries`` (repeated requests while the first waited), ``orphans``
    (replies without a request), ``segments`` (segments received), ``segmented``
    (segmented messages completed), ``duplicate_segments``, ``segment_acks``.
    """

    def __init__(self) -> None:
        self._pending: OrderedDict[PendingKey, Transaction] = OrderedDict()
        self._bvlc: OrderedDict[tuple[int, int, int], Transaction] = OrderedDict()
        self._bvlc_serial = 0
        self._reassembly: OrderedDict[ReassemblyKey, _Reassembly] = OrderedDict()
        self.retries = 0
        self.orphans = 0
        self.segments = 0
        self.segmented = 0
        self.duplicate_segments = 0
        self.segment_acks = 0

    @property
    def outstanding(self) -> int:
        return len(self._pending) + len(self._bvlc)

    @property
    def reassembling(self) -> int:
        return len(self._reassembly)

    @property
    def idle(self) -> bool:
        return not self._pending and not self._bvlc and not self._reassembly

    # -- time ------------------------------------------------------------------------
    def expire(self, now_ns: int) -> tuple[list[Transaction], list[Message]]:
        """Requests unanswered and reassemblies untouched for REPLY_WAIT_NS before
        ``now_ns``: (transactions completed as unanswered, messages cut short)."""
        done = _expire(self._pending, now_ns) + _expire(self._bvlc, now_ns)
        cut: list[Message] = []
        while self._reassembly:
            rkey, asm = next(iter(self._reassembly.items()))
            if now_ns - asm.last.ts_ns <= REPLY_WAIT_NS:
                break
            del self._reassembly[rkey]
            cut.append(self._assemble(asm, complete=False))
        return done, cut

    # -- segmentation --------------------------------------------------------------
    def segment(self, msg: Message) -> tuple[Message | None, list[Message]]:
        """Add a segment: (the whole message when this was its last segment, messages
        abandoned to make room)."""
        apdu = msg.apdu
        assert apdu is not None and apdu.invoke_id is not None
        self.segments += 1
        key = (msg.direction, apdu.pdu_type, apdu.invoke_id, msg.source, msg.destination)
        asm = self._reassembly.get(key)
        abandoned: list[Message] = []
        seq = apdu.sequence or 0
        if asm is None:
            asm = _Reassembly(first=msg, last=msg, chunks=[], next_seq=seq + 1)
            if seq != 0:
                asm.problems.append(f"first segment seen has sequence number {seq}")
            self._add(asm, apdu.body)
            self._reassembly[key] = asm
            while len(self._reassembly) > MAX_REASSEMBLIES:
                _, old = self._reassembly.popitem(last=False)
                abandoned.append(self._assemble(old, complete=False))
        else:
            expected = asm.next_seq & 0xFF
            behind = (expected - seq) & 0xFF
            if 0 < behind <= 128:  # a retransmission of a segment already taken
                self.duplicate_segments += 1
                return None, abandoned
            if behind:
                asm.problems.append(f"segments {expected}..{(seq - 1) & 0xFF} missing")
            asm.next_seq = seq + 1
            asm.count += 1
            asm.last = msg
            self._add(asm, apdu.body)
        if apdu.more_follows:
            return None, abandoned
        del self._reassembly[key]
        return self._assemble(asm, complete=True), abandoned

    def _add(self, asm: _Reassembly, body: bytes) -> None:
        room = MAX_SEGMENTED_OCTETS - asm.octets
        if room > 0:
            asm.chunks.append(body[:room])
            asm.octets += min(room, len(body))
        asm.dropped += max(0, len(body) - max(room, 0))

    def _assemble(self, asm: _Reassembly, *, complete: bool) -> Message:
        self.segmented += complete
        first, last = asm.first, asm.last
        assert first.apdu is not None
        fresh = list(asm.problems)
        if asm.dropped:
            fresh.append(
                f"segmented message of more than {MAX_SEGMENTED_OCTETS} octets: "
                f"{asm.dropped} not decoded"
            )
        if not complete:
            fresh.append(f"segmented message cut short after {asm.count} segments")
        return Message(
            direction=first.direction,
            frame=last.frame,
            ts_ns=last.ts_ns,
            bvlc=first.bvlc,
            npdu=first.npdu,
            apdu=Apdu(
                first.apdu.pdu_type,
                service=first.apdu.service,
                invoke_id=first.apdu.invoke_id,
                body=b"".join(asm.chunks),
                segmented=True,
            ),
            problems=list(first.problems) + fresh,
            segments=asm.count,
            unreported=fresh,
        )

    def segment_ack(self, msg: Message) -> None:
        self.segment_acks += 1
        apdu = msg.apdu
        assert apdu is not None and apdu.invoke_id is not None
        # SRV set: the server acknowledges segments of a request the other side sent.
        req_dir = 1 - msg.direction if apdu.server else msg.direction
        for key, tx in self._pending.items():
            if key[0] == req_dir and key[1] == apdu.invoke_id:
                tx.segment_acks += 1
                break

    # -- confirmed services ----------------------------------------------------------
    def request(self, msg: Message) -> list[Transaction]:
        """A Confirmed-Request: wait for its reply. Returns transactions it completes
        (a different request that reused the invoke id, or the oldest past the bound)."""
        apdu = msg.apdu
        assert apdu is not None and apdu.invoke_id is not None
        key = (msg.direction, apdu.invoke_id, msg.source, msg.destination)
        done: list[Transaction] = []
        old = self._pending.get(key)
        if old is not None:
            assert old.request is not None and old.request.apdu is not None
            if old.request.apdu.service == apdu.service:
                old.retries += 1
                self.retries += 1
                return done
            del self._pending[key]
            done.append(old)
        self._pending[key] = Transaction(request=msg)
        while len(self._pending) > MAX_OUTSTANDING:
            done.append(self._pending.popitem(last=False)[1])
        return done

    def reply(self, msg: Message) -> Transaction:
        """A SimpleACK, ComplexACK, Error, Reject or Abort: the transaction it ends."""
        apdu = msg.apdu
        assert apdu is not None and apdu.invoke_id is not None
        if apdu.pdu_type == E.ABORT and not apdu.server:
            # sent by the requester itself, about its own transaction
            key = (msg.direction, apdu.invoke_id, msg.source, msg.destination)
        else:
            key = (1 - msg.direction, apdu.invoke_id, msg.destination, msg.source)
        tx = self._pending.pop(key, None)
        if tx is None:
            self.orphans += 1
            return Transaction(request=None, response=msg)
        tx.response = msg
        return tx

    # -- BVLC management -----------------------------------------------------------
    def bvlc_request(self, msg: Message) -> list[Transaction]:
        self._bvlc_serial += 1
        self._bvlc[(msg.direction, msg.bvlc.function, self._bvlc_serial)] = Transaction(msg)
        done = []
        while len(self._bvlc) > MAX_OUTSTANDING:
            done.append(self._bvlc.popitem(last=False)[1])
        return done

    def bvlc_reply(self, msg: Message) -> Transaction:
        """A BVLC-Result or a Read-BDT/FDT-Ack: the oldest request from the other side
        it can answer (a NAK names the function it refuses; success any of them)."""
        bvlc = msg.bvlc
        wanted: int | None = None
        if bvlc.function in E.BVLC_ACK_OF:
            wanted = E.BVLC_ACK_OF[bvlc.function]
        elif bvlc.result:
            wanted = E.BVLC_NAK_OF.get(bvlc.result)
        for key, tx in self._bvlc.items():
            if key[0] == 1 - msg.direction and (wanted is None or key[1] == wanted):
                del self._bvlc[key]
                tx.response = msg
                return tx
        self.orphans += 1
        return Transaction(request=None, response=msg)

    # -- end -------------------------------------------------------------------------
    def flush(self) -> tuple[list[Transaction], list[Message]]:
        """The flow ended: unanswered transactions and unfinished segmented messages."""
        done = list(self._pending.values()) + list(self._bvlc.values())
        self._pending.clear()
        self._bvlc.clear()
        cut = [self._assemble(a, complete=False) for a in self._reassembly.values()]
        self._reassembly.clear()
        return done, cut
