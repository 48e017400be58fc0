"""S7comm lane: Read Var / Write Var jobs (kernel: ``kernels.s7``)."""

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
from otconduit.protocols.s7.decoder import S7Decoder
from otconduit.store.detail_holes import H_INT, H_LIST

K7: Any = _k7


class S7Lane(Lane):
    spec = s7.SPEC
    op_protocol = "s7comm"
    pass_fn = K7.s7_pass
    shape_fn = K7.s7_shape

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        return isinstance(dec, S7Decoder) and dec.quiescent()

    def holes(self, op: Operation, ex: Exemplar) -> dict[str, Any] | None:
        """PDU reference (integer hole 0) and each item's data (list hole k for item k)."""
        ref = ex.ints(0)
        detail = copy.deepcopy(op.detail)
        if op.transaction_id != ref or detail.get("pdu_reference") != ref:
            return None
        detail["pdu_reference"] = Hole(H_INT, 0)
        lists = ex.lists()
        for k, item in enumerate(detail.get("items", ())):
            if "values" in item:
                if k >= len(lists) or tuple(item["values"]) != lists[k]:
                    return None
                item["values"] = Hole(H_LIST, k)
        out: dict[str, Any] = {"tid": Hole(H_INT, 0), "detail": detail}
        if op.values is not None:
            if not lists or tuple(op.values) != lists[0]:
                return None
            out["values"] = Hole(H_LIST, 0)
        return out


__all__ = ["S7Lane"]
