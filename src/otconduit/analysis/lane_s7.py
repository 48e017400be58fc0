"""S7comm lane of the bulk path: Read Var / Write Var jobs (kernel: ``kernels_s7``)."""

from __future__ import annotations

import copy
from typing import Any

from otconduit.analysis import kernels_s7 as _k7
from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.kernels_tx import H_INT, H_LIST
from otconduit.analysis.lanes import Exemplar, TxLane
from otconduit.analysis.templates import Hole
from otconduit.model import Operation
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.s7.decoder import S7Decoder

K7: Any = _k7


class S7Lane(TxLane):
    protocol = "s7comm"
    op_protocol = "s7comm"
    pass_fn = K7.s7_pass
    shape_fn = K7.s7_shape

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        if not isinstance(dec, S7Decoder) or conn.closed or dec._finished or dec._out:
            return False
        if not all(r.clean and r.next_seq is not None for r in conn.reasm):
            return False
        for stream in dec.streams:
            if stream.buffered or stream._events or stream._resync is not None:
                return False
            if stream._tsdu_tpdus or stream._tsdu_dropping:
                return False
        ses = dec.session
        return not (ses._open or ses._held or ses._connect or ses._szl or any(ses._plus_fragment))

    def exemplar_events(self, conn: TcpConnection, ex: Exemplar) -> list[DecoderEvent]:
        dec = conn.decoder
        assert isinstance(dec, S7Decoder)
        fresh = S7Decoder(dec.endpoints)
        for d, data, frame, ts in ex.messages:
            fresh.feed(d, data, frame, ts)
        return fresh.events()

    def holes(self, op: Operation, ex: Exemplar) -> tuple[Any, Any, dict[str, Any]] | None:
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
        values: Any = op.values
        if values is not None:
            if not lists or tuple(values) != lists[0]:
                return None
            values = Hole(H_LIST, 0)
        return Hole(H_INT, 0), values, detail
