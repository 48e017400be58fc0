"""Operations in process terms: which tags a write changed, to what, from what.

:class:`ProcessAnnotator` is fed operations (the ``conduit operations`` dict shape) in
time order. It keeps, per device and address space, an image of what the registers,
coils or S7 bytes were last seen to hold -- from the values reads brought back and from
writes the device accepted -- and for each write to an address a gateway tag maps it
returns one entry per tag the write touched::

    {"path": "acme/plant1/packaging/line1/conveyor/speed_setpoint", "value": 40.0,
     "unit": "m/min", "previous": 25.0, "previous_from": "historian",
     "device": "conveyor-plc", "text": "conveyor/speed_setpoint := 40.0 m/min (was 25.0)"}

``previous`` is the historian's last good sample of the tag before the write when the
historian is given and has one (``previous_from: historian``), else what the operations
last showed the device holding (``operations``), else None. A write the device refused
(an exception response) changed nothing and gets no entry. A multi-register value half
written, whose other half was never seen, has ``value`` None.

Modbus (Modbus Application Protocol v1.1b3): FC 5/15 write coils, FC 6/16 holding
registers, FC 22 mask write (§6.16: (current AND and_mask) OR (or_mask AND NOT and_mask)),
FC 23 read/write multiple (§6.17: the write happens before the read). S7comm Write
Variable items (DB, M, I, Q areas; bit writes with transport size BIT).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from otconduit.gateway.model import Value
from otconduit.process.history import HistorianLookup
from otconduit.process.tagmap import MappedTag, TagMap

# Modbus function -> the table it writes / reads.
WRITE_TABLE = {5: "coil", 15: "coil", 6: "holding", 16: "holding", 22: "holding", 23: "holding"}
READ_TABLE = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
S7_READ, S7_WRITE = 0x04, 0x05
S7_SUCCESS = 0xFF
_APPLIED = ("ok", "no_response")  # a write with no answer may well have happened
Space = tuple[str, str, int, int | None, str]  # protocol, host, port, unit, space


def _fmt(value: Value, tag: MappedTag) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        names = tag.state_names
        if names is not None and float(value).is_integer() and int(value) in names:
            return f"{names[int(value)]} ({int(value)})"
        places = tag.decimals
        return f"{value:.{places}f}" if places else str(round(value))
    return repr(value) if isinstance(value, str) else str(value)


def entry_text(tag: MappedTag, value: Value, previous: Value) -> str:
    """``conveyor/speed_setpoint := 40.0 m/min (was 25.0)``: the tag's cell/name, the
    value rounded to the tag's precision with its unit, and the value before."""
    unit = f" {tag.unit_text}" if tag.unit_text and value is not None else ""
    text = f"{tag.short} := {_fmt(value, tag)}{unit}"
    if previous is not None:
        text += f" (was {_fmt(previous, tag)})"
    return text


def process_text(entries: Iterable[dict[str, Any]], most: int = 3) -> str:
    """Entries as one line for tables and summaries (``; ``-separated, each text once).
    Past ``most``, tags written with the value they already had are only counted: a PLC
    that rewrites all its outputs every cycle changes one of them now and then."""
    texts: list[str] = []
    same = 0
    listed = list(entries)
    for e in listed:
        text = str(e.get("text", ""))
        unchanged = e.get("previous") is not None and e.get("previous") == e.get("value")
        if len(listed) > most and unchanged:
            same += 1
        elif text not in texts:
            texts.append(text)
    if same:
        texts.append(f"{same} more unchanged")
    return "; ".join(texts)


def distinct(entries: Iterable[dict[str, Any]], most: int = 50) -> list[dict[str, Any]]:
    """Entries with one of each (path, value, previous), oldest first, at most ``most``:
    what an alert keeps of many like writes."""
    out: list[dict[str, Any]] = []
    keys: set[tuple[str, str, str]] = set()
    for e in entries:
        key = (str(e.get("path")), repr(e.get("value")), repr(e.get("previous")))
        if key not in keys:
            keys.add(key)
            out.append(e)
    return out[:most]


class ProcessAnnotator:
    """Feed operations oldest first; :meth:`feed` returns each one's process entries."""

    def __init__(self, tagmap: TagMap, history: HistorianLookup | None = None) -> None:
        self.map = tagmap
        self.history = history
        self._image: dict[Space, dict[int, int]] = {}
        self._bits: dict[Space, dict[tuple[int, int], int]] = {}  # S7 single-bit writes

    # -- entry point -------------------------------------------------------------------
    def feed(self, op: dict[str, Any]) -> list[dict[str, Any]]:
        """Learn from ``op`` and return its process entries ([] unless it is a write
        to mapped addresses)."""
        if op.get("dst_ip") not in self.map.hosts:
            return []
        proto = op.get("protocol")
        if proto == "modbus":
            return self._modbus(op)
        if proto == "s7comm":
            return self._s7(op)
        return []

    def _space(self, op: dict[str, Any], proto: str, unit: int | None, space: str) -> Space:
        return (proto, str(op["dst_ip"]), int(op.get("dst_port") or 0), unit, space)

    # -- Modbus ------------------------------------------------------------------------
    def _modbus(self, op: dict[str, Any]) -> list[dict[str, Any]]:
        fc, status = op.get("function_code"), op.get("status")
        unit, addr = op.get("unit"), op.get("address")
        detail = op.get("detail") or {}
        if fc in READ_TABLE and status == "ok" and addr is not None:
            self._learn(self._space(op, "modbus", unit, READ_TABLE[fc]), addr,
                        detail.get("response_values"))  # fmt: skip
            return []
        table = WRITE_TABLE.get(fc) if isinstance(fc, int) else None
        values = op.get("values")
        if table is None or addr is None or values is None or status not in _APPLIED:
            return []
        space = self._space(op, "modbus", unit, table)
        img = self._image.setdefault(space, {})
        before = dict(img)
        if fc == 22:
            and_mask, or_mask = (int(v) for v in values[:2])
            cur = img.get(addr)
            if cur is not None:
                img[addr] = (cur & and_mask) | (or_mask & ~and_mask & 0xFFFF)
            elif and_mask == 0:
                img[addr] = or_mask
            else:
                img.pop(addr, None)  # unknown until read again
            lo, hi = addr, addr + 1
        else:
            for i, v in enumerate(values):
                img[addr + i] = int(v)
            lo, hi = addr, addr + len(values)
        tags = self.map.overlapping("modbus", space[1], space[2], unit, table, lo, hi)
        out = [self._entry(t, op, self._modbus_value(t, img), self._modbus_value(t, before))
               for t in tags]  # fmt: skip
        if fc == 23 and status == "ok":  # the read part, done after the write
            self._learn(self._space(op, "modbus", unit, "holding"), detail.get("read_address"),
                        detail.get("response_values"))  # fmt: skip
        if status != "ok":
            self._image[space] = before  # not confirmed: what the device holds is unknown
            for i in range(lo, hi):
                self._image[space].pop(i, None)
        return out

    def _learn(self, space: Space, addr: int | None, values: list[int] | None) -> None:
        if addr is None or not values:
            return
        img = self._image.setdefault(space, {})
        for i, v in enumerate(values):
            img[addr + i] = int(v)

    @staticmethod
    def _modbus_value(tag: MappedTag, img: dict[int, int]) -> Value:
        words = [img.get(i) for i in range(tag.start, tag.end)]
        if any(w is None for w in words):
            return None
        if tag.space in ("coil", "discrete"):
            return bool(words[0])
        try:
            return tag.decode_words([w for w in words if w is not None])
        except (ValueError, OverflowError):
            return None

    # -- S7 ------------------------------------------------------------------------------
    def _s7(self, op: dict[str, Any]) -> list[dict[str, Any]]:
        fc, status = op.get("function_code"), op.get("status")
        items = (op.get("detail") or {}).get("items") or []
        if fc not in (S7_READ, S7_WRITE) or status == "malformed":
            return []
        out: list[dict[str, Any]] = []
        for item in items:
            area, start, data = item.get("area"), item.get("start"), item.get("values")
            if area not in ("DB", "M", "I", "Q") or start is None or data is None:
                continue
            code = item.get("return_code")
            if code is not None and code != S7_SUCCESS:
                continue  # this item was refused: nothing read or written
            if code is None and (fc == S7_READ or status != "no_response"):
                continue  # a read without its answer; a write neither confirmed nor refused
            space = self._space(op, "s7", None, f"DB{item.get('db')}" if area == "DB" else area)
            img = self._image.setdefault(space, {})
            bits = self._bits.setdefault(space, {})
            is_bit = item.get("transport_size") == "BIT"
            if fc == S7_READ:
                if not is_bit:
                    for i, b in enumerate(data):
                        img[start + i] = int(b)
                continue
            before, bits_before = dict(img), dict(bits)
            if is_bit:
                bit, on = int(item.get("bit") or 0), int(data[0]) & 1 if data else 0
                bits[(start, bit)] = on
                if start in img:
                    img[start] = (img[start] | (1 << bit)) if on else (img[start] & ~(1 << bit))
                lo, hi = start, start + 1
            else:
                for i, b in enumerate(data):
                    img[start + i] = int(b)
                    for k in [k for k in bits if k[0] == start + i]:
                        del bits[k]
                lo, hi = start, start + len(data)
            for t in self.map.overlapping("s7", space[1], space[2], None, space[4], lo, hi):
                if is_bit and t.bit != int(item.get("bit") or 0) and t.size == 1:
                    continue  # another bit of the byte
                now = self._s7_value(t, img, bits)
                was = self._s7_value(t, before, bits_before)
                out.append(self._entry(t, op, now, was))
        return out

    @staticmethod
    def _s7_value(tag: MappedTag, img: dict[int, int], bits: dict[tuple[int, int], int]) -> Value:
        data = [img.get(i) for i in range(tag.start, tag.end)]
        if any(b is None for b in data):
            if tag.size == 1 and tag.bit is not None and (tag.start, tag.bit) in bits:
                return bool(bits[(tag.start, tag.bit)])
            return None
        try:
            return tag.decode_s7(bytes(b for b in data if b is not None))
        except (ValueError, OverflowError):
            return None

    # -- the entry -------------------------------------------------------------------------
    def _entry(
        self, tag: MappedTag, op: dict[str, Any], value: Value, seen_before: Value
    ) -> dict[str, Any]:
        previous, source = None, None
        ts = op_ts_ns(op.get("ts"))
        if self.history is not None and ts is not None:
            found = self.history.before(tag.path, ts)
            if found is not None:
                previous, source = found[0], "historian"
        if source is None and seen_before is not None:
            previous, source = seen_before, "operations"
        return {
            "path": tag.path,
            "value": value,
            "unit": tag.unit_text,
            "previous": previous,
            "previous_from": source,
            "device": tag.device,
            "ts": op.get("ts"),
            "text": entry_text(tag, value, previous),
        }


def op_ts_ns(text: Any) -> int | None:
    """An operation's ``ts`` (ISO 8601 UTC, microseconds) as epoch nanoseconds."""
    if isinstance(text, int):
        return text
    if not isinstance(text, str) or not text:
        return None
    from datetime import datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def annotate_operations(
    ops: Iterable[dict[str, Any]], annotator: ProcessAnnotator
) -> Iterator[dict[str, Any]]:
    """Each operation with ``process`` added (its entries; [] for any other operation)."""
    for op in ops:
        op["process"] = annotator.feed(op)
        yield op
