"""Modbus/TCP as a :class:`~otconduit.protocols.base.ConnectionDecoder`: both framers,
the transaction matcher, and the identity a device reveals through FC 43/14 and FC 17."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from otconduit.model import IdentityClaim
from otconduit.protocols.base import DecoderEvent, Endpoints, Pending
from otconduit.protocols.events import Malformed
from otconduit.protocols.modbus.session import (
    ModbusSession,
    ModbusTransaction,
    device_identity,
    transaction_to_operation,
)
from otconduit.protocols.modbus.stream import ModbusMessage, ModbusStream

PROTOCOL = "modbus"

# Read Device Identification object names (MB §6.21) → inventory attribute names.
IDENTITY_ATTRS = {
    "VendorName": "vendor",
    "ProductCode": "product_code",
    "MajorMinorRevision": "revision",
    "VendorUrl": "vendor_url",
    "ProductName": "product_name",
    "ModelName": "model",
    "UserApplicationName": "application",
}
# FC 17 (Report Server ID): the raw bytes, and the text in them when there is any.
SERVER_ID_ATTRS = {"SlaveId": "slave_id", "SlaveIdText": "slave_id_text"}


@dataclass(frozen=True, slots=True)
class ModbusState:
    """What a Modbus connection hands a fast path: its open requests, oldest first."""

    open: tuple[Pending, ...]


class ModbusConnectionDecoder:
    """Both directions of one Modbus/TCP connection plus transaction matching;
    :class:`~otconduit.protocols.base.Resumable` for the fast path."""

    __slots__ = ("_out", "endpoints", "session", "streams")

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.streams = (ModbusStream(is_request=True), ModbusStream(is_request=False))
        self.session = ModbusSession()
        self._out: list[DecoderEvent] = []

    # -- ConnectionDecoder ---------------------------------------------------------------
    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        self.streams[direction].feed(data, frame, ts_ns)
        self._drain(direction)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        self.streams[direction].gap(nbytes, frame, ts_ns)
        self._drain(direction)

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        for d in (0, 1):
            self.streams[d].end()
            self._drain(d)
        self.transactions(self.session.flush())
        return self.events()

    # -- Resumable -----------------------------------------------------------------------
    def quiescent(self) -> bool:
        return not self._out and all(s.idle for s in self.streams)

    def export_state(self) -> ModbusState:
        """Hands over the open requests (the decoder forgets them)."""
        return ModbusState(
            tuple(Pending(0, m.raw, m.frame, m.ts_ns) for m in self.session.take_open())
        )

    def resume(self, state: object, pending: Sequence[Pending]) -> None:
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def fork(self) -> Self:
        return type(self)(self.endpoints)

    # -- internals -----------------------------------------------------------------------
    def _drain(self, direction: int) -> None:
        stream = self.streams[direction]
        while True:
            ev = stream.next_event()
            if isinstance(ev, ModbusMessage):
                if direction == 0:
                    self.transactions(self.session.request(ev))
                else:
                    self.transactions(self.session.response(ev))
            elif isinstance(ev, Malformed):
                self._out.append(ev)
            else:
                return

    def transactions(self, txs: list[ModbusTransaction]) -> None:
        """Turn completed transactions into operations (and identity claims)."""
        e = self.endpoints
        for tx in txs:
            op = transaction_to_operation(
                tx,
                src_ip=e.client_ip,
                src_port=e.client_port,
                dst_ip=e.server_ip,
                dst_port=e.server_port,
            )
            self._out.append(op)
            resp = tx.response
            if resp is not None and resp.function_code in (17, 43):
                for key, value in device_identity(tx).items():
                    if not value:
                        continue
                    attr = IDENTITY_ATTRS.get(key)
                    via_43 = resp.function_code == 43
                    self._out.append(
                        IdentityClaim(
                            ip=e.server_ip,
                            attribute=attr or SERVER_ID_ATTRS.get(key, key),
                            value=value,
                            source="modbus_43_14" if via_43 else "modbus_17",
                            # named objects are the device's own statement; private
                            # objects and FC 17 bytes are vendor-specific
                            confidence=0.9 if attr else 0.5,
                            ts_ns=resp.ts_ns,
                        )
                    )
