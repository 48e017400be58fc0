"""S7comm lane: connection set-up, jobs, userdata and fragmented answers, and
S7comm-plus requests, responses and notifications (kernel: ``kernels.s7``)."""

from __future__ import annotations

import copy
from typing import Any

from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.fastpath.kernels import s7 as _k7
from otconduit.analysis.fastpath.lane import Lane
from otconduit.analysis.fastpath.learning import Exemplar
from otconduit.analysis.fastpath.templates import Hole
from otconduit.model import Operation
from otconduit.protocols import s7
from otconduit.protocols.s7 import functions as fn
from otconduit.protocols.s7.decoder import S7Decoder
from otconduit.store.detail_holes import H_INT, H_LIST

K7: Any = _k7


class S7Lane(Lane):
    spec = s7.SPEC
    op_protocol = "s7comm"
    op_protocols = ("s7comm", "s7comm-plus")
    pass_fn = K7.s7_pass
    shape_fn = K7.s7_shape

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        return isinstance(dec, S7Decoder) and dec.quiescent()

    def frame_roles(self, ex: Exemplar, nth: int, op: Operation) -> tuple[int, int]:
        """Operation ``nth`` is request ``2 nth`` and its answer (a chain's rounds)."""
        rq, rs = 2 * nth, 2 * nth + 1
        return rq, (rs if rs < len(ex.messages) else -1)

    def holes(self, op: Operation, ex: Exemplar, nth: int) -> dict[str, Any] | None:
        """PDU references (``kernels.s7.ref_hole``), a userdata answer's sequence number
        (integer hole 1), a connection request's source reference (2), and each item's
        data (list hole k for item k)."""
        detail = copy.deepcopy(op.detail)
        out: dict[str, Any] = {"detail": detail}
        if op.protocol == "s7comm-plus":
            return self._plus_holes(op, ex, detail, out)
        if op.function_code == fn.COTP_CONNECT_CODE and op.transaction_id is None:
            if "src_ref" in detail:
                if detail["src_ref"] != ex.ints(2):
                    return None
                detail["src_ref"] = Hole(H_INT, 2)
            return out
        h = int(K7.ref_hole(2 * nth))
        ref = ex.ints(h)
        if op.transaction_id != ref or detail.get("pdu_reference") != ref:
            return None
        out["tid"] = Hole(H_INT, h)
        detail["pdu_reference"] = Hole(H_INT, h)
        if "response_pdu_reference" in detail:
            if detail["response_pdu_reference"] != ref:
                return None
            detail["response_pdu_reference"] = Hole(H_INT, h)
        if "sequence_number" in detail and (2 * nth + 1 < len(ex.messages) or nth > 0):
            if detail["sequence_number"] != ex.ints(1):
                return None
            detail["sequence_number"] = Hole(H_INT, 1)
        lists = ex.lists()
        for k, item in enumerate(detail.get("items", ())):
            if "values" in item:
                if k >= len(lists) or tuple(item["values"]) != lists[k]:
                    return None
                item["values"] = Hole(H_LIST, k)
        if op.values is not None:
            if not lists or tuple(op.values) != lists[0]:
                return None
            out["values"] = Hole(H_LIST, 0)
        return out

    @staticmethod
    def _plus_holes(
        op: Operation, ex: Exemplar, detail: dict[str, Any], out: dict[str, Any]
    ) -> dict[str, Any] | None:
        """S7comm-plus: the sequence number (integer hole 0) and the request's session
        id (1); a notification has neither."""
        if op.transaction_id is not None:
            if op.transaction_id != ex.ints(0) or detail.get("sequence_number") != ex.ints(0):
                return None
            out["tid"] = Hole(H_INT, 0)
            detail["sequence_number"] = Hole(H_INT, 0)
        if "session_id" in detail:
            if detail["session_id"] != ex.ints(1):
                return None
            detail["session_id"] = Hole(H_INT, 1)
        return out


__all__ = ["S7Lane"]
