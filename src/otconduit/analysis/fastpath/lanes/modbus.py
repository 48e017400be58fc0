"""Modbus/TCP lane: every function code, pipelined requests (kernel: ``kernels.modbus``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.fastpath.kernels import modbus as _km
from otconduit.analysis.fastpath.kernels.slots import MAX_KEPT
from otconduit.analysis.fastpath.lane import Lane
from otconduit.analysis.fastpath.learning import Exemplar
from otconduit.analysis.fastpath.templates import Hole
from otconduit.model import Operation
from otconduit.protocols import modbus
from otconduit.protocols.base import Pending
from otconduit.protocols.modbus.decoder import ModbusConnectionDecoder, ModbusState
from otconduit.store.detail_holes import H_INT, H_LIST

KM: Any = _km
_ADDRESSED = frozenset({1, 2, 3, 4, 5, 6, 15, 16})  # the codes whose address is a hole


class ModbusLane(Lane):
    spec = modbus.SPEC
    op_protocol = "modbus"
    pass_fn = KM.modbus_pass
    shape_fn = KM.modbus_shape

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        return (
            isinstance(dec, ModbusConnectionDecoder)
            and dec.quiescent()
            and dec.session.outstanding <= MAX_KEPT
        )

    def prepare(self, row: np.ndarray, state: ModbusState) -> list[tuple[Pending, int, int]]:
        """The open requests, paired by transaction id and function code."""
        return [(p, (p.data[0] << 8) | p.data[1], p.data[7]) for p in state.open]

    def frame_roles(self, ex: Exemplar, nth: int, op: Operation) -> tuple[int, int]:
        """A request and its response; a response alone (an orphan, ``ints(5)``); or a
        request alone (its connection ended before an answer)."""
        if ex.ints(5):
            return -1, 0
        return 0, (1 if len(ex.messages) > 1 else -1)

    def holes(self, op: Operation, ex: Exemplar, nth: int) -> dict[str, Any] | None:
        """Transaction id, unit, address, written values and values read back (of an
        orphan response: its transaction id, unit and the registers it carries; the
        rest is in its shape)."""
        request = ex.messages[0][1]
        if op.transaction_id != ex.ints(0) or op.unit != ex.ints(1):
            return None
        out: dict[str, Any] = {"tid": Hole(H_INT, 0), "unit": Hole(H_INT, 1)}
        if ex.ints(5):
            if ex.ints(4):  # the registers an orphan read response carries
                read = op.detail.get("response_values")
                lists = ex.lists()
                if read is None or len(lists) != 1 or tuple(read) != lists[0]:
                    return None
                out["response_values"] = Hole(H_LIST, 0)
            return out
        if request[7] in _ADDRESSED and len(request) >= 10:
            if op.address != ex.ints(2):
                return None
            out["address"] = Hole(H_INT, 2)
        lists = ex.lists()
        k = 0
        if ex.ints(3):
            if op.values != lists[0]:
                return None
            out["values"] = Hole(H_LIST, 0)
            k = 1
        if ex.ints(4):
            read = op.detail.get("response_values")
            if read is None or k >= len(lists) or tuple(read) != lists[k]:
                return None
            out["response_values"] = Hole(H_LIST, k)
        return out


__all__ = ["ModbusLane"]
