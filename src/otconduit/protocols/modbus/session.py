"""Pairs Modbus/TCP requests with responses and maps transactions onto Operations.

Modbus/TCP lets a client keep several transactions outstanding; the server echoes the
MBAP transaction id (IG §3.1.3), so pairing is by transaction id. The table of open
requests is bounded; what falls out of it completes as "no response".
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from otconduit.model import Operation, OpStatus
from otconduit.protocols.modbus.functions import (
    MEI_READ_DEVICE_ID,
    diagnostic_name,
    exception_name,
    function_name,
    mei_name,
    object_name,
    op_class,
)
from otconduit.protocols.modbus.pdu import ModbusMessage

PROTOCOL = "modbus"
REDUNDANT_WHEN_WELL_FORMED = frozenset({"byte_count", "output_value"})
DEFAULT_MAX_OUTSTANDING = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusTransaction:
    """A request and its response; either side may be missing, never both."""

    request: ModbusMessage | None
    response: ModbusMessage | None


class ModbusSession:
    """Transaction matching for one TCP connection.

    Requests wait in a FIFO per transaction id: clients that reuse an id before the
    answer arrives (several PDUs in one segment, retries) are answered in order, which
    is how a server processes them. A response whose function code differs from every
    open request with its id is an orphan; the oldest such request then counts as
    unanswered (a server always answers with the request's code or its exception form,
    MB §7).
    """

    def __init__(self, max_outstanding: int = DEFAULT_MAX_OUTSTANDING) -> None:
        if max_outstanding < 1:
            raise ValueError("max_outstanding must be >= 1")
        self.max_outstanding = max_outstanding
        self._open: OrderedDict[int, deque[ModbusMessage]] = OrderedDict()
        self._count = 0
        self.evicted = 0

    @property
    def outstanding(self) -> int:
        """Requests waiting for a response."""
        return self._count

    def request(self, msg: ModbusMessage) -> list[ModbusTransaction]:
        """Open a transaction; returns those it completes (evicted past the bound)."""
        done = []
        queue = self._open.get(msg.tid)
        if queue is None:
            queue = self._open[msg.tid] = deque()
        queue.append(msg)
        self._count += 1
        while self._count > self.max_outstanding:
            tid, oldest_queue = next(iter(self._open.items()))
            oldest = oldest_queue.popleft()
            if not oldest_queue:
                del self._open[tid]
            self._count -= 1
            self.evicted += 1
            done.append(ModbusTransaction(request=oldest, response=None))
        return done

    def response(self, msg: ModbusMessage) -> list[ModbusTransaction]:
        """Close the transaction ``msg`` answers (or report it as an orphan)."""
        queue = self._open.get(msg.tid)
        if not queue:
            return [ModbusTransaction(request=None, response=msg)]
        for i, req in enumerate(queue):
            if req.function_code == msg.function_code:
                del queue[i]
                self._done_with(msg.tid, queue)
                return [ModbusTransaction(request=req, response=_fit_response(req, msg))]
        req = queue.popleft()
        self._done_with(msg.tid, queue)
        return [
            ModbusTransaction(request=req, response=None),
            ModbusTransaction(request=None, response=msg),
        ]

    def _done_with(self, tid: int, queue: deque[ModbusMessage]) -> None:
        self._count -= 1
        if not queue:
            del self._open[tid]

    def take_open(self) -> list[ModbusMessage]:
        """Every open request, oldest first, forgotten here (someone else answers them)."""
        pending = sorted(
            (req for queue in self._open.values() for req in queue),
            key=lambda m: (m.ts_ns, m.frame),
        )
        self._open.clear()
        self._count = 0
        return pending

    def flush(self) -> list[ModbusTransaction]:
        """Complete every open request as unanswered (end of capture or connection)."""
        return [ModbusTransaction(request=req, response=None) for req in self.take_open()]


def _fit_response(req: ModbusMessage, resp: ModbusMessage) -> ModbusMessage:
    """Use the request's quantity: truncate read bits, check read byte counts."""
    if resp.is_exception or resp.values is None:
        return resp
    qty = req.extra.get("read_quantity") if req.function_code == 23 else req.quantity
    if qty is None or req.function_code not in (1, 2, 3, 4, 23):
        return resp
    problem = None
    if req.function_code in (1, 2):
        expected = (qty + 7) // 8
        if len(resp.values) != 8 * expected:
            problem = f"{len(resp.values) // 8} data bytes but {qty} bits need {expected}"
        values = resp.values[:qty]
    else:
        values = resp.values
        if len(values) != qty:
            problem = f"{len(values)} registers but {qty} requested"
    reason = resp.malformed_reason
    if problem is not None:
        reason = problem if reason is None else f"{reason}; {problem}"
    return dataclasses.replace(resp, values=values, malformed_reason=reason)


def _written_values(msg: ModbusMessage) -> tuple[int, ...] | None:
    """Values a write puts on the device, from the request (or an echoing response)."""
    fc = msg.function_code
    if fc == 22:
        and_mask, or_mask = msg.extra.get("and_mask"), msg.extra.get("or_mask")
        return None if and_mask is None or or_mask is None else (and_mask, or_mask)
    if fc in (5, 6) or (fc in (15, 16, 23) and msg.is_request):
        return msg.values
    if fc == 21 and msg.is_request:
        # File record writes: the registers of every sub-request, in order.
        words: list[int] = []
        for rec in msg.extra.get("records", ()):
            data = rec.get("record_data", b"")
            words += [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data) - 1, 2)]
        return tuple(words)
    return None


def _status(tx: ModbusTransaction) -> OpStatus:
    msgs = [m for m in (tx.request, tx.response) if m is not None]
    if any(m.malformed_reason is not None for m in msgs):
        return OpStatus.MALFORMED
    if tx.response is None:
        return OpStatus.NO_RESPONSE
    if tx.response.is_exception:
        return OpStatus.EXCEPTION
    return OpStatus.OK


def _jsonable(value: Any) -> Any:
    """Bytes as hex, containers recursively, so details can be stored as JSON."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _detail(tx: ModbusTransaction) -> dict[str, Any]:
    req, resp = tx.request, tx.response
    base = req if req is not None else resp
    assert base is not None
    detail: dict[str, Any] = {}
    if base.subfunction is not None:
        detail["subfunction"] = base.subfunction
        if base.function_code == 8:
            detail["subfunction_name"] = diagnostic_name(base.subfunction)
    if base.mei_type is not None:
        detail["mei_type"] = base.mei_type
        detail["mei_name"] = mei_name(base.mei_type)
    for msg, prefix in ((req, "request_"), (resp, "response_")):
        if msg is None:
            continue
        for key, value in msg.extra.items():
            if key in REDUNDANT_WHEN_WELL_FORMED and msg.malformed_reason is None:
                continue  # implied by the values; kept only as evidence of malformation
            if key in ("objects", "and_mask", "or_mask", "read_address", "read_quantity"):
                detail[key] = _jsonable(value)
            else:
                detail[prefix + key] = _jsonable(value)
        if msg.malformed_reason is not None:
            detail[prefix + "malformed_reason"] = msg.malformed_reason
    is_read = resp is not None and resp.function_code in (1, 2, 3, 4, 7, 23, 24)
    if is_read and resp is not None and not resp.is_exception and resp.values is not None:
        detail["response_values"] = list(resp.values)
    if "objects" in detail:
        detail["objects"] = {object_name(int(k)): v for k, v in detail["objects"].items()}
    return detail


def transaction_to_operation(
    tx: ModbusTransaction, *, src_ip: str, src_port: int, dst_ip: str, dst_port: int
) -> Operation:
    """The protocol-neutral record of one Modbus transaction (client is ``src``)."""
    req, resp = tx.request, tx.response
    base = req if req is not None else resp
    if base is None:
        raise ValueError("transaction without request and response")
    write_source = req if req is not None else resp
    assert write_source is not None
    exception_code = resp.exception_code if resp is not None and resp.is_exception else None
    latency = resp.ts_ns - req.ts_ns if req is not None and resp is not None else None
    return Operation(
        ts_ns=base.ts_ns,
        protocol=PROTOCOL,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        operation=op_class(
            base.function_code, subfunction=base.subfunction, mei_type=base.mei_type
        ),
        function=function_name(base.function_code),
        function_code=base.function_code,
        unit=base.unit,
        address=base.address,
        quantity=base.quantity
        if base.quantity is not None or resp is None or resp.is_exception
        else resp.quantity,
        values=_written_values(write_source),
        status=_status(tx),
        exception=exception_name(exception_code) if exception_code is not None else None,
        exception_code=exception_code,
        latency_ns=latency,
        request_frame=req.frame if req is not None else None,
        response_frame=resp.frame if resp is not None else None,
        transaction_id=base.tid,
        detail=_detail(tx),
    )


def device_identity(tx: ModbusTransaction) -> dict[str, str]:
    """Identity attributes a transaction reveals: FC 43/14 objects by name, or the raw
    FC 17 server id bytes as hex under ``SlaveId``. Empty when there are none."""
    resp = tx.response
    if resp is None or resp.is_exception:
        return {}
    if resp.function_code == 43 and resp.mei_type == MEI_READ_DEVICE_ID:
        objects = resp.extra.get("objects", {})
        return {object_name(oid): value for oid, value in objects.items()}
    if resp.function_code == 17 and resp.extra.get("data"):
        data = bytes(resp.extra["data"])
        out = {"SlaveId": data.hex()}
        text = server_id_text(data)
        if text:
            out["SlaveIdText"] = text
        return out
    return {}


_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{4,}")


def server_id_text(data: bytes) -> str | None:
    """The text in an FC 17 server id, when it holds any: many devices answer with an
    ASCII product string (and a run indicator byte) rather than a numeric id. The
    longest printable run of four or more characters, blanks trimmed."""
    runs = [m.group().decode("ascii").strip() for m in _PRINTABLE_RUN.finditer(data)]
    runs = [r for r in runs if len(r) >= 4]
    return max(runs, key=len) if runs else None
