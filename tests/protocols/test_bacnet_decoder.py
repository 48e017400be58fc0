"""The BACnet/IP connection decoder: transactions, segmentation, errors, identity,
network layer and BVLL management, roles, recognition and the dangerous-operation data."""

from __future__ import annotations

import pytest

from otconduit.detect.attack import attack_table
from otconduit.detect.rules import CATEGORIES, RULES
from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.bacnet import (
    DANGEROUS,
    SPEC,
    BacnetConnectionDecoder,
    bacnet_verdict,
    dangerous,
)
from otconduit.protocols.bacnet.danger import DEFINES
from otconduit.protocols.bacnet.session import MAX_REASSEMBLIES, MAX_SEGMENTED_OCTETS
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.danger import SEVERITIES
from otconduit.protocols.events import Malformed
from tests.protocols import bacnet_helpers as B

C2S, S2C = 0, 1


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def malformed(events: list[DecoderEvent]) -> list[Malformed]:
    return [e for e in events if isinstance(e, Malformed)]


def claims(events: list[DecoderEvent]) -> dict[tuple[str, str], str]:
    return {(c.ip, c.attribute): c.value for c in events if isinstance(c, IdentityClaim)}


RP_AI1 = B.read_property(0, 1, 85)
RP_AI1_ACK = B.read_property_ack(0, 1, 85, B.app_real(20.5))


class TestConfirmed:
    def test_read_property_transaction(self) -> None:
        events = B.decode(
            [
                (C2S, B.unicast(B.confirmed(1, 12, RP_AI1))),
                (S2C, B.unicast(B.complex_ack(1, 12, RP_AI1_ACK))),
            ]
        )
        (op,) = ops(events)
        assert (op.function, op.function_code, op.operation, op.status) == (
            "read_property",
            12,
            OpClass.READ,
            OpStatus.OK,
        )
        assert (op.src_ip, op.dst_ip, op.transaction_id) == ("10.0.0.1", "10.0.0.2", 1)
        assert (op.request_frame, op.response_frame, op.latency_ns) == (1, 2, 1_000_000_000)
        assert op.address == 1 and op.quantity == 1 and op.unit is None and op.values is None
        assert op.detail["value"] == 20.5 and op.detail["property"] == "present-value"
        assert op.detail["pdu_type"] == "CONFIRMED_REQUEST"
        assert op.detail["response_pdu_type"] == "COMPLEX_ACK"
        assert op.detail["bvlc"] == "Original-Unicast-NPDU"
        assert not malformed(events)

    def test_write_property_values_and_priority(self) -> None:
        body = B.ctx_obj(0, 2, 7) + B.ctx(1, 85) + B.opening(3) + B.app_uint(55) + B.closing(3)
        body += B.ctx(4, 8)
        events = B.decode(
            [(C2S, B.unicast(B.confirmed(2, 15, body))), (S2C, B.unicast(B.simple_ack(2, 15)))]
        )
        (op,) = ops(events)
        assert (op.function, op.operation, op.values, op.address) == (
            "write_property",
            OpClass.WRITE,
            (55,),
            (2 << 22) | 7,
        )
        assert op.detail["priority"] == 8 and op.detail["response_pdu_type"] == "SIMPLE_ACK"

    def test_the_server_side_may_request_too(self) -> None:
        events = B.decode(
            [
                (S2C, B.unicast(B.confirmed(9, 12, RP_AI1))),
                (C2S, B.unicast(B.complex_ack(9, 12, RP_AI1_ACK))),
            ]
        )
        (op,) = ops(events)
        assert (op.src_ip, op.dst_ip, op.status) == ("10.0.0.2", "10.0.0.1", OpStatus.OK)

    def test_same_invoke_id_in_both_directions_does_not_cross(self) -> None:
        events = B.decode(
            [
                (C2S, B.unicast(B.confirmed(4, 12, RP_AI1))),
                (
                    S2C,
                    B.unicast(
                        B.confirmed(4, 15, RP_AI1 + B.opening(3) + B.app_real(1.0) + B.closing(3))
                    ),
                ),
                (C2S, B.unicast(B.simple_ack(4, 15))),
                (S2C, B.unicast(B.complex_ack(4, 12, RP_AI1_ACK))),
            ]
        )
        by_function = {o.function: o for o in ops(events)}
        assert by_function["write_property"].src_ip == "10.0.0.2"
        assert by_function["write_property"].response_frame == 3
        assert by_function["read_property"].response_frame == 4

    def test_errors_rejects_and_aborts(self) -> None:
        events = B.decode(
            [
                (C2S, B.unicast(B.confirmed(1, 20, B.ctx(0, 0) + B.tag(1, True, b"\x00pw")))),
                (S2C, B.unicast(B.error(1, 20, 4, 26))),
                (C2S, B.unicast(B.confirmed(2, 12, RP_AI1))),
                (S2C, B.unicast(B.reject(2, 9))),
                (C2S, B.unicast(B.confirmed(3, 12, RP_AI1))),
                (S2C, B.unicast(B.abort(3, 4, server=True))),
                (C2S, B.unicast(B.confirmed(5, 12, RP_AI1))),
                (C2S, B.unicast(B.abort(5, 0, server=False))),
            ]
        )
        result = ops(events)
        assert [(o.status, o.exception, o.exception_code) for o in result] == [
            (OpStatus.EXCEPTION, "password-failure", 26),
            (OpStatus.EXCEPTION, "unrecognized-service", 0x10009),
            (OpStatus.EXCEPTION, "segmentation-not-supported", 0x20004),
            (OpStatus.EXCEPTION, "other", 0x20000),
        ]
        assert result[0].detail["error_class"] == "security"
        assert result[0].detail["state"] == "coldstart" and result[0].values == (0,)
        assert result[2].detail["abort_by"] == "server"
        assert result[3].detail["abort_by"] == "client" and result[3].response_frame == 8

    def test_unanswered_and_orphans(self) -> None:
        events = B.decode(
            [(C2S, B.unicast(B.confirmed(1, 12, RP_AI1))), (S2C, B.unicast(B.simple_ack(77, 15)))]
        )
        orphan, unanswered = ops(events)
        assert orphan.detail["orphan_response"] is True and orphan.function == "write_property"
        assert (orphan.src_ip, orphan.request_frame, orphan.response_frame) == ("10.0.0.1", None, 2)
        assert unanswered.status is OpStatus.NO_RESPONSE and unanswered.request_frame == 1

    def test_retries_are_one_transaction(self) -> None:
        req = B.unicast(B.confirmed(6, 12, RP_AI1))
        events = B.decode(
            [(C2S, req), (C2S, req), (S2C, B.unicast(B.complex_ack(6, 12, RP_AI1_ACK)))]
        )
        (op,) = ops(events)
        assert op.detail["retries"] == 1 and op.request_frame == 1 and op.response_frame == 3

    def test_requests_expire_after_the_reply_wait(self) -> None:
        dec = BacnetConnectionDecoder(B.ENDPOINTS)
        dec.feed(C2S, B.unicast(B.confirmed(1, 12, RP_AI1)), 1, 0)
        dec.feed(C2S, B.unicast(B.confirmed(2, 12, RP_AI1)), 2, 61_000_000_000)
        (op,) = ops(dec.events())
        assert op.status is OpStatus.NO_RESPONSE and op.transaction_id == 1
        assert dec.session.outstanding == 1

    def test_routed_reply_matches_by_network_address(self) -> None:
        remote = (7, b"\x05")
        events = B.decode(
            [
                (C2S, B.unicast(B.confirmed(1, 12, RP_AI1), dnet=remote)),
                (S2C, B.unicast(B.complex_ack(1, 12, RP_AI1_ACK), snet=remote)),
                (S2C, B.unicast(B.complex_ack(1, 12, RP_AI1_ACK), snet=(8, b"\x05"))),
            ]
        )
        matched, orphan = ops(events)
        assert matched.response_frame == 2 and matched.detail["dnet"] == 7
        assert matched.detail["response_snet"] == 7 and matched.detail["response_sadr"] == "05"
        assert orphan.detail["orphan_response"] is True


def _rpm_ack(count: int) -> bytes:
    body = B.ctx_obj(0, 8, 1) + B.opening(1)
    for i in range(count):
        body += B.ctx(2, 77) + B.ctx(3, i) + B.opening(4) + B.app_text(f"n{i:03d}") + B.closing(4)
    return body + B.closing(1)


def _segments(apdu_body: bytes, size: int) -> list[bytes]:
    return [apdu_body[i : i + size] for i in range(0, len(apdu_body), size)]


class TestSegmentation:
    def test_segmented_complex_ack_is_reassembled(self) -> None:
        body = _rpm_ack(40)
        parts = _segments(body, 200)
        rpm = B.ctx_obj(0, 8, 1) + B.opening(1) + B.ctx(0, 77) + B.closing(1)
        packets = [(C2S, B.unicast(B.confirmed(3, 14, rpm)))]
        for seq, part in enumerate(parts):
            more = seq < len(parts) - 1
            packets.append((S2C, B.unicast(B.complex_ack(3, 14, part, seg=(seq, more)))))
            packets.append((C2S, B.unicast(B.segment_ack(3, seq, server=False))))
        packets.insert(3, packets[1])  # a retransmitted segment
        dec = BacnetConnectionDecoder(B.ENDPOINTS)
        events: list[DecoderEvent] = []
        for frame, (d, data) in enumerate(packets, 1):
            dec.feed(d, data, frame, frame)
            events += dec.events()
        events += dec.finish()
        (op,) = ops(events)
        assert op.status is OpStatus.OK, op.detail
        assert op.detail["response_segments"] == len(parts)
        assert len(op.detail["results"]) == 40 and op.detail["results"][39]["value"] == "n039"
        # the last SegmentACK follows the reply that completed the transaction
        assert op.detail["segment_acks"] == len(parts) - 1
        assert dec.session.segment_acks == len(parts)
        assert dec.session.duplicate_segments == 1 and dec.session.segmented == 1
        assert dec.pdu_counts[(3, 14)] == len(parts) + 1
        assert not malformed(events)

    def test_segmented_request(self) -> None:
        body = B.app_obj(10, 1) + B.opening(0) + B.app_int(0)
        body += B.app_octets(bytes(900)) + B.closing(0)
        parts = _segments(body, 400)
        packets = [
            (C2S, B.unicast(B.confirmed(8, 7, part, seg=(i, i < len(parts) - 1))))
            for i, part in enumerate(parts)
        ]
        packets.append((S2C, B.unicast(B.complex_ack(8, 7, B.tag(0, True, b"\x00")))))
        (op,) = ops(B.decode(packets))
        assert op.function == "atomic_write_file" and op.operation is OpClass.PROGRAM
        assert op.detail["segments"] == 3 and op.detail["octets"] == 900
        assert op.status is OpStatus.OK and op.request_frame == 3

    def test_missing_segment_and_cut_short(self) -> None:
        body = _rpm_ack(30)
        parts = _segments(body, 100)
        packets = [(S2C, B.unicast(B.complex_ack(1, 14, parts[0], seg=(0, True))))]
        packets.append((S2C, B.unicast(B.complex_ack(1, 14, parts[2], seg=(2, True)))))
        events = B.decode(packets)
        (op,) = ops(events)
        assert op.status is OpStatus.MALFORMED
        reason = op.detail["malformed_reason"]
        assert "segments 1..1 missing" in reason and "cut short after 2 segments" in reason
        assert any("cut short" in m.reason for m in malformed(events))

    def test_reassembly_is_bounded(self) -> None:
        dec = BacnetConnectionDecoder(B.ENDPOINTS)
        for invoke in range(MAX_REASSEMBLIES + 3):
            dec.feed(
                S2C, B.unicast(B.complex_ack(invoke, 14, b"\x00" * 50, seg=(0, True))), invoke, 0
            )
            assert dec.session.reassembling <= MAX_REASSEMBLIES
        big = b"\x00" * 1400
        for seq in range(60):
            dec.feed(C2S, B.unicast(B.complex_ack(200, 14, big, seg=(seq, True))), 100 + seq, 0)
        events = dec.events() + dec.finish()
        assert dec.session.reassembling == 0
        reasons = " ".join(m.reason for m in malformed(events))
        assert f"more than {MAX_SEGMENTED_OCTETS} octets" in reasons


class TestUnconfirmedAndIdentity:
    def test_who_is_and_i_am(self) -> None:
        events = B.decode(
            [
                (C2S, B.broadcast(B.unconfirmed(8, b""))),
                (S2C, B.broadcast(B.unconfirmed(0, B.i_am(721, 15)))),
            ]
        )
        who, iam = ops(events)
        assert (who.function, who.function_code, who.operation) == (
            "who_is",
            0x108,
            OpClass.IDENTITY,
        )
        assert who.detail["range"] == "All" and who.detail["bvlc"] == "Original-Broadcast-NPDU"
        assert (iam.function, iam.unit, iam.src_ip) == ("i_am", 721, "10.0.0.2")
        assert iam.detail["vendor"] == "Cornell University"
        assert claims(events) == {
            ("10.0.0.2", "bacnet_device_instance"): "721",
            ("10.0.0.2", "vendor_id"): "15",
            ("10.0.0.2", "vendor"): "Cornell University",
        }

    def test_forwarded_i_am_is_claimed_for_its_origin(self) -> None:
        events = B.decode(
            [(S2C, B.forwarded((192, 168, 9, 9, 47808), B.unconfirmed(0, B.i_am(5, 8))))]
        )
        (op,) = ops(events)
        assert op.detail["forwarded_from"] == "192.168.9.9:47808"
        assert claims(events)[("192.168.9.9", "vendor")] == "Delta Controls"

    def test_routed_i_am_is_not_claimed_for_the_router(self) -> None:
        data = B.bvll(0x0B, B.npdu(B.unconfirmed(0, B.i_am(5, 8)), snet=(3, b"\x11")))
        events = B.decode([(S2C, data)])
        assert not claims(events)
        assert ops(events)[0].detail["snet"] == 3

    def test_device_properties_are_claimed(self) -> None:
        rpm = B.ctx_obj(0, 8, 4194303) + B.opening(1) + B.ctx(0, 8) + B.closing(1)
        ack = B.ctx_obj(0, 8, 42) + B.opening(1)
        for prop, value in (
            (121, "Acme"),
            (70, "BC-9"),
            (44, "2.1.0"),
            (12, "app 7"),
            (77, "AHU-1"),
        ):
            ack += B.ctx(2, prop) + B.opening(4) + B.app_text(value) + B.closing(4)
        ack += B.closing(1)
        events = B.decode(
            [(C2S, B.unicast(B.confirmed(1, 14, rpm))), (S2C, B.unicast(B.complex_ack(1, 14, ack)))]
        )
        assert claims(events) == {
            ("10.0.0.2", "vendor_name"): "Acme",
            ("10.0.0.2", "model"): "BC-9",
            ("10.0.0.2", "firmware"): "2.1.0",
            ("10.0.0.2", "software_version"): "app 7",
            ("10.0.0.2", "device_name"): "AHU-1",
            ("10.0.0.2", "bacnet_device_instance"): "42",
        }

    def test_claims_are_made_once(self) -> None:
        iam = B.broadcast(B.unconfirmed(0, B.i_am(1, 5)))
        events = B.decode([(S2C, iam)] * 5)
        assert len([e for e in events if isinstance(e, IdentityClaim)]) == 3

    def test_time_sync_and_cov(self) -> None:
        sync = B.unconfirmed(6, B.app_date(2025, 6, 1, 7) + B.app_time(8, 0, 0, 0))
        cov = B.ctx(0, 1) + B.ctx_obj(1, 8, 3) + B.ctx_obj(2, 0, 1) + B.ctx(3, 60) + B.opening(4)
        cov += B.ctx(0, 85) + B.opening(2) + B.app_real(3.0) + B.closing(2) + B.closing(4)
        events = B.decode([(C2S, B.broadcast(sync)), (S2C, B.unicast(B.unconfirmed(2, cov)))])
        t, c = ops(events)
        assert (t.operation, t.detail["time"]) == (OpClass.WRITE, "2025-06-01 08:00:00.00")
        assert (c.operation, c.unit, c.detail["values"][0]["value"]) == (OpClass.READ, 3, 3.0)


class TestNetworkAndBvll:
    def test_network_layer_messages(self) -> None:
        who_router = B.bvll(0x0B, B.npdu(b"", message=0x00))
        i_am_router = B.bvll(0x0B, B.npdu(b"\x00\x05\x00\x06", message=0x01))
        init_rt = B.bvll(0x0A, B.npdu(bytes([1, 0, 9, 1, 0]), message=0x06))
        query_rt = B.bvll(0x0A, B.npdu(b"\x00", message=0x06))
        result = ops(
            B.decode([(C2S, who_router), (S2C, i_am_router), (C2S, init_rt), (C2S, query_rt)])
        )
        assert [(o.function, o.function_code, o.operation) for o in result] == [
            ("who_is_router_to_network", 0x200, OpClass.IDENTITY),
            ("i_am_router_to_network", 0x201, OpClass.IDENTITY),
            ("initialize_routing_table", 0x206, OpClass.WRITE),
            ("initialize_routing_table", 0x206, OpClass.READ),
        ]
        assert result[1].detail["networks"] == [5, 6]
        assert result[2].detail["networks"] == [9]

    def test_bvll_management_and_results(self) -> None:
        bdt = bytes([10, 0, 0, 1, 0xBA, 0xC0, 255, 255, 255, 255])
        events = B.decode(
            [
                (C2S, B.bvll(0x02, b"")),
                (S2C, B.bvll(0x00, b"\x00\x20")),
                (C2S, B.bvll(0x01, bdt)),
                (S2C, B.bvll(0x00, b"\x00\x00")),
                (C2S, B.bvll(0x05, b"\x00\x3c")),
                (C2S, B.bvll(0x06, b"")),
                (S2C, B.bvll(0x07, b"")),
            ]
        )
        result = ops(events)
        assert [(o.function, o.status, o.response_frame) for o in result] == [
            ("read_broadcast_distribution_table", OpStatus.EXCEPTION, 2),
            ("write_broadcast_distribution_table", OpStatus.OK, 4),
            ("read_foreign_device_table", OpStatus.OK, 7),
            ("register_foreign_device", OpStatus.NO_RESPONSE, None),
        ]
        assert result[0].exception == "Read-Broadcast-Distribution-Table-NAK"
        assert result[1].detail["entries"] == ["10.0.0.1:47808/255.255.255.255"]
        assert result[3].detail["ttl_s"] == 60 and result[3].operation is OpClass.SESSION


class TestMalformed:
    def test_every_layer_reports(self) -> None:
        events = B.decode(
            [
                (C2S, b"\x81\x0a\x00"),
                (C2S, B.bvll(0x0A, b"\x02\x00\x10\x08")),
                (C2S, B.bvll(0x0A, B.npdu(b"\x90\x00"))),
                (C2S, B.unicast(B.confirmed(1, 12, B.ctx_obj(0, 0, 1)))),
                (C2S, B.unicast(B.unconfirmed(0, B.app_obj(8, 1)))),
            ]
        )
        reasons = [m.reason for m in malformed(events)]
        assert reasons[0].startswith("datagram of 3 octets")
        assert reasons[1].startswith("NPDU: NPDU protocol version 2")
        assert reasons[2].startswith("APDU: APDU type 9 is reserved")
        assert reasons[3].startswith("read_property request:")
        assert reasons[4].startswith("i_am:")
        i_am, rp = ops(events)
        assert i_am.status is OpStatus.MALFORMED and rp.status is OpStatus.MALFORMED
        assert not claims(events)

    def test_trailing_bytes_are_reported_and_the_rest_decoded(self) -> None:
        clean = B.decode([(C2S, B.broadcast(B.unconfirmed(0, B.i_am(3, 5))))])
        trailing = B.decode([(C2S, B.broadcast(B.unconfirmed(0, B.i_am(3, 5))) + b"\x00\x01")])
        bvlc, service = [e.reason for e in malformed(trailing)]
        assert bvlc == "BVLC: BVLC length 20 but the datagram has 22 octets"
        assert service == "i_am: 2 octets after the service parameters"
        assert ops(clean)[0].detail == {
            k: v
            for k, v in ops(trailing)[0].detail.items()
            if k not in ("malformed_reason", "framing_note")
        }
        assert (
            ops(trailing)[0].detail["framing_note"]
            == "BVLC length 20 but the datagram has 22 octets"
        )

    def test_empty_datagrams_are_ignored(self) -> None:
        dec = BacnetConnectionDecoder(B.ENDPOINTS)
        dec.feed(C2S, b"", 1, 1)
        assert dec.finish() == [] and dec.empty_datagrams == 1


class TestRecognitionAndData:
    @pytest.mark.parametrize(
        "data",
        [
            B.broadcast(B.unconfirmed(8, b"")),
            B.forwarded((10, 0, 0, 1, 47808), B.unconfirmed(8, b"")),
            B.bvll(0x00, b"\x00\x00"),
            B.bvll(0x02, b""),
            B.bvll(0x07, bytes(10)),
        ],
    )
    def test_bvll_is_recognised(self, data: bytes) -> None:
        assert bacnet_verdict(data, b"", False) is True
        assert bacnet_verdict(b"", data, True) is True

    @pytest.mark.parametrize(
        "data",
        [
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x81\x0a\x00\x09\x02\x00\x10\x08\x00",  # NPDU version 2
            bytes(12),
        ],
    )
    def test_other_traffic_is_not(self, data: bytes) -> None:
        assert bacnet_verdict(data, b"", True) is False
        assert bacnet_verdict(b"", b"", True) is None

    @pytest.mark.parametrize(
        "data",
        [
            b"\x81\x0a\x00\x10\x01\x00",  # length disagrees
            b"\x81\x00\x00\x05\x00",  # BVLC-Result of the wrong size
        ],
    )
    def test_a_bad_length_is_bacnet_on_its_port_only(self, data: bytes) -> None:
        """Padded or truncated datagrams (bacnet_example.pcap's ReinitializeDevice with a
        password after the BVLC length) are decoded and reported on UDP 47808, so
        padding a request does not hide it; elsewhere they are not recognised."""
        assert bacnet_verdict(data, b"", False) is False
        assert bacnet_verdict(data, b"", True) is True

    def test_spec(self) -> None:
        assert SPEC.name == "bacnet" and SPEC.transports == frozenset({"udp"})
        assert 47808 in SPEC.ports and isinstance(
            SPEC.factory(B.ENDPOINTS), BacnetConnectionDecoder
        )

    def test_dangerous_entries_name_known_rules_and_techniques(self) -> None:
        table = attack_table()
        rule_ids = set(RULES) | {d.id for d in DEFINES}
        for entry in DANGEROUS:
            assert entry.techniques and all(t in table.techniques for t in entry.techniques)
            assert entry.rule in rule_ids, entry
            assert entry.severity in (None, *SEVERITIES)
        for definition in DEFINES:
            assert definition.category in CATEGORIES and definition.id.startswith("bacnet-")
            assert all(t in table.techniques for t in definition.techniques)
            assert definition.id not in RULES or RULES[definition.id].title == definition.title

    def test_dangerous_matches(self) -> None:
        def keys(function: str, detail: dict[str, object], cls: str = "") -> set[str]:
            return {d.key for d in dangerous(function, detail, cls)}

        assert keys("reinitialize_device", {"state": "warmstart"}) == {"reinitialize-restart"}
        assert keys("reinitialize_device", {"state": "startbackup"}) == {"reinitialize-backup"}
        assert keys("device_communication_control", {"enable_disable": "enable"}) == set()
        assert keys("device_communication_control", {"enable_disable": "disable"}) == {
            "communication-disable"
        }
        assert keys("write_property_multiple", {"written_properties": ["out-of-service"]}) == {
            "out-of-service-multiple",
            "property-write",
        }
        assert keys("initialize_routing_table", {}, "write") == {"routing-change"}
        assert keys("initialize_routing_table", {}, "read") == set()
        assert keys("read_property", {}) == set()
