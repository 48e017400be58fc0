"""IEC 104 framing (APCI) and ASDU decoding, one layer at a time."""

from __future__ import annotations

import struct

import pytest

from otconduit.model import OpClass
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec104 import ApduStream, parse_asdu
from otconduit.protocols.iec104 import types as T
from otconduit.protocols.iec104.apci import Apdu, classify_control
from otconduit.protocols.iec104.asdu import cp24, cp56
from tests.protocols import iec104_helpers as H


def frame_all(data: bytes) -> list[Apdu | Malformed]:
    stream = ApduStream()
    stream.feed(data, 1, 1)
    out = list(stream.events())
    stream.end()
    return out + list(stream.events())


class TestApci:
    def test_formats(self) -> None:
        i = H.i_frame(5, 9, H.asdu(100, 6, [(0, b"\x14")]))
        events = frame_all(H.STARTDT_ACT + H.s_frame(300) + i)
        u, s, apdu = events
        assert isinstance(u, Apdu) and (u.format, u.u_function, u.ns, u.nr) == (
            "U",
            0x04,
            None,
            None,
        )
        assert isinstance(s, Apdu) and (s.format, s.nr, s.problem) == ("S", 300, None)
        assert isinstance(apdu, Apdu) and (apdu.format, apdu.ns, apdu.nr) == ("I", 5, 9)
        assert apdu.asdu[0] == 100 and apdu.offset == 12

    def test_sequence_numbers_use_15_bits(self) -> None:
        (apdu,) = frame_all(H.i_frame(32767, 16384, H.asdu(1, 3, [(1, b"\x01")])))
        assert isinstance(apdu, Apdu) and (apdu.ns, apdu.nr) == (32767, 16384)

    @pytest.mark.parametrize(
        ("control", "body", "kind", "problem"),
        [
            (b"\x07\x00\x00\x00", 0, "U", None),
            (b"\x83\x00\x00\x00", 0, "U", None),
            (b"\x0f\x00\x00\x00", 0, "U", "names no single function"),
            (b"\x43\x00\x01\x00", 0, "U", "reserved octets"),
            (b"\x43\x00\x00\x00", 3, "U", "carries 3 more octets"),
            (b"\x01\x00\x02\x00", 0, "S", None),
            (b"\x05\x00\x02\x00", 0, "S", "reserved bits"),
            (b"\x02\x00\x02\x00", 6, "I", None),
            (b"\x02\x00\x02\x00", 2, "I", "2 octets of ASDU"),
            (b"\x02\x00\x03\x00", 6, "I", "low bit"),
        ],
    )
    def test_control_field_rules(
        self, control: bytes, body: int, kind: str, problem: str | None
    ) -> None:
        got_kind, got_problem = classify_control(control, body)
        assert got_kind == kind
        if problem is None:
            assert got_problem is None
        else:
            assert got_problem is not None and problem in got_problem

    def test_garbage_is_reported_and_framing_resumes(self) -> None:
        events = frame_all(b"\x00\x01\x68\x02\x02" + H.TESTFR_ACT + b"\x05\x68\x01" + H.TESTFR_CON)
        kinds = [type(e).__name__ for e in events]
        assert kinds == ["Malformed", "Apdu", "Malformed", "Apdu"]
        first, _, second, last = events
        assert isinstance(first, Malformed) and first.data == b"\x00\x01\x68\x02\x02"
        assert first.reason.startswith("start octet 0x00 is not 0x68")
        assert (
            isinstance(second, Malformed) and second.offset == 11 and second.data == b"\x05\x68\x01"
        )
        assert isinstance(last, Apdu) and last.u_function == 0x80

    def test_length_below_four_resynchronises(self) -> None:
        (bad, good) = frame_all(b"\x68\x03\x01\x02\x03" + H.TESTFR_ACT)
        assert isinstance(bad, Malformed) and "length 3 outside 4..253" in bad.reason
        assert isinstance(good, Apdu)

    def test_truncated_at_end_and_gap(self) -> None:
        stream = ApduStream()
        stream.feed(H.TESTFR_ACT + H.TESTFR_ACT[:3], 1, 1)
        stream.gap(10, 2, 2)
        stream.feed(b"\x99" + H.TESTFR_CON + H.STARTDT_ACT[:4], 3, 3)
        stream.end()
        events = list(stream.events())
        assert [type(e).__name__ for e in events] == [
            "Apdu",
            "Malformed",
            "Malformed",
            "Apdu",
            "Malformed",
        ]
        assert isinstance(events[1], Malformed) and events[1].reason.startswith(
            "incomplete APDU before a gap"
        )
        assert isinstance(events[2], Malformed) and events[2].offset == 19
        assert isinstance(events[4], Malformed) and "4 of 6 octets" in events[4].reason

    def test_buffer_stays_bounded(self) -> None:
        stream = ApduStream()
        for i in range(200):
            stream.feed(bytes([i % 0x68]) * 100, i, i)
            list(stream.events())
            assert stream.buffered <= 4096 + 255


class TestAsdu:
    def test_header(self) -> None:
        a = parse_asdu(H.asdu(45, 7, [(4501, b"\x81")], ca=0x910D, oa=2, negative=True, test=True))
        assert not isinstance(a, str)
        assert (a.type_id, a.name, a.cot, a.negative, a.test) == (45, "C_SC_NA_1", 7, True, True)
        assert (a.originator, a.common_address, a.count, a.sq) == (2, 0x910D, 1, False)
        (obj,) = a.objects
        assert obj.ioa == 4501
        assert obj.fields == {"value": 1, "state": "on", "select": True, "qualifier": "none"}

    def test_sequence_of_elements(self) -> None:
        a = parse_asdu(H.asdu(1, 20, [(10010, b"\x01"), (0, b"\x90"), (0, b"\x00")], sq=True))
        assert not isinstance(a, str) and a.problem is None
        assert [(o.ioa, o.fields) for o in a.objects] == [
            (10010, {"value": 1}),
            (10011, {"value": 0, "quality": ["BL", "IV"]}),
            (10012, {"value": 0}),
        ]

    @pytest.mark.parametrize(
        ("type_id", "element", "fields"),
        [
            (3, b"\x02", {"value": 2, "state": "on"}),
            (5, b"\x7f\x00", {"value": -1}),
            (5, b"\x85\x01", {"value": 5, "transient": True, "quality": ["OV"]}),
            (7, b"\x0f\x00\x00\x80\x00", {"value": 0x8000000F}),
            (9, b"\x00\x40\x00", {"value": 0.5, "raw": 16384}),
            (11, b"\x18\xfc\x00", {"value": -1000}),
            (13, struct.pack("<f", 230.5) + b"\x00", {"value": 230.5}),
            (15, struct.pack("<i", -5) + b"\x23", {"value": -5, "sequence": 3, "quality": ["CY"]}),
            (21, b"\x00\xc0", {"value": -0.5, "raw": -16384}),
            (
                46,
                b"\x05",
                {"value": 1, "state": "off", "select": False, "qualifier": "short_pulse"},
            ),
            (47, b"\x82", {"value": 2, "state": "higher", "select": True, "qualifier": "none"}),
            (49, b"\x10\x27\x80", {"value": 10000, "select": True, "ql": 0}),
            (50, struct.pack("<f", 20.0) + b"\x00", {"value": 20.0, "select": False, "ql": 0}),
            (51, b"\x01\x02\x03\x04", {"value": 0x04030201}),
            (70, b"\x82", {"cause": "remote_reset", "after_parameter_change": True}),
            (100, b"\x15", {"qoi": 21, "scope": "group_1"}),
            (101, b"\x45", {"rqt": 5, "scope": "general", "freeze": "freeze"}),
            (105, b"\x01", {"qrp": 1, "reset": "general_reset"}),
            (
                112,
                struct.pack("<f", 1.5) + b"\x41",
                {"value": 1.5, "parameter": "threshold", "local_change": True},
            ),
        ],
    )
    def test_elements(self, type_id: int, element: bytes, fields: dict[str, object]) -> None:
        a = parse_asdu(H.asdu(type_id, 3, [(7, element)]))
        assert not isinstance(a, str) and a.problem is None, a
        assert a.objects[0].fields == fields

    def test_time_tags(self) -> None:
        tag = H.cp56(2024, 2, 29, 23, 59, 59_999)
        a = parse_asdu(H.asdu(30, 3, [(2, b"\x01" + tag)]))
        assert not isinstance(a, str)
        assert a.objects[0].fields == {"value": 1, "time": "2024-02-29 23:59:59.999"}
        assert cp56(bytes(tag[:2]) + bytes([tag[2] | 0x80, tag[3] | 0x80]) + tag[4:]).endswith(
            "invalid summer"
        )
        assert cp56(b"\x08\x00\x17\x13\x0d\x08\x6d") == "2009-08-13 19:23:00.008"  # year 109
        assert cp24(b"\xe8\x03\x05") == "05:01.000"
        b = parse_asdu(H.asdu(2, 3, [(2, b"\x01\xe8\x03\x05")]))
        assert not isinstance(b, str) and b.objects[0].fields["time"] == "05:01.000"

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            (H.asdu(13, 3, [(1, b"\x00" * 5)])[:-1], "7 octets of information objects"),
            (H.asdu(13, 3, [(1, b"\x00" * 5)]) + b"\x00", "where 1 M_ME_NC_1 objects need 8"),
            (bytes([13, 0, 3, 0, 1, 0]), "number of objects is 0"),
            (bytes([13, 1, 0, 0, 1, 0]) + bytes(8), "cause of transmission 0"),
            (bytes([25, 1, 3, 0, 1, 0]) + bytes(4), "type id 25 is reserved"),
        ],
    )
    def test_problems(self, data: bytes, problem: str) -> None:
        a = parse_asdu(data)
        assert not isinstance(a, str) and a.problem is not None and problem in a.problem

    def test_private_types_are_not_decoded_nor_malformed(self) -> None:
        a = parse_asdu(bytes([200, 1, 3, 0, 1, 0]) + bytes(10))
        assert not isinstance(a, str) and a.problem is None and a.objects == []
        assert a.name == "TYPE_200"

    def test_short_header(self) -> None:
        assert isinstance(parse_asdu(b"\x01\x01\x03"), str)


class TestTables:
    def test_every_named_type_has_a_layout_and_a_class(self) -> None:
        for type_id in T.TYPE_NAMES:
            assert type_id in T.ELEMENT_SIZE, type_id
            assert T.op_class(type_id) is not OpClass.OTHER, type_id
        # Wireshark 4.0's 76, and the 101-only types 17-19 (CP24 protection events),
        # 104 (test command) and 106 (delay acquisition) that 104 leaves out
        assert len(T.TYPE_NAMES) == 81

    def test_classes(self) -> None:
        assert T.op_class(13) is OpClass.READ
        assert T.op_class(45) is OpClass.CONTROL
        assert T.op_class(100) is OpClass.READ
        assert T.op_class(103) is OpClass.WRITE
        assert T.op_class(105) is OpClass.CONTROL
        assert T.op_class(120) is OpClass.PROGRAM
        assert T.op_class(90) is OpClass.SESSION
        assert T.op_class(200) is OpClass.OTHER
        assert T.cot_name(21) == "interrogated_group_1" and T.cot_name(63) == "cause_63"
