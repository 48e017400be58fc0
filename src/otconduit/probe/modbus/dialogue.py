"""The Modbus identification dialogue: ask for the regular objects (which include the
basic ones), follow "more follows" a bounded number of times, and fall back to the basic
objects when the device refuses the regular category (exception 02/03)."""

from __future__ import annotations

from otconduit.probe.base import (
    ANSWERED,
    IDENTIFIED,
    REFUSED,
    Dialogue,
    Message,
    Outcome,
    ProbeError,
    decoder_claims,
)
from otconduit.probe.modbus.request import (
    BASIC,
    DEFAULT_UNIT,
    FUNCTION,
    MEI_READ_DEVICE_ID,
    REGULAR,
    answer_length,
    read_device_id,
)
from otconduit.protocols import modbus

MAX_CONTINUATIONS = 3
EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
              4: "server device failure", 11: "gateway target failed to respond"}  # fmt: skip
_CODE_NAME = {BASIC: "basic", REGULAR: "regular"}


class ModbusProbe(Dialogue):
    protocol = "modbus"
    title = "Modbus/TCP"
    default_port = 502

    def __init__(self, ip: str, port: int, unit: int = DEFAULT_UNIT) -> None:
        super().__init__(ip, port)
        self.unit = unit
        self._tid = 0
        self._code = REGULAR
        self._object = 0
        self._continued = 0
        self._refused: str | None = None
        self._answered = False

    def _request(self, code: int, object_id: int) -> Message:
        self._tid += 1
        self._code, self._object = code, object_id
        return Message(
            read_device_id(self._tid, self.unit, code, object_id),
            f"Read Device Identification (FC 43/14), {_CODE_NAME[code]} objects from "
            f"0x{object_id:02x}, unit {self.unit}, transaction {self._tid}",
        )

    def plan(self) -> list[Message]:
        first = ModbusProbe(self.ip, self.port, self.unit).first()
        again = Message(
            read_device_id(2, self.unit, BASIC, 0),
            f"Read Device Identification (FC 43/14), basic objects from 0x00, unit "
            f"{self.unit}, transaction 2",
            note="only if the regular objects are refused (exception 02 or 03); a "
            "'more follows' answer is followed up to 3 times from the object it names",
        )
        return [first, again]

    def first(self) -> Message:
        return self._request(REGULAR, 0)

    def frame(self, buf: bytes) -> int | None:
        if len(buf) >= 4 and buf[2:4] != b"\x00\x00":
            raise ProbeError("not a Modbus/TCP answer (protocol id is not 0)")
        return answer_length(buf)

    def answer(self, data: bytes) -> Message | None:
        if len(data) < 9 or data[2:4] != b"\x00\x00":
            raise ProbeError("not a Modbus/TCP answer")
        if int.from_bytes(data[0:2], "big") != self._tid:
            raise ProbeError("answer to another transaction")
        fc = data[7]
        if fc == FUNCTION | 0x80:
            code = data[8]
            if self._code == REGULAR and self._object == 0 and code in (2, 3):
                return self._request(BASIC, 0)
            self._refused = f"exception {code:02d} ({EXCEPTIONS.get(code, 'unknown')})"
            return None
        if fc != FUNCTION or data[8] != MEI_READ_DEVICE_ID or len(data) < 14:
            raise ProbeError(f"unexpected Modbus answer (function {fc})")
        self._answered = True
        more, next_object = data[11], data[12]
        if more == 0xFF and next_object > self._object and self._continued < MAX_CONTINUATIONS:
            self._continued += 1
            return self._request(self._code, next_object)
        return None

    def outcome(self) -> Outcome:
        claims = decoder_claims(modbus.SPEC, self.transcript, self.ip, self.port, "tcp")
        if claims:
            return Outcome(IDENTIFIED, f"{len(claims)} objects", claims)
        if self._refused:
            return Outcome(REFUSED, self._refused)
        return Outcome(ANSWERED, "answered with no identification objects")
