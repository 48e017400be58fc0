"""The EtherNet/IP identification dialogue: one ListIdentity over TCP 44818, read by the
monitor's EtherNet/IP decoder."""

from __future__ import annotations

import struct

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
from otconduit.probe.enip.request import LIST_IDENTITY, answer_length, list_identity
from otconduit.protocols import enip


class EnipProbe(Dialogue):
    protocol = "enip"
    title = "EtherNet/IP"
    default_port = 44818

    def __init__(self, ip: str, port: int) -> None:
        super().__init__(ip, port)
        self._status: int | None = None

    def plan(self) -> list[Message]:
        return [self.first()]

    def first(self) -> Message:
        return Message(list_identity(), "EtherNet/IP ListIdentity (encapsulation 0x0063)")

    def frame(self, buf: bytes) -> int | None:
        return answer_length(buf)

    def answer(self, data: bytes) -> Message | None:
        command, _length, _session, status = struct.unpack_from("<HHII", data)
        if command != LIST_IDENTITY:
            raise ProbeError(f"answer to another command (0x{command:04x})")
        self._status = status
        return None

    def outcome(self) -> Outcome:
        if self._status:
            return Outcome(REFUSED, f"encapsulation status 0x{self._status:08x}")
        claims = decoder_claims(enip.SPEC, self.transcript, self.ip, self.port, "tcp")
        if claims:
            return Outcome(IDENTIFIED, "ListIdentity", claims)
        return Outcome(ANSWERED, "ListIdentity answered without an identity item")
