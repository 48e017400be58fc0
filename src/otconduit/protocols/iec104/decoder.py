"""IEC 60870-5-104 (TCP 2404) as a :class:`~otconduit.protocols.base.ConnectionDecoder`.

Per direction an :class:`~.apci.ApduStream`; one :class:`~.session.Iec104Session`.
Per APDU:

- I format: the ASDU is parsed (:func:`.asdu.parse_asdu`), its N(S) checked against the
  next expected one (a jump is recorded as ``ns_gap`` on its operation and counted in
  ``sequence_gaps``/``missing_apdus``), its N(R) against what the other side sent
  (``ack_errors``: acknowledging APDUs never sent); then matched (activations) or
  reported as an operation of its own (monitor information, one per ASDU);
- S format: N(R) checked and counted;
- U format: STARTDT/STOPDT/TESTFR act matched to con.

Malformed events: framing losses (from the stream), APCI problems (control fields
that break the rules), ASDUs that cannot be read or whose length disagrees with their
objects; an operation built from a message with a problem has status ``malformed``.
A gap in the stream makes sequence numbers unknown until the next I-format APDU.

Counters for conformance: ``format_counts`` ((direction, "I"/"S"/"U")), ``u_counts``
(U function bits), ``type_counts`` (the type id octet of every I-format APDU that has
one, even an ASDU too short to decode, as Wireshark counts them), ``cot_counts``.
"""

from __future__ import annotations

from collections import Counter
from typing import Final, Self

from otconduit.model import IdentityClaim
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec104.apci import Apdu, ApduStream
from otconduit.protocols.iec104.asdu import parse_asdu
from otconduit.protocols.iec104.ops import (
    command_operation,
    common_address_claim,
    monitor_operation,
    u_operation,
)
from otconduit.protocols.iec104.session import Command, Iec104Session, Message, UExchange

SEQ_MODULO: Final = 1 << 15
MAX_CLAIMS: Final = 256


class Iec104ConnectionDecoder:
    """Both directions of one IEC 104 connection."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.streams = (ApduStream(), ApduStream())
        self.session = Iec104Session()
        self.format_counts: Counter[tuple[int, str]] = Counter()
        self.u_counts: Counter[int] = Counter()
        self.type_counts: Counter[int] = Counter()
        self.cot_counts: Counter[int] = Counter()
        self.sequence_gaps = 0
        self.missing_apdus = 0
        self.ack_errors = 0
        self._next_ns: list[int | None] = [None, None]
        self._out: list[DecoderEvent] = []
        self._claimed: set[tuple[str, str]] = set()

    # -- ConnectionDecoder ---------------------------------------------------------------
    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        self.streams[direction].feed(data, frame, ts_ns)
        self._drain(direction)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        self.streams[direction].gap(nbytes, frame, ts_ns)
        self._drain(direction)
        self._next_ns = [None, None]  # APDUs were lost: sequence numbers restart

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        for d in (0, 1):
            self.streams[d].end()
            self._drain(d)
        cmds, us = self.session.flush()
        self._emit(cmds, us)
        return self.events()

    def fork(self) -> Self:
        return type(self)(self.endpoints)

    # -- internals -----------------------------------------------------------------------
    def _drain(self, direction: int) -> None:
        for event in self.streams[direction].events():
            if isinstance(event, Malformed):
                self._out.append(event)
            else:
                self._apdu(direction, event)

    def _malformed(self, reason: str, apdu: Apdu) -> None:
        self._out.append(
            Malformed(
                reason=reason,
                offset=apdu.offset,
                frame=apdu.frame,
                ts_ns=apdu.ts_ns,
                data=b"\x68" + bytes([4 + len(apdu.asdu)]) + apdu.control + apdu.asdu,
            )
        )

    def _apdu(self, direction: int, apdu: Apdu) -> None:
        cmds, us = self.session.expire(apdu.ts_ns)
        self._emit(cmds, us)
        self.format_counts[(direction, apdu.format)] += 1
        if apdu.problem is not None:
            self._malformed(f"APCI: {apdu.problem}", apdu)
        if apdu.format == "U":
            bits = apdu.u_function
            if bits is not None:
                self.u_counts[bits] += 1
            self._emit([], self.session.u_format(direction, apdu))
            return
        self._ack(direction, apdu.nr)
        if apdu.format == "S":
            return
        if len(apdu.asdu) < 6:  # counted as far as it goes (as Wireshark does), not decoded
            if apdu.asdu:
                self.type_counts[apdu.asdu[0]] += 1
            if len(apdu.asdu) >= 3:
                self.cot_counts[apdu.asdu[2] & 0x3F] += 1
            return
        ns_gap = self._sequence(direction, apdu.ns)
        asdu = parse_asdu(apdu.asdu)
        if isinstance(asdu, str):  # cannot happen past the length check; kept for safety
            self._malformed(f"ASDU: {asdu}", apdu)
            return
        self.type_counts[asdu.type_id] += 1
        self.cot_counts[asdu.cot] += 1
        msg = Message(direction, apdu, asdu, ns_gap=ns_gap)
        if apdu.problem is not None:
            msg.problems.append(apdu.problem)
        if asdu.problem is not None:
            msg.problems.append(asdu.problem)
            self._malformed(f"ASDU {asdu.name}: {asdu.problem}", apdu)
        done, absorbed = self.session.message(msg)
        self._emit(done, [])
        if not absorbed:
            self._out.append(monitor_operation(msg, self.endpoints))
            claim = common_address_claim(msg, self.endpoints)
            if claim is not None:
                self._claim(claim)

    def _sequence(self, direction: int, ns: int | None) -> int | None:
        """Check N(S) against the expected one; the number of APDUs skipped, if any."""
        if ns is None:
            return None
        expected = self._next_ns[direction]
        self._next_ns[direction] = (ns + 1) % SEQ_MODULO
        if expected is None or ns == expected:
            return None
        missing = (ns - expected) % SEQ_MODULO
        self.sequence_gaps += 1
        self.missing_apdus += missing
        return missing

    def _ack(self, direction: int, nr: int | None) -> None:
        """N(R) acknowledges the other side's I-format APDUs up to N(R) - 1."""
        sent = self._next_ns[1 - direction]
        if nr is None or sent is None:
            return
        ahead = (nr - sent) % SEQ_MODULO
        if 0 < ahead < SEQ_MODULO // 2:
            self.ack_errors += 1

    def _emit(self, cmds: list[Command], us: list[UExchange]) -> None:
        for cmd in cmds:
            self._out.append(command_operation(cmd, self.endpoints))
        for ux in us:
            self._out.append(u_operation(ux, self.endpoints))

    def _claim(self, claim: IdentityClaim) -> None:
        key = (claim.ip, claim.value)
        if key not in self._claimed and len(self._claimed) < MAX_CLAIMS:
            self._claimed.add(key)
            self._out.append(claim)
