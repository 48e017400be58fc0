"""EtherNet/IP lane of the bulk path: CIP requests in SendRRData / SendUnitData
(kernel: ``kernels_enip``)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from otconduit.analysis import kernels_enip as _ke
from otconduit.analysis.connections import TcpConnection
from otconduit.analysis.kernels_tx import H_HEX, H_INT
from otconduit.analysis.lanes import Exemplar, TxLane
from otconduit.analysis.templates import Hole
from otconduit.model import Operation
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.enip.decoder import EnipDecoder

KE: Any = _ke
# Detail keys filled from holes: (key, integer hole)
_INT_HOLES = (
    ("session_handle", 0),
    ("connection_id", 1),
    ("sequence_count", 2),
    ("response_connection_id", 3),
)


class EnipLane(TxLane):
    protocol = "enip"
    op_protocol = "cip"
    pass_fn = KE.enip_pass
    shape_fn = KE.enip_shape

    def eligible(self, conn: TcpConnection) -> bool:
        dec = conn.decoder
        if not isinstance(dec, EnipDecoder) or not dec._tcp or conn.closed:
            return False
        if dec._finished or dec._out:
            return False
        if not all(r.clean and r.next_seq is not None for r in conn.reasm):
            return False
        for stream in dec._streams:
            if stream.buffered or stream._events or stream._resync is not None:
                return False
        if dec._encap_pending or dec._rr_pending or dec._conn_pending:
            return False
        # The kernel must know every connection whose detail a request could carry.
        return len(dec._connections) <= KE.MAX_CONNS

    def prepare(self, conn: TcpConnection, s: int) -> None:
        dec = conn.decoder
        assert isinstance(dec, EnipDecoder)
        row = self.st[s]
        pairs = list(dec._reply_ids.items())[-KE.MAX_PAIRS :]
        row[KE.P_PAIRS] = len(pairs)
        for k, (to_id, ot_id) in enumerate(pairs):
            row[KE.P_PAIR + 2 * k] = to_id
            row[KE.P_PAIR + 2 * k + 1] = ot_id
        conns = list(dec._connections.values())
        row[KE.P_CONNS] = len(conns)
        for k, c in enumerate(conns):
            row[KE.P_CONN + 3 * k : KE.P_CONN + 3 * k + 3] = (c.ot_id, c.serial[0], c.ot_rpi_us)

    def exemplar_events(self, conn: TcpConnection, ex: Exemplar) -> list[DecoderEvent]:
        dec = conn.decoder
        assert isinstance(dec, EnipDecoder)
        fresh = EnipDecoder(
            dec.endpoints, max_pending=dec.max_pending, max_connections=dec.max_connections
        )
        fresh._connections = OrderedDict(dec._connections)
        fresh._reply_ids = OrderedDict(dec._reply_ids)
        fresh._paired_ot = set(dec._paired_ot)
        for d, data, frame, ts in ex.messages:
            fresh.feed(d, data, frame, ts)
        return fresh.events()

    def holes(self, op: Operation, ex: Exemplar) -> tuple[Any, Any, dict[str, Any]] | None:
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
        tid: Any = op.transaction_id
        if tid is not None:
            if tid != ex.ints(2):
                return None
            tid = Hole(H_INT, 2)
        return tid, op.values, detail
