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
from typing import TYPE_CHECKING, Any

from otconduit.protocols.iec61850 import ber

if TYPE_CHECKING:
    from otconduit.protocols.iec61850.goose import GoosePdu

Span = tuple[int, int]


class Template:
    """A decoded message, its bytes and where the contents of timeAllowedtoLive, t,
    stNum and sqNum lie in them (``None``: field absent); see the module doc."""

    __slots__ = ("_fixed", "_time", "_values", "cuts", "payload", "pdu", "sq", "st", "t", "ttl")

    def __init__(
        self,
        payload: bytes,
        pdu: GoosePdu,
        *,
        ttl: Span | None,
        t: Span | None,
        st: Span,
        sq: Span,
    ) -> None:
        self.payload = payload
        self.pdu = pdu
        self.ttl, self.t, self.st, self.sq = ttl, t, st, sq
        spans = sorted(x for x in (ttl, t, st, sq) if x is not None)
        self.cuts: tuple[int, ...] = tuple(x for span in spans for x in span)
        # the bytes between the spans, last first: a new state differs first in allData,
        # which follows sqNum; compared in place (bytes.startswith at an offset)
        bounds = (0, *self.cuts, len(payload))
        self._fixed = tuple(
            (a, payload[a:b]) for a, b in zip(bounds[-2::-2], bounds[::-2], strict=True) if b > a
        )
        self._values: tuple[list[Any], bool, str | None] | None = None
        self._time: tuple[bytes | None, str | None] | None = None

    def matches(self, payload: bytes) -> bool:
        """``payload`` equals the template outside the variable spans (same length)."""
        if len(payload) != len(self.payload):
            return False
        for pos, fixed in self._fixed:  # noqa: SIM110 (a generator in all() costs more)
            if not payload.startswith(fixed, pos):
                return False
        return True

    def st_sq(self, payload: bytes) -> tuple[int, int]:
        """stNum and sqNum of a matching frame (unsigned, as ``ber.unsigned`` reads them)."""
        (a, b), (c, d) = self.st, self.sq
        return int.from_bytes(payload[a:b], "big"), int.from_bytes(payload[c:d], "big")

    def pdu_for(self, payload: bytes) -> GoosePdu:
        """The message a matching frame carries (what ``parse_goose`` returns for it)."""
        if payload == self.payload:
            return self.pdu
        st, sq = self.st_sq(payload)
        changes: dict[str, Any] = {"st_num": st, "sq_num": sq}
        if self.ttl is not None:
            a, b = self.ttl
            changes["time_allowed_to_live"] = int.from_bytes(payload[a:b], "big", signed=True)
        if self.t is not None:
            a, b = self.t
            changes["t"] = payload[a:b]
        return dataclasses.replace(self.pdu, **changes)

    def values(self) -> tuple[list[Any], str | None]:
        """The dataset values (a list of its own for each caller) and a problem, decoded
        once per template."""
        if self._values is None:
            values, problem = self.pdu.values()
            flat = not any(isinstance(v, list | dict) for v in values)
            self._values = (values, flat, problem)
        values, flat, problem = self._values
        return (values.copy() if flat else _fresh(values)), problem

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


def template(payload: bytes, pdu: GoosePdu, fields: dict[int, ber.Tlv]) -> Template:
    """The template of a message just decoded from ``payload`` (``fields``: the goosePdu's
    context-tagged elements by tag, stNum [5] and sqNum [6] among them)."""
    ttl, t, st, sq = fields.get(1), fields.get(4), fields[5], fields[6]
    return Template(
        payload,
        pdu,
        ttl=None if ttl is None else (ttl.start, ttl.end),
        t=None if t is None else (t.start, t.end),
        st=(st.start, st.end),
        sq=(sq.start, sq.end),
    )


__all__ = ["Template", "template"]
