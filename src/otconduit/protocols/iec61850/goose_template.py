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

A new state usually changes dataset values without changing the dataset's shape: every
identifier and length byte of allData stays where it was, only the contents of its
primitive elements differ. :class:`Layout` is that shape, found once per control block:
where each primitive ``Data`` element's contents lie and how the elements nest. A frame
equal to the template outside the four fields and those contents has, for the same
reason as above, the template's BER structure, so :meth:`Template.relayout` builds its
message and decodes its values element by element (``ber.data_value`` on each, as
``ber.data_list`` would) without walking the structure again.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from otconduit.protocols.events import own_copy
from otconduit.protocols.iec61850 import ber

if TYPE_CHECKING:
    from otconduit.protocols.iec61850.goose import GoosePdu

Span = tuple[int, int]
# A dataset's shape: an element (decoded in place) or the elements of a structure/array.
Plan = list["ber.Tlv | Plan"]


class Outside:
    """The bytes of a payload outside some spans: a frame of the same length that has
    them too equals that payload but for the spans' contents. The runs are kept last
    first (a new state differs first in allData, which follows sqNum) and compared in
    place (``bytes.startswith`` at an offset)."""

    __slots__ = ("runs", "size")

    def __init__(self, payload: bytes, spans: list[Span]) -> None:
        self.size = len(payload)
        bounds = (0, *(x for span in sorted(spans) for x in span), len(payload))
        self.runs = tuple(
            (a, payload[a:b]) for a, b in zip(bounds[-2::-2], bounds[::-2], strict=True) if b > a
        )

    def matches(self, payload: bytes) -> bool:
        if len(payload) != self.size:
            return False
        for pos, fixed in self.runs:  # noqa: SIM110 (a generator in all() costs more)
            if not payload.startswith(fixed, pos):
                return False
        return True


class Layout:
    """Where a dataset's primitive elements lie (see the module doc): the bytes outside
    them and outside the template's variable fields (``fixed``), and the nesting of the
    elements (``plan``, positions in the frame's payload)."""

    __slots__ = ("fixed", "flat", "plan")

    def __init__(self, payload: bytes, plan: Plan, flat: bool, variable: list[Span]) -> None:
        self.plan, self.flat = plan, flat
        self.fixed = Outside(payload, variable)

    def values(self, payload: bytes) -> list[Any]:
        """The dataset values of a matching frame (raises what ``ber.data_value`` raises)."""
        if self.flat:
            return [ber.data_value(payload, t) for t in self.plan]  # type: ignore[arg-type]
        return _build(payload, self.plan, 0)


def _build(payload: bytes, plan: Plan, depth: int) -> list[Any]:
    return [
        _build(payload, p, depth + 1) if isinstance(p, list) else ber.data_value(payload, p, depth)
        for p in plan
    ]


def _plan(payload: bytes, parent: ber.Tlv, depth: int, leaves: list[Span]) -> Plan | None:
    """The shape of a SEQUENCE OF Data, or ``None`` where a frame's decode would depend on
    more than its elements' contents (a nesting or list cut short, an element that is not
    ``Data``): such datasets are decoded whole every time."""
    out: Plan = []
    for i, tlv in enumerate(ber.children(payload, parent)):
        if i >= ber.MAX_ITEMS or tlv.cls != ber.CONTEXT:
            return None
        if tlv.tag in (1, 2):
            if not tlv.constructed or depth + 1 >= ber.MAX_DEPTH:
                return None
            inner = _plan(payload, tlv, depth + 1, leaves)
            if inner is None:
                return None
            out.append(inner)
        elif tlv.constructed:
            return None
        else:
            out.append(tlv)
            leaves.append((tlv.start, tlv.end))
    return out


def layout(payload: bytes, all_data: Span | None, variable: list[Span]) -> Layout | None:
    """The shape of the dataset in ``payload`` (``all_data``: allData's element, offset to
    end), or ``None`` when it has none to reuse."""
    if all_data is None:
        return None
    try:
        top = ber.read_tlv(payload, all_data[0], all_data[1])
        leaves: list[Span] = []
        plan = _plan(payload, top, 0, leaves)
    except ber.BerError:
        return None
    if plan is None:
        return None
    flat = not any(isinstance(p, list) for p in plan)
    return Layout(payload, plan, flat, [*variable, *leaves])


class Template:
    """A decoded message, its bytes and where the contents of timeAllowedtoLive, t,
    stNum and sqNum lie in them (``None``: field absent); see the module doc."""

    __slots__ = (
        "_fixed",
        "_layout",
        "_time",
        "_values",
        "all_data",
        "payload",
        "pdu",
        "sq",
        "st",
        "t",
        "ttl",
    )

    def __init__(
        self,
        payload: bytes,
        pdu: GoosePdu,
        *,
        ttl: Span | None,
        t: Span | None,
        st: Span,
        sq: Span,
        all_data: Span | None = None,
        shape: Layout | bool | None = False,
    ) -> None:
        self.payload = payload
        self.pdu = pdu
        self.ttl, self.t, self.st, self.sq = ttl, t, st, sq
        self.all_data = all_data  # allData's element: offset of its identifier, end
        # the dataset's shape: False until first needed, None when there is none to reuse
        self._layout: Layout | bool | None = shape
        self._fixed = Outside(payload, self._variable())
        self._values: tuple[list[Any], bool, str | None] | None = None
        self._time: tuple[bytes | None, str | None] | None = None

    def matches(self, payload: bytes) -> bool:
        """``payload`` equals the template outside the variable spans (same length)."""
        return self._fixed.matches(payload)

    def st_sq(self, payload: bytes) -> tuple[int, int]:
        """stNum and sqNum of a matching frame (unsigned, as ``ber.unsigned`` reads them)."""
        (a, b), (c, d) = self.st, self.sq
        return int.from_bytes(payload[a:b], "big"), int.from_bytes(payload[c:d], "big")

    def pdu_for(self, payload: bytes) -> GoosePdu:
        """The message a matching frame carries (what ``parse_goose`` returns for it)."""
        if payload == self.payload:
            return self.pdu
        return dataclasses.replace(self.pdu, **self._changes(payload))

    def _changes(self, payload: bytes) -> dict[str, Any]:
        """The four variable fields of a matching frame, as ``GoosePdu`` fields."""
        st, sq = self.st_sq(payload)
        changes: dict[str, Any] = {"st_num": st, "sq_num": sq}
        if self.ttl is not None:
            a, b = self.ttl
            changes["time_allowed_to_live"] = int.from_bytes(payload[a:b], "big", signed=True)
        if self.t is not None:
            a, b = self.t
            changes["t"] = payload[a:b]
        return changes

    def relayout(self, payload: bytes) -> Template | None:
        """The template of a frame whose dataset has this one's shape with other values
        (see the module doc), or ``None`` when it has not."""
        shape = self._layout
        if shape is False:
            shape = self._layout = layout(self.payload, self.all_data, self._variable())
        if not isinstance(shape, Layout) or not shape.fixed.matches(payload):
            return None
        assert self.all_data is not None  # a layout is only found in an allData
        a, b = self.all_data
        changes = self._changes(payload)
        changes["all_data"] = payload[a:b]
        return Template(
            payload,
            dataclasses.replace(self.pdu, **changes),
            ttl=self.ttl,
            t=self.t,
            st=self.st,
            sq=self.sq,
            all_data=self.all_data,
            shape=shape,
        )

    def _variable(self) -> list[Span]:
        return [x for x in (self.ttl, self.t, self.st, self.sq) if x is not None]

    def values(self) -> tuple[list[Any], str | None]:
        """The dataset values (a list of its own for each caller) and a problem, decoded
        once per template."""
        if self._values is None:
            values, problem = self._decoded_values()
            flat = not any(isinstance(v, list | dict) for v in values)
            self._values = (values, flat, problem)
        values, flat, problem = self._values
        return (values.copy() if flat else own_copy(values)), problem

    def _decoded_values(self) -> tuple[list[Any], str | None]:
        """Element by element where the shape is known; a value that does not decode
        sends the dataset through the whole decode, which says what is wrong."""
        shape = self._layout
        if isinstance(shape, Layout):
            try:
                return shape.values(self.payload), None
            except (ber.BerError, ValueError, OverflowError):
                pass
        return self.pdu.values()

    def time(self, pdu: GoosePdu) -> str | None:
        """``pdu.time``, remembered for the last ``t`` seen."""
        if self._time is None or self._time[0] != pdu.t:
            self._time = (pdu.t, pdu.time)
        return self._time[1]


def template(payload: bytes, pdu: GoosePdu, fields: dict[int, ber.Tlv]) -> Template:
    """The template of a message just decoded from ``payload`` (``fields``: the goosePdu's
    context-tagged elements by tag, stNum [5] and sqNum [6] among them)."""
    ttl, t, st, sq, data = fields.get(1), fields.get(4), fields[5], fields[6], fields.get(11)
    return Template(
        payload,
        pdu,
        ttl=None if ttl is None else (ttl.start, ttl.end),
        t=None if t is None else (t.start, t.end),
        st=(st.start, st.end),
        sq=(sq.start, sq.end),
        all_data=None if data is None else (data.offset, data.end),
    )


__all__ = ["Layout", "Outside", "Template", "layout", "template"]
