"""The ConnectionDecoder end to end: operations, identity claims, matching, malformed."""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import CLIENT_TO_SERVER as C2S
from otconduit.protocols.base import SERVER_TO_CLIENT as S2C
from otconduit.protocols.base import Endpoints
from otconduit.protocols.enip import IMPLICIT_IO, SPEC, EnipDecoder

from .enip_helpers import (
    TCP,
    UDP,
    UDP_IO,
    claims,
    cpf,
    encap,
    forward_close,
    forward_open,
    forward_open_reply,
    identity_attrs,
    io_packet,
    list_identity_item,
    logical,
    malformed,
    multiple,
    ops,
    path,
    reply,
    request,
    rr,
    run,
    symbol,
    unconnected_send,
    unit,
)


def test_spec() -> None:
    assert SPEC.name == "enip"
    assert SPEC.transports == frozenset({"tcp", "udp"})
    assert SPEC.ports == frozenset({44818, 2222})
    assert isinstance(SPEC.factory(TCP), EnipDecoder)


def test_register_and_unregister_session() -> None:
    events = run(
        [
            (C2S, encap(0x65, b"\x01\x00\x00\x00", session=0)),
            (S2C, encap(0x65, b"\x01\x00\x00\x00", session=0xABCD)),
            (C2S, encap(0x66, session=0xABCD)),
        ]
    )
    register, unregister = ops(events)
    assert (register.protocol, register.function, register.function_code) == (
        "enip",
        "Register Session",
        0x65,
    )
    assert register.operation is OpClass.SESSION and register.status is OpStatus.OK
    assert register.detail["session_handle"] == 0xABCD
    assert register.detail["request_session_handle"] == 0
    assert (register.request_frame, register.response_frame, register.latency_ns) == (1, 2, 1000)
    assert (register.src_ip, register.dst_ip) == (TCP.client_ip, TCP.server_ip)
    # UnRegisterSession has no reply by design (Vol 2 §2-4.5): complete, not unanswered.
    assert unregister.function == "Unregister Session" and unregister.status is OpStatus.OK


def test_register_session_error_status() -> None:
    events = run(
        [
            (C2S, encap(0x65, b"\x02\x00\x00\x00", session=0)),
            (S2C, encap(0x65, b"\x02\x00\x00\x00", session=0, status=0x69)),
        ]
    )
    (op,) = ops(events)
    assert op.status is OpStatus.EXCEPTION
    assert (op.exception, op.exception_code) == ("Unsupported Protocol Version", 0x69)


def test_list_identity_udp_claims_use_sockaddr() -> None:
    item = list_identity_item(ip="192.168.5.9", vendor=1, device_type=12, product=58, rev=(4, 3))
    answer = encap(0x63, cpf([(0x000C, item)]), session=0)
    events = run([(C2S, encap(0x63, session=0)), (S2C, answer)], UDP)
    (op,) = ops(events)
    assert (op.function, op.operation, op.status) == (
        "List Identity",
        OpClass.IDENTITY,
        OpStatus.OK,
    )
    assert op.detail["product_name"] == "1756-L61/B LOGIX5561"
    got = [e for e in events if isinstance(e, IdentityClaim)]
    assert {c.ip for c in got} == {"192.168.5.9"}
    assert {c.source for c in got} == {"cip_identity"} and {c.confidence for c in got} == {0.95}
    assert claims(events) == {
        "vendor": "Rockwell Automation/Allen-Bradley",
        "device_type": "Communications Adapter",
        "product_code": "58",
        "revision": "4.3",
        "serial": "0x00c0ffee",
        "product_name": "1756-L61/B LOGIX5561",
        "state": "Operational",
    }


def test_list_identity_reply_alone_and_zero_sockaddr() -> None:
    # A broadcast's answer arrives in its own flow; a zero address means "the replier".
    item = list_identity_item(ip="0.0.0.0")
    events = run([(S2C, encap(0x63, cpf([(0x000C, item)]), session=0))], UDP)
    (op,) = ops(events)
    assert op.request_frame is None and op.detail["orphan_reply"] is True
    assert (op.src_ip, op.dst_ip) == (UDP.client_ip, UDP.server_ip)
    assert {e.ip for e in events if isinstance(e, IdentityClaim)} == {UDP.server_ip}


def test_list_identity_truncated_item_is_malformed() -> None:
    events = run([(S2C, encap(0x63, cpf([(0x000C, list_identity_item()[:20])])))], UDP)
    assert any("List Identity" in m.reason for m in malformed(events))
    assert not claims(events)


def test_list_services() -> None:
    entry = struct.pack("<HH16s", 1, 0x0120, b"Communications")
    events = run([(C2S, encap(0x04)), (S2C, encap(0x04, cpf([(0x0100, entry)])))])
    (op,) = ops(events)
    assert op.operation is OpClass.IDENTITY
    assert op.detail["services"] == [{"name": "Communications", "version": 1, "flags": 0x0120}]


def test_get_attributes_all_identity_claims() -> None:
    events = run(
        [
            (C2S, rr(request(0x01, path(0x01, 1)))),
            (S2C, rr(reply(0x01, 0, identity_attrs(vendor=1, device_type=14, rev=(20, 11))))),
        ]
    )
    (op,) = ops(events)
    assert (op.protocol, op.function, op.function_code) == ("cip", "Get Attributes All", 1)
    assert op.operation is OpClass.IDENTITY
    assert (op.unit, op.address) == (1, 1)
    assert op.detail["identity"]["product_code"] == 54
    assert op.detail["enip_command"] == "Send RR Data"
    got = claims(events)
    assert got["device_type"] == "Programmable Logic Controller" and got["revision"] == "20.11"
    assert {e.ip for e in events if isinstance(e, IdentityClaim)} == {TCP.server_ip}


def test_get_attribute_single_product_name() -> None:
    name = b"\x0bPowerFlex 7"
    events = run([(C2S, rr(request(0x0E, path(0x01, 1, 7)))), (S2C, rr(reply(0x0E, 0, name)))])
    assert claims(events) == {"product_name": "PowerFlex 7"}
    (op,) = ops(events)
    assert op.function == "Get Attributes Single" and op.detail["attribute_id"] == 7


def test_claims_are_not_repeated() -> None:
    exchange = [
        (C2S, rr(request(0x01, path(0x01, 1)))),
        (S2C, rr(reply(0x01, 0, identity_attrs()))),
    ]
    events = run(exchange * 3)
    assert len(ops(events)) == 3
    assert len([e for e in events if isinstance(e, IdentityClaim)]) == 7


def test_multiple_service_packet_unpacked() -> None:
    parts = [
        request(0x03, path(0x01, 1), b"\x01\x00\x05\x00"),
        request(0x4C, symbol("Tank_Level"), b"\x01\x00"),
        request(0x10, path(0xF5, 1, 3), b"\x02\x00\x00\x00"),
    ]
    answers = [
        reply(0x03, 0, b"\x01\x00\x05\x00\x00\x00\x30\x00"),
        reply(0x4C, 0, b"\xc4\x00\x2a\x00\x00\x00"),
        reply(0x10, 0x0E),
    ]
    events = run(
        [
            (C2S, rr(request(0x0A, path(0x02, 1), multiple(parts)))),
            (S2C, rr(reply(0x0A, 0x1E, multiple(answers)))),
        ]
    )
    msp, get, read, write = ops(events)
    assert (msp.function, msp.quantity, msp.operation) == (
        "Multiple Service Packet",
        3,
        OpClass.OTHER,
    )
    assert msp.status is OpStatus.EXCEPTION and msp.exception == "Embedded Service Error"
    assert (get.function, get.quantity, get.status) == ("Get Attribute List", 1, OpStatus.OK)
    assert get.operation is OpClass.IDENTITY
    assert (read.function, read.operation, read.quantity) == ("Read Tag", OpClass.READ, 1)
    assert read.detail["tag"] == "Tank_Level" and read.unit is None
    assert write.status is OpStatus.EXCEPTION and write.exception_code == 0x0E
    assert write.exception == "Attribute Not Settable" and write.values == (2, 0, 0, 0)
    for embedded, i in ((get, 0), (read, 1), (write, 2)):
        assert embedded.detail["embedded_in"] == "Multiple Service Packet"
        assert embedded.detail["embedded_index"] == i
        assert embedded.request_frame == 1 and embedded.response_frame == 2


def test_unanswered_multiple_service_packet() -> None:
    parts = [request(0x0E, path(0x01, 1, 1)), request(0x0E, path(0x01, 1, 2))]
    events = run([(C2S, rr(request(0x0A, path(0x02, 1), multiple(parts))))])
    assert [o.status for o in ops(events)] == [OpStatus.NO_RESPONSE] * 3


def test_unconnected_send_unwrapped() -> None:
    embedded = request(0x01, path(0x01, 1))
    events = run(
        [
            (C2S, rr(unconnected_send(embedded, route=b"\x01\x00"))),
            (S2C, rr(reply(0x01, 0, identity_attrs()))),
        ]
    )
    send, inner = ops(events)
    assert (send.function, send.operation, send.status) == (
        "Unconnected Send",
        OpClass.OTHER,
        OpStatus.OK,
    )
    assert send.detail["route_path"] == "port 1 link 0"
    assert (inner.function, inner.operation, inner.status) == (
        "Get Attributes All",
        OpClass.IDENTITY,
        OpStatus.OK,
    )
    assert inner.detail["embedded_in"] == "Unconnected Send"
    assert inner.detail["identity"]["vendor_id"] == 1
    # The answer is the routed module's (the CPU in slot 0), not the IP device's.
    assert not claims(events)


def test_unconnected_send_routing_error() -> None:
    embedded = request(0x0E, path(0x01, 1, 1))
    events = run(
        [
            (C2S, rr(unconnected_send(embedded, route=b"\x01\x05"))),
            (S2C, rr(reply(0x52, 0x01, b"\x00\x00", ext=(0x0204,)))),
        ]
    )
    send, inner = ops(events)
    for op in (send, inner):
        assert op.status is OpStatus.EXCEPTION and op.exception == "Connection Failure"
    assert send.detail["extended_status_name"] == "Unconnected request timed out"


def test_forward_open_tracks_connection_for_connected_messages() -> None:
    ot, to = 0x8000_1234, 0x2000_0001
    events = run(
        [
            (C2S, rr(forward_open(to=to, rpi=250_000))),
            (S2C, rr(forward_open_reply(ot=ot, to=to))),
            (C2S, unit(ot, 1, request(0x4C, symbol("Speed"), b"\x02\x00"))),
            (C2S, unit(ot, 2, request(0x4D, symbol("Speed"), b"\xc4\x00\x02\x00" + bytes(8)))),
            (S2C, unit(to, 2, reply(0x4D))),
            (S2C, unit(to, 1, reply(0x4C, 0, b"\xc4\x00" + bytes(8)))),
        ]
    )
    fo, write, read = ops(events)  # in the order the replies arrived
    assert (fo.function, fo.operation, fo.status) == ("Forward Open", OpClass.SESSION, OpStatus.OK)
    assert fo.detail["ot_connection_id"] == ot and fo.detail["to_connection_id"] == to
    assert fo.detail["ot_rpi_us"] == 250_000 and fo.detail["transport_class"] == 3
    assert fo.detail["ot_connection_type"] == "Point to Point" and fo.detail["ot_size"] == 500
    assert fo.detail["connection_path"] == "port 1 link 0 class 0x02 instance 0x01"
    assert (write.function, write.values, write.quantity) == ("Write Tag", (0, 0), 2)
    assert write.transaction_id == 2 and write.response_frame == 5
    assert (read.function, read.quantity, read.response_frame) == ("Read Tag", 2, 6)
    assert read.detail["connection_id"] == ot and read.detail["response_connection_id"] == to
    assert read.detail["connection_rpi_us"] == 250_000
    assert read.detail["sequence_count"] == 1 and read.detail["enip_command"] == "Send Unit Data"


def test_connected_pairing_learned_without_forward_open() -> None:
    # The capture starts after the Forward Open: ids pair by the first matching count.
    events = run(
        [
            (C2S, unit(0x11, 7, request(0x0E, path(0x8E, 1, 3)))),
            (C2S, unit(0x22, 7, request(0x0E, path(0x8E, 1, 4)))),
            (S2C, unit(0x99, 7, reply(0x0E, 0, b"\x01\x00"))),
            (C2S, unit(0x11, 8, request(0x0E, path(0x8E, 1, 5)))),
            (S2C, unit(0x88, 7, reply(0x0E, 0, b"\x02\x00"))),
            (S2C, unit(0x99, 8, reply(0x0E, 0, b"\x03\x00"))),
        ]
    )
    by_attr = {o.detail["attribute_id"]: o for o in ops(events)}
    assert by_attr[3].response_frame == 3 and by_attr[3].detail["response_connection_id"] == 0x99
    assert by_attr[4].response_frame == 5 and by_attr[4].detail["response_connection_id"] == 0x88
    assert by_attr[5].response_frame == 6


def test_connected_reply_without_request_is_an_orphan() -> None:
    events = run([(S2C, unit(0x99, 3, reply(0x0A, 0, multiple([]))))])
    (op,) = ops(events)
    assert op.request_frame is None and op.detail["orphan_reply"] is True
    assert op.function == "Multiple Service Packet" and op.transaction_id == 3


def test_forward_open_failure_and_close() -> None:
    events = run(
        [
            (C2S, rr(forward_open(serial=9))),
            (S2C, rr(forward_open_reply(ot=0, to=0, serial=9, status=0x01))),
            (C2S, rr(forward_close(serial=9))),
            (S2C, rr(reply(0x4E, 0, struct.pack("<HHIBB", 9, 0x4D, 0xCAFE, 0, 0)))),
        ]
    )
    fo, fc = ops(events)
    assert fo.status is OpStatus.EXCEPTION and fo.detail["extended_status"] == [0x0100]
    assert fo.detail["extended_status_name"] == "Connection in use or duplicate Forward Open"
    assert "to_connection_id" in fo.detail and "ot_api_us" not in fo.detail
    assert (fc.function, fc.operation, fc.status) == ("Forward Close", OpClass.SESSION, OpStatus.OK)
    assert fc.detail["connection_serial"] == 9


def test_forward_close_forgets_the_connection() -> None:
    ot, to = 0x55, 0x66
    dec = EnipDecoder(TCP)
    for frame, (d, data) in enumerate(
        [
            (C2S, rr(forward_open(to=to, serial=3))),
            (S2C, rr(forward_open_reply(ot=ot, to=to, serial=3))),
            (C2S, rr(forward_close(serial=3))),
            (S2C, rr(reply(0x4E, 0, struct.pack("<HHIBB", 3, 0x4D, 0xCAFE, 0, 0)))),
        ],
        start=1,
    ):
        dec.feed(d, data, frame, frame)
    assert not dec._connections and to not in dec._reply_ids
    dec.feed(C2S, unit(ot, 1, request(0x0E, path(0x01, 1, 1))), 5, 5)
    dec.feed(S2C, unit(to, 1, reply(0x0E, 0, b"\x01\x00")), 6, 6)
    last = ops(dec.events())[-1]
    assert last.response_frame == 6 and "connection_rpi_us" not in last.detail


def test_large_forward_open() -> None:
    data = forward_open(large=True, to=0x77)
    ot_reply = reply(0x5B, 0, struct.pack("<IIHHIIIBB", 0x44, 0x77, 7, 0x4D, 0xCAFE, 1, 1, 0, 0))
    (op,) = ops(run([(C2S, rr(data)), (S2C, rr(ot_reply))]))
    assert (op.function, op.function_code, op.operation) == (
        "Large Forward Open",
        0x5B,
        OpClass.SESSION,
    )
    assert op.detail["ot_size"] == 500 and op.detail["ot_connection_id"] == 0x44


def test_dangerous_services_are_control() -> None:
    events = run(
        [
            (C2S, rr(request(0x05, path(0x01, 1), b"\x01"))),
            (S2C, rr(reply(0x05))),
            (C2S, rr(request(0x07, path(0x8E, 1)))),
            (S2C, rr(reply(0x07, 0x10))),
            (C2S, rr(request(0x06, path(0x8E, 1)))),
        ]
    )
    reset, stop, start = ops(events)
    assert reset.operation is OpClass.CONTROL and reset.detail["reset_type"] == 1
    assert reset.detail["reset_type_name"].startswith("Return to factory defaults")
    assert (stop.function, stop.operation, stop.status) == (
        "Stop",
        OpClass.CONTROL,
        OpStatus.EXCEPTION,
    )
    assert stop.exception == "Device State Conflict" and stop.exception_code == 0x10
    assert (start.function, start.operation, start.status) == (
        "Start",
        OpClass.CONTROL,
        OpStatus.NO_RESPONSE,
    )


def test_write_tag_fragmented_and_read_tag_fragmented() -> None:
    events = run(
        [
            (C2S, rr(request(0x52, symbol("Big"), struct.pack("<HI", 100, 480)))),
            (S2C, rr(reply(0x52, 0x06, b"\xc3\x00" + bytes(20)))),
            (C2S, rr(request(0x53, symbol("Big"), struct.pack("<HHI", 0xC3, 100, 0) + bytes(40)))),
        ]
    )
    read, write = ops(events)
    assert (read.function, read.quantity, read.detail["byte_offset"]) == (
        "Read Tag Fragmented",
        100,
        480,
    )
    assert read.status is OpStatus.EXCEPTION and read.exception == "Partial Transfer"
    assert (write.function, write.operation, write.quantity) == (
        "Write Tag Fragmented",
        OpClass.WRITE,
        100,
    )
    assert write.detail["data_type"] == "INT" and write.values is None


def test_file_object_and_logix_program_services_are_program() -> None:
    routine = path(0x68, 0x2420) + logical(0, 0x6D) + logical(1, 0x2420, 16)
    events = run(
        [
            (C2S, rr(request(0x4F, path(0x37, 1), b"\x00"))),
            (C2S, rr(request(0x4C, routine, b"\x00\x00"))),
        ]
    )
    upload, routine_read = ops(events)
    assert (upload.function, upload.operation) == ("Upload Transfer", OpClass.PROGRAM)
    assert routine_read.operation is OpClass.PROGRAM and routine_read.unit == 0x6D
    assert routine_read.detail["classes"] == [0x68, 0x6D]


def test_encapsulation_error_answers_unconnected_request() -> None:
    events = run([(C2S, rr(request(0x0E, path(0x01, 1, 1)))), (S2C, encap(0x6F, b"", status=0x64))])
    (op,) = ops(events)
    assert op.status is OpStatus.EXCEPTION and op.exception == "Invalid Session Handle"
    assert op.exception_code == 0x64 and op.response_frame == 2


def test_rr_replies_prefer_matching_sender_context() -> None:
    events = run(
        [
            (C2S, rr(request(0x0E, path(0x01, 1, 1)), context=b"AAAAAAAA")),
            (C2S, rr(request(0x0E, path(0x01, 1, 2)), context=b"BBBBBBBB")),
            (S2C, rr(reply(0x0E, 0, b"\x02\x00"), context=b"BBBBBBBB")),
            (S2C, rr(reply(0x0E, 0, b"\x01\x00"), context=b"AAAAAAAA")),
        ]
    )
    by_attr = {o.detail["attribute_id"]: o.response_frame for o in ops(events)}
    assert by_attr == {1: 4, 2: 3}


def test_implicit_io_counted_per_connection() -> None:
    packets = [(C2S, io_packet(0x004B0603, n)) for n in range(5)]
    packets += [(S2C, io_packet(0x008E400B, n, b"\x01\x00")) for n in range(2)]
    packets += [(C2S, io_packet(0x004B1209, 9))]
    events = run(packets, UDP_IO)
    io = sorted(ops(events), key=lambda o: o.detail["connection_id"])
    assert [(o.function, o.detail["connection_id"], o.quantity) for o in io] == [
        (IMPLICIT_IO, 0x004B0603, 5),
        (IMPLICIT_IO, 0x004B1209, 1),
        (IMPLICIT_IO, 0x008E400B, 2),
    ]
    assert all(o.operation is OpClass.READ and o.protocol == "cip" for o in io)
    assert io[2].src_ip == UDP_IO.server_ip and io[2].detail["data_length"] == 2
    assert io[0].detail["first_sequence"] == 0 and io[0].detail["last_sequence"] == 4


def test_io_ops_only_at_finish() -> None:
    dec = EnipDecoder(UDP_IO)
    for n in range(3):
        dec.feed(C2S, io_packet(1, n), n + 1, n)
    assert dec.events() == [] and dec.io_packets == 3
    (op,) = dec.finish()
    assert isinstance(op, Operation) and op.quantity == 3


@pytest.mark.parametrize(
    ("chunks", "endpoints", "reason"),
    [
        ([(C2S, encap(0x6F, struct.pack("<IH", 0, 0) + b"\x09\x00"))], TCP, "Send RR Data"),
        ([(C2S, encap(0x6F, struct.pack("<IH", 0, 0) + cpf([(0, b"")])))], TCP, "Unconnected Data"),
        (
            [(C2S, encap(0x70, struct.pack("<IH", 0, 0) + cpf([(0xB1, b"\x01\x00")])))],
            TCP,
            "Connected",
        ),
        ([(C2S, encap(0x63, b"ab", session=0)[:-1])], UDP, "exceeds"),
        ([(C2S, encap(0x63, length=5, session=0))], UDP, "length 5"),
        ([(C2S, encap(0x42, session=0))], UDP, "unknown command"),
        ([(C2S, b"\x01\x02\x03")], UDP_IO, "cannot hold"),
        ([(C2S, rr(b""))], TCP, "empty CIP"),
    ],
)
def test_malformed_events(
    chunks: list[tuple[int, bytes]], endpoints: Endpoints, reason: str
) -> None:
    events = run(chunks, endpoints)
    bad = malformed(events)
    assert bad and any(reason in m.reason for m in bad), [m.reason for m in bad]
    assert all(m.frame == 1 for m in bad)


def test_truncated_cip_request_is_a_malformed_operation() -> None:
    events = run([(C2S, rr(bytes([0x4C, 0x06, 0x91, 0x03])))])
    (op,) = ops(events)
    assert op.status is OpStatus.MALFORMED and op.function == "Read Tag"
    assert "exceeds" in op.detail["malformed_reason"]
    assert any("CIP request" in m.reason for m in malformed(events))


CONVERSATION = [
    (C2S, encap(0x65, b"\x01\x00\x00\x00", session=0)),
    (S2C, encap(0x65, b"\x01\x00\x00\x00")),
    (C2S, rr(unconnected_send(request(0x01, path(0x01, 1))))),
    (S2C, rr(reply(0x01, 0, identity_attrs()))),
    (C2S, rr(forward_open(to=0x10))),
    (S2C, rr(forward_open_reply(ot=0x20, to=0x10))),
    (
        C2S,
        unit(
            0x20,
            1,
            request(0x0A, path(0x02, 1), multiple([request(0x4C, symbol("A"), b"\x01\x00")])),
        ),
    ),
    (S2C, unit(0x10, 1, reply(0x0A, 0, multiple([reply(0x4C, 0, b"\xc1\x00\x01")])))),
    (C2S, b"\xde\xad\xbe\xef" * 9),
    (C2S, rr(request(0x01, path(0x01, 1)))),
    (S2C, rr(reply(0x01, 0, identity_attrs(name="X")))),
    (C2S, encap(0x66)),
]


def _comparable(events: Sequence[object]) -> list[str]:
    return [repr(e) for e in events]


def test_segmentation_invariance() -> None:
    whole = _comparable(run(CONVERSATION))
    assert len(ops(run(CONVERSATION))) == 8
    assert _comparable(run(CONVERSATION, split=1)) == whole
    rng = random.Random(11)
    for _ in range(5):
        assert _comparable(run(CONVERSATION, split=rng.randrange(2, 60))) == whole


def test_list_identity_reply_recognised_by_content() -> None:
    # Scanner and device both on 44818: the reply may travel "client to server".
    both = Endpoints(
        transport="udp",
        client_ip="10.0.0.9",
        client_port=44818,
        server_ip="10.0.0.2",
        server_port=44818,
    )
    answer = encap(0x63, cpf([(0x000C, list_identity_item(ip="10.0.0.9"))]), session=0)
    events = run([(S2C, encap(0x63, session=0)), (C2S, answer)], both)
    (op,) = ops(events)
    assert op.status is OpStatus.OK and op.request_frame == 1 and op.response_frame == 2
    assert (op.src_ip, op.dst_ip) == ("10.0.0.2", "10.0.0.9")
    assert {e.ip for e in events if isinstance(e, IdentityClaim)} == {"10.0.0.9"}


def test_encapsulation_replies_match_context_and_session() -> None:
    events = run(
        [
            (C2S, encap(0x04, session=5, context=b"11111111")),
            (C2S, encap(0x04, session=6, context=b"11111111")),
            (S2C, encap(0x04, cpf([]), session=6, context=b"11111111")),
        ]
    )
    answered, unanswered = ops(events)
    assert answered.request_frame == 2 and answered.response_frame == 3
    assert unanswered.request_frame == 1 and unanswered.status is OpStatus.NO_RESPONSE


def test_open_requests_are_bounded() -> None:
    dec = EnipDecoder(TCP, max_pending=2)
    for frame in range(1, 4):
        dec.feed(C2S, rr(request(0x0E, path(0x01, 1, frame))), frame, frame)
    (evicted,) = ops(dec.events())
    assert evicted.status is OpStatus.NO_RESPONSE and evicted.detail["attribute_id"] == 1
    assert len(ops(dec.finish())) == 2


def test_io_tallies_are_bounded() -> None:
    dec = EnipDecoder(UDP_IO, max_connections=1)
    for conn in range(10):
        dec.feed(C2S, io_packet(conn, 1), conn + 1, conn)
    early = ops(dec.events())
    assert [o.detail["connection_id"] for o in early] == list(range(6))
    assert len(ops(dec.finish())) == 4
