"""DNP3 lane of the bulk path: polls, responses, confirms, unsolicited responses
(kernel: ``kernels_dnp3``)."""

from __future__ import annotations

import copy
from typing import Any

from otconduit.analysis import kernels_dnp3 as _kd
from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.kernels_tx import H_FRAME, H_INT
from otconduit.analysis.lanes import Exemplar, TxLane
from otconduit.analysis.templates import Hole
from otconduit.model import Operation
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.dnp3.decoder import Dnp3ConnectionDecoder
from otconduit.protocols.dnp3.transport import TransportReassembler

KD: Any = _kd


class Dnp3Lane(TxLane):
    protocol = "dnp3"
    op_protocol = "dnp3"
    pass_fn = KD.dnp3_pass
    shape_fn = KD.dnp3_shape

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        if not isinstance(dec, Dnp3ConnectionDecoder) or dec._datagrams or conn.closed:
            return False
        if dec._out or not all(r.clean and r.next_seq is not None for r in conn.reasm):
            return False
        for framer in dec.framers:
            if framer.buffered or framer._events or framer._resync is not None:
                return False
        if any(rx._buf is not None for rx in dec.transport._rx.values()):
            return False
        ses = dec.session
        return not (ses._open or ses._partial or ses._awaiting)

    def prepare(self, conn: TcpConnection, s: int) -> None:
        row = self.st[s]
        row[KD.P_ASSOC] = -1
        row[KD.P_ASSOC + 1] = -1

    def before_replay(self, conn: TcpConnection, s: int) -> None:
        """The transport reassemblers as the per-packet path would have left them: the
        last segment each direction delivered (retries of it are dropped silently)."""
        dec = conn.decoder
        assert isinstance(dec, Dnp3ConnectionDecoder)
        row = self.st[s]
        transport = dec.transport
        used = [d for d in (0, 1) if row[KD.P_LLEN + d] > 0]
        for d in sorted(used, key=lambda d: int(row[KD.P_LUSE + d])):
            assoc = int(row[KD.P_ASSOC + d])
            key = (d, assoc >> 16, assoc & 0xFFFF)
            rx = transport._rx.get(key)
            if rx is None:
                rx = transport._rx[key] = TransportReassembler(transport.max_fragment)
                while len(transport._rx) > transport.max_associations:
                    transport._rx.popitem(last=False)
            else:
                transport._rx.move_to_end(key)
            n = int(row[KD.P_LLEN + d])
            at = KD.SEG_AT + 256 * d
            rx._buf = None
            rx._tainted = False
            rx._seq = int(row[KD.P_LSEQ + d])
            rx._last = self.raw[s, at : at + n].tobytes()
            row[KD.P_LLEN + d] = 0

    def exemplar_events(self, conn: TcpConnection, ex: Exemplar) -> list[DecoderEvent]:
        dec = conn.decoder
        assert isinstance(dec, Dnp3ConnectionDecoder)
        fresh = Dnp3ConnectionDecoder(dec.endpoints)
        for d, data, frame, ts in ex.messages:
            fresh.feed(d, data, frame, ts)
        return fresh.events()

    def frame_roles(self, ex: Exemplar) -> tuple[int, int]:
        if ex.ints(7):  # the first message is a request
            return 0, 1 if len(ex.messages) > 1 else -1
        return -1, 0

    def holes(self, op: Operation, ex: Exemplar) -> tuple[Any, Any, dict[str, Any]] | None:
        """The application sequence number, and the frame of the confirm."""
        if op.transaction_id != ex.ints(0):
            return None
        detail = copy.deepcopy(op.detail)
        if "confirm_frame" in detail:
            last = len(ex.messages) - 1
            if detail["confirm_frame"] != ex.messages[last][2]:
                return None
            detail["confirm_frame"] = Hole(H_FRAME, last)
        return Hole(H_INT, 0), op.values, detail


__all__ = ["Dnp3Lane"]
