"""CIP padded EPATHs: the request paths and connection paths of CIP messages.

Segment layouts follow "The CIP Networks Library, Volume 1: Common Industrial
Protocol", Appendix C-1.4 (cited "Vol 1 §C-1.4.x"). Request paths in Message Router
requests are *padded* EPATHs (Vol 1 §2-4.1, §C-1.3): 16- and 32-bit logical values are
preceded by a pad byte, and odd-length segments are padded to a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from otconduit.protocols.enip._wire import Reader, Truncated

# Vol 1 §C-1.4.3, Table C-1.3: logical segment types (bits 4..2 of the segment byte).
LOGICAL_CLASS: Final = 0
LOGICAL_INSTANCE: Final = 1
LOGICAL_MEMBER: Final = 2
LOGICAL_CONNECTION_POINT: Final = 3
LOGICAL_ATTRIBUTE: Final = 4
LOGICAL_SPECIAL: Final = 5
LOGICAL_SERVICE: Final = 6
LOGICAL_EXTENDED: Final = 7

_LOGICAL_KIND: Final = (
    "class",
    "instance",
    "member",
    "connection_point",
    "attribute",
    "special",
    "service",
    "extended",
)
MAX_SEGMENTS: Final = 64  # bounds work on garbage; real paths have a handful


@dataclass(frozen=True, slots=True)
class Segment:
    """One decoded segment: ``kind`` (class, instance, member, connection_point,
    attribute, service, port, key, symbol, network, data, data_type, extended) and
    its value."""

    kind: str
    value: int | str | bytes | tuple[int | str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ElectronicKey:
    """Vol 1 §C-1.4.3.2 electronic key (key format 4): vendor id UINT, device type UINT,
    product code UINT, major revision (bit 7: compatibility) USINT, minor revision USINT."""

    vendor_id: int
    device_type: int
    product_code: int
    major: int
    minor: int
    compatibility: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EPath:
    """A decoded path and what it addresses.

    ``class_id``/``instance_id``/``attribute_id``/``member_id`` describe the last
    object in the path (a path may name several, e.g. a Logix program, then a routine
    in it); ``classes`` lists every class in order. ``tag`` is the symbolic name, with
    member (element) segments after a symbol written ``[i,j]``. ``problem`` is set when
    the bytes did not decode cleanly; the segments before the problem are kept.
    """

    segments: tuple[Segment, ...] = ()
    problem: str | None = None
    class_id: int | None = None
    instance_id: int | None = None
    attribute_id: int | None = None
    member_id: int | None = None
    connection_point: int | None = None
    classes: tuple[int, ...] = ()
    tag: str | None = None
    ports: tuple[tuple[int, int | str], ...] = ()
    key: ElectronicKey | None = None
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def symbolic(self) -> bool:
        return self.tag is not None

    def describe(self) -> str:
        """A short human-readable rendering, e.g. ``class 0x01 instance 0x01``."""
        parts: list[str] = []
        for seg in self.segments:
            v = seg.value
            if seg.kind == "port" and isinstance(v, tuple):
                parts.append(f"port {v[0]} link {v[1]}")
            elif seg.kind == "symbol" and isinstance(v, str):
                parts.append(f"'{v}'")
            elif isinstance(v, int):
                parts.append(f"{seg.kind.replace('_', ' ')} 0x{v:02x}")
            elif seg.kind == "key":
                parts.append("key")
            else:
                parts.append(seg.kind)
        return " ".join(parts)


def _logical_value(r: Reader, fmt: int, what: str) -> int:
    """8/16/32-bit logical value; the wider forms carry a pad byte (Vol 1 §C-1.4.3)."""
    if fmt == 0:
        return r.u8(what)
    if fmt == 1:
        r.u8("pad")
        return r.u16(what)
    if fmt == 2:
        r.u8("pad")
        return r.u32(what)
    raise ValueError(f"reserved logical format 3 in {what} segment")


def _port(r: Reader, seg: int) -> tuple[int, int | str]:
    """Vol 1 §C-1.4.2: port segment; bit 4 = extended link address size, bits 0..3 the
    port (15: a 16-bit port id follows). Padded to an even length. A one-byte link
    address is a node number; longer ones are text (e.g. an IP address)."""
    start = r.pos - 1
    extended_link = bool(seg & 0x10)
    link_size = r.u8("link address size") if extended_link else 1
    port = seg & 0x0F
    if port == 15:
        port = r.u16("extended port id")
    link_bytes = r.take(link_size, "link address")
    if (r.pos - start) % 2:
        r.u8("pad")
    if link_size == 1:
        return port, link_bytes[0]
    return port, link_bytes.rstrip(b"\x00").decode("latin-1")


def _symbolic(r: Reader, seg: int) -> str:
    """Vol 1 §C-1.4.5: symbolic segment; bits 0..4 the ASCII size, 0 = extended format
    (next byte: bits 5..7 format, bits 0..4 size; double/triple-byte characters or a
    numeric symbol)."""
    start = r.pos - 1
    size = seg & 0x1F
    if size:
        text = r.take(size, "symbol").decode("latin-1")
    else:
        ext = r.u8("extended symbol format")
        fmt, n = ext >> 5, ext & 0x1F
        if fmt == 1:
            text = r.take(2 * n, "double-byte symbol").decode("utf-16-le", "replace")
        elif fmt == 2:
            text = r.take(3 * n, "triple-byte symbol").hex()
        elif fmt == 6 and n in (6, 7, 8):
            text = str(int.from_bytes(r.take({6: 1, 7: 2, 8: 4}[n], "numeric symbol"), "little"))
        else:
            raise ValueError(f"unsupported extended symbol format 0x{ext:02x}")
    if (r.pos - start) % 2:
        r.u8("pad")
    return text


def parse_epath(data: bytes, *, padded: bool = True) -> EPath:
    """Decode ``data`` (exactly the path bytes) into segments; never raises.

    ``padded=False`` reads packed EPATHs (no pad bytes before wide logical values),
    which only some connection paths use; request paths are always padded.
    """
    segments: list[Segment] = []
    problem: str | None = None
    r = Reader(data)
    key: ElectronicKey | None = None
    try:
        while r.remaining and len(segments) < MAX_SEGMENTS:
            seg = r.u8("segment type")
            kind = seg >> 5
            if kind == 0:  # port segment
                segments.append(Segment("port", _port(r, seg)))
            elif kind == 1:  # logical segment
                ltype, fmt = (seg >> 2) & 0x07, seg & 0x03
                if ltype == LOGICAL_SPECIAL:
                    key_format = r.u8("key format")
                    if key_format != 4:
                        raise ValueError(f"unsupported electronic key format {key_format}")
                    vendor, devtype, product = r.u16(), r.u16(), r.u16()
                    major, minor = r.u8(), r.u8()
                    key = ElectronicKey(
                        vendor_id=vendor,
                        device_type=devtype,
                        product_code=product,
                        major=major & 0x7F,
                        minor=minor,
                        compatibility=bool(major & 0x80),
                    )
                    segments.append(Segment("key", (vendor, devtype, product, major, minor)))
                elif ltype == LOGICAL_EXTENDED:
                    ext_type = r.u8("extended logical type")
                    width = {0: 1, 1: 2, 2: 4}.get(fmt)
                    if width is None:
                        raise ValueError("reserved logical format 3 in extended segment")
                    v = int.from_bytes(r.take(width, "extended logical value"), "little")
                    segments.append(Segment("extended", (ext_type, v)))
                elif ltype == LOGICAL_SERVICE:
                    segments.append(Segment("service", r.u8("service id")))
                elif padded:
                    segments.append(
                        Segment(_LOGICAL_KIND[ltype], _logical_value(r, fmt, "logical"))
                    )
                else:
                    size = {0: 1, 1: 2, 2: 4}.get(fmt)
                    if size is None:
                        raise ValueError("reserved logical format 3")
                    value_bytes = r.take(size, "logical value")
                    segments.append(
                        Segment(_LOGICAL_KIND[ltype], int.from_bytes(value_bytes, "little"))
                    )
            elif kind == 2:  # network segment, Vol 1 §C-1.4.4
                if seg & 0x10:
                    words = r.u8("network segment size")
                    segments.append(Segment("network", r.take(2 * words, "network data")))
                else:
                    segments.append(Segment("network", r.u8("network data")))
            elif kind == 3:
                segments.append(Segment("symbol", _symbolic(r, seg)))
            elif seg == 0x80:  # simple data segment, Vol 1 §C-1.4.6.1
                words = r.u8("data size")
                segments.append(Segment("data", r.take(2 * words, "data")))
            elif seg == 0x91:  # ANSI extended symbol segment, Vol 1 §C-1.4.6.2
                size = r.u8("symbol size")
                text = r.take(size, "ANSI symbol").decode("latin-1")
                if size % 2:
                    r.u8("pad")
                segments.append(Segment("symbol", text))
            elif 0xC0 <= seg <= 0xDF:  # elementary data type, Vol 1 §C-2.1
                segments.append(Segment("data_type", seg))
            else:
                raise ValueError(f"unsupported segment type 0x{seg:02x}")
        if r.remaining:
            problem = f"more than {MAX_SEGMENTS} segments"
    except (Truncated, ValueError) as exc:
        problem = str(exc)
    return _summarise(tuple(segments), problem, key)


def _summarise(
    segments: tuple[Segment, ...], problem: str | None, key: ElectronicKey | None
) -> EPath:
    class_id = instance_id = attribute_id = member_id = point = None
    classes: list[int] = []
    ports: list[tuple[int, int | str]] = []
    tag_parts: list[str] = []
    indices: list[int] = []
    after_symbol = False

    def flush_indices() -> None:
        if indices and tag_parts:
            tag_parts[-1] += "[" + ",".join(str(i) for i in indices) + "]"
        indices.clear()

    for seg in segments:
        v = seg.value
        if seg.kind == "symbol":
            flush_indices()
            tag_parts.append(str(v))
            after_symbol = True
            continue
        if seg.kind == "member" and after_symbol and isinstance(v, int):
            indices.append(v)
            continue
        flush_indices()
        after_symbol = False
        if not isinstance(v, int):
            if seg.kind == "port" and isinstance(v, tuple) and isinstance(v[0], int):
                ports.append((v[0], v[1]))
            continue
        if seg.kind == "class":
            class_id, instance_id, attribute_id, member_id = v, None, None, None
            classes.append(v)
        elif seg.kind == "instance":
            instance_id = v
        elif seg.kind == "attribute":
            attribute_id = v
        elif seg.kind == "member":
            member_id = v
        elif seg.kind == "connection_point":
            point = v
    flush_indices()
    return EPath(
        segments=segments,
        problem=problem,
        class_id=class_id,
        instance_id=instance_id,
        attribute_id=attribute_id,
        member_id=member_id,
        connection_point=point,
        classes=tuple(classes),
        tag=".".join(tag_parts) if tag_parts else None,
        ports=tuple(ports),
        key=key,
    )
