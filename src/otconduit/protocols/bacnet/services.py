"""BACnet service parameters (135 §13-17, encodings in §21) as operation detail.

Each decoder reads the service data of one request, ACK or error into a JSON-able
``dict`` and returns it with a problem string (None when the data is well formed). A
problem never loses what was read before it. Decoded here:

- Who-Is / I-Am / Who-Has / I-Have (device instance, max APDU, segmentation, vendor)
- ReadProperty(Multiple) requests and ACKs, WriteProperty(Multiple) with priority
- ReinitializeDevice (state; a password is noted, never kept), DeviceCommunicationControl
- AtomicReadFile / AtomicWriteFile and their ACKs, SubscribeCOV(Property)
- COV notifications (confirmed and unconfirmed), time synchronisation, private
  transfers, ReadRange, Create/DeleteObject, life safety operations, alarm and event
  services (their object)

Object identifiers appear as ``object_type`` (name) and ``instance``; properties by
name (``property``) with ``array_index`` when given; values as JSON values (enumerated
values of well-known properties by name, see :func:`tags.named_value`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from otconduit.protocols.bacnet import enums as E
from otconduit.protocols.bacnet.properties import property_name
from otconduit.protocols.bacnet.tags import (
    BOOLEAN,
    CLOSING,
    DATE,
    ENUMERATED,
    OCTETS,
    OPENING,
    PRIMITIVE,
    SIGNED,
    TIME,
    UNSIGNED,
    ObjectId,
    TagError,
    TagReader,
    app_value,
    signed,
    text,
    unsigned,
)
from otconduit.protocols.bacnet.vendors import vendor_name
from otconduit.protocols.events import own_copy

Detail = dict[str, Any]
MAX_ITEMS: Final = 64  # objects / properties / results kept per operation
DATA_HEAD: Final = 16  # octets of written file data kept (hex)

LIFE_SAFETY_REQUESTS: Final = (
    "none",
    "silence",
    "silence-audible",
    "silence-visual",
    "reset",
    "reset-alarm",
    "reset-fault",
    "unsilence",
    "unsilence-audible",
    "unsilence-visual",
)


def _object(detail: Detail, oid: ObjectId, prefix: str = "") -> None:
    detail[f"{prefix}object_type"] = oid.type_name
    detail[f"{prefix}instance"] = oid.instance
    if not prefix:
        detail["object_id"] = oid.raw


def _value(values: list[Any], count: int) -> Any:
    """One value as itself, several (an array, a list, a constructed value) as a list."""
    if count == 1 and values:
        return values[0]
    return values


def _property_value(r: TagReader, number: int, prop: int, obj_type: int | None) -> Detail:
    r.opening(number, "property value")
    values, count = r.values_until_closing(number, prop, obj_type)
    out: Detail = {"value": _value(values, count)}
    if count > 1:
        out["value_count"] = count
    return out


def _context_bool(r: TagReader, number: int) -> bool | None:
    if not r.is_context(number):
        return None
    return bool(unsigned(r.data, r.context(number, "boolean")))


def _password(r: TagReader, number: int, detail: Detail) -> None:
    if r.is_context(number):
        r.context(number, "password")
        detail["password_given"] = True


def _limits(r: TagReader, detail: Detail) -> None:
    low = r.opt_unsigned(0, "device instance range low limit")
    high = r.opt_unsigned(1, "device instance range high limit")
    if low is not None or high is not None:
        detail["low_limit"], detail["high_limit"] = low, high
        detail["range"] = f"{low}-{high}"
    else:
        detail["range"] = "All"


# -- discovery -----------------------------------------------------------------------------
def who_is(r: TagReader, d: Detail) -> None:
    _limits(r, d)


def i_am(r: TagReader, d: Detail) -> None:
    _object(d, r.app_object("I-Am device identifier"))
    d["max_apdu"] = r.app_unsigned("I-Am max APDU length accepted")
    seg = r.app_enumerated("I-Am segmentation supported")
    d["segmentation"] = E.pick(E.SEGMENTATION_NAMES, seg, str(seg))
    vendor = r.app_unsigned("I-Am vendor id")
    d["vendor_id"] = vendor
    d["vendor"] = vendor_name(vendor)


def who_has(r: TagReader, d: Detail) -> None:
    _limits(r, d)
    if r.is_context(2):
        _object(d, r.ctx_object(2, "Who-Has object identifier"))
    else:
        d["object_name"] = text(r.data, r.context(3, "Who-Has object name"))


def i_have(r: TagReader, d: Detail) -> None:
    _object(d, r.app_object("I-Have device identifier"), "device_")
    _object(d, r.app_object("I-Have object identifier"))
    d["object_name"] = r.app_text("I-Have object name")


# -- properties ------------------------------------------------------------------------------
def _reference(r: TagReader, d: Detail, prop_tag: int) -> int:
    prop = r.ctx_unsigned(prop_tag, "property identifier")
    d["property"] = property_name(prop)
    index = r.opt_unsigned(prop_tag + 1, "property array index")
    if index is not None:
        d["array_index"] = index
    return prop


def read_property(r: TagReader, d: Detail) -> None:
    _object(d, r.ctx_object(0, "object identifier"))
    _reference(r, d, 1)


def read_property_ack(r: TagReader, d: Detail) -> None:
    oid = r.ctx_object(0, "object identifier")
    _object(d, oid)
    prop = _reference(r, d, 1)
    d.update(_property_value(r, 3, prop, oid.type))


def read_property_multiple(r: TagReader, d: Detail) -> None:
    objects: list[Detail] = []
    total = 0
    while not r.at_end:
        item: Detail = {}
        oid = r.ctx_object(0, "object identifier")
        _object(item, oid)
        del item["object_id"]
        r.opening(1, "list of property references")
        refs = []
        while not r.is_context(1, kind=CLOSING):
            ref: Detail = {}
            _reference(r, ref, 0)
            refs.append(ref)
            total += 1
        r.closing(1, "list of property references")
        item["properties"] = refs[:MAX_ITEMS]
        if len(objects) < MAX_ITEMS:
            objects.append(item)
    d["objects"] = objects
    d["property_count"] = total
    if objects:
        d["object_type"], d["instance"] = objects[0]["object_type"], objects[0]["instance"]


def read_property_multiple_ack(r: TagReader, d: Detail) -> None:
    results: list[Detail] = []
    total = 0
    while not r.at_end:
        oid = r.ctx_object(0, "object identifier")
        r.opening(1, "list of results")
        while not r.is_context(1, kind=CLOSING):
            item: Detail = {}
            _object(item, oid)
            del item["object_id"]
            prop = _reference(r, item, 2)
            if r.is_context(4, kind=OPENING):
                item.update(_property_value(r, 4, prop, oid.type))
            else:
                r.opening(5, "property access error")
                error_class = r.app_enumerated("error class")
                error_code = r.app_enumerated("error code")
                r.closing(5, "property access error")
                item["error_class"] = E.error_class_name(error_class)
                item["error"] = E.error_code_name(error_code)
            total += 1
            if len(results) < MAX_ITEMS:
                results.append(item)
        r.closing(1, "list of results")
    d["results"] = results
    d["property_count"] = total


def write_property(r: TagReader, d: Detail) -> None:
    oid = r.ctx_object(0, "object identifier")
    _object(d, oid)
    prop = _reference(r, d, 1)
    d.update(_property_value(r, 3, prop, oid.type))
    priority = r.opt_unsigned(4, "priority")
    if priority is not None:
        d["priority"] = priority


def write_property_multiple(r: TagReader, d: Detail) -> None:
    writes: list[Detail] = []
    total = 0
    while not r.at_end:
        oid = r.ctx_object(0, "object identifier")
        r.opening(1, "list of property values")
        while not r.is_context(1, kind=CLOSING):
            item: Detail = {}
            _object(item, oid)
            del item["object_id"]
            prop = _reference(r, item, 0)
            item.update(_property_value(r, 2, prop, oid.type))
            priority = r.opt_unsigned(3, "priority")
            if priority is not None:
                item["priority"] = priority
            total += 1
            if len(writes) < MAX_ITEMS:
                writes.append(item)
        r.closing(1, "list of property values")
    d["writes"] = writes
    d["property_count"] = total
    if writes:
        d["object_type"], d["instance"] = writes[0]["object_type"], writes[0]["instance"]
        d["written_properties"] = sorted({w["property"] for w in writes})


def read_range(r: TagReader, d: Detail) -> None:
    _object(d, r.ctx_object(0, "object identifier"))
    _reference(r, d, 1)


# -- device management -----------------------------------------------------------------------
def reinitialize_device(r: TagReader, d: Detail) -> None:
    state = r.ctx_unsigned(0, "reinitialized state of device")
    d["state_code"] = state
    d["state"] = E.pick(E.REINITIALIZE_STATES, state, f"state-{state}")
    _password(r, 1, d)


def device_communication_control(r: TagReader, d: Detail) -> None:
    duration = r.opt_unsigned(0, "time duration")
    if duration is not None:
        d["duration_min"] = duration
    state = r.ctx_unsigned(1, "enable-disable")
    d["state_code"] = state
    d["enable_disable"] = E.pick(E.DCC_STATES, state, f"state-{state}")
    _password(r, 2, d)


def time_synchronization(r: TagReader, d: Detail) -> None:
    date = r.next()
    time = r.next()
    if date.context or date.number != DATE or time.context or time.number != TIME:
        raise TagError("date and time expected")
    d["time"] = f"{app_value(r.data, date)} {app_value(r.data, time)}"


def private_transfer(r: TagReader, d: Detail) -> None:
    vendor = r.ctx_unsigned(0, "vendor id")
    d["vendor_id"] = vendor
    d["vendor"] = vendor_name(vendor)
    d["service_number"] = r.ctx_unsigned(1, "service number")


def create_object(r: TagReader, d: Detail) -> None:
    r.opening(0, "object specifier")
    if r.is_context(0):
        kind = r.ctx_unsigned(0, "object type")
        d["object_type"] = E.object_type_name(kind)
    else:
        _object(d, r.ctx_object(1, "object identifier"))
    r.closing(0, "object specifier")


def delete_object(r: TagReader, d: Detail) -> None:
    _object(d, r.app_object("object identifier"))


def life_safety_operation(r: TagReader, d: Detail) -> None:
    d["process_id"] = r.ctx_unsigned(0, "requesting process identifier")
    d["requesting_source"] = text(r.data, r.context(1, "requesting source"))
    request = r.ctx_unsigned(2, "request")
    d["request"] = E.pick(LIFE_SAFETY_REQUESTS, request, f"request-{request}")
    if r.is_context(3):
        _object(d, r.ctx_object(3, "object identifier"))


def acknowledge_alarm(r: TagReader, d: Detail) -> None:
    d["process_id"] = r.ctx_unsigned(0, "acknowledging process identifier")
    _object(d, r.ctx_object(1, "event object identifier"))


def event_notification(r: TagReader, d: Detail) -> None:
    d["process_id"] = r.ctx_unsigned(0, "process identifier")
    _object(d, r.ctx_object(1, "initiating device identifier"), "device_")
    _object(d, r.ctx_object(2, "event object identifier"))


# -- files -----------------------------------------------------------------------------------
def _file(r: TagReader, d: Detail) -> None:
    oid = r.app_object("file identifier")
    _object(d, oid)


def _app(r: TagReader, number: int, what: str) -> Any:
    tag = r.application(number, what)
    if number == SIGNED:
        return signed(r.data, tag)
    if number == UNSIGNED:
        return unsigned(r.data, tag)
    return r.data[tag.start : tag.end]


def atomic_read_file(r: TagReader, d: Detail) -> None:
    _file(r, d)
    if r.is_context(0, kind=OPENING):
        r.opening(0, "stream access")
        d["access"] = "stream"
        d["start"] = _app(r, SIGNED, "file start position")
        d["count"] = _app(r, UNSIGNED, "requested octet count")
        r.closing(0, "stream access")
    else:
        r.opening(1, "record access")
        d["access"] = "record"
        d["start"] = _app(r, SIGNED, "file start record")
        d["count"] = _app(r, UNSIGNED, "requested record count")
        r.closing(1, "record access")


def atomic_read_file_ack(r: TagReader, d: Detail) -> None:
    eof = r.application(BOOLEAN, "end of file")
    d["end_of_file"] = bool(eof.lvt)
    if r.is_context(0, kind=OPENING):
        r.opening(0, "stream access")
        d["access"] = "stream"
        d["start"] = _app(r, SIGNED, "file start position")
        data = _app(r, OCTETS, "file data")
        d["octets"] = len(data)
        r.closing(0, "stream access")
    else:
        r.opening(1, "record access")
        d["access"] = "record"
        d["start"] = _app(r, SIGNED, "file start record")
        count = _app(r, UNSIGNED, "returned record count")
        d["records"] = count
        octets = 0
        for _ in range(min(count, 65535)):
            octets += len(_app(r, OCTETS, "file record data"))
        d["octets"] = octets
        r.closing(1, "record access")


def atomic_write_file(r: TagReader, d: Detail) -> None:
    _file(r, d)
    if r.is_context(0, kind=OPENING):
        r.opening(0, "stream access")
        d["access"] = "stream"
        d["start"] = _app(r, SIGNED, "file start position")
        data = _app(r, OCTETS, "file data")
        d["octets"] = len(data)
        d["data_head"] = data[:DATA_HEAD].hex()
        r.closing(0, "stream access")
    else:
        r.opening(1, "record access")
        d["access"] = "record"
        d["start"] = _app(r, SIGNED, "file start record")
        count = _app(r, UNSIGNED, "record count")
        d["records"] = count
        octets, head = 0, b""
        for _ in range(min(count, 65535)):
            data = _app(r, OCTETS, "file record data")
            head = head or data[:DATA_HEAD]
            octets += len(data)
        d["octets"] = octets
        d["data_head"] = head.hex()
        r.closing(1, "record access")


def atomic_write_file_ack(r: TagReader, d: Detail) -> None:
    tag = r.next()
    if not tag.context or tag.number not in (0, 1) or tag.kind != PRIMITIVE:
        raise TagError("file start position [0] or start record [1] expected")
    d["access"] = "stream" if tag.number == 0 else "record"
    d["start"] = signed(r.data, tag)


# -- change of value ---------------------------------------------------------------------
def subscribe_cov(r: TagReader, d: Detail) -> None:
    d["process_id"] = r.ctx_unsigned(0, "subscriber process identifier")
    _object(d, r.ctx_object(1, "monitored object identifier"))
    confirmed = _context_bool(r, 2)
    lifetime = r.opt_unsigned(3, "lifetime")
    if confirmed is None and lifetime is None:
        d["cancellation"] = True
    if confirmed is not None:
        d["issue_confirmed"] = confirmed
    if lifetime is not None:
        d["lifetime_s"] = lifetime


def subscribe_cov_property(r: TagReader, d: Detail) -> None:
    subscribe_cov(r, d)
    if r.is_context(4, kind=OPENING):
        r.opening(4, "monitored property")
        _reference(r, d, 0)
        r.closing(4, "monitored property")


def cov_notification(r: TagReader, d: Detail) -> None:
    d["process_id"] = r.ctx_unsigned(0, "subscriber process identifier")
    _object(d, r.ctx_object(1, "initiating device identifier"), "device_")
    oid = r.ctx_object(2, "monitored object identifier")
    _object(d, oid)
    d["time_remaining_s"] = r.ctx_unsigned(3, "time remaining")
    r.opening(4, "list of values")
    values: list[Detail] = []
    total = 0
    while not r.is_context(4, kind=CLOSING):
        item: Detail = {}
        prop = _reference(r, item, 0)
        item.update(_property_value(r, 2, prop, oid.type))
        priority = r.opt_unsigned(3, "priority")
        if priority is not None:
            item["priority"] = priority
        total += 1
        if len(values) < MAX_ITEMS:
            values.append(item)
    r.closing(4, "list of values")
    d["values"] = values
    d["property_count"] = total


Decoder = Callable[[TagReader, Detail], None]

CONFIRMED_REQUESTS: Final[dict[int, Decoder]] = {
    0: acknowledge_alarm,
    1: cov_notification,
    2: event_notification,
    5: subscribe_cov,
    6: atomic_read_file,
    7: atomic_write_file,
    10: create_object,
    11: delete_object,
    12: read_property,
    14: read_property_multiple,
    15: write_property,
    16: write_property_multiple,
    17: device_communication_control,
    18: private_transfer,
    20: reinitialize_device,
    26: read_range,
    27: life_safety_operation,
    28: subscribe_cov_property,
}
COMPLEX_ACKS: Final[dict[int, Decoder]] = {
    6: atomic_read_file_ack,
    7: atomic_write_file_ack,
    12: read_property_ack,
    14: read_property_multiple_ack,
    18: private_transfer,
    26: read_range,
}
UNCONFIRMED_REQUESTS: Final[dict[int, Decoder]] = {
    0: i_am,
    1: i_have,
    2: cov_notification,
    3: event_notification,
    4: private_transfer,
    6: time_synchronization,
    7: who_has,
    8: who_is,
    9: time_synchronization,
}


# Polling repeats the same service data (a ReadProperty of the same property, its ACK
# while the value holds): what a body decodes to is remembered, bounded, and handed out
# as a copy of its own (the operations built from it must not share lists and dicts).
_MEMO: Final[dict[tuple[int, int, bytes], tuple[Detail, str | None]]] = {}
MEMO_ENTRIES: Final = 4096
MEMO_BODY: Final = 256  # octets: longer service data (files, many properties) is decoded


def decode(table: dict[int, Decoder], service: int, body: bytes) -> tuple[Detail, str | None]:
    """The service data ``body`` of ``service`` decoded with ``table`` (detail, problem);
    services without a decoder give an empty detail."""
    if len(body) > MEMO_BODY:
        return _decode(table, service, body)
    key = (id(table), service, body)
    hit = _MEMO.get(key)
    if hit is None:
        hit = _decode(table, service, body)
        if len(_MEMO) >= MEMO_ENTRIES:
            _MEMO.clear()
        _MEMO[key] = (own_copy(hit[0]), hit[1])
        return hit
    return own_copy(hit[0]), hit[1]


def _decode(table: dict[int, Decoder], service: int, body: bytes) -> tuple[Detail, str | None]:
    decoder = table.get(service)
    detail: Detail = {}
    if decoder is None:
        return detail, None
    reader = TagReader(body)
    try:
        decoder(reader, detail)
        if not reader.at_end:
            return detail, f"{reader.end - reader.pos} octets after the service parameters"
    except TagError as exc:
        return detail, str(exc)
    return detail, None


def decode_error(body: bytes) -> tuple[int | None, int | None, str | None]:
    """(error class, error code, problem) of an Error PDU's service data.

    Most services answer with the two enumerations alone (135 §21 BACnet-Error); a few
    wrap them in a constructed [0] with more after it (Create-Object, WritePropertyMultiple,
    ...): the first two application enumerations are taken either way.
    """
    reader = TagReader(body)
    found: list[int] = []
    try:
        while not reader.at_end and len(found) < 2:
            tag = reader.next()
            if not tag.context and tag.kind == PRIMITIVE and tag.number == ENUMERATED:
                found.append(unsigned(body, tag))
    except TagError as exc:
        return None, None, f"error PDU: {exc}"
    if len(found) < 2:
        return None, None, "error PDU without error class and error code"
    return found[0], found[1], None
