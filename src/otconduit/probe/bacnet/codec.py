"""BACnet/IP ReadProperty, sans-I/O: the request bytes and a parser for the answers.

Layers (ANSI/ASHRAE 135): BVLL Original-Unicast-NPDU (Annex J.2.11), NPDU (§6.2),
Confirmed-Request APDU (§20.1.2) with service ReadProperty (§15.5, choice 12), and the
answers: ComplexACK (§20.1.5), Error (§20.1.7), Reject (§20.1.8), Abort (§20.1.9). Tags
are encoded as §20.2.1: tag number in the high nibble, class bit 3, length/value/type in
the low three bits (5: the length follows).

The device instance is first the wildcard 4194303, which a device takes as its own
Device object in ReadProperty (§12.11.1, Object_Identifier), so nothing needs to be known
about the device before asking it. A device that does not know the wildcard is asked for
its instance with a Who-Is sent to it alone (§16.10, unicast: never broadcast), and its
I-Am (§16.9) gives the instance to ask with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BVLC_TYPE = 0x81
BVLC_UNICAST = 0x0A
BVLC_FORWARDED = 0x04
NPDU_VERSION = 0x01
EXPECTING_REPLY = 0x04
PDU_CONFIRMED = 0x0
PDU_UNCONFIRMED = 0x1
SERVICE_I_AM = 0
SERVICE_WHO_IS = 8
PDU_COMPLEX_ACK = 0x3
PDU_ERROR = 0x5
PDU_REJECT = 0x6
PDU_ABORT = 0x7
SERVICE_READ_PROPERTY = 12
MAX_APDU_1476 = 0x05  # max segments unspecified, max APDU 1476 octets (§20.1.2.5)
OBJECT_DEVICE = 8
WILDCARD_INSTANCE = 4194303
PROPERTIES = {
    "vendor-name": 121,
    "model-name": 70,
    "firmware-revision": 44,
}
CHARSETS = {0: "utf-8", 4: "utf-16-be", 5: "latin-1"}  # §20.2.9: ANSI X3.4/UTF-8, UCS-2, 8859-1


class BacnetError(ValueError):
    """Bytes that are not a well-formed BACnet/IP answer."""


def object_id(object_type: int, instance: int) -> int:
    """§20.2.14: object type in the top 10 bits, instance in the low 22."""
    return (object_type << 22) | instance


def read_property(
    invoke_id: int,
    property_id: int,
    object_type: int = OBJECT_DEVICE,
    instance: int = WILDCARD_INSTANCE,
) -> bytes:
    """One BACnet/IP datagram: ReadProperty of ``property_id`` of the given object."""
    service = bytes([0x0C]) + struct.pack(">I", object_id(object_type, instance))  # ctx 0, 4
    service += bytes([0x19, property_id]) if property_id < 256 else (
        bytes([0x1A]) + struct.pack(">H", property_id)
    )  # fmt: skip
    apdu = bytes([PDU_CONFIRMED << 4, MAX_APDU_1476, invoke_id, SERVICE_READ_PROPERTY])
    npdu = bytes([NPDU_VERSION, EXPECTING_REPLY]) + apdu + service
    return struct.pack(">BBH", BVLC_TYPE, BVLC_UNICAST, len(npdu) + 4) + npdu


def who_is() -> bytes:
    """A Who-Is without a range (§16.10.1), unicast to one device: it asks only that
    device for its I-Am."""
    npdu = bytes([NPDU_VERSION, 0x00, PDU_UNCONFIRMED << 4, SERVICE_WHO_IS])
    return struct.pack(">BBH", BVLC_TYPE, BVLC_UNICAST, len(npdu) + 4) + npdu


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: ``kind`` is ack, error, reject, abort (to a confirmed request) or
    i_am (``value`` the device instance, ``vendor_id`` its vendor identifier)."""

    kind: str
    invoke_id: int
    value: str | int | None = None  # the property value (ack)
    property_id: int | None = None
    error: str = ""
    error_class: int | None = None
    error_code: int | None = None
    vendor_id: int | None = None


def _tag(data: bytes, pos: int) -> tuple[int, bool, int, int]:
    """(tag number, context class, length or lvt, position after the tag) at ``pos``."""
    if pos >= len(data):
        raise BacnetError("tag past the end")
    b = data[pos]
    number, context, lvt = b >> 4, bool(b & 0x08), b & 0x07
    pos += 1
    if number == 0x0F:  # extended tag number
        number = data[pos]
        pos += 1
    if lvt == 5:  # the length follows (6 and 7 mark opening / closing tags)
        if pos >= len(data):
            raise BacnetError("length past the end")
        lvt = data[pos]
        pos += 1
        if lvt == 254:
            (lvt,) = struct.unpack_from(">H", data, pos)
            pos += 2
        elif lvt == 255:
            (lvt,) = struct.unpack_from(">I", data, pos)
            pos += 4
    return number, context, lvt, pos


def _value(data: bytes, pos: int) -> str | int | None:
    """The first application-tagged value inside the opening tag 3 (§15.5.1.3)."""
    number, context, length, pos = _tag(data, pos)
    if context:
        raise BacnetError("expected an application-tagged value")
    body = data[pos : pos + length]
    if len(body) != length:
        raise BacnetError("value past the end")
    if number == 7:  # CharacterString: charset octet, then the text
        if not body:
            return ""
        codec = CHARSETS.get(body[0], "latin-1")
        return body[1:].decode(codec, errors="replace").rstrip("\x00").strip()
    if number in (2, 9):  # Unsigned, Enumerated
        return int.from_bytes(body, "big") if body else 0
    return body.hex()


def _npdu_apdu(datagram: bytes) -> bytes:
    if len(datagram) < 6 or datagram[0] != BVLC_TYPE:
        raise BacnetError("not a BACnet/IP datagram")
    (length,) = struct.unpack_from(">H", datagram, 2)
    if length != len(datagram):
        raise BacnetError("BVLC length does not match the datagram")
    pos = 4 if datagram[1] != BVLC_FORWARDED else 10  # forwarded: + original B/IP address
    if datagram[pos] != NPDU_VERSION:
        raise BacnetError("unknown NPDU version")
    control = datagram[pos + 1]
    pos += 2
    if control & 0x80:
        raise BacnetError("a network-layer message, not an answer")
    if control & 0x20:  # DNET, DLEN, DADR
        pos += 3 + datagram[pos + 2]
    if control & 0x08:  # SNET, SLEN, SADR
        pos += 3 + datagram[pos + 2]
    if control & 0x20:  # hop count
        pos += 1
    if pos >= len(datagram):
        raise BacnetError("NPDU without an APDU")
    return datagram[pos:]


def parse_answer(datagram: bytes) -> Answer:
    """Read one answer datagram; raises :class:`BacnetError` on anything malformed."""
    apdu = _npdu_apdu(datagram)
    kind = apdu[0] >> 4
    try:
        if kind == PDU_COMPLEX_ACK:
            if apdu[0] & 0x08:
                raise BacnetError("segmented answer (not requested)")
            invoke, service = apdu[1], apdu[2]
            if service != SERVICE_READ_PROPERTY:
                raise BacnetError(f"answer to service {service}")
            number, _ctx, length, pos = _tag(apdu, 3)  # [0] object identifier
            pos += length
            number, _ctx, length, pos = _tag(apdu, pos)  # [1] property identifier
            prop = int.from_bytes(apdu[pos : pos + length], "big")
            pos += length
            number, ctx, length, nxt = _tag(apdu, pos)
            if ctx and number == 2 and length < 6:  # [2] array index
                pos = nxt + length
            if apdu[pos] != 0x3E:  # opening tag 3
                raise BacnetError("no property value")
            return Answer("ack", invoke, _value(apdu, pos + 1), prop)
        if kind == PDU_ERROR:
            invoke = apdu[1]
            _n, _c, length, pos = _tag(apdu, 3)
            cls = int.from_bytes(apdu[pos : pos + length], "big")
            _n, _c, length, pos = _tag(apdu, pos + length)
            code = int.from_bytes(apdu[pos : pos + length], "big")
            return Answer(
                "error",
                invoke,
                error=f"error class {cls} code {code}",
                error_class=cls,
                error_code=code,
            )
        if kind == PDU_UNCONFIRMED and apdu[1] == SERVICE_I_AM:
            number, ctx, length, pos = _tag(apdu, 2)  # I-Am device identifier
            if ctx or number != 12 or length != 4:
                raise BacnetError("I-Am without a device identifier")
            instance = int.from_bytes(apdu[pos : pos + 4], "big") & 0x3FFFFF
            pos += 4
            for _ in range(2):  # max APDU length accepted, segmentation supported
                _n, _c, length, pos = _tag(apdu, pos)
                pos += length
            _n, _c, length, pos = _tag(apdu, pos)
            vendor = int.from_bytes(apdu[pos : pos + length], "big")
            return Answer("i_am", -1, instance, vendor_id=vendor)
        if kind == PDU_REJECT:
            return Answer("reject", apdu[1], error=f"reject reason {apdu[2]}")
        if kind == PDU_ABORT:
            return Answer("abort", apdu[1], error=f"abort reason {apdu[2]}")
    except IndexError:
        raise BacnetError("answer cut short") from None
    raise BacnetError(f"unexpected APDU type {kind}")
