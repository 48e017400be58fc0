"""The PROFINET decoder on hand-built frames and datagrams (encoders in
:mod:`profinet_helpers`, from IEC 61158-6-10 and C706): DCP discovery, identity and
configuration with its dangerous Sets, alarms, RT stream counting and its IOCR
annotation, IO-CM calls across flows with fragments, I&M0 identity, faults and pings,
the per-flow adapter, recognition, and the rules' examples."""

from __future__ import annotations

import json
import struct
import uuid

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.profinet import SPEC, ProfinetDecoder, verdict
from otconduit.protocols.profinet import danger as D

from . import profinet_helpers as H

CTRL = "00:0e:8c:00:00:01"
DEV1 = "00:0e:8c:00:00:11"
DEV2 = "00:0e:8c:00:00:12"
MCAST = "01:0e:cf:00:00:00"
MS = 1_000_000
AR = uuid.UUID("0badc0de-0000-4000-8000-000000000001")


class Run:
    def __init__(self) -> None:
        self.dec = ProfinetDecoder()
        self.frame = 0
        self.events: list[DecoderEvent] = []

    def l2(self, src: str, dst: str, payload: bytes, ts: int) -> Run:
        self.frame += 1
        self.dec.feed_frame(0x8892, src, dst, payload, self.frame, ts)
        self.events += self.dec.events()
        return self

    def udp(self, src: tuple[str, int], dst: tuple[str, int], data: bytes, ts: int) -> Run:
        self.frame += 1
        self.dec.feed_datagram(*src, *dst, data, self.frame, ts)
        self.events += self.dec.events()
        return self

    def finish(self) -> list[DecoderEvent]:
        return self.events + self.dec.finish()


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def rules(op: Operation) -> set[str]:
    view = json.loads(
        json.dumps({"protocol": op.protocol, "function": op.function, "detail": op.detail})
    )
    return {h.rule for h in D.classify(view)}


def ident_response(xid: int, name: str, ip: str) -> bytes:
    blocks = (
        H.dcp_block(2, 2, name.encode())
        + H.dcp_block(2, 1, b"ET 200SP")
        + H.dcp_block(2, 3, struct.pack(">HH", 0x002A, 0x0313))
        + H.dcp_block(2, 4, b"\x01\x00")
        + H.dcp_block(1, 2, H.ip4(ip) + H.ip4("255.255.255.0") + H.ip4("0.0.0.0"), info=1)
    )
    return H.dcp_pdu(0xFEFF, 5, 1, xid, blocks)


# -- DCP ---------------------------------------------------------------------------------
def test_identify_all_pairs_each_answer_and_claims_identity() -> None:
    request = H.dcp_pdu(0xFEFE, 5, 0, 7, H.dcp_block(0xFF, 0xFF, b"", info=None), delay=1)
    run = Run().l2(CTRL, MCAST, request, 0).l2(CTRL, MCAST, request, 1)
    run.l2(DEV1, CTRL, ident_response(7, "io-1", "192.168.0.11"), 5 * MS)
    run.l2(DEV2, CTRL, ident_response(7, "io-2", "192.168.0.12"), 6 * MS)
    events = run.finish()
    found = ops(events)
    assert [(o.src_ip, o.dst_ip, o.status, o.response_frame) for o in found] == [
        (CTRL, DEV1, OpStatus.OK, 3),
        (CTRL, DEV2, OpStatus.OK, 4),
    ]
    first = found[0]
    assert first.function == "DCP Identify" and first.operation is OpClass.IDENTITY
    assert first.detail["filter"] == "all" and first.detail["repeat_frames"] == [2]
    assert first.detail["name_of_station"] == "io-1" and first.detail["vendor_id"] == 0x2A
    claims = {(c.ip, c.attribute, c.value) for c in events if isinstance(c, IdentityClaim)}
    assert {
        (DEV1, "name_of_station", "io-1"),
        (DEV1, "model", "ET 200SP"),
        (DEV1, "vendor", "Siemens"),
        (DEV1, "device_id", "0x0313"),
        (DEV1, "device_role", "io-device"),
        (DEV1, "ip_address", "192.168.0.11"),
        ("192.168.0.11", "mac_address", DEV1),
        ("192.168.0.11", "name_of_station", "io-1"),
    } <= claims
    assert run.dec.dcp_counts == {(CTRL, 5, 0): 2, (DEV1, 5, 1): 1, (DEV2, 5, 1): 1}


def test_unanswered_identify_completes_after_its_window() -> None:
    request = H.dcp_pdu(0xFEFE, 5, 0, 9, H.dcp_block(2, 2, b"missing", info=None), delay=100)
    run = Run().l2(CTRL, MCAST, request, 0)
    run.l2(DEV1, MCAST, H.dcp_pdu(0xFEFE, 5, 0, 10, b""), 2 * 1000 * MS)  # within 1 s + 2 s
    assert not ops(run.events)
    run.l2(DEV1, MCAST, H.dcp_pdu(0xFEFE, 5, 0, 11, b""), 4 * 1000 * MS)
    (op,) = ops(run.events)
    assert op.status is OpStatus.NO_RESPONSE and op.dst_ip == MCAST
    assert op.detail["filter"] == "name_of_station=missing"


def test_hello_stands_alone() -> None:
    hello = H.dcp_pdu(
        0xFEFC,
        6,
        0,
        1,
        H.dcp_block(2, 2, b"io-9") + H.dcp_block(1, 2, H.ip4("10.1.1.9") + bytes(8)),
    )
    events = Run().l2(DEV1, MCAST, hello, 0).finish()
    (op,) = ops(events)
    assert (op.function, op.src_ip, op.detail["unsolicited"]) == ("DCP Hello", DEV1, True)
    assert any(isinstance(c, IdentityClaim) and c.value == "io-9" for c in events)


def test_set_ip_and_name_are_network_changes() -> None:
    blocks = H.dcp_block(5, 1, b"", info=0) + H.dcp_block(
        1, 2, H.ip4("10.9.9.9") + H.ip4("255.0.0.0") + H.ip4("10.0.0.1"), info=1
    )
    blocks += H.dcp_block(2, 2, b"rogue", info=1) + H.dcp_block(5, 2, b"", info=0)
    answer = H.dcp_block(5, 4, bytes([1, 2, 0]), info=None) + H.dcp_block(
        5, 4, bytes([2, 2, 0]), info=None
    )
    run = Run().l2(CTRL, DEV1, H.dcp_pdu(0xFEFD, 4, 0, 3, blocks), 0)
    run.l2(DEV1, CTRL, H.dcp_pdu(0xFEFD, 4, 1, 3, answer), MS)
    (op,) = ops(run.finish())
    assert op.function == "DCP Set" and op.status is OpStatus.OK and op.operation is OpClass.WRITE
    assert op.detail["set"] == ["ip", "name_of_station"] and op.detail["permanent"] is True
    assert (op.detail["new_ip"], op.detail["new_name_of_station"]) == ("10.9.9.9", "rogue")
    assert rules(op) == {"network-config-change"}


def test_set_refused_is_an_exception() -> None:
    run = Run().l2(CTRL, DEV1, H.dcp_pdu(0xFEFD, 4, 0, 4, H.dcp_block(2, 2, b"x", info=1)), 0)
    run.l2(
        DEV1, CTRL, H.dcp_pdu(0xFEFD, 4, 1, 4, H.dcp_block(5, 4, bytes([2, 2, 6]), info=None)), MS
    )
    (op,) = ops(run.finish())
    assert (
        op.status is OpStatus.EXCEPTION
        and op.exception == "name_of_station: in operation, SET not possible"
    )


def test_factory_reset_is_a_device_restart() -> None:
    run = Run().l2(CTRL, DEV1, H.dcp_pdu(0xFEFD, 4, 0, 5, H.dcp_block(5, 6, b"", info=2)), 0)
    (op,) = ops(run.finish())
    assert op.operation is OpClass.CONTROL and op.status is OpStatus.NO_RESPONSE
    assert rules(op) == {"device-restart"}


def test_get_and_not_supported() -> None:
    run = Run().l2(CTRL, DEV1, H.dcp_pdu(0xFEFD, 3, 0, 6, b"\x02\x02\x02\x03"), 0)
    run.l2(DEV1, CTRL, H.dcp_pdu(0xFEFD, 3, 5, 6, b""), MS)
    (op,) = ops(run.finish())
    assert op.detail["requested"] == ["name_of_station", "device_id"]
    assert op.status is OpStatus.EXCEPTION and op.exception == "request not supported"


@pytest.mark.parametrize("rule", D.FRAME_RULES, ids=lambda r: r.rule)
def test_frame_rules_are_raised_by_their_examples(rule: D.DangerRule) -> None:
    for example in rule.examples:
        run = Run()
        for _, f in example.messages:
            run.l2(f[6:12].hex(":"), f[0:6].hex(":"), f[14:], 0)
        assert any(rule.rule in rules(o) for o in ops(run.finish())), rule.rule


# -- alarms ------------------------------------------------------------------------------
def test_alarm_pairs_with_its_ack() -> None:
    run = Run().l2(DEV1, CTRL, H.rta(0xFE01, 1, H.alarm_notification(3, 5)), 0)
    run.l2(CTRL, DEV1, H.rta(0xFE01, 3), MS)  # transport ACK-RTA, counted
    run.l2(CTRL, DEV1, H.rta(0xFE01, 1, H.alarm_ack(3, 5)), 2 * MS)
    run.l2(DEV1, CTRL, H.rta(0xFC01, 1, H.alarm_notification(1, 6, high=True)), 3 * MS)
    found = ops(run.finish())
    assert [(o.function, o.status, o.latency_ns) for o in found] == [
        ("Alarm Pull", OpStatus.OK, 2 * MS),
        ("Alarm Diagnosis", OpStatus.NO_RESPONSE, None),
    ]
    assert found[0].detail["priority"] == "low" and found[1].detail["priority"] == "high"
    assert found[0].operation is OpClass.DIAGNOSTIC and found[0].unit == 1
    assert run.dec.rta_counts[(CTRL, "ACK-RTA")] == 1


def test_err_rta_aborts() -> None:
    run = Run().l2(DEV1, CTRL, H.rta(0xFE01, 4, bytes([0xCF, 0x81, 0xFD, 0x0F])), 0)
    (op,) = ops(run.finish())
    assert op.function == "Alarm Abort" and op.status is OpStatus.EXCEPTION
    assert op.exception == "RTA error, PNIO, RTA protocol: AR release.ind received"


# -- IO-CM and RT ------------------------------------------------------------------------
C = ("10.0.0.1", 49153)
DEV = ("10.0.0.2", 34964)
DEV_EPHEMERAL = ("10.0.0.2", 49154)
ACT = uuid.UUID("00000001-0000-1000-8000-000000000001")


def connect_request() -> bytes:
    station = b"plc-1"
    ar = (
        struct.pack(">H", 1)
        + AR.bytes
        + struct.pack(">H", 1)
        + bytes.fromhex(CTRL.replace(":", ""))
    )
    ar += uuid.uuid4().bytes + struct.pack(">IHHH", 0x11, 100, 0x8892, len(station)) + station
    iocr_in = (
        struct.pack(">HHHIHHHHHHIHHH", 1, 1, 0x8892, 0, 40, 0xC001, 32, 1, 0, 0, 0, 3, 3, 0)
        + bytes(6)
        + b"\x00\x00"
    )
    iocr_out = (
        struct.pack(">HHHIHHHHHHIHHH", 2, 2, 0x8892, 0, 40, 0xFFFF, 32, 1, 0, 0, 0, 3, 3, 0)
        + bytes(6)
        + b"\x00\x00"
    )
    args = H.pnio_block(0x0101, ar) + H.pnio_block(0x0102, iocr_in) + H.pnio_block(0x0102, iocr_out)
    return H.rpc_datagram(0, 0, ACT, 0, H.ndr_request(args))


def connect_response(little: bool = True) -> bytes:
    ar = (
        struct.pack(">H", 1)
        + AR.bytes
        + struct.pack(">H", 1)
        + bytes.fromhex(DEV1.replace(":", ""))
        + struct.pack(">H", 0x8892)
    )
    args = H.pnio_block(0x8101, ar) + H.pnio_block(0x8102, struct.pack(">HHH", 1, 1, 0xC001))
    args += H.pnio_block(0x8102, struct.pack(">HHH", 2, 2, 0xC002))
    return H.rpc_datagram(2, 0, ACT, 0, H.ndr_response(args, little=little), little=little)


def test_connect_across_flows_annotates_rt_streams() -> None:
    run = Run().udp(C, DEV, connect_request(), 0).udp(DEV_EPHEMERAL, C, connect_response(), MS)
    cyclic = struct.pack(">H", 0xC001) + bytes(40) + b"\x12\x34\x35\x00"
    stopped = struct.pack(">H", 0xC002) + bytes(40) + b"\x12\x34\x25\x00"
    for i in range(5):
        run.l2(DEV1, CTRL, cyclic, 2 * MS + i * MS)
        run.l2(CTRL, DEV1, stopped, 2 * MS + i * MS)
    events = run.finish()
    connect, rt_in, rt_out = ops(events)
    assert connect.function == "Connect" and connect.status is OpStatus.OK
    assert (connect.src_ip, connect.dst_port, connect.response_frame) == ("10.0.0.1", 34964, 2)
    assert connect.detail["response_endpoints"] == ["10.0.0.2", 49154, "10.0.0.1", 49153]
    assert connect.detail["initiator_station"] == "plc-1" and connect.detail["ar_uuid"] == str(AR)
    assert [i["frame_id"] for i in connect.detail["iocrs"]] == [0xC001, 0xC002]
    assert (rt_in.function, rt_in.quantity, rt_in.operation) == ("RT Cyclic", 5, OpClass.READ)
    assert rt_in.detail["iocr"] == "input" and rt_in.detail["mean_interval_ns"] == MS
    assert (rt_out.operation, rt_out.detail["provider_stopped_frames"]) == (OpClass.WRITE, 5)
    claims = {(c.ip, c.attribute, c.value) for c in events if isinstance(c, IdentityClaim)}
    assert ("10.0.0.1", "name_of_station", "plc-1") in claims
    assert ("10.0.0.2", "device_id", "0x0003") in claims


def test_fragmented_write_multiple_is_joined() -> None:
    sub1 = H.record_header(0x0008, 0x8071, 4, AR, 1) + b"\x00\x00\x00\x01"
    sub2 = H.record_header(0x0008, 0x0010, 2, AR, 2) + b"\xaa\xbb" + b"\x00\x00"
    args = H.record_header(0x0008, 0xE040, len(sub1) + len(sub2), AR) + sub1 + sub2
    body = H.ndr_request(args)
    half = len(body) // 2
    act = uuid.UUID("00000002-0000-1000-8000-000000000002")
    run = Run()
    run.udp(C, DEV, H.rpc_datagram(0, 3, act, 1, body[:half], flags1=0x04, fragment=0), 0)
    run.udp(DEV, C, H.rpc_datagram(9, 3, act, 1, bytes(16)), 1)
    run.udp(C, DEV, H.rpc_datagram(0, 3, act, 1, body[half:], flags1=0x06, fragment=1), 2)
    response = H.ndr_response(H.record_header(0x8008, 0xE040, 0, AR))
    run.udp(DEV, C, H.rpc_datagram(2, 3, act, 1, response), 3)
    (op,) = ops(run.finish())
    assert op.function == "Write" and op.status is OpStatus.OK
    assert (op.detail["request_fragments"], op.detail["fack"]) == (2, 1)
    assert op.detail["indices"] == [0x8071, 0x0010] and op.address == 0xE040
    assert rules(op) == {"network-config-change", "process-write"}


def test_im0_read_gives_identity() -> None:
    im0 = struct.pack(">H", 0x002A) + b"6ES7 155-6AU01-0BN0 " + b"S C-X4U123456    "[:16]
    im0 += struct.pack(">H", 3) + b"V\x04\x01\x02" + struct.pack(">HHHHH", 0, 0, 0, 0x0101, 0x001E)
    data = H.pnio_block(0x0020, im0)
    act = uuid.UUID("00000003-0000-1000-8000-000000000003")
    req = H.rpc_datagram(
        0, 5, act, 0, H.ndr_request(H.record_header(0x0009, 0xAFF0, 4096, uuid.UUID(int=0)))
    )
    res = H.rpc_datagram(
        2,
        5,
        act,
        0,
        H.ndr_response(H.record_header(0x8009, 0xAFF0, len(data), uuid.UUID(int=0)) + data),
    )
    events = Run().udp(C, DEV, req, 0).udp(DEV, C, res, MS).finish()
    (op,) = ops(events)
    assert op.operation is OpClass.IDENTITY and op.detail["im0"]["software_revision"] == "V4.1.2"
    claims = {(c.attribute, c.value, c.source) for c in events if isinstance(c, IdentityClaim)}
    assert {
        ("model", "6ES7 155-6AU01-0BN0", "pn_im0"),
        ("serial_number", "S C-X4U123456", "pn_im0"),
        ("revision", "V4.1.2", "pn_im0"),
        ("hardware_revision", "3", "pn_im0"),
    } <= claims


def test_error_status_fault_and_ping() -> None:
    act = uuid.UUID("00000004-0000-1000-8000-000000000004")
    req = H.rpc_datagram(0, 2, act, 0, H.ndr_request(H.record_header(0x0009, 0x1234, 10, AR)))
    res = H.rpc_datagram(2, 2, act, 0, H.ndr_response(b"", bytes([0xDE, 0x80, 0xB0, 0x00])))
    fault = H.rpc_datagram(3, 1, act, 1, struct.pack(">I", 0x1C010003))
    ping = H.rpc_datagram(1, 0, act, 9, b"")
    nocall = H.rpc_datagram(5, 0, act, 9, b"")
    run = Run().udp(C, DEV, req, 0).udp(DEV, C, res, 1)
    run.udp(C, DEV, H.rpc_datagram(0, 1, act, 1, H.ndr_request(b"")), 2).udp(DEV, C, fault, 3)
    run.udp(C, DEV, ping, 4).udp(DEV, C, nocall, 5)
    read, release, pinged = ops(run.finish())
    assert read.exception == "IODReadRes, PNIORW, access: invalid index (0x00)"
    assert read.exception_code == 0xDE80B000
    assert release.status is OpStatus.EXCEPTION and release.exception_code == 0x1C010003
    assert (pinged.function, pinged.detail["response_type"]) == ("Ping", "No call Response to Ping")


def test_flow_adapter_and_rule_examples() -> None:
    for rule in SPEC.rules:
        for example in rule.examples:
            ep = Endpoints(
                transport="udp",
                client_ip="10.0.0.1",
                client_port=50000,
                server_ip="10.0.0.2",
                server_port=34964,
            )
            dec = SPEC.factory(ep)
            for i, (d, msg) in enumerate(example.messages, 1):
                dec.feed(d, msg, i, i)
            found = ops(dec.events() + dec.finish())
            assert found and any(rule.rule in rules(o) for o in found), rule.rule


def test_recognition() -> None:
    assert verdict(connect_request(), b"") is True
    assert verdict(b"", connect_response()) is True
    assert verdict(b"\x01\x02\x03", b"") is False
    assert verdict(b"", b"") is None


def test_bad_input_is_reported() -> None:
    run = (
        Run()
        .udp(C, DEV, b"\x04\x00", 0)
        .l2(DEV1, CTRL, b"\xfe", 1)
        .l2(DEV1, CTRL, b"\xfe\xfe\x05", 2)
    )
    run.l2(DEV1, CTRL, b"\xfe\x01\x00\x01", 3)
    events = run.finish()
    assert len([e for e in events if isinstance(e, Malformed)]) == 4
