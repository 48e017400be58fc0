"""A control block's last decoded GOOSE message as a template for the next ones.

A publisher repeats its message every few milliseconds (IEC 61850-7-2 §18.2.3.5); between
repetitions of one state only sqNum changes, and with some publishers also ``t`` and
timeAllowedtoLive (IEC 61850-8-1 Annex A fields [1] and [4]; the corpus' ABB IEDs stamp
every repetition); a new state without new values changes stNum too. A frame equal to
the template outside the contents of those four fields has, by construction, the same
BER structure: every identifier and length byte lies outside them, so the frame decodes
to the template's message with the four values read from the same offsets.
:meth:`Template.pdu_for` builds exactly what ``parse_goose`` would, without the BER walk
(``tests/test_l2_fast.py`` holds the two equal); the dataset values (allData lies outside
the four fields) are decoded once per template.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from otconduit.protocols.iec61850 import ber

if TYPE_CHECKING:
    from otconduit.protocols.iec61850.goose import GoosePdu

Span = tuple[int, int]


@dataclass(slots=True)
class Spans:
    """Where the contents of the fields that change between messages lie in a frame."""

    ttl: Span | None  # timeAllowedtoLive [1]
    t: Span | None  # t [4]
    st: Span  # stNum [5]
    sq: Span  # sqNum [6]

    def cuts(self) -> tuple[int, ...]:
        """Start and end of each span, in frame order (flattened)."""
        spans = sorted(s for s in (self.ttl, self.t, self.st, self.sq) if s is not None)
        return tuple(x for s in spans for x in s)


@dataclass(slots=True)
class Template:
    """A decoded message, its bytes and its variable spans; see the module doc."""

    payload: bytes
    pdu: GoosePdu
    spans: Spans
    cuts: tuple[int, ...] = ()
    _values: tuple[list[Any], str | None] | None = field(default=None, repr=False)
    _time: tuple[bytes | None, str | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.cuts = self.spans.cuts()

    def matches(self, payload: bytes) -> bool:
        """``payload`` equals the template outside the variable spans (same length)."""
        last = self.payload
        if len(payload) != len(last):
            return False
        pos = 0
        cuts = self.cuts
        for i in range(0, len(cuts), 2):
            a = cuts[i]
            if payload[pos:a] != last[pos:a]:
                return False
            pos = cuts[i + 1]
        return payload[pos:] == last[pos:]

    def st_sq(self, payload: bytes) -> tuple[int, int]:
        """stNum and sqNum of a matching frame (unsigned, as ``ber.unsigned`` reads them)."""
        (a, b), (c, d) = self.spans.st, self.spans.sq
        return int.from_bytes(payload[a:b], "big"), int.from_bytes(payload[c:d], "big")

    def pdu_for(self, payload: bytes) -> GoosePdu:
        """The message a matching frame carries (what ``parse_goose`` returns for it)."""
        if payload == self.payload:
            return self.pdu
        s = self.spans
        st, sq = self.st_sq(payload)
        changes: dict[str, Any] = {"st_num": st, "sq_num": sq}
        if s.ttl is not None:
            a, b = s.ttl
            changes["time_allowed_to_live"] = int.from_bytes(payload[a:b], "big", signed=True)
        if s.t is not None:
            a, b = s.t
            changes["t"] = payload[a:b]
        return dataclasses.replace(self.pdu, **changes)

    def values(self) -> tuple[list[Any], str | None]:
        """The dataset values (a fresh list each call) and a problem, decoded once."""
        if self._values is None:
            self._values = self.pdu.values()
        values, problem = self._values
        return _fresh(values), problem

    def time(self, pdu: GoosePdu) -> str | None:
        """``pdu.time``, remembered for the last ``t`` seen."""
        if self._time is None or self._time[0] != pdu.t:
            self._time = (pdu.t, pdu.time)
        return self._time[1]


def _fresh(value: Any) -> Any:
    """A copy of decoded values: every operation owns its lists and dicts."""
    if isinstance(value, list):
        return [_fresh(v) if isinstance(v, list | dict) else v for v in value]
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


def spans_of(fields: dict[int, ber.Tlv]) -> Spans:
    """The variable spans of a decoded goosePdu's fields (stNum and sqNum present)."""

    def span(tag: int) -> Span | None:
        tlv = fields.get(tag)
        return None if tlv is None else (tlv.start, tlv.end)

    st, sq = fields[5], fields[6]
    return Spans(ttl=span(1), t=span(4), st=(st.start, st.end), sq=(sq.start, sq.end))


__all__ = ["Spans", "Template", "spans_of"]
