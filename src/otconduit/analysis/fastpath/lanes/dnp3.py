"""DNP3 lane: polls, responses, confirms, unsolicited responses (kernel:
``kernels.dnp3``)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.fastpath.kernels import dnp3 as _kd
from otconduit.analysis.fastpath.lane import Lane
from otconduit.analysis.fastpath.learning import Exemplar, Unclear
from otconduit.analysis.fastpath.templates import Hole
from otconduit.model import Operation
from otconduit.protocols import dnp3
from otconduit.protocols.base import Pending
from otconduit.protocols.dnp3.decoder import (
    Dnp3ConnectionDecoder,
    Dnp3Export,
    Dnp3Resume,
    TransportSegment,
)
from otconduit.store.detail_holes import H_FRAME, H_INT

KD: Any = _kd


class Dnp3Lane(Lane):
    spec = dnp3.SPEC
    op_protocol = "dnp3"
    pass_fn = KD.dnp3_pass
    shape_fn = KD.dnp3_shape
    carries_problems = True

    def eligible(self, conn: TcpConnection) -> bool:
        """Quiescent, or holding only an unsolicited response that waits for a confirm
        (an outstation whose master never confirms: the kernel takes that one over)."""
        dec = conn.decoder
        return isinstance(dec, Dnp3ConnectionDecoder) and (dec.quiescent() or dec.exportable())

    def prepare(self, row: np.ndarray, state: Any) -> list[tuple[Pending, int, int]]:
        """The unsolicited response awaiting its confirm, kept as the kernel keeps its
        own (its pair of addresses, ``AWAITED``), with the session columns it set."""
        self.initial_row(row)
        if not isinstance(state, Dnp3Export):
            return []
        d = state.direction
        row[KD.P_AWAIT] = 2
        row[KD.P_SEQ] = state.seq
        row[KD.P_MDIR] = 1 - d  # an outstation sent it: the master is the other side
        row[KD.P_ASSOC + d] = (state.link_src << 16) | state.link_dst
        pair = (state.master << 16) | state.outstation
        return [(Pending(d, state.data, state.frame, state.ts_ns), pair, KD.AWAITED)]

    def initial_row(self, row: np.ndarray) -> None:
        row[KD.P_ASSOC] = -1
        row[KD.P_ASSOC + 1] = -1
        row[KD.P_MDIR] = -1
        row[KD.P_ASSOC1] = -1
        row[KD.P_ASSOC1 + 1] = -1

    def holds_state(self, st: np.ndarray) -> np.ndarray:
        """The last transport segment of a direction is kept in the buffer row when it is
        too long for the slot row."""
        return (st[:, KD.P_LLEN] > KD.SHORT_SEG) | (st[:, KD.P_LLEN + 1] > KD.SHORT_SEG)

    def resume_state(self, s: int) -> Dnp3Resume:
        """The last transport segment each association (two a direction) delivered (its
        retries are then dropped silently, as the per-packet path would), least recently
        used first."""
        row = self.st[s]
        kept = []  # (use, direction, association, sequence, length, which)
        for d in (0, 1):
            if row[KD.P_LLEN + d] > 0:
                kept.append(
                    (int(row[KD.P_LUSE + d]), d, int(row[KD.P_ASSOC + d]),
                     int(row[KD.P_LSEQ + d]), int(row[KD.P_LLEN + d]), 0)
                )  # fmt: skip
            meta = int(row[KD.P_META1 + d])
            if meta & 0xFF:
                kept.append(
                    (meta >> 16, d, int(row[KD.P_ASSOC1 + d]), (meta >> 8) & 0x3F, meta & 0xFF, 1)
                )
        segments = []
        for _, d, assoc, seq, n, a in sorted(kept):
            if n <= KD.SHORT_SEG:
                col = KD.P_SEG + KD.SEG_COLS * (2 * a + d)
                data = row[col : col + (n + 7) // 8].astype("<i8").tobytes()[:n]
            else:
                at = KD.SEG_AT + 256 * d
                data = self.raw[self.buffer(s), at : at + n].tobytes()
            segments.append(TransportSegment(d, assoc >> 16, assoc & 0xFFFF, seq, data))
        for d in (0, 1):
            row[KD.P_LLEN + d] = 0
            row[KD.P_META1 + d] = 0
        return Dnp3Resume(tuple(segments))

    def held_bytes(self, s: int) -> list[Pending]:
        """Octets that start no link frame, skipped but not reported yet: the decoder
        skips and reports them itself."""
        row = self.st[s]
        out = []
        for d in (0, 1):
            n = int(row[KD.P_SKIP + d])
            if n:
                col = KD.P_JUNK + KD.JUNK_COLS * d
                data = row[col : col + KD.JUNK_COLS].astype("<i8").tobytes()[:n]
                out.append(Pending(d, data, int(row[KD.P_SKIPF + d]), int(row[KD.P_SKIPT + d])))
                row[KD.P_SKIP + d] = 0
        return out

    def holds_bytes(self, st: np.ndarray) -> np.ndarray:
        return (st[:, KD.P_SKIP] > 0) | (st[:, KD.P_SKIP + 1] > 0)

    def end_held_bytes(self, s: int) -> None:
        """A skipped run is reported at the end of the stream as at the next frame
        (``LinkFramer.end``)."""
        row = self.st[s]
        rid = int(row[KD.F_RID])
        for d in (0, 1):
            n = int(row[KD.P_SKIP + d])
            if n:
                frame = int(row[KD.P_SKIPF + d])
                self._problems(np.array([[rid, frame, KD.PROB_NO_HEADER, n]], np.int64))
                row[KD.P_SKIP + d] = 0

    def problem_text(self, kind: int, n: int) -> str:
        if kind == KD.PROB_NO_HEADER:  # as LinkFramer words a skipped run
            return f"no link header (05 64); skipped {n} octets"
        return super().problem_text(kind, n)

    def learns_as_flush(self, messages: list[tuple[int, bytes, int, int]]) -> bool:
        """An unsolicited response asking for a confirm, alone: the kernel writes it when
        the next one releases it unconfirmed, as the connection's end would."""
        if len(messages) != 1:
            return False
        b = np.frombuffer(messages[0][1], np.uint8)
        frag = np.empty(len(b), np.uint8)
        size, n, _, _, _ = KD.fragment(b, 0, len(b), frag, False)
        return bool(size == len(b) and n >= 2 and frag[1] == 0x82 and frag[0] & 0x20)

    def frame_roles(self, ex: Exemplar, nth: int, op: Operation) -> tuple[int, int]:
        """The operation's request and answer, found by their frames and sequence
        number: a transaction is a request and its answer (and a confirm), but what a
        connection held at its end may be several (an unsolicited response awaiting its
        confirm, then requests nothing answered)."""
        kinds = _kinds(ex)
        return (
            _message_of(ex, kinds, op.request_frame, op.transaction_id, True),
            _message_of(ex, kinds, op.response_frame, op.transaction_id, False),
        )

    def holes(self, op: Operation, ex: Exemplar, nth: int) -> dict[str, Any] | None:
        """The application sequence number (that of the operation's first message,
        named by the first message that carried it), and the frame of the confirm."""
        rq, rs = self.frame_roles(ex, nth, op)
        kinds = _kinds(ex)
        m = rq if rq >= 0 else rs
        if m < 0 or kinds[m][1] != op.transaction_id:
            return None
        first = next(k for k, (_, seq) in enumerate(kinds) if seq == op.transaction_id)
        if first >= KD.SEQ_HOLES or ex.ints(first) != op.transaction_id:
            return None
        detail = copy.deepcopy(op.detail)
        if "confirm_frame" in detail:
            last = len(ex.messages) - 1
            if detail["confirm_frame"] != ex.messages[last][2]:
                return None
            detail["confirm_frame"] = Hole(H_FRAME, last)
        return {"tid": Hole(H_INT, first), "detail": detail}


def _kinds(ex: Exemplar) -> list[tuple[int, int]]:
    """(function code, application sequence number) of each message of a transaction
    (-1, -1: a link frame without a fragment)."""
    out = []
    for _, data, _, _ in ex.messages:
        b = np.frombuffer(data, np.uint8)
        frag = np.empty(len(b), np.uint8)
        size, n, _, _, _ = KD.fragment(b, 0, len(b), frag, False)
        out.append((int(frag[1]), int(frag[0]) & 0x0F) if size > 0 and n >= 2 else (-1, -1))
    return out


def _message_of(
    ex: Exemplar, kinds: list[tuple[int, int]], frame: int | None, seq: int | None, request: bool
) -> int:
    """The one message of frame ``frame`` that is a request (or a response) with
    sequence number ``seq``; -1 when there is none. Two alike in one frame cannot be
    told apart by this exemplar: :class:`Unclear` (a later one may tell)."""
    if frame is None or seq is None:
        return -1
    found = [
        m
        for m, ((fc, s), msg) in enumerate(zip(kinds, ex.messages, strict=True))
        if msg[2] == frame and s == seq and fc > 0 and (fc < 0x81) == request
    ]
    if len(found) > 1:
        raise Unclear("two alike messages in one frame")
    return found[0] if found else -1


__all__ = ["Dnp3Lane"]
