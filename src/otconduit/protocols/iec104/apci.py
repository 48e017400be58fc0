"""IEC 60870-5-104 APCI framing for one direction of a TCP connection (104 §5).

An APDU is a start octet 0x68, a length octet (4..253: the octets that follow it) and
four control octets, then the ASDU of I-format APDUs. The control field's low bits say
the format:

- I (bit 0 of octet 1 clear): send sequence number N(S) in octets 1-2 and receive
  sequence number N(R) in octets 3-4, each 15 bits above a zero bit;
- S (octet 1 = 0x01): N(R) only, acknowledging I-format APDUs;
- U (octet 1 bits 0-1 = 11): one function bit: STARTDT act/con (0x04/0x08 above the
  format bits), STOPDT act/con (0x10/0x20), TESTFR act/con (0x40/0x80).

A start octet other than 0x68 or a length below 4 loses framing: the bytes up to the
next 0x68 followed by a plausible length are reported as one Malformed event (as
Wireshark reports an "ERR prefix"). APDUs whose control field breaks the rules (several
U functions, an S or U format with an ASDU, an I format without a whole ASDU header)
are framed and carry a ``problem``.

Buffer bound: at most one incomplete APDU (255 octets) plus a skipped run shorter than
``max_skip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.protocols.framing import Resync, StreamFramer

START: Final = 0x68
MIN_LENGTH: Final = 4
MAX_LENGTH: Final = 253
MAX_APDU: Final = 2 + MAX_LENGTH

U_FUNCTIONS: Final = {
    0x04: "STARTDT_ACT",
    0x08: "STARTDT_CON",
    0x10: "STOPDT_ACT",
    0x20: "STOPDT_CON",
    0x40: "TESTFR_ACT",
    0x80: "TESTFR_CON",
}


@dataclass(frozen=True, slots=True)
class Apdu:
    """One framed APDU."""

    format: str  # "I", "S" or "U"
    control: bytes  # the four control octets
    asdu: bytes  # I format: the ASDU; others: octets after the control field
    offset: int  # stream offset of the start octet
    frame: int
    ts_ns: int
    problem: str | None = None

    @property
    def ns(self) -> int | None:
        if self.format != "I":
            return None
        return (self.control[0] >> 1) | (self.control[1] << 7)

    @property
    def nr(self) -> int | None:
        if self.format == "U":
            return None
        return (self.control[2] >> 1) | (self.control[3] << 7)

    @property
    def u_function(self) -> int | None:
        """The U-format function bits (octet 1 without the format bits)."""
        return self.control[0] & 0xFC if self.format == "U" else None


def classify_control(control: bytes, body: int) -> tuple[str, str | None]:
    """(format, problem) of a control field followed by ``body`` octets."""
    c1 = control[0]
    problems = []
    if c1 & 0x01 == 0:
        kind = "I"
        if control[2] & 0x01:
            problems.append("receive sequence number field has its low bit set")
        if body < 6:
            problems.append(f"I-format APDU with {body} octets of ASDU (header needs 6)")
    elif c1 & 0x03 == 0x01:
        kind = "S"
        if c1 != 0x01 or control[1] or control[2] & 0x01:
            problems.append(f"S-format control field {control.hex()} has reserved bits set")
        if body:
            problems.append(f"S-format APDU carries {body} more octets")
    else:
        kind = "U"
        bits = c1 & 0xFC
        if bits not in U_FUNCTIONS:
            problems.append(f"U-format control octet 0x{c1:02x} names no single function")
        if control[1] or control[2] or control[3]:
            problems.append(f"U-format control field {control.hex()} has reserved octets set")
        if body:
            problems.append(f"U-format APDU carries {body} more octets")
    return kind, "; ".join(problems) or None


class ApduStream(StreamFramer[Apdu]):
    """Frames one direction of an IEC 104 connection into :class:`Apdu` events.

    Counters (besides the framer's ``malformed``/``resyncs``/``bytes_skipped``):
    ``apdus`` framed.
    """

    resync_window = 2
    gap_incomplete = "incomplete APDU before a gap"
    gap_resync = "bytes before the first APDU after a gap"

    def __init__(self, max_skip: int = 4096) -> None:
        super().__init__(skip_limit=max_skip)
        self.apdus = 0

    def _resync_start(self, at: int) -> bool:
        return self._buf[at] == START and MIN_LENGTH <= self._buf[at + 1] <= MAX_LENGTH

    def _next_candidate(self) -> int:
        found = self._buf.find(START, self._pos + 1)
        return found if found >= 0 else len(self._buf) - 1

    def _truncated(self, data: bytes) -> str:
        if len(data) >= 2:
            return f"{len(data)} of {2 + data[1]} octets"
        return "1 octet of an APCI"

    def _frame_at(self, avail: int) -> Apdu | Resync | None:
        if avail < 2:
            return None
        buf, pos = self._buf, self._pos
        if buf[pos] != START:
            return Resync(f"start octet 0x{buf[pos]:02x} is not 0x68")
        length = buf[pos + 1]
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            return Resync(f"APDU length {length} outside 4..253")
        total = 2 + length
        if avail < total:
            return None
        start = self._base + pos
        frame, ts_ns = self._completing_frame(start, start + total)
        control = bytes(buf[pos + 2 : pos + 6])
        body = bytes(buf[pos + 6 : pos + total])
        self._advance(total)
        self.apdus += 1
        kind, problem = classify_control(control, len(body))
        return Apdu(kind, control, body, start, frame, ts_ns, problem)
