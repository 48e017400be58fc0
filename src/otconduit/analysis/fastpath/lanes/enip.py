"""EtherNet/IP lane: CIP requests in SendRRData / SendUnitData and their replies, and
replies whose request was never seen (kernel: ``kernels.enip``)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.fastpath.kernels import enip as _ke
from otconduit.analysis.fastpath.lane import Lane
from otconduit.analysis.fastpath.learning import Exemplar
from otconduit.analysis.fastpath.templates import Hole
from otconduit.model import Operation
from otconduit.protocols import enip
from otconduit.protocols.base import Pending
from otconduit.protocols.enip.decoder import EnipDecoder, EnipResume, EnipState
from otconduit.store.detail_holes import H_HEX, H_INT

KE: Any = _ke
# Detail keys filled from holes: (key, integer hole)
_INT_HOLES = (
    ("session_handle", 0),
    ("connection_id", 1),
    ("sequence_count", 2),
    ("response_connection_id", 3),
)


class EnipLane(Lane):
    spec = enip.SPEC
    op_protocol = "cip"
    out_transactions = 1 << 12  # a Multiple Service Packet is a dozen operations
    pass_fn = KE.enip_pass
    shape_fn = KE.enip_shape
    shape_reads_row = True

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        if not isinstance(dec, EnipDecoder) or not dec.quiescent():
            return False
        # The kernel must know every pairing and every connection whose detail a
        # request could carry.
        state = dec.export_state()
        return len(state.connections) <= KE.MAX_CONNS and len(state.pairs) < KE.MAX_PAIRS

    def prepare(self, row: np.ndarray, state: EnipState) -> list[tuple[Pending, int, int]]:
        pairs = state.pairs
        row[KE.P_PAIRS] = row[KE.P_EXPORTED] = len(pairs)
        for k, (to_id, ot_id) in enumerate(pairs):
            row[KE.P_PAIR + 2 * k] = to_id
            row[KE.P_PAIR + 2 * k + 1] = ot_id
        row[KE.P_CONNS] = len(state.connections)
        for k, c in enumerate(state.connections):
            row[KE.P_CONN + 3 * k : KE.P_CONN + 3 * k + 3] = c
        return []

    def resume_state(self, s: int) -> EnipResume:
        """The pairings the kernel learned (connections opened before the capture)."""
        row = self.st[s]
        new = range(int(row[KE.P_EXPORTED]), int(row[KE.P_PAIRS]))
        pairs = tuple((int(row[KE.P_PAIR + 2 * k]), int(row[KE.P_PAIR + 2 * k + 1])) for k in new)
        return EnipResume(pairs)

    def frame_roles(self, ex: Exemplar, nth: int, op: Operation) -> tuple[int, int]:
        """A request and its reply, or a reply alone (its request never seen)."""
        if len(ex.messages) == 1 and ex.messages[0][0] == 1:
            return -1, 0
        return super().frame_roles(ex, nth, op)

    def holes(self, op: Operation, ex: Exemplar, nth: int) -> dict[str, Any] | None:
        """Session handle, sender context, connection ids and sequence count."""
        detail = copy.deepcopy(op.detail)
        for key, k in _INT_HOLES:
            if key in detail:
                if detail[key] != ex.ints(k):
                    return None
                detail[key] = Hole(H_INT, k)
        context = ex.lists()[0]
        if detail.get("sender_context") != bytes(context).hex():
            return None
        detail["sender_context"] = Hole(H_HEX, 0)
        out: dict[str, Any] = {"detail": detail}
        if op.transaction_id is not None:
            if op.transaction_id != ex.ints(2):
                return None
            out["tid"] = Hole(H_INT, 2)
        return out


__all__ = ["EnipLane"]
