"""DNP3 application layer (1815 §4.2.2): fragment header, object headers, and the object
values that monitoring cares about.

Fragment header (1815 §4.2.2.1)::

    request:   AC | FC                  AC = application control, FC = function code
    response:  AC | FC | IIN1 | IIN2    FC >= 0x81 (1815 §4.2.2.5), IIN 1815 §4.2.2.6

Application control (1815 §4.2.2.4): bit 7 FIR, bit 6 FIN, bit 5 CON (confirmation
wanted), bit 4 UNS (unsolicited), bits 0-3 SEQ.

Object header (1815 §4.2.2.7): group, variation, qualifier, then a range field. The
qualifier's bits 4-6 are the object prefix code (1815 §4.2.2.7.3.2: 0 none, 1/2/3 an
index of 1/2/4 octets, 4/5/6 an object size of 1/2/4 octets before each object) and bits
0-3 the range specifier code (1815 §4.2.2.7.3.3: 0/1/2 start and stop indexes of
1/2/4 octets, 3/4/5 the same for virtual addresses, 6 no range (all points), 7/8/9 a
count of 1/2/4 octets, 0xB a 1-octet count of variable-format objects).

Object data follows the header unless the function only names points (read, freeze,
class assignment, unsolicited control) or the group never has data (g60 classes); a
size prefix (prefix codes 4-6) always announces data, as in a file transport read. A
request that only names points with an index prefix (a read with qualifier 0x17 or
0x28) carries the indexes without objects.
Parsing never raises: a header or object that is cut short, or an object whose size
cannot be known, stops the walk and is described in ``AppFragment.problem``; what was
parsed before it is kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from otconduit.protocols.dnp3.functions import (
    CROB_OP_TYPES,
    CROB_TRIP_CLOSE,
    FREEZE_AT_TIME_REQUESTS,
    HEADERS_ONLY_REQUESTS,
    control_status_name,
    is_response_code,
)
from otconduit.protocols.dnp3.objects import (
    DEVICE_ATTRIBUTES_GROUP,
    NO_DATA_GROUPS,
    PACKED_BITS,
    object_size,
)

_START_STOP_WIDTH: Final = {0: 1, 1: 2, 2: 4, 3: 1, 4: 2, 5: 4}
_COUNT_WIDTH: Final = {7: 1, 8: 2, 9: 4, 0xB: 1}
_ALL_POINTS: Final = 6
_INDEX_WIDTH: Final = {0: 0, 1: 1, 2: 2, 3: 4}
_SIZE_WIDTH: Final = {4: 1, 5: 2, 6: 4}

# 1815 Annex A, group 0: attribute data type codes whose value is text.
_TEXT_TYPES: Final = frozenset({1})  # VSTR


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectHeader:
    """One object header; ``start``/``stop`` are the range (or the first and last
    prefixed index), ``count`` the number of objects (None: all points, qualifier 6)."""

    group: int
    variation: int
    qualifier: int
    start: int | None
    stop: int | None
    count: int | None

    @property
    def prefix_code(self) -> int:
        return self.qualifier >> 4 & 0x07

    @property
    def range_code(self) -> int:
        return self.qualifier & 0x0F

    def as_detail(self) -> dict[str, int | None]:
        return {
            "group": self.group,
            "variation": self.variation,
            "qualifier": self.qualifier,
            "start": self.start,
            "stop": self.stop,
            "count": self.count,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Crob:
    """Control relay output block, g12v1 (1815 Annex A): what a control asks a relay."""

    index: int
    control_code: int
    count: int
    on_time: int  # ms
    off_time: int  # ms
    status: int

    @property
    def op_type(self) -> int:
        return self.control_code & 0x0F

    @property
    def trip_close(self) -> int:
        return self.control_code >> 6

    @property
    def clear(self) -> bool:
        return bool(self.control_code & 0x20)

    @property
    def queue(self) -> bool:
        return bool(self.control_code & 0x10)

    def as_detail(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "control_code": self.control_code,
            "op_type": CROB_OP_TYPES.get(self.op_type, f"UNKNOWN_{self.op_type}"),
            "trip_close": CROB_TRIP_CLOSE[self.trip_close],
            "clear": self.clear,
            "queue": self.queue,
            "count": self.count,
            "on_time": self.on_time,
            "off_time": self.off_time,
            "status": self.status,
            "status_name": control_status_name(self.status),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalogOutput:
    """Analog output block, g41v1-4 (1815 Annex A): a set-point command."""

    index: int
    variation: int
    value: int | float
    status: int

    def as_detail(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "variation": self.variation,
            "value": self.value,
            "status": self.status,
            "status_name": control_status_name(self.status),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeValue:
    """g50 time and date (ms since 1970-01-01 UTC) or g52 time delay (ms)."""

    group: int
    variation: int
    ms: int
    interval: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceAttribute:
    """g0 device attribute (1815 Annex A): variation names it, data type says the form."""

    variation: int
    data_type: int
    value: bytes

    @property
    def text(self) -> str:
        """Printable value: text types decoded, others as hex."""
        if self.data_type in _TEXT_TYPES:
            return self.value.decode("utf-8", "replace").strip("\x00 ")
        if self.data_type == 2:  # UINT
            return str(int.from_bytes(self.value, "little"))
        return self.value.hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class AppFragment:
    """One application fragment, decoded as far as it could be."""

    control: int
    function_code: int
    iin: int | None  # IIN1 << 8 | IIN2 in responses (Zeek's convention), else None
    objects: tuple[ObjectHeader, ...] = ()
    crobs: tuple[Crob, ...] = ()
    analog_outputs: tuple[AnalogOutput, ...] = ()
    times: tuple[TimeValue, ...] = ()
    attributes: tuple[DeviceAttribute, ...] = ()
    bits: tuple[int, ...] = ()  # packed-bit values written by a request (g10v1, g80v1)
    problem: str | None = None
    size: int = 0

    @property
    def fir(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def fin(self) -> bool:
        return bool(self.control & 0x40)

    @property
    def con(self) -> bool:
        return bool(self.control & 0x20)

    @property
    def uns(self) -> bool:
        return bool(self.control & 0x10)

    @property
    def seq(self) -> int:
        return self.control & 0x0F

    @property
    def is_response(self) -> bool:
        return is_response_code(self.function_code)


class _Walk:
    """Mutable state of one object walk (kept out of the frozen result)."""

    def __init__(self, data: bytes, pos: int, function_code: int) -> None:
        self.data = data
        self.pos = pos
        self.function_code = function_code
        self.is_response = is_response_code(function_code)
        self.objects: list[ObjectHeader] = []
        self.crobs: list[Crob] = []
        self.analog_outputs: list[AnalogOutput] = []
        self.times: list[TimeValue] = []
        self.attributes: list[DeviceAttribute] = []
        self.bits: list[int] = []

    def left(self) -> int:
        return len(self.data) - self.pos

    def uint(self, width: int) -> int:
        value = int.from_bytes(self.data[self.pos : self.pos + width], "little")
        self.pos += width
        return value


def _has_data(function_code: int, is_response: bool, group: int) -> bool:
    if group in NO_DATA_GROUPS:
        return False
    if is_response:
        return True
    if function_code in HEADERS_ONLY_REQUESTS:
        return False
    if function_code in FREEZE_AT_TIME_REQUESTS:
        return group == 50
    return True


def parse_fragment(data: bytes) -> AppFragment | None:
    """Decode an application fragment; None when it is too short to have a header."""
    if len(data) < 2:
        return None
    control, code = data[0], data[1]
    if is_response_code(code):
        if len(data) < 4:
            return AppFragment(
                control=control,
                function_code=code,
                iin=None,
                problem=f"response of {len(data)} octets has no IIN",
                size=len(data),
            )
        iin: int | None = data[2] << 8 | data[3]
        walk = _Walk(data, 4, code)
    else:
        iin = None
        walk = _Walk(data, 2, code)
    problem = None
    while walk.left() > 0 and problem is None:
        problem = _object(walk)
    return AppFragment(
        control=control,
        function_code=code,
        iin=iin,
        objects=tuple(walk.objects),
        crobs=tuple(walk.crobs),
        analog_outputs=tuple(walk.analog_outputs),
        times=tuple(walk.times),
        attributes=tuple(walk.attributes),
        bits=tuple(walk.bits),
        problem=problem,
        size=len(data),
    )


def _object(walk: _Walk) -> str | None:
    """Parse one object header and its data; a problem string stops the walk."""
    if walk.left() < 3:
        return f"truncated object header: {walk.left()} octets"
    group, variation, qualifier = walk.data[walk.pos : walk.pos + 3]
    walk.pos += 3
    name = f"g{group}v{variation}"
    prefix, range_code = qualifier >> 4 & 0x07, qualifier & 0x0F
    if qualifier & 0x80 or prefix == 7:
        return f"{name}: reserved qualifier 0x{qualifier:02x}"
    start: int | None = None
    stop: int | None = None
    count: int | None
    if range_code in _START_STOP_WIDTH:
        width = _START_STOP_WIDTH[range_code]
        if walk.left() < 2 * width:
            return f"{name}: truncated range field"
        start, stop = walk.uint(width), walk.uint(width)
        if stop < start:
            return f"{name}: range stop {stop} below start {start}"
        count = stop - start + 1
    elif range_code in _COUNT_WIDTH:
        width = _COUNT_WIDTH[range_code]
        if walk.left() < width:
            return f"{name}: truncated count field"
        count = walk.uint(width)
    elif range_code == _ALL_POINTS:
        count = None
    else:
        return f"{name}: reserved range code 0x{range_code:x}"

    has_data = count is not None and (
        prefix in _SIZE_WIDTH or _has_data(walk.function_code, walk.is_response, group)
    )
    problem = None
    first_last = None
    if has_data and count:
        first_last, problem = _object_data(walk, group, variation, prefix, count, start)
    elif count and prefix in _INDEX_WIDTH and prefix:
        first_last, problem = _indexes_only(walk, name, _INDEX_WIDTH[prefix], count)
    if first_last is not None:
        start, stop = first_last
    walk.objects.append(
        ObjectHeader(
            group=group,
            variation=variation,
            qualifier=qualifier,
            start=start,
            stop=stop,
            count=count,
        )
    )
    return problem


def _object_data(
    walk: _Walk, group: int, variation: int, prefix: int, count: int, start: int | None
) -> tuple[tuple[int, int] | None, str | None]:
    """Walk ``count`` objects; returns ((first, last) prefixed index or None, problem)."""
    name = f"g{group}v{variation}"
    index_width = _INDEX_WIDTH.get(prefix, 0)
    size_width = _SIZE_WIDTH.get(prefix, 0)
    indexes: list[int] = []
    if size_width or group == DEVICE_ATTRIBUTES_GROUP:
        # Variable size: every object carries its length (a size prefix, or g0's own).
        for n in range(count):
            if walk.left() < index_width + size_width:
                return _ends(indexes), f"{name}: truncated object {n} of {count}"
            if index_width:
                indexes.append(walk.uint(index_width))
            if size_width:
                length = walk.uint(size_width)
                if walk.left() < length:
                    return _ends(indexes), f"{name}: truncated object {n} of {count}"
                walk.pos += length
                continue
            if walk.left() < 2:
                return _ends(indexes), f"{name}: truncated attribute {n} of {count}"
            data_type, length = walk.uint(1), walk.uint(1)
            if walk.left() < length:
                return _ends(indexes), f"{name}: truncated attribute {n} of {count}"
            value = walk.data[walk.pos : walk.pos + length]
            walk.pos += length
            walk.attributes.append(
                DeviceAttribute(variation=variation, data_type=data_type, value=value)
            )
        return _ends(indexes), None
    bits = PACKED_BITS.get((group, variation))
    if bits is not None and not index_width:
        need = (count * bits + 7) // 8
        if walk.left() < need:
            return None, f"truncated object data: {name} needs {need} octets, {walk.left()} left"
        if not walk.is_response:  # written outputs or IIN bits: keep the values
            packed = int.from_bytes(walk.data[walk.pos : walk.pos + need], "little")
            mask = (1 << bits) - 1
            walk.bits += [packed >> (n * bits) & mask for n in range(count)]
        walk.pos += need
        return None, None
    size: int | None = -(-bits // 8) if bits is not None else object_size(group, variation)
    if size is None:
        return None, f"cannot size object {name}"
    per = index_width + size
    need = count * per
    problem = None
    whole = count
    if walk.left() < need:
        # Objects that fit whole are still decoded: a cut-short control shows what it
        # asked for. The walk stops here all the same.
        problem = f"truncated object data: {name} needs {need} octets, {walk.left()} left"
        whole = walk.left() // per
    base = walk.pos
    walk.pos += whole * per if problem is None else walk.left()
    first_last = None
    if index_width and whole:
        first = int.from_bytes(walk.data[base : base + index_width], "little")
        last_at = base + (whole - 1) * per
        first_last = (first, int.from_bytes(walk.data[last_at : last_at + index_width], "little"))
    decode = _DECODERS.get((group, variation))
    if bits is not None and not walk.is_response:
        decode = _bits
    if decode is not None:
        for n in range(whole):
            at = base + n * per
            if index_width:
                index = int.from_bytes(walk.data[at : at + index_width], "little")
            else:
                index = (start if start is not None else 0) + n
            decode(walk, variation, index, walk.data[at + index_width : at + per])
    return first_last, problem


def _indexes_only(
    walk: _Walk, name: str, width: int, count: int
) -> tuple[tuple[int, int] | None, str | None]:
    """Index prefixes without objects: a read or freeze naming points one by one."""
    need = count * width
    if walk.left() < need:
        return None, f"truncated index list: {name} needs {need} octets, {walk.left()} left"
    base = walk.pos
    walk.pos += need
    first = int.from_bytes(walk.data[base : base + width], "little")
    last = int.from_bytes(walk.data[base + need - width : base + need], "little")
    return (first, last), None


def _ends(indexes: list[int]) -> tuple[int, int] | None:
    return (indexes[0], indexes[-1]) if indexes else None


def _bits(walk: _Walk, variation: int, index: int, raw: bytes) -> None:
    walk.bits.append(raw[0])


def _crob(walk: _Walk, variation: int, index: int, raw: bytes) -> None:
    walk.crobs.append(
        Crob(
            index=index,
            control_code=raw[0],
            count=raw[1],
            on_time=int.from_bytes(raw[2:6], "little"),
            off_time=int.from_bytes(raw[6:10], "little"),
            status=raw[10] & 0x7F,
        )
    )


_AO_FORMATS: Final = {1: "<i", 2: "<h", 3: "<f", 4: "<d"}


def _analog_output(walk: _Walk, variation: int, index: int, raw: bytes) -> None:
    (value,) = struct.unpack_from(_AO_FORMATS[variation], raw)
    walk.analog_outputs.append(
        AnalogOutput(index=index, variation=variation, value=value, status=raw[-1] & 0x7F)
    )


def _time(walk: _Walk, variation: int, index: int, raw: bytes) -> None:
    interval = int.from_bytes(raw[6:10], "little") if variation in (2, 4) else None
    walk.times.append(
        TimeValue(
            group=50, variation=variation, ms=int.from_bytes(raw[:6], "little"), interval=interval
        )
    )


def _delay(walk: _Walk, variation: int, index: int, raw: bytes) -> None:
    value = int.from_bytes(raw[:2], "little")
    walk.times.append(
        TimeValue(group=52, variation=variation, ms=value * 1000 if variation == 1 else value)
    )


_DECODERS: Final = {
    (12, 1): _crob,
    **{(41, v): _analog_output for v in _AO_FORMATS},
    **{(50, v): _time for v in (1, 2, 3, 4)},
    (52, 1): _delay,
    (52, 2): _delay,
}
