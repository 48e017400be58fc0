"""Pairs DNP3 requests with responses by role, not by TCP direction.

Both ends of a DNP3 connection may use port 20000, so the side that opened the
connection says nothing about who is the master. The application function code does:
codes below 0x81 are sent by masters (requests and confirms), codes from 0x81 up by
outstations (1815 §4.2.2.5). Only primary (PRM) link frames carry user data, and the
link DIR bit says the same thing as the function code in well-behaved traffic; where
the two disagree the function code wins (it is what the receiver acts on) and the
operation is marked ``dir_mismatch``. A message's master and outstation link addresses
follow from its role, and a response answers the open request with the same
application sequence number between the same pair of addresses (1815 §4.2.2.4.5).

Requests wait in a FIFO per (master, outstation, sequence): some masters send several
requests before the answers come, and the outstation answers them in order. A response
with no open request is an orphan and becomes a transaction of its own. Responses in
several fragments (FIR ... FIN, sequence numbers incrementing) complete when the FIN
fragment arrives. Requests of the "no acknowledgement" functions complete at once.

Confirms (function 0) are not transactions. A completed transaction whose last fragment
asked for one (CON) waits until the master's confirm with the same sequence number and
UNS bit arrives, or until the next message between the same pair shows there will be
none; the confirm then folds into it (``confirmed``). Other confirms are only counted.

All tables are bounded; entries pushed out complete as they are (unanswered).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from otconduit.protocols.dnp3.app import AppFragment
from otconduit.protocols.dnp3.functions import (
    AUTHENTICATE_RESP,
    CONFIRM,
    RESPONSE,
    UNSOLICITED_RESPONSE,
)
from otconduit.protocols.dnp3.link import LinkFrame

DEFAULT_MAX_OUTSTANDING = 1024
DEFAULT_MAX_PAIRS = 64

# 1815 §4.2.2.5: the "no acknowledgement" functions, which the outstation never answers.
NO_RESPONSE_FUNCTIONS = frozenset({6, 8, 10, 12, 33})


@dataclass(frozen=True, slots=True, kw_only=True)
class Dnp3Message:
    """One application fragment and where it came from."""

    fragment: AppFragment
    direction: int  # the connection direction it arrived on (base.CLIENT_TO_SERVER, ...)
    link_src: int
    link_dst: int
    link_dir: bool  # the DIR bit of the link frame that completed it
    bad_crc: bool  # one of its link frames failed a data block CRC
    frame: int
    ts_ns: int
    offset: int
    # the one link frame that carried the whole fragment (FIR and FIN, CRCs right), kept
    # so that a fast path can be handed the message as it was on the wire
    link: LinkFrame | None = None

    @property
    def master(self) -> int:
        return self.link_dst if self.fragment.is_response else self.link_src

    @property
    def outstation(self) -> int:
        return self.link_src if self.fragment.is_response else self.link_dst


@dataclass(slots=True, kw_only=True)
class Dnp3Transaction:
    """A request and its response fragments, an unsolicited response, or an orphan."""

    request: Dnp3Message | None
    responses: list[Dnp3Message] = field(default_factory=list)
    complete: bool = True  # False: a multi-fragment response was cut short
    confirmed: bool | None = None  # None: no confirm was asked for
    confirm_frame: int | None = None

    @property
    def first(self) -> Dnp3Message:
        return self.request if self.request is not None else self.responses[0]

    @property
    def unsolicited(self) -> bool:
        return self.request is None and self.responses[0].fragment.function_code == (
            UNSOLICITED_RESPONSE
        )


Pair = tuple[int, int]  # (master, outstation)


@dataclass(slots=True)
class _Partial:
    tx: Dnp3Transaction
    next_seq: int


class Dnp3Session:
    """Transaction matching for one connection (all address pairs on it).

    Counters: ``confirms`` (all confirms), ``unmatched_confirms`` (confirms of nothing
    we hold), ``evicted`` (requests pushed out of the bounded table unanswered).
    """

    def __init__(
        self, max_outstanding: int = DEFAULT_MAX_OUTSTANDING, max_pairs: int = DEFAULT_MAX_PAIRS
    ) -> None:
        if max_outstanding < 1 or max_pairs < 1:
            raise ValueError("bounds must be >= 1")
        self.max_outstanding = max_outstanding
        self.max_pairs = max_pairs
        self._open: OrderedDict[tuple[int, int, int], deque[Dnp3Message]] = OrderedDict()
        self._count = 0
        self._partial: OrderedDict[Pair, _Partial] = OrderedDict()
        self._awaiting: OrderedDict[tuple[int, int, bool], Dnp3Transaction] = OrderedDict()
        self.confirms = 0
        self.unmatched_confirms = 0
        self.evicted = 0

    @property
    def outstanding(self) -> int:
        return self._count

    @property
    def idle(self) -> bool:
        """No request open, no response half received, nothing awaiting a confirm."""
        return not (self._open or self._partial or self._awaiting)

    def lone_unsolicited(self) -> Dnp3Message | None:
        """The unsolicited response awaiting a confirm, when it is all the session holds
        (no open request, no partial response, nothing else awaiting) and came whole in
        one well-formed link frame; else None. Outstations whose master never confirms
        keep one such response awaiting for the whole connection."""
        if self._open or self._partial or len(self._awaiting) != 1:
            return None
        ((key, tx),) = self._awaiting.items()
        if not key[2] or tx.request is not None or len(tx.responses) != 1:
            return None
        msg = tx.responses[0]
        if msg.link is None or msg.bad_crc or msg.fragment.problem is not None:
            return None
        return msg

    def hand_over(self, msg: Dnp3Message) -> None:
        """Forget the awaiting unsolicited response ``msg`` (:meth:`lone_unsolicited`):
        a fast path holds it now and gives it back as bytes to feed again."""
        key = (msg.master, msg.outstation, True)
        tx = self._awaiting.get(key)
        if tx is not None and tx.responses[0] is msg:
            del self._awaiting[key]

    def message(self, msg: Dnp3Message) -> list[Dnp3Transaction]:
        """Process one fragment; returns the transactions it completes."""
        frag = msg.fragment
        pair = (msg.master, msg.outstation)
        code = frag.function_code
        if code == CONFIRM:
            return self._confirm(msg, pair)
        done: list[Dnp3Transaction] = []
        if code == UNSOLICITED_RESPONSE:
            self._release(pair, True, done)
            self._finish(Dnp3Transaction(request=None, responses=[msg]), done)
            return done
        self._release(pair, False, done)
        if not frag.is_response:
            self._abandon_partial(pair, done)
            if code in NO_RESPONSE_FUNCTIONS:
                done.append(Dnp3Transaction(request=msg))
            else:
                self._add_request(msg, done)
            return done
        if code not in (RESPONSE, AUTHENTICATE_RESP):
            done.append(Dnp3Transaction(request=None, responses=[msg]))
            return done
        partial = self._partial.get(pair)
        if not frag.fir and partial is not None and partial.next_seq == frag.seq:
            partial.tx.responses.append(msg)
            partial.next_seq = (frag.seq + 1) & 0x0F
            if frag.fin:
                del self._partial[pair]
                self._finish(partial.tx, done)
            return done
        self._abandon_partial(pair, done)
        request = self._take_request(pair, frag.seq) if frag.fir else None
        tx = Dnp3Transaction(request=request, responses=[msg])
        if frag.fin or not frag.fir:
            self._finish(tx, done)
        else:
            self._partial[pair] = _Partial(tx, (frag.seq + 1) & 0x0F)
            while len(self._partial) > self.max_pairs:
                _, old = self._partial.popitem(last=False)
                old.tx.complete = False
                done.append(old.tx)
        return done

    def flush(self) -> list[Dnp3Transaction]:
        """Complete everything held (end of the connection)."""
        done: list[Dnp3Transaction] = []
        for tx in self._awaiting.values():
            tx.confirmed = False
            done.append(tx)
        self._awaiting.clear()
        for partial in self._partial.values():
            partial.tx.complete = False
            done.append(partial.tx)
        self._partial.clear()
        pending = sorted(
            (req for queue in self._open.values() for req in queue),
            key=lambda m: (m.ts_ns, m.frame),
        )
        done += [Dnp3Transaction(request=req) for req in pending]
        self._open.clear()
        self._count = 0
        return done

    # --- internals ------------------------------------------------------------------

    def _confirm(self, msg: Dnp3Message, pair: Pair) -> list[Dnp3Transaction]:
        self.confirms += 1
        frag = msg.fragment
        key = (pair[0], pair[1], frag.uns)
        tx = self._awaiting.get(key)
        if tx is not None and tx.responses[-1].fragment.seq == frag.seq:
            del self._awaiting[key]
            tx.confirmed, tx.confirm_frame = True, msg.frame
            return [tx]
        partial = self._partial.get(pair)
        if not frag.uns and partial is not None:
            last = partial.tx.responses[-1].fragment
            if last.seq == frag.seq:
                partial.tx.confirmed, partial.tx.confirm_frame = True, msg.frame
                return []
        self.unmatched_confirms += 1
        return []

    def _release(self, pair: Pair, uns: bool, done: list[Dnp3Transaction]) -> None:
        tx = self._awaiting.pop((pair[0], pair[1], uns), None)
        if tx is not None:
            tx.confirmed = False
            done.append(tx)

    def _finish(self, tx: Dnp3Transaction, done: list[Dnp3Transaction]) -> None:
        last = tx.responses[-1].fragment
        if not last.con:
            done.append(tx)
            return
        msg = tx.responses[-1]
        key = (msg.master, msg.outstation, last.uns)
        self._release((msg.master, msg.outstation), last.uns, done)
        self._awaiting[key] = tx
        while len(self._awaiting) > self.max_pairs:
            _, old = self._awaiting.popitem(last=False)
            old.confirmed = False
            done.append(old)

    def _abandon_partial(self, pair: Pair, done: list[Dnp3Transaction]) -> None:
        partial = self._partial.pop(pair, None)
        if partial is not None:
            partial.tx.complete = False
            done.append(partial.tx)

    def _add_request(self, msg: Dnp3Message, done: list[Dnp3Transaction]) -> None:
        key = (msg.master, msg.outstation, msg.fragment.seq)
        queue = self._open.get(key)
        if queue is None:
            queue = self._open[key] = deque()
        queue.append(msg)
        self._count += 1
        while self._count > self.max_outstanding:
            old_key, old_queue = next(iter(self._open.items()))
            done.append(Dnp3Transaction(request=old_queue.popleft()))
            if not old_queue:
                del self._open[old_key]
            self._count -= 1
            self.evicted += 1

    def _take_request(self, pair: Pair, seq: int) -> Dnp3Message | None:
        key = (pair[0], pair[1], seq)
        queue = self._open.get(key)
        if not queue:
            return None
        req = queue.popleft()
        if not queue:
            del self._open[key]
        self._count -= 1
        return req
