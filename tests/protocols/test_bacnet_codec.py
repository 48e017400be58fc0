"""BACnet layers one at a time: tags and values, BVLC, NPDU, APDU headers, services."""

from __future__ import annotations

from typing import Any

import pytest

from otconduit.protocols.bacnet import enums as E
from otconduit.protocols.bacnet import parse_apdu, parse_bvlc, parse_npdu, services
from otconduit.protocols.bacnet.properties import property_name
from otconduit.protocols.bacnet.tags import TagError, TagReader, app_value, named_value
from otconduit.protocols.bacnet.vendors import vendor_name
from tests.protocols import bacnet_helpers as B


class TestTags:
    @pytest.mark.parametrize(
        ("encoded", "value"),
        [
            (B.app_uint(0), 0),
            (B.app_uint(70000), 70000),
            (B.app_int(-2), -2),
            (B.app_int(-40000), -40000),
            (B.app_bool(True), True),
            (B.app_bool(False), False),
            (B.app_real(21.5), 21.5),
            (B.app_text("Zone 4"), "Zone 4"),
            (B.app_octets(b"\x01\xab"), "01ab"),
            (B.app_enum(3), 3),
            (B.app_obj(8, 1234), "device,1234"),
            (B.app_date(2024, 3, 9, 6), "2024-03-09"),
            (B.app_time(13, 5, 0, 25), "13:05:00.25"),
            (B.tag(8, False, b"\x03\xa0"), "10100"),  # 3 unused bits
            (B.tag(0, False, b""), None),
            (B.tag(5, False, b"\x40\x09\x21\xfb\x54\x44\x2d\x18"), 3.141592653589793),
        ],
    )
    def test_application_values(self, encoded: bytes, value: object) -> None:
        reader = TagReader(encoded)
        tag = reader.next()
        assert app_value(encoded, tag) == value
        assert reader.at_end

    def test_long_and_extended_tags(self) -> None:
        text = "x" * 300
        data = B.app_text(text) + B.tag(20, True, b"\x07")
        reader = TagReader(data)
        first = reader.next()
        assert app_value(data, first) == text[:256]
        second = reader.next()
        assert (second.number, second.context, second.end - second.start) == (20, True, 1)

    def test_utf16_and_latin1_strings(self) -> None:
        ucs2 = B.tag(7, False, b"\x04" + "Bâtiment".encode("utf-16-be"))
        latin = B.tag(7, False, b"\x05" + "Bâtiment".encode("latin-1"))
        for data in (ucs2, latin):
            assert app_value(data, TagReader(data).next()) == "Bâtiment"

    @pytest.mark.parametrize(
        "data",
        [b"", b"\x25", b"\x25\x05\x01", b"\x07", b"\x44\x00\x00", b"\x21", b"\x56"],
    )
    def test_short_or_bad_tags_raise_tag_error(self, data: bytes) -> None:
        reader = TagReader(data)
        with pytest.raises(TagError):
            tag = reader.next()
            app_value(data, tag)

    def test_named_enumerations(self) -> None:
        assert named_value(62, 117, 0) == "degrees-celsius"
        assert named_value(98, 117, 0) == "percent"
        assert named_value(189, 117, 0) == "watts-per-meter-per-degree-kelvin"
        assert named_value(0, 36, 0) == "normal"
        assert named_value(1, 85, 3) == "active"  # binary-input present-value
        assert named_value(1, 85, 0) == 1  # analog-input present-value stays a number
        assert named_value(3, 107, 8) == "no-segmentation"
        assert named_value(999, 117, 0) == "999"

    def test_tables(self) -> None:
        assert len(E.UNITS) == 190
        assert property_name(77) == "object-name"
        assert property_name(4194304) == "property-4194304"
        assert vendor_name(5) == "Johnson Controls, Inc."
        assert vendor_name(15) == "Cornell University"
        assert vendor_name(999999) == "Vendor 999999"
        assert E.object_type_name(8) == "device"
        assert E.object_type_name(130) == "proprietary-130"


class TestBvlc:
    def test_original_unicast(self) -> None:
        msg = parse_bvlc(B.unicast(B.confirmed(1, 12, b"")))
        assert not isinstance(msg, str)
        assert msg.function == E.ORIGINAL_UNICAST and msg.problem is None
        assert msg.npdu is not None and msg.npdu[0] == 1

    def test_forwarded_npdu_names_its_origin(self) -> None:
        msg = parse_bvlc(B.forwarded((192, 168, 1, 20, 47808), B.unconfirmed(8, b"")))
        assert not isinstance(msg, str)
        assert msg.origin == "192.168.1.20:47808"
        assert msg.npdu == B.npdu(B.unconfirmed(8, b""))

    def test_management_functions(self) -> None:
        bdt = bytes([10, 0, 0, 1, 0xBA, 0xC0, 255, 255, 255, 255])
        write = parse_bvlc(B.bvll(0x01, bdt * 2))
        assert not isinstance(write, str)
        assert write.entry_count == 2 and write.entries[0] == "10.0.0.1:47808/255.255.255.255"
        register = parse_bvlc(B.bvll(0x05, (900).to_bytes(2, "big")))
        assert not isinstance(register, str) and register.ttl == 900
        result = parse_bvlc(B.bvll(0x00, b"\x00\x30"))
        assert not isinstance(result, str) and result.result == 0x30
        delete = parse_bvlc(B.bvll(0x08, bytes([10, 0, 0, 9, 0xBA, 0xC0])))
        assert not isinstance(delete, str) and delete.address == "10.0.0.9:47808"
        fdt = parse_bvlc(B.bvll(0x07, bytes([10, 0, 0, 9, 0xBA, 0xC0, 0, 60, 0, 30])))
        assert not isinstance(fdt, str) and fdt.entries == ("10.0.0.9:47808 ttl=60 remaining=30",)

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"\x81\x0a", "shorter than a BVLC header"),
            (b"\x82\x0a\x00\x04", "BACnet/IPv6"),
            (b"\x45\x00\x00\x04", "is not 0x81"),
            (b"\x81\x0a\x00\x02", "below the header size"),
        ],
    )
    def test_unusable(self, data: bytes, reason: str) -> None:
        result = parse_bvlc(data)
        assert isinstance(result, str) and reason in result

    def test_length_field_disagreeing_with_the_datagram(self) -> None:
        data = bytearray(B.unicast(B.simple_ack(1, 20)))
        data[3] = 17
        msg = parse_bvlc(bytes(data))
        assert not isinstance(msg, str)
        # a framing note, not a problem: what follows keeps its own outcome
        assert msg.problem is None
        assert msg.length_note is not None and "17" in msg.length_note
        assert msg.npdu is not None and len(msg.npdu) == len(data) - 4  # the datagram wins


class TestNpdu:
    def test_routed_addresses(self) -> None:
        n = parse_npdu(B.npdu(b"\x10\x08", dnet=(5, b"\x07"), snet=(9, b"\x01\x02")))
        assert not isinstance(n, str)
        assert (n.dnet, n.dadr, n.snet, n.sadr, n.hop_count) == (5, b"\x07", 9, b"\x01\x02", 255)
        assert n.payload == b"\x10\x08"
        assert n.addressing() == {
            "dnet": 5,
            "dadr": "07",
            "hop_count": 255,
            "snet": 9,
            "sadr": "0102",
        }

    def test_network_layer_message(self) -> None:
        n = parse_npdu(B.npdu(b"\x00\x05", message=0x00))
        assert not isinstance(n, str)
        assert n.message_type == 0 and n.payload == b"\x00\x05"

    def test_proprietary_message_has_a_vendor(self) -> None:
        n = parse_npdu(bytes([1, 0x80, 0x90, 0x01, 0x04]))
        assert not isinstance(n, str) and n.vendor_id == 260

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"\x01", "shorter"),
            (b"\x02\x00\x10\x08", "version 2"),
            (b"\x01\x20\x00", "DNET"),
            (b"\x01\x08\x00\x05\x03\x01", "SADR"),
            (b"\x01\x80", "message type"),
        ],
    )
    def test_cut_short(self, data: bytes, reason: str) -> None:
        result = parse_npdu(data)
        assert isinstance(result, str) and reason in result

    def test_source_length_zero_is_a_problem(self) -> None:
        n = parse_npdu(bytes([1, 0x08, 0, 5, 0]) + b"\x10\x08")
        assert not isinstance(n, str) and n.problem is not None and "SLEN 0" in n.problem


class TestApdu:
    def test_confirmed_request_header(self) -> None:
        a = parse_apdu(B.confirmed(7, 12, b"\x0c", max_apdu=5))
        assert not isinstance(a, str)
        assert (a.pdu_type, a.invoke_id, a.service, a.max_apdu) == (0, 7, 12, 1476)
        assert a.segmented_accepted and a.max_segments == 32 and a.body == b"\x0c"

    def test_segmented_headers(self) -> None:
        a = parse_apdu(B.complex_ack(3, 14, b"xy", seg=(2, True)))
        assert not isinstance(a, str)
        assert (a.segmented, a.more_follows, a.sequence, a.window, a.body) == (
            True,
            True,
            2,
            4,
            b"xy",
        )

    def test_reply_headers(self) -> None:
        ack = parse_apdu(B.segment_ack(3, 9, server=True))
        rej = parse_apdu(B.reject(4, 9))
        abt = parse_apdu(B.abort(5, 4, server=False))
        assert not isinstance(ack, str) and (ack.sequence, ack.server) == (9, True)
        assert not isinstance(rej, str) and rej.reason == 9
        assert not isinstance(abt, str) and (abt.reason, abt.server) == (4, False)

    @pytest.mark.parametrize("data", [b"", b"\x00\x05", b"\x80\x00\x00", b"\x38\x01\x00"])
    def test_unreadable_headers(self, data: bytes) -> None:
        assert isinstance(parse_apdu(data), str)


def _decode(table: dict[int, services.Decoder], service: int, body: bytes) -> dict[str, Any]:
    detail, problem = services.decode(table, service, body)
    assert problem is None, problem
    return detail


class TestServices:
    def test_i_am(self) -> None:
        d = _decode(services.UNCONFIRMED_REQUESTS, 0, B.i_am(1234, 5, 1024, 0))
        assert d == {
            "object_type": "device",
            "instance": 1234,
            "object_id": (8 << 22) | 1234,
            "max_apdu": 1024,
            "segmentation": "segmented-both",
            "vendor_id": 5,
            "vendor": "Johnson Controls, Inc.",
        }

    def test_who_is_and_who_has(self) -> None:
        assert _decode(services.UNCONFIRMED_REQUESTS, 8, b"")["range"] == "All"
        ranged = _decode(services.UNCONFIRMED_REQUESTS, 8, B.ctx(0, 10) + B.ctx(1, 20))
        assert ranged["range"] == "10-20"
        by_name = _decode(services.UNCONFIRMED_REQUESTS, 7, B.tag(3, True, b"\x00Boiler"))
        assert by_name["object_name"] == "Boiler" and by_name["range"] == "All"
        by_id = _decode(services.UNCONFIRMED_REQUESTS, 7, B.ctx_obj(2, 0, 4))
        assert (by_id["object_type"], by_id["instance"]) == ("analog-input", 4)

    def test_i_have(self) -> None:
        body = B.app_obj(8, 77) + B.app_obj(2, 3) + B.app_text("Setpoint")
        d = _decode(services.UNCONFIRMED_REQUESTS, 1, body)
        assert (d["device_instance"], d["object_type"], d["object_name"]) == (
            77,
            "analog-value",
            "Setpoint",
        )

    def test_read_property_multiple_and_ack(self) -> None:
        req = (
            B.ctx_obj(0, 8, 10)
            + B.opening(1)
            + B.ctx(0, 70)
            + B.ctx(0, 44)
            + B.closing(1)
            + B.ctx_obj(0, 0, 1)
            + B.opening(1)
            + B.ctx(0, 85)
            + B.ctx(1, 0)
            + B.closing(1)
        )
        d = _decode(services.CONFIRMED_REQUESTS, 14, req)
        assert d["property_count"] == 3
        assert d["objects"][1]["properties"] == [{"property": "present-value", "array_index": 0}]
        ack = (
            B.ctx_obj(0, 8, 10)
            + B.opening(1)
            + B.ctx(2, 70)
            + B.opening(4)
            + B.app_text("MX-1")
            + B.closing(4)
            + B.ctx(2, 44)
            + B.opening(5)
            + B.app_enum(2)
            + B.app_enum(32)
            + B.closing(5)
            + B.closing(1)
        )
        d = _decode(services.COMPLEX_ACKS, 14, ack)
        assert d["results"] == [
            {"object_type": "device", "instance": 10, "property": "model-name", "value": "MX-1"},
            {
                "object_type": "device",
                "instance": 10,
                "property": "firmware-revision",
                "error_class": "property",
                "error": "unknown-property",
            },
        ]

    def test_write_property_with_priority(self) -> None:
        body = B.ctx_obj(0, 1, 2) + B.ctx(1, 85) + B.opening(3) + B.app_real(42.0)
        body += B.closing(3) + B.ctx(4, 8)
        d = _decode(services.CONFIRMED_REQUESTS, 15, body)
        assert (d["property"], d["value"], d["priority"]) == ("present-value", 42.0, 8)

    def test_write_property_multiple(self) -> None:
        body = B.ctx_obj(0, 4, 1) + B.opening(1)
        body += B.ctx(0, 81) + B.opening(2) + B.app_bool(True) + B.closing(2)
        body += B.ctx(0, 85) + B.opening(2) + B.app_enum(1) + B.closing(2) + B.ctx(3, 1)
        body += B.closing(1)
        d = _decode(services.CONFIRMED_REQUESTS, 16, body)
        assert d["written_properties"] == ["out-of-service", "present-value"]
        assert d["writes"][1] == {
            "object_type": "binary-output",
            "instance": 1,
            "property": "present-value",
            "value": "active",
            "priority": 1,
        }

    def test_reinitialize_device_keeps_no_password(self) -> None:
        body = B.ctx(0, 1) + B.tag(1, True, b"\x00secret")
        d = _decode(services.CONFIRMED_REQUESTS, 20, body)
        assert d == {"state_code": 1, "state": "warmstart", "password_given": True}

    def test_device_communication_control(self) -> None:
        d = _decode(services.CONFIRMED_REQUESTS, 17, B.ctx(0, 30) + B.ctx(1, 1))
        assert d == {"duration_min": 30, "state_code": 1, "enable_disable": "disable"}

    def test_atomic_files(self) -> None:
        read = B.app_obj(10, 2) + B.opening(0) + B.app_int(0) + B.app_uint(512) + B.closing(0)
        d = _decode(services.CONFIRMED_REQUESTS, 6, read)
        assert (d["instance"], d["access"], d["start"], d["count"]) == (2, "stream", 0, 512)
        ack = B.app_bool(True) + B.opening(0) + B.app_int(0) + B.app_octets(b"abc") + B.closing(0)
        assert _decode(services.COMPLEX_ACKS, 6, ack) == {
            "end_of_file": True,
            "access": "stream",
            "start": 0,
            "octets": 3,
        }
        write = B.app_obj(10, 2) + B.opening(1) + B.app_int(4) + B.app_uint(2)
        write += B.app_octets(b"\x7fELF") + B.app_octets(b"xyz") + B.closing(1)
        d = _decode(services.CONFIRMED_REQUESTS, 7, write)
        assert (d["access"], d["records"], d["octets"], d["data_head"]) == (
            "record",
            2,
            7,
            "7f454c46",
        )
        assert _decode(services.COMPLEX_ACKS, 7, B.tag(0, True, b"\x10")) == {
            "access": "stream",
            "start": 16,
        }

    def test_subscribe_cov_and_cancellation(self) -> None:
        sub = B.ctx(0, 9) + B.ctx_obj(1, 0, 3) + B.ctx(2, 1) + B.ctx(3, 600)
        d = _decode(services.CONFIRMED_REQUESTS, 5, sub)
        assert (d["process_id"], d["issue_confirmed"], d["lifetime_s"]) == (9, True, 600)
        cancel = _decode(services.CONFIRMED_REQUESTS, 5, B.ctx(0, 9) + B.ctx_obj(1, 0, 3))
        assert cancel["cancellation"] is True

    def test_cov_notification(self) -> None:
        body = B.ctx(0, 9) + B.ctx_obj(1, 8, 100) + B.ctx_obj(2, 0, 3) + B.ctx(3, 0)
        body += B.opening(4) + B.ctx(0, 85) + B.opening(2) + B.app_real(1.5) + B.closing(2)
        body += B.ctx(0, 111) + B.opening(2) + B.tag(8, False, b"\x04\x00") + B.closing(2)
        body += B.closing(4)
        d = _decode(services.UNCONFIRMED_REQUESTS, 2, body)
        assert d["device_instance"] == 100 and d["property_count"] == 2
        assert d["values"][0] == {"property": "present-value", "value": 1.5}
        assert d["values"][1] == {"property": "status-flags", "value": "0000"}

    def test_time_synchronization(self) -> None:
        body = B.app_date(2025, 1, 31, 5) + B.app_time(23, 59, 58, 0)
        d = _decode(services.UNCONFIRMED_REQUESTS, 6, body)
        assert d == {"time": "2025-01-31 23:59:58.00"}

    def test_problems_keep_what_was_read(self) -> None:
        detail, problem = services.decode(services.CONFIRMED_REQUESTS, 12, B.ctx_obj(0, 8, 1))
        assert detail["instance"] == 1 and problem is not None
        detail, problem = services.decode(
            services.CONFIRMED_REQUESTS, 12, B.read_property(0, 1, 85) + b"\x00"
        )
        assert problem == "1 octets after the service parameters"

    def test_error_bodies(self) -> None:
        assert services.decode_error(B.app_enum(2) + B.app_enum(31)) == (2, 31, None)
        wrapped = B.opening(0) + B.app_enum(1) + B.app_enum(31) + B.closing(0) + B.ctx(1, 0)
        assert services.decode_error(wrapped) == (1, 31, None)
        assert services.decode_error(b"")[2] is not None
