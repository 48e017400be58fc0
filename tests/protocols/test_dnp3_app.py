"""DNP3 application layer: headers, qualifiers, object walking and value decoding."""

from __future__ import annotations

import struct

import pytest

from otconduit.model import OpClass
from otconduit.protocols.dnp3.app import AppFragment, parse_fragment
from otconduit.protocols.dnp3.functions import FUNCTION_NAMES, function_name, iin_names, op_class


def parse(data: bytes) -> AppFragment:
    frag = parse_fragment(data)
    assert frag is not None
    return frag


def crob(code: int, count: int = 1, on: int = 100, off: int = 200, status: int = 0) -> bytes:
    return struct.pack("<BBIIB", code, count, on, off, status)


class TestHeader:
    def test_request_control_bits(self) -> None:
        frag = parse(bytes([0xE5, 0x01, 60, 1, 0x06]))
        assert (frag.fir, frag.fin, frag.con, frag.uns, frag.seq) == (True, True, True, False, 5)
        assert frag.function_code == 1 and frag.iin is None and not frag.is_response
        assert frag.problem is None

    def test_response_iin(self) -> None:
        frag = parse(bytes([0xD3, 0x82, 0x82, 0x04]))  # unsolicited, IIN1 0x82 IIN2 0x04
        assert frag.uns and frag.is_response and frag.iin == 0x8204
        assert iin_names(frag.iin) == ["CLASS_1_EVENTS", "DEVICE_RESTART", "PARAMETER_ERROR"]

    def test_too_short(self) -> None:
        assert parse_fragment(b"\xc0") is None
        frag = parse(bytes([0xC0, 0x81, 0x00]))
        assert frag.iin is None and frag.problem is not None and "no IIN" in frag.problem


class TestIin:
    @pytest.mark.parametrize(
        ("iin", "names"),
        [
            (0x0100, ["BROADCAST"]),
            (0x0E00, ["CLASS_1_EVENTS", "CLASS_2_EVENTS", "CLASS_3_EVENTS"]),
            (0x1000, ["NEED_TIME"]),
            (0x2000, ["LOCAL_CONTROL"]),
            (0x4000, ["DEVICE_TROUBLE"]),
            (0x8000, ["DEVICE_RESTART"]),
            (0x0001, ["NO_FUNC_CODE_SUPPORT"]),
            (0x0002, ["OBJECT_UNKNOWN"]),
            (0x0008, ["EVENT_BUFFER_OVERFLOW"]),
            (0x0010, ["ALREADY_EXECUTING"]),
            (0x0020, ["CONFIG_CORRUPT"]),
            (0x0000, []),
        ],
    )
    def test_names(self, iin: int, names: list[str]) -> None:
        assert iin_names(iin) == names


class TestQualifiers:
    def test_class_poll_has_no_data(self) -> None:
        frag = parse(bytes([0xC0, 0x01, 60, 2, 0x06, 60, 3, 0x06, 60, 4, 0x06, 60, 1, 0x06]))
        assert [(h.group, h.variation, h.count) for h in frag.objects] == [
            (60, 2, None),
            (60, 3, None),
            (60, 4, None),
            (60, 1, None),
        ]

    @pytest.mark.parametrize(
        ("range_field", "qualifier", "start", "stop", "count"),
        [
            (bytes([3, 9]), 0x00, 3, 9, 7),
            (struct.pack("<HH", 300, 301), 0x01, 300, 301, 2),
            (struct.pack("<II", 70000, 70000), 0x02, 70000, 70000, 1),
            (bytes([5]), 0x07, None, None, 5),
            (struct.pack("<H", 513), 0x08, None, None, 513),
        ],
    )
    def test_read_ranges(
        self, range_field: bytes, qualifier: int, start: int | None, stop: int | None, count: int
    ) -> None:
        frag = parse(bytes([0xC0, 0x01, 30, 1, qualifier]) + range_field + bytes([1, 2, 0x06]))
        first, second = frag.objects
        assert (first.start, first.stop, first.count) == (start, stop, count)
        assert first.qualifier == qualifier and second.group == 1
        assert frag.problem is None

    def test_read_with_index_list(self) -> None:
        frag = parse(bytes([0xC0, 0x01, 1, 2, 0x17, 3, 4, 9, 7, 30, 1, 0x06]))
        head, tail = frag.objects
        assert (head.start, head.stop, head.count) == (4, 7, 3)
        assert tail.group == 30 and frag.problem is None

    def test_response_packed_bits_and_fixed_sizes(self) -> None:
        data = bytes([0xC0, 0x81, 0, 0])
        data += bytes([1, 1, 0x00, 0, 9]) + b"\xff\x03"  # 10 binary inputs: 2 octets
        data += bytes([30, 2, 0x00, 0, 1]) + b"\x01\x10\x00\x01\x20\x00"  # 2 x (flag+int16)
        data += bytes([20, 1, 0x17, 1, 4]) + b"\x01\x00\x00\x00\x00"  # index + 5 octets
        frag = parse(data)
        assert frag.problem is None
        assert [(h.group, h.start, h.stop, h.count) for h in frag.objects] == [
            (1, 0, 9, 10),
            (30, 0, 1, 2),
            (20, 4, 4, 1),
        ]

    def test_free_format_size_prefix(self) -> None:
        # READ of g70v5 file transport with qualifier 0x5B (file_read.pcap, frame 3).
        obj = struct.pack("<II", 0x12345678, 0)
        frag = parse(bytes([0xC2, 0x01, 70, 5, 0x5B, 1]) + struct.pack("<H", 8) + obj)
        assert frag.problem is None and frag.objects[0].count == 1

    def test_reserved_codes_stop_the_walk(self) -> None:
        frag = parse(bytes([0xC0, 0x15, 60, 2, 0x06, 60, 4, 0xED, 60, 3, 0x06]))
        assert len(frag.objects) == 1
        assert frag.problem == "g60v4: reserved qualifier 0xed"
        frag = parse(bytes([0xC0, 0x01, 1, 2, 0x0C]))
        assert frag.problem is not None and "reserved range code" in frag.problem

    def test_stop_below_start(self) -> None:
        frag = parse(bytes([0xC0, 0x01, 1, 2, 0x00, 9, 3]))
        assert frag.problem is not None and "stop 3 below start 9" in frag.problem

    def test_truncated_header_and_range(self) -> None:
        assert parse(bytes([0xC0, 0x01, 1, 2])).problem == "truncated object header: 2 octets"
        frag = parse(bytes([0xC0, 0x01, 1, 2, 0x01, 0]))
        assert frag.problem is not None and "truncated range" in frag.problem

    def test_unknown_object_cannot_be_sized(self) -> None:
        data = bytes([0xC0, 0x81, 0, 0, 1, 2, 0x00, 0, 0, 0x01, 99, 9, 0x00, 0, 0, 7])
        frag = parse(data)
        assert frag.problem == "cannot size object g99v9"
        assert [h.group for h in frag.objects] == [1, 99]  # its header is kept, the walk ends


class TestValues:
    def test_crob_select(self) -> None:
        # SELECT, g12v1 qualifier 0x28 (2-octet count, 2-octet index): two relays.
        data = bytes([0xC7, 0x03, 12, 1, 0x28]) + struct.pack("<H", 2)
        data += struct.pack("<H", 8) + crob(0x41, 1, 500, 0)
        data += struct.pack("<H", 10) + crob(0x83, 3, 0, 1000, 0)
        frag = parse(data)
        assert frag.problem is None
        first, second = frag.crobs
        assert (first.index, first.op_type, first.trip_close, first.count) == (8, 1, 1, 1)
        assert (first.on_time, first.off_time, first.clear) == (500, 0, False)
        detail = second.as_detail()
        assert detail["op_type"] == "LATCH_ON" and detail["trip_close"] == "TRIP"
        assert (detail["index"], detail["count"], detail["off_time"]) == (10, 3, 1000)
        assert frag.objects[0].start == 8 and frag.objects[0].stop == 10

    def test_crob_echo_status(self) -> None:
        data = bytes([0xC7, 0x81, 0, 4, 12, 1, 0x17, 1, 5]) + crob(0x24, status=4)
        (echo,) = parse(data).crobs
        assert echo.clear and echo.op_type == 4 and echo.status == 4
        assert echo.as_detail()["status_name"] == "NOT_SUPPORTED"

    def test_truncated_crob_keeps_whole_objects(self) -> None:
        # direct_operate_crob_malform_but_good_crc.pcap: count 2, one CROB and a stub.
        data = bytes.fromhex("ca050c012802000100020164000000640000000000")[:-1]
        frag = parse(data)
        assert frag.problem is not None and frag.problem.startswith("truncated object data")
        (only,) = frag.crobs
        assert (only.index, only.control_code, only.on_time, only.off_time) == (1, 2, 100, 100)

    def test_analog_outputs(self) -> None:
        data = bytes([0xC1, 0x05])
        data += bytes([41, 1, 0x17, 1, 3]) + struct.pack("<iB", -5, 0)
        data += bytes([41, 2, 0x17, 1, 4]) + struct.pack("<hB", 1234, 0)
        data += bytes([41, 3, 0x17, 1, 5]) + struct.pack("<fB", 2.5, 0)
        frag = parse(data)
        assert [(a.index, a.value) for a in frag.analog_outputs] == [(3, -5), (4, 1234), (5, 2.5)]

    def test_write_time(self) -> None:
        ms = 1_427_313_462_687
        frag = parse(bytes([0xCA, 0x02, 50, 1, 0x07, 1]) + ms.to_bytes(6, "little"))
        (t,) = frag.times
        assert (t.group, t.variation, t.ms) == (50, 1, ms)

    def test_freeze_at_time_only_time_has_data(self) -> None:
        data = bytes([0xC0, 0x0B, 50, 2, 0x07, 1]) + (5).to_bytes(6, "little")
        data += struct.pack("<I", 60000) + bytes([20, 0, 0x06])
        frag = parse(data)
        assert frag.problem is None and frag.times[0].interval == 60000
        assert [h.group for h in frag.objects] == [50, 20]

    def test_restart_delay(self) -> None:
        frag = parse(bytes([0xC0, 0x81, 0x80, 0, 52, 1, 0x07, 1, 2, 0]))
        assert frag.times[0].group == 52 and frag.times[0].ms == 2000

    def test_device_attributes(self) -> None:
        data = bytes([0xC0, 0x81, 0, 0])
        data += bytes([0, 252, 0x00, 0, 0, 1, 5]) + b"ACME\x00"
        data += bytes([0, 250, 0x00, 0, 0, 1, 6]) + b"RTU-9 "
        data += bytes([0, 242, 0x00, 0, 0, 1, 3]) + b"1.2"
        frag = parse(data)
        assert frag.problem is None
        assert [(a.variation, a.text) for a in frag.attributes] == [
            (252, "ACME"),
            (250, "RTU-9"),
            (242, "1.2"),
        ]

    def test_written_bits(self) -> None:
        # write_binary_output.pcap: WRITE g10v1 index 2, value 0.
        frag = parse(bytes([0xC0, 0x02, 10, 1, 0x00, 2, 4, 0b101]))
        assert frag.bits == (1, 0, 1) and frag.objects[0].count == 3


class TestFunctions:
    def test_zeek_names(self) -> None:
        expected = {
            0: "CONFIRM",
            1: "READ",
            2: "WRITE",
            3: "SELECT",
            4: "OPERATE",
            5: "DIRECT_OPERATE",
            6: "DIRECT_OPERATE_NR",
            13: "COLD_RESTART",
            14: "WARM_RESTART",
            20: "ENABLE_UNSOLICITED",
            21: "DISABLE_UNSOLICITED",
            24: "RECORD_CURRENT_TIME",
            129: "RESPONSE",
            130: "UNSOLICITED_RESPONSE",
            131: "AUTHENTICATE_RESP",
        }
        for code, name in expected.items():
            assert function_name(code) == name
        assert set(range(34)) | {129, 130, 131} == set(FUNCTION_NAMES)
        assert function_name(77) == "UNKNOWN_77"

    @pytest.mark.parametrize(
        ("code", "groups", "cls"),
        [
            (1, [60], OpClass.READ),
            (2, [50], OpClass.WRITE),
            (2, [70], OpClass.PROGRAM),
            (3, [12], OpClass.CONTROL),
            (4, [12], OpClass.CONTROL),
            (5, [41], OpClass.CONTROL),
            (6, [12], OpClass.CONTROL),
            (5, [10], OpClass.WRITE),
            (7, [20], OpClass.WRITE),
            (12, [50, 20], OpClass.WRITE),
            (13, [], OpClass.CONTROL),
            (14, [], OpClass.CONTROL),
            (16, [], OpClass.CONTROL),
            (17, [], OpClass.CONTROL),
            (18, [], OpClass.CONTROL),
            (19, [], OpClass.CONTROL),
            (20, [60], OpClass.CONTROL),
            (21, [60], OpClass.CONTROL),
            (31, [], OpClass.CONTROL),
            (22, [60, 1], OpClass.OTHER),
            (23, [], OpClass.DIAGNOSTIC),
            (24, [], OpClass.OTHER),
            (25, [70], OpClass.PROGRAM),
            (26, [70], OpClass.PROGRAM),
            (27, [70], OpClass.PROGRAM),
            (28, [70], OpClass.READ),
            (29, [70], OpClass.PROGRAM),
            (30, [70], OpClass.PROGRAM),
            (32, [120], OpClass.SESSION),
            (33, [120], OpClass.SESSION),
            (130, [2], OpClass.OTHER),
            (200, [], OpClass.OTHER),
        ],
    )
    def test_op_class(self, code: int, groups: list[int], cls: OpClass) -> None:
        assert op_class(code, groups) is cls
