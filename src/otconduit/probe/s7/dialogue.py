"""The S7 identification dialogue: COTP connect, Setup Communication, then Read SZL
0x0011 and 0x001C. A CPU that disconnects the first TSAP is tried once more with the
other common one. Answers are read by the monitor's S7comm decoder."""

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
from otconduit.probe.s7.request import (
    COTP_CC,
    COTP_DR,
    COTP_DT,
    ROSCTR_ACK_DATA,
    ROSCTR_USERDATA,
    S7_PROTOCOL_ID,
    SZL_COMPONENT_ID,
    SZL_MODULE_ID,
    TSAP_ALT,
    TSAP_S7_300,
    answer_length,
    cotp_connect,
    read_szl,
    setup_communication,
)
from otconduit.protocols import s7

_SZL_NAME = {SZL_MODULE_ID: "module identification", SZL_COMPONENT_ID: "component identification"}


class S7Probe(Dialogue):
    protocol = "s7comm"
    title = "S7comm"
    default_port = 102

    def __init__(self, ip: str, port: int, tsap: int = TSAP_S7_300) -> None:
        super().__init__(ip, port)
        self.tsap = tsap
        self._step = 0
        self._refused_at_connect = False
        self._problem: str | None = None

    def _messages(self) -> list[Message]:
        rack, slot = divmod(self.tsap & 0xFF, 32)
        return [
            Message(
                cotp_connect(self.tsap),
                f"COTP connection request, called TSAP 0x{self.tsap:04x} (rack {rack}, "
                f"slot {slot}), calling TSAP 0x0100",
            ),
            Message(setup_communication(1), "S7 Setup Communication (PDU size 480)"),
            *(
                Message(
                    read_szl(ref, szl),
                    f"S7 user data: Read SZL 0x{szl:04x} index 0 ({_SZL_NAME[szl]})",
                )
                for ref, szl in ((2, SZL_MODULE_ID), (3, SZL_COMPONENT_ID))
            ),
        ]

    def plan(self) -> list[Message]:
        msgs = self._messages()
        if self.tsap == TSAP_S7_300:
            alt = S7Probe(self.ip, self.port, TSAP_ALT)._messages()[0]
            msgs.append(
                Message(
                    alt.data,
                    alt.description,
                    note="only if the first connection request is refused; then the same "
                    "three S7 requests follow on the new connection",
                )
            )
        return msgs

    def first(self) -> Message:
        return self._messages()[0]

    def frame(self, buf: bytes) -> int | None:
        return answer_length(buf)

    def answer(self, data: bytes) -> Message | None:
        if len(data) < 7 or data[0] != 3:
            raise ProbeError("not a TPKT/COTP answer")
        code = data[5] & 0xF0
        if self._step == 0:
            if code == COTP_DR:
                self._refused_at_connect = True
                return None
            if code != COTP_CC:
                raise ProbeError(f"expected COTP connection confirm, got 0x{data[5]:02x}")
        else:
            if code != COTP_DT or len(data) < 17 or data[7] != S7_PROTOCOL_ID:
                raise ProbeError("not an S7comm answer")
            rosctr = data[8]
            if self._step == 1 and rosctr != ROSCTR_ACK_DATA:
                raise ProbeError("Setup Communication was not acknowledged")
            if self._step == 1 and (data[17] or data[18]):
                self._problem = (
                    f"Setup Communication refused (error 0x{data[17]:02x}{data[18]:02x})"
                )
                return None
            if self._step > 1 and rosctr != ROSCTR_USERDATA:
                raise ProbeError("Read SZL answered with something else")
        self._step += 1
        msgs = self._messages()
        return msgs[self._step] if self._step < len(msgs) else None

    def outcome(self) -> Outcome:
        if self._refused_at_connect:
            return Outcome(REFUSED, f"connection request to TSAP 0x{self.tsap:04x} refused")
        claims = decoder_claims(s7.SPEC, self.transcript, self.ip, self.port, "tcp")
        if claims:
            return Outcome(IDENTIFIED, "SZL 0x0011/0x001C", claims)
        if self._problem:
            return Outcome(REFUSED, self._problem)
        return Outcome(ANSWERED, "no identification in the SZL answers")

    def fallback(self) -> Dialogue | None:
        # Refused outright, or the CPU dropped the connection request without a word.
        unanswered = self._step == 0 and len(self.transcript) == 1
        if (self._refused_at_connect or unanswered) and self.tsap == TSAP_S7_300:
            return S7Probe(self.ip, self.port, TSAP_ALT)
        return None
