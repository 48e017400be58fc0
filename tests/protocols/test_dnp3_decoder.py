"""DNP3 connection decoder: roles, transaction matching, confirms, operations, claims."""

from __future__ import annotations

import random
import struct

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.dnp3 import SPEC, Dnp3ConnectionDecoder
from otconduit.protocols.events import Malformed
from tests.protocols.dnp3_helpers import (
    ENDPOINTS,
    confirm,
    link_frame,
    request,
    response,
    segments,
)

CROB = struct.pack("<BBIIB", 0x41, 1, 500, 0, 0)  # close, pulse on, 500 ms
CROB_HEADER = bytes([12, 1, 0x28]) + struct.pack("<HH", 1, 7)  # one CROB, index 7

Packet = tuple[int, bytes, int]  # (direction, bytes, frame)


def run(packets: list[Packet], endpoints: Endpoints = ENDPOINTS) -> list[DecoderEvent]:
    dec = SPEC.factory(endpoints)
    out: list[DecoderEvent] = []
    for d, data, frame in packets:
        dec.feed(d, data, frame, frame * 1000)
        out += dec.events()
    return out + dec.finish()


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def malformed(events: list[DecoderEvent]) -> list[Malformed]:
    return [e for e in events if isinstance(e, Malformed)]


class TestTransactions:
    def test_select_then_operate(self) -> None:
        events = run(
            [
                (0, request(3, 4, CROB_HEADER + CROB), 1),
                (1, response(0x81, 4, CROB_HEADER + CROB), 2),
                (0, request(4, 5, CROB_HEADER + CROB), 3),
                (1, response(0x81, 5, CROB_HEADER + CROB), 4),
            ]
        )
        select, operate = ops(events)
        assert (select.function, operate.function) == ("SELECT", "OPERATE")
        for op, req, resp in ((select, 1, 2), (operate, 3, 4)):
            assert op.protocol == "dnp3" and op.operation is OpClass.CONTROL
            assert (op.src_ip, op.src_port) == ("10.0.0.1", 40000)
            assert (op.dst_ip, op.dst_port) == ("10.0.0.2", 20000)
            assert op.unit == 10 and op.address == 7 and op.quantity == 1
            assert op.values == (0x41,) and op.status is OpStatus.OK
            assert (op.request_frame, op.response_frame) == (req, resp)
            assert op.latency_ns == 1000
            assert op.detail["link_src"] == 1 and op.detail["link_dst"] == 10
            assert op.detail["objects"][0] == {
                "group": 12,
                "variation": 1,
                "qualifier": 0x28,
                "start": 7,
                "stop": 7,
                "count": 1,
            }
            (c,) = op.detail["crob"]
            assert (c["op_type"], c["trip_close"], c["on_time"]) == ("PULSE_ON", "CLOSE", 500)
            assert c["response_status_name"] == "SUCCESS"
        assert (select.transaction_id, operate.transaction_id) == (4, 5)

    def test_roles_come_from_function_codes_not_the_connection(self) -> None:
        # The outstation opened the connection: requests flow server -> client.
        events = run([(1, request(1, 2, bytes([60, 1, 6])), 1), (0, response(0x81, 2), 2)])
        (op,) = ops(events)
        assert (op.src_ip, op.dst_ip) == ("10.0.0.2", "10.0.0.1")
        assert (op.src_port, op.dst_port) == (20000, 40000)
        assert op.status is OpStatus.OK and "dir_mismatch" not in op.detail

    def test_pipelined_requests_pair_by_sequence(self) -> None:
        header = bytes([12, 1, 0x17, 1])
        packets: list[Packet] = [
            (0, request(3, 7, header + b"\x08" + CROB), 1),
            (0, request(4, 8, header + b"\x08" + CROB), 2),
            (0, request(3, 7, header + b"\x0a" + CROB), 3),
            (1, response(0x81, 7, header + b"\x08" + CROB), 4),
            (1, response(0x81, 8, header + b"\x08" + CROB), 5),
            (1, response(0x81, 7, header + b"\x0a" + CROB, iin=0x0200), 6),
        ]
        result = ops(run(packets))
        assert [(o.function, o.address, o.request_frame, o.response_frame) for o in result] == [
            ("SELECT", 8, 1, 4),
            ("OPERATE", 8, 2, 5),
            ("SELECT", 10, 3, 6),
        ]
        assert result[2].detail["iin"] == ["CLASS_1_EVENTS"]

    def test_iin_error_is_an_exception(self) -> None:
        events = run([(0, request(13, 1), 1), (1, response(0x81, 1, iin=0x0001), 2)])
        (op,) = ops(events)
        assert op.function == "COLD_RESTART" and op.operation is OpClass.CONTROL
        assert op.status is OpStatus.EXCEPTION
        assert op.exception == "NO_FUNC_CODE_SUPPORT" and op.exception_code == 1
        events = run(
            [(0, request(1, 1, bytes([99, 1, 6])), 1), (1, response(0x81, 1, iin=0x8006), 2)]
        )
        (op,) = ops(events)
        assert op.exception == "OBJECT_UNKNOWN,PARAMETER_ERROR" and op.exception_code == 6
        assert op.detail["iin"] == ["DEVICE_RESTART", "OBJECT_UNKNOWN", "PARAMETER_ERROR"]

    def test_unanswered_request_completes_at_finish(self) -> None:
        dec = Dnp3ConnectionDecoder(ENDPOINTS)
        dec.feed(0, request(1, 3, bytes([60, 1, 6])), 1, 1)
        assert ops(dec.events()) == []
        (op,) = ops(dec.finish())
        assert op.status is OpStatus.NO_RESPONSE and op.response_frame is None

    def test_no_ack_functions_complete_at_once(self) -> None:
        dec = Dnp3ConnectionDecoder(ENDPOINTS)
        dec.feed(0, request(6, 3, CROB_HEADER + CROB), 1, 1)
        (op,) = ops(dec.events())
        assert op.function == "DIRECT_OPERATE_NR" and op.status is OpStatus.OK
        assert op.operation is OpClass.CONTROL and op.values == (0x41,)

    def test_orphan_response(self) -> None:
        (op,) = ops(run([(1, response(0x81, 9, iin=0x1000), 1)]))
        assert op.function == "RESPONSE" and op.operation is OpClass.OTHER
        assert op.request_frame is None and op.response_frame == 1
        assert (op.src_ip, op.dst_ip) == ("10.0.0.1", "10.0.0.2")  # master is the other side
        assert op.detail["iin"] == ["NEED_TIME"]


class TestFamilies:
    @pytest.mark.parametrize(
        ("fc", "objects", "name", "cls"),
        [
            (1, bytes([60, 1, 6]), "READ", OpClass.READ),
            (2, bytes([80, 1, 0, 7, 7, 0]), "WRITE", OpClass.WRITE),
            (
                5,
                bytes([41, 2, 0x17, 1, 3]) + struct.pack("<hB", 77, 0),
                "DIRECT_OPERATE",
                OpClass.CONTROL,
            ),
            (7, bytes([20, 0, 6]), "IMMED_FREEZE", OpClass.WRITE),
            (9, bytes([20, 0, 6]), "FREEZE_CLEAR", OpClass.WRITE),
            (14, b"", "WARM_RESTART", OpClass.CONTROL),
            (15, b"", "INITIALIZE_DATA", OpClass.CONTROL),
            (16, b"", "INITIALIZE_APPL", OpClass.CONTROL),
            (17, b"", "START_APPL", OpClass.CONTROL),
            (18, b"", "STOP_APPL", OpClass.CONTROL),
            (19, b"", "SAVE_CONFIG", OpClass.CONTROL),
            (20, bytes([60, 2, 6]), "ENABLE_UNSOLICITED", OpClass.CONTROL),
            (21, bytes([60, 2, 6]), "DISABLE_UNSOLICITED", OpClass.CONTROL),
            (22, bytes([60, 2, 6, 1, 0, 6]), "ASSIGN_CLASS", OpClass.OTHER),
            (23, b"", "DELAY_MEASURE", OpClass.DIAGNOSTIC),
            (24, b"", "RECORD_CURRENT_TIME", OpClass.OTHER),
            (25, bytes([70, 3, 0x5B, 1, 2, 0, 0, 0]), "OPEN_FILE", OpClass.PROGRAM),
            (27, b"", "DELETE_FILE", OpClass.PROGRAM),
            (28, b"", "GET_FILE_INFO", OpClass.READ),
            (31, b"", "ACTIVATE_CONFIG", OpClass.CONTROL),
            (32, bytes([120, 4, 0x5B, 1, 2, 0, 1, 0]), "AUTHENTICATE_REQ", OpClass.SESSION),
        ],
    )
    def test_function_families(self, fc: int, objects: bytes, name: str, cls: OpClass) -> None:
        (op,) = ops(run([(0, request(fc, 2, objects), 1), (1, response(0x81, 2), 2)]))
        assert (op.function, op.function_code, op.operation) == (name, fc, cls)
        assert op.status is OpStatus.OK and op.response_frame == 2

    def test_analog_output_value(self) -> None:
        objects = bytes([41, 2, 0x17, 1, 3]) + struct.pack("<hB", -77, 0)
        (op,) = ops(run([(0, request(5, 2, objects), 1), (1, response(0x81, 2, objects), 2)]))
        assert op.values == (-77,) and op.address == 3
        assert op.detail["analog_outputs"][0]["value"] == -77

    def test_cold_restart_delay(self) -> None:
        packets = [(0, request(13, 0), 1), (1, response(0x81, 0, bytes([52, 2, 7, 1, 0xE8, 3])), 2)]
        (op,) = ops(run(packets))
        assert op.detail["delay_ms"] == 1000


class TestUnsolicitedAndConfirms:
    def test_unsolicited_confirmed(self) -> None:
        unsol = response(0x82, 3, bytes([2, 1, 0x17, 1, 0, 0x81]), control=0xF3, iin=0x0200)
        ack = confirm(0xD3)
        (op,) = ops(run([(1, unsol, 1), (0, ack, 2)]))
        assert op.function == "UNSOLICITED_RESPONSE" and op.function_code == 130
        assert op.operation is OpClass.OTHER and op.status is OpStatus.OK
        assert op.detail["unsolicited"] and op.detail["confirmed"]
        assert op.detail["confirm_frame"] == 2
        assert (op.src_ip, op.dst_ip) == ("10.0.0.1", "10.0.0.2")  # src is the master

    def test_unsolicited_without_confirm(self) -> None:
        first = response(0x82, 3, control=0xF3)
        second = response(0x82, 4, control=0xF4)
        dec = Dnp3ConnectionDecoder(ENDPOINTS)
        dec.feed(1, first, 1, 1)
        assert ops(dec.events()) == []  # waits for the confirm it asked for
        dec.feed(1, second, 2, 2)
        (op,) = ops(dec.events())
        assert op.response_frame == 1 and op.detail["confirmed"] is False
        (last,) = ops(dec.finish())
        assert last.response_frame == 2 and last.detail["confirmed"] is False
        assert dec.session.confirms == 0

    def test_unsolicited_is_never_an_exception(self) -> None:
        # IIN2 bits 0-2 answer a request; in an unsolicited response they are stale.
        (op,) = ops(run([(1, response(0x82, 6, control=0xD6, iin=0x9501), 1)]))
        assert op.status is OpStatus.OK and op.exception is None
        assert "NO_FUNC_CODE_SUPPORT" in op.detail["iin"] and op.detail["iin_value"] == 0x9501

    def test_stray_confirm_is_counted(self) -> None:
        dec = Dnp3ConnectionDecoder(ENDPOINTS)
        dec.feed(0, confirm(0xC5), 1, 1)
        assert not ops(dec.finish())
        assert dec.session.confirms == 1 and dec.session.unmatched_confirms == 1

    def test_multi_fragment_response(self) -> None:
        master = [(0, request(1, 6, bytes([60, 1, 6])), 1)]
        body = bytes([1, 2, 0, 0, 3]) + b"\x01" * 4
        frags = [
            (1, response(0x81, 6, body, control=0xA6), 2),  # FIR, CON
            (0, confirm(0xC6), 3),
            (1, response(0x81, 7, body, control=0x27, iin=0x0400), 4),  # CON
            (0, confirm(0xC7), 5),
            (1, response(0x81, 8, body, control=0x68), 6),  # FIN, CON
            (0, confirm(0xC8), 7),
        ]
        (op,) = ops(run(master + frags))
        assert op.function == "READ" and op.status is OpStatus.OK
        assert op.response_frame == 2 and op.quantity == 12
        assert [f["frame"] for f in op.detail["response_fragments"]] == [2, 4, 6]
        assert op.detail["iin"] == ["CLASS_2_EVENTS"] and op.detail["confirm_frame"] == 7

    def test_cut_short_multi_fragment_response(self) -> None:
        packets = [
            (0, request(1, 6, bytes([60, 1, 6])), 1),
            (1, response(0x81, 6, control=0x86), 2),  # FIR only
            (0, request(1, 7, bytes([60, 1, 6])), 3),  # the master moves on
            (1, response(0x81, 7), 4),
        ]
        first, second = ops(run(packets))
        assert (
            first.status is OpStatus.MALFORMED and "cut short" in first.detail["malformed_reason"]
        )
        assert second.status is OpStatus.OK and second.response_frame == 4


class TestIdentity:
    def test_device_attributes_and_addresses(self) -> None:
        attrs = bytes([0, 252, 0x00, 0, 0, 1, 4]) + b"ACME"
        attrs += bytes([0, 250, 0x00, 0, 0, 1, 5]) + b"RTU-9"
        attrs += bytes([0, 246, 0x00, 0, 0, 1, 3]) + b"S42"
        attrs += bytes([0, 242, 0x00, 0, 0, 1, 5]) + b"2.1.0"
        packets = [
            (0, request(1, 1, bytes([0, 254, 6])), 1),
            (1, response(0x81, 1, attrs), 2),
            (0, request(1, 2, bytes([60, 1, 6])), 3),
            (1, response(0x81, 2), 4),
        ]
        claims = [e for e in run(packets) if isinstance(e, IdentityClaim)]
        got = {(c.ip, c.attribute, c.value, c.source) for c in claims}
        assert got == {
            ("10.0.0.2", "dnp3_address", "10", "dnp3"),
            ("10.0.0.1", "dnp3_address", "1", "dnp3"),
            ("10.0.0.2", "vendor", "ACME", "dnp3_g0"),
            ("10.0.0.2", "product_name", "RTU-9", "dnp3_g0"),
            ("10.0.0.2", "user_id", "S42", "dnp3_g0"),
            ("10.0.0.2", "firmware_version", "2.1.0", "dnp3_g0"),
        }
        assert len(claims) == len(got)  # the second transaction repeats nothing
        assert all(c.confidence == 0.9 for c in claims)


class TestDamage:
    def test_bad_crc_request(self) -> None:
        frag = bytes([0xC1, 0x03]) + CROB_HEADER + CROB
        bad = link_frame(bytes([0xC0]) + frag, corrupt=0)
        events = run([(0, bad, 1), (1, response(0x81, 1, CROB_HEADER + CROB), 2)])
        (mal,) = malformed(events)
        assert mal.reason.startswith("bad CRC in data block 0") and mal.frame == 1
        (op,) = ops(events)
        assert op.function == "SELECT" and op.status is OpStatus.MALFORMED
        assert "bad CRC in frame 1" in op.detail["malformed_reason"]
        assert op.values == (0x41,)  # what it carried is still shown

    def test_dir_bit_disagreeing_with_function(self) -> None:
        frag = bytes([0xC0, 0xC1, 0x01, 60, 1, 6])[1:]
        raw = link_frame(bytes([0xC0]) + frag, control=0x44)  # a request without DIR
        (op,) = ops(run([(0, raw, 1)]))
        assert op.detail["dir_mismatch"] is True

    def test_transport_out_of_sequence(self) -> None:
        frag = bytes([0xC2, 0x02, 110, 200, 0x07, 1]) + b"a" * 200 + bytes([110, 200, 0x07, 1])
        frag += b"b" * 200
        parts = segments(frag)
        assert len(parts) == 2
        skipped = bytes([0x80 | 5]) + parts[1][1:]  # FIN with a wrong sequence number
        events = run([(0, link_frame(parts[0]), 1), (0, link_frame(skipped), 2)])
        (mal,) = malformed(events)
        assert mal.reason.startswith("transport: out-of-sequence") and mal.frame == 2
        assert ops(events) == []

    def test_multi_segment_request(self) -> None:
        frag = bytes([0xC2, 0x02, 110, 200, 0x07, 1]) + b"a" * 200 + bytes([110, 200, 0x07, 1])
        frag += b"b" * 200
        raw = b"".join(link_frame(s) for s in segments(frag, first_seq=63))
        (op,) = ops(run([(0, raw, 1)]))
        assert op.function == "WRITE" and op.quantity == 2 and op.status is OpStatus.NO_RESPONSE

    def test_user_data_in_a_secondary_frame(self) -> None:
        events = run([(1, link_frame(b"\xc0\xc0\x81\x00\x00", control=0x00), 1)])
        (mal,) = malformed(events)
        assert "function ACK" in mal.reason and ops(events) == []

    def test_truncated_objects(self) -> None:
        raw = request(2, 1, bytes([50, 1, 0x07, 1, 1, 2, 3]))
        events = run([(0, raw, 1)])
        (mal,) = malformed(events)
        assert (
            mal.reason == "application layer: truncated object data: g50v1 needs 6 octets, 3 left"
        )
        (op,) = ops(events)
        assert op.status is OpStatus.MALFORMED

    def test_gap_in_the_middle(self) -> None:
        dec = Dnp3ConnectionDecoder(ENDPOINTS)
        first = request(1, 1, bytes([60, 1, 6]))
        dec.feed(0, first[:9], 1, 1)
        dec.gap(0, 30, 2, 2)
        dec.feed(0, request(1, 2, bytes([60, 1, 6])), 3, 3)
        dec.feed(1, response(0x81, 2), 4, 4)
        events = dec.events() + dec.finish()
        (mal,) = malformed(events)
        assert "before a gap" in mal.reason
        (op,) = ops(events)
        assert op.transaction_id == 2 and op.status is OpStatus.OK

    def test_udp_datagrams_do_not_carry_over(self) -> None:
        udp = Endpoints(
            transport="udp",
            client_ip="10.0.0.1",
            client_port=20000,
            server_ip="10.0.0.2",
            server_port=20000,
        )
        dec = SPEC.factory(udp)
        whole = request(1, 1, bytes([60, 1, 6]))
        dec.feed(0, whole[:-2], 1, 1)  # a cut datagram
        dec.feed(0, whole, 2, 2)
        dec.feed(1, response(0x81, 1), 3, 3)
        events = dec.events() + dec.finish()
        (mal,) = malformed(events)
        assert "end of datagram" in mal.reason and mal.frame == 1
        (op,) = ops(events)
        assert op.request_frame == 2 and op.status is OpStatus.OK


def conversation() -> list[Packet]:
    """A bit of everything: requests, responses, controls, unsolicited, confirms, a
    multi-fragment response, garbage, a bad CRC and a bad header."""
    body = bytes([30, 2, 0x00, 0, 2]) + b"\x01\x00\x00" * 3
    return [
        (0, b"\x00\x05garbage" + request(1, 1, bytes([60, 2, 6, 60, 3, 6])), 1),
        (1, response(0x81, 1, body, iin=0x8000), 2),
        (1, response(0x82, 2, body, control=0xF2), 3),
        (0, confirm(0xD2), 4),
        (0, request(3, 2, CROB_HEADER + CROB), 5),
        (1, response(0x81, 2, CROB_HEADER + CROB), 6),
        (0, link_frame(bytes([0xC5, 0xC3, 0x04]) + CROB_HEADER + CROB, corrupt=1), 7),
        (1, response(0x81, 3, CROB_HEADER + CROB), 8),
        (0, request(1, 4, bytes([60, 1, 6])), 9),
        (1, response(0x81, 4, body, control=0xA4), 10),
        (0, confirm(0xC4), 11),
        (1, response(0x81, 5, body * 20, control=0x45), 12),
        (0, link_frame(b"\xc0\xc5\x01\x3c\x01\x06", corrupt=-2), 13),
        (1, response(0x81, 5, body, tseq=9), 14),
    ]


def feed_split(packets: list[Packet], split: str, seed: int = 0) -> list[DecoderEvent]:
    rng = random.Random(seed)
    dec = SPEC.factory(ENDPOINTS)
    out: list[DecoderEvent] = []
    for d, data, frame in packets:
        if split == "whole":
            pieces = [data]
        elif split == "bytes":
            pieces = [data[i : i + 1] for i in range(len(data))]
        else:
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 6))))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for piece in pieces:
            dec.feed(d, piece, frame, frame * 1000)
            out += dec.events()
    return out + dec.finish()


class TestSegmentation:
    def test_conversation_events(self) -> None:
        events = feed_split(conversation(), "whole")
        result = ops(events)
        assert [o.function for o in result] == [
            "READ",
            "UNSOLICITED_RESPONSE",
            "SELECT",
            "OPERATE",
            "READ",
            "RESPONSE",  # its request had a bad header CRC
        ]
        assert [o.status for o in result] == [
            OpStatus.OK,
            OpStatus.OK,
            OpStatus.OK,
            OpStatus.MALFORMED,
            OpStatus.OK,
            OpStatus.OK,
        ]
        assert result[0].detail["iin"] == ["DEVICE_RESTART"]
        assert result[1].detail["confirmed"] is True
        assert result[4].detail["response_fragments"][1]["frame"] == 12
        reasons = [m.reason for m in malformed(events)]
        assert reasons[0].startswith("no link header")
        assert any(r.startswith("bad CRC in data block 1") for r in reasons)
        assert any(r.startswith("bad CRC in link header") for r in reasons)

    @pytest.mark.parametrize("split", ["bytes", "random"])
    def test_same_events_however_split(self, split: str) -> None:
        expected = feed_split(conversation(), "whole")
        for seed in range(5 if split == "random" else 1):
            assert feed_split(conversation(), split, seed) == expected
