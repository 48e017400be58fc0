"""The S7 ConnectionDecoder: matching, Operations, identity claims, S7comm-plus."""

from __future__ import annotations

import random

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.protocols.s7 import SPEC, S7Decoder

from .s7_helpers import (
    C2S,
    ENDPOINTS,
    S2C,
    Chunk,
    ack,
    ack_data,
    any_item,
    block_job_param,
    cc,
    cr,
    data_item,
    dr,
    dt,
    job,
    pi_param,
    plc_stop_param,
    plus_pdu,
    run,
    s7,
    segmented,
    setup_param,
    szl_001c_records,
    szl_0011_records,
    szl_body,
    userdata,
    var_param,
)


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def claims(events: list[DecoderEvent]) -> dict[str, str]:
    return {e.attribute: e.value for e in events if isinstance(e, IdentityClaim)}


def one_op(steps: list[Chunk]) -> Operation:
    [op] = ops(run(steps))
    return op


def test_spec() -> None:
    assert SPEC.name == "s7comm" and SPEC.transports == {"tcp"} and SPEC.ports == {102}
    assert isinstance(SPEC.factory(ENDPOINTS), S7Decoder)


def test_cotp_connect_with_rack_and_slot() -> None:
    op = one_op([(C2S, cr(b"\x01\x00", b"\x03\x23")), (S2C, cc())])
    assert (op.function, op.function_code, op.operation) == ("COTP_CONNECT", 0x80E0, "session")
    assert (op.request_frame, op.response_frame, op.latency_ns) == (1, 2, 1_000_000)
    d = op.detail
    assert (d["src_tsap"], d["dst_tsap"]) == ("0100", "0323")
    assert (d["connection_type"], d["rack"], d["slot"]) == ("S7 Basic", 1, 3)
    assert (op.src_ip, op.dst_ip) == (ENDPOINTS.client_ip, ENDPOINTS.server_ip)


def test_cotp_connect_refused_and_unanswered() -> None:
    refused = one_op([(C2S, cr()), (S2C, dr(0x81))])
    assert refused.status == OpStatus.EXCEPTION and refused.exception_code == 0x81
    lonely = one_op([(C2S, cr())])
    assert lonely.status == OpStatus.NO_RESPONSE and lonely.response_frame is None


def test_text_tsap_of_s7_plus() -> None:
    op = one_op([(C2S, cr(b"\x06\x00", b"SIMATIC-ROOT-HMI")), (S2C, cc())])
    assert op.detail["dst_tsap_text"] == "SIMATIC-ROOT-HMI" and "rack" not in op.detail


def test_setup_communication() -> None:
    op = one_op([(C2S, job(0, setup_param(480))), (S2C, ack_data(0, setup_param(240)))])
    assert (op.function, op.function_code, op.operation) == ("Setup Communication", 0xF0, "session")
    assert op.detail["pdu_length"] == 480 and op.detail["negotiated_pdu_length"] == 240
    assert op.transaction_id == 0 and op.status == OpStatus.OK


def test_read_var_db_item() -> None:
    req = job(0x0100, var_param(0x04, [any_item(0x84, 7, 24, size=0x02, count=4)]))
    resp = ack_data(0x0100, b"\x04\x01", data_item(b"\x01\x02\x03\x04"))
    op = one_op([(C2S, req), (S2C, resp)])
    assert (op.function, op.operation, op.function_code) == ("Read Variable", "read", 0x04)
    assert (op.address, op.quantity, op.unit, op.values) == (24, 1, 7, (1, 2, 3, 4))
    [item] = op.detail["items"]
    assert (item["area"], item["db"], item["start"], item["bit"]) == ("DB", 7, 24, 0)
    assert (item["length"], item["transport_size"], item["return_code"]) == (4, "BYTE", 0xFF)
    assert op.transaction_id == 0x0100


def test_write_var_values_and_partial_failure() -> None:
    items = [any_item(0x83, 0, 16, size=0x02), any_item(0x82, 0, 2, size=0x02)]
    values = data_item(b"\x0a", rc=0, size=0x04, last=False) + data_item(b"\x0b", rc=0, size=0x04)
    req = job(3, var_param(0x05, items), values)
    partial = one_op([(C2S, req), (S2C, ack_data(3, b"\x05\x02", b"\xff\x05"))])
    assert partial.operation == OpClass.WRITE and partial.status == OpStatus.OK
    assert partial.unit is None and partial.address == 16 and partial.quantity == 2
    assert [i["values"] for i in partial.detail["items"]] == [(0x0A,), (0x0B,)]
    assert [i["return_code"] for i in partial.detail["items"]] == [0xFF, 0x05]
    assert partial.detail["failed_items"] == 1
    failed = one_op([(C2S, req), (S2C, ack_data(3, b"\x05\x02", b"\x05\x03"))])
    assert failed.status == OpStatus.EXCEPTION
    assert (failed.exception, failed.exception_code) == ("Invalid address", 0x05)


def test_header_error_class_and_code() -> None:
    op = one_op([(C2S, job(9, block_job_param(0x1D, b"_0800000A"))), (S2C, ack(9, error=0xD20C))])
    assert op.status == OpStatus.EXCEPTION and op.exception_code == 0xD20C
    assert op.exception == "OB priority class does not exist"
    op2 = one_op([(C2S, job(9, setup_param())), (S2C, ack_data(9, setup_param(), error=0x8500))])
    assert op2.exception == "Wrong frames" and op2.detail["error_class"] == "Error on supplies"
    op3 = one_op([(C2S, job(9, setup_param())), (S2C, ack(9, error=0x8777))])
    assert op3.exception == "Access error" and op3.exception_code == 0x8777


def test_program_functions_and_upload_session() -> None:
    steps: list[Chunk] = [
        (C2S, job(1, block_job_param(0x1D, b"_0A00005A"))),
        (S2C, ack_data(1, block_job_param(0x1D, session=7) + b"\x040216")),
        (C2S, job(2, block_job_param(0x1E, session=7))),
        (S2C, ack_data(2, b"\x1e\x00", b"\x00\x04\x00\xfb" + b"abcd")),
        (C2S, job(3, block_job_param(0x1F, session=7))),
        (S2C, ack_data(3, b"\x1f")),
        (C2S, job(4, block_job_param(0x1A, b"_0A00001P", tail=b"\x0d1000216000088"))),
        (S2C, ack_data(4, b"\x1a")),
        (S2C, job(0x6501, block_job_param(0x1B, b"_0A00001P"))),  # the PLC pulls the block
        (C2S, ack_data(0x6501, b"\x1b\x00", b"\x00\x02\x00\xfbxx")),
        (S2C, job(0x6502, block_job_param(0x1C, b"_0A00001P"))),
        (C2S, ack_data(0x6502, b"\x1c")),
        (C2S, job(5, pi_param(b"_INSE", b"\x01\x000A00001P"))),
        (S2C, ack_data(5, b"\x28")),
    ]
    result = ops(run(steps))
    names = [o.function for o in result]
    assert names == [
        "Start Upload",
        "Upload",
        "End Upload",
        "Request Download",
        "Download Block",
        "Download Ended",
        "PLC Control",
    ]
    assert all(o.operation == OpClass.PROGRAM and o.status == OpStatus.OK for o in result)
    start, upload = result[0], result[1]
    assert start.detail["block_type_name"] == "Data Block" and start.detail["block_number"] == 5
    assert start.detail["session_id"] == 7 and start.detail["block_length"] == 216
    assert upload.detail["session_id"] == 7 and upload.detail["data_length"] == 4
    block = result[4]
    # The PLC sends Download Block on the wire, but the download is the PG's doing.
    assert block.detail["from_server"] and block.detail["wire_direction"] == "plc_to_pg"
    assert (block.src_ip, block.dst_ip) == ("10.0.0.1", "10.0.0.2")
    assert result[6].detail["pi_service"] == "_INSE"
    assert result[6].detail["blocks"][0]["block_number"] == 1


def test_non_ascii_digits_in_block_names_are_text_not_a_crash() -> None:
    """Latin-1 "\xb2" is "²", which str.isdigit() accepts and int() refuses (found by the
    fuzz test): the block number, the download lengths and the upload length stay text."""
    steps: list[Chunk] = [
        (C2S, job(1, block_job_param(0x1D, b"_0A0000\xb2A"))),
        (S2C, ack_data(1, block_job_param(0x1D, session=7) + b"\x04021\xb2")),
        (C2S, job(4, block_job_param(0x1A, b"_0A0000\xb2P", tail=b"\x0d10002160000\xb2\xb2"))),
        (S2C, ack_data(4, b"\x1a")),
    ]
    result = ops(run(steps))
    assert [o.function for o in result] == ["Start Upload", "Request Download"]
    assert result[0].detail["block_number"] == "0000\xb2"
    assert "block_length" not in result[0].detail
    assert "mc7_length" not in result[1].detail


@pytest.mark.parametrize(
    ("param", "function", "op_class", "extra"),
    [
        (plc_stop_param(), "PLC Stop", "control", {"pi_service": "P_PROGRAM"}),
        (pi_param(b"P_PROGRAM", b"C "), "PLC Control", "control", {"restart": "cold"}),
        (pi_param(b"P_PROGRAM"), "PLC Control", "control", {"restart": "hot"}),
        (
            pi_param(b"_DELE", b"\x01\x000C00003A"),
            "PLC Control",
            "program",
            {"pi_service": "_DELE"},
        ),
        (pi_param(b"_GARB"), "PLC Control", "program", {"pi_service": "_GARB"}),
        (pi_param(b"_MODU", b"EP"), "PLC Control", "program", {"pi_service": "_MODU"}),
    ],
)
def test_control_functions(
    param: bytes, function: str, op_class: str, extra: dict[str, object]
) -> None:
    op = one_op([(C2S, job(7, param)), (S2C, ack_data(7, param[:1]))])
    assert (op.function, op.operation, op.function_code) == (function, op_class, param[0])
    for key, value in extra.items():
        assert op.detail[key] == value


@pytest.mark.parametrize(
    ("group", "sub", "function", "op_class"),
    [
        (3, 1, "List Blocks", "diagnostic"),
        (3, 3, "Get Block Info", "diagnostic"),
        (4, 2, "Message Service", "diagnostic"),
        (5, 1, "PLC Password", "session"),
        (7, 1, "Read Clock", "read"),
        (7, 2, "Set Clock", "other"),
        (1, 0x10, "Read Job List", "diagnostic"),
        (1, 0x08, "Modify Variable", "write"),
        (2, 1, "Cyclic Transfer", "read"),
    ],
)
def test_userdata_functions(group: int, sub: int, function: str, op_class: str) -> None:
    op = one_op([(C2S, userdata(5, group, sub)), (S2C, userdata(5, group, sub, type_=8, seq=3))])
    assert (op.function, op.operation) == (function, op_class)
    assert op.function_code == 0x4000 | group << 8 | sub
    assert op.detail["sequence_number"] == 3 and op.status == OpStatus.OK


def test_userdata_parameter_error() -> None:
    op = one_op([(C2S, userdata(1, 3, 3)), (S2C, userdata(1, 3, 3, type_=8, error=0xD209))])
    assert op.status == OpStatus.EXCEPTION and op.exception_code == 0xD209
    assert op.exception == "Block not found on module"


def test_userdata_matches_by_pdu_reference_not_sequence() -> None:
    steps: list[Chunk] = [
        (C2S, userdata(1, 7, 1)),
        (C2S, userdata(2, 7, 2)),
        (S2C, userdata(2, 7, 2, type_=8, seq=9)),
        (S2C, userdata(1, 7, 1, type_=8, seq=9)),
    ]
    result = ops(run(steps))
    assert [(o.function, o.request_frame, o.response_frame) for o in result] == [
        ("Set Clock", 2, 3),
        ("Read Clock", 1, 4),
    ]


def test_szl_identity_claims() -> None:
    body = szl_body(0x0011, 0, szl_0011_records())
    steps: list[Chunk] = [
        (C2S, userdata(1, 4, 1, body=b"\x00\x11\x00\x00")),
        (S2C, userdata(1, 4, 1, type_=8, seq=1, body=body)),
    ]
    events = run(steps)
    [op] = ops(events)
    assert (op.function, op.operation) == ("Read SZL", "identity")
    assert (op.detail["szl_id"], op.detail["szl_id_name"]) == (0x11, "Module identification")
    got = claims(events)
    assert got == {
        "vendor": "Siemens",
        "model": "6ES7 315-2EH14-0AB0",
        "hardware_version": "3",
        "firmware": "V3.2.6",
    }
    for c in events:
        if isinstance(c, IdentityClaim):
            assert c.ip == "10.0.0.2" and c.source == "s7_szl"
            assert c.confidence == (0.8 if c.attribute == "vendor" else 0.9)


def test_szl_component_identification_across_fragments() -> None:
    names = {
        1: b"SNAP7-SERVER",
        2: b"CPU 315-2 PN/DP",
        3: b"",
        4: b"Original Siemens Equipment",
        5: b"S C-C2UR28922012",
        7: b"CPU 315-2 PN/DP",
    }
    body = szl_body(0x001C, 0, szl_001c_records(names))
    cut = 100
    steps: list[Chunk] = [
        (C2S, userdata(1, 4, 1, body=b"\x00\x1c\x00\x00")),
        (S2C, userdata(1, 4, 1, type_=8, seq=2, last=1, body=body[:cut])),
        (C2S, userdata(2, 4, 1, seq=2, last=0)),  # follow-up request, no SZL id
        (S2C, userdata(2, 4, 1, type_=8, seq=2, last=0, body=body[cut:])),
    ]
    events = run(steps)
    first, follow = ops(events)
    assert first.detail["more_data"] and first.detail["szl_id"] == 0x1C
    assert follow.detail["follow_up"] and follow.detail["szl_id"] == 0x1C
    assert follow.detail["szl_records"] == 6
    assert claims(events) == {
        "vendor": "Siemens",
        "plc_name": "SNAP7-SERVER",
        "module_name": "CPU 315-2 PN/DP",
        "copyright": "Original Siemens Equipment",
        "serial": "S C-C2UR28922012",
        "product_name": "CPU 315-2 PN/DP",
    }


def test_no_response_and_bounded_open_requests() -> None:
    steps = [(C2S, job(i, setup_param())) for i in range(10)]
    result = ops(run(steps, max_outstanding=4))
    assert len(result) == 10 and all(o.status == OpStatus.NO_RESPONSE for o in result)
    assert [o.transaction_id for o in result] == list(range(10))


def test_response_before_request_is_held_and_paired() -> None:
    # After a hole, the reassembler may deliver one direction late: an answer can reach
    # the decoder before the job it answers, which was sent earlier.
    dec = S7Decoder(ENDPOINTS)
    dec.feed(S2C, ack_data(5, setup_param()), 2, 2000)
    assert ops(dec.events()) == []
    dec.feed(C2S, job(5, setup_param()), 1, 1000)
    [op] = ops(dec.events())
    assert (op.request_frame, op.response_frame, op.latency_ns) == (1, 2, 1000)
    dec_plus = S7Decoder(ENDPOINTS)
    dec_plus.feed(S2C, plus_pdu(0x32, 0x054C, 4), 2, 2000)
    dec_plus.feed(C2S, plus_pdu(0x31, 0x054C, 4), 1, 1000)
    [plus_op] = ops(dec_plus.events())
    assert (plus_op.protocol, plus_op.request_frame, plus_op.response_frame) == (
        "s7comm-plus",
        1,
        2,
    )
    dec2 = S7Decoder(ENDPOINTS)
    dec2.feed(S2C, ack_data(6, setup_param()), 2, 2000)
    [orphan] = ops(dec2.finish())
    assert orphan.request_frame is None and orphan.detail["orphan_response"]


def test_malformed_s7_header_and_unknown_protocol() -> None:
    events = run([(C2S, dt(b"\x32\x09" + bytes(8))), (C2S, dt(b"\x99hello"))])
    reasons = [e.reason for e in events if isinstance(e, Malformed)]
    assert reasons == ["unknown S7 ROSCTR 9", "unknown protocol id 0x99 in COTP data"]


def test_s7_plus_operations() -> None:
    steps: list[Chunk] = [
        (C2S, plus_pdu(0x31, 0x04CA, 1, version=1)),
        (S2C, plus_pdu(0x32, 0x04CA, 1, version=1)),
        (C2S, plus_pdu(0x31, 0x0542, 2)),
        (S2C, plus_pdu(0x32, 0x0542, 2)),
        (C2S, plus_pdu(0x31, 0x054C, 3)),
        (S2C, plus_pdu(0x32, 0x054C, 3)),
        (C2S, plus_pdu(0x31, 0x04BB, 4)),
        (C2S, plus_pdu(0x31, 0x04D4, 5)),
        (S2C, plus_pdu(0x32, 0x04D4, 5)),
    ]
    result = ops(run(steps))
    got = [(o.protocol, o.function, o.function_code, o.operation, o.status) for o in result]
    assert got == [
        ("s7comm-plus", "Create Object", 0x04CA, "session", "ok"),
        ("s7comm-plus", "Set Multi Variables", 0x0542, "write", "ok"),
        ("s7comm-plus", "Get Multi Variables", 0x054C, "read", "ok"),
        ("s7comm-plus", "Delete Object", 0x04D4, "session", "ok"),
        ("s7comm-plus", "Explore", 0x04BB, "other", "no_response"),
    ]
    assert all(o.detail["payload_decoded"] is False for o in result)
    assert result[1].detail["session_id"] == 0x3BE and result[1].transaction_id == 2


def test_s7_plus_fragments_and_keepalive() -> None:
    whole = plus_pdu(0x31, 0x054C, 8)[7:]  # the TSDU: header, data, trailer
    first = bytes([0x72, 0x02, 0, 16]) + whole[4:20]  # a fragment without trailer
    rest = bytes([0x72, 0x02, 0, 4]) + b"\x00\x00\x00\x00" + b"\x72\x02\x00\x00"
    steps: list[Chunk] = [
        (C2S, dt(first)),
        (C2S, dt(rest)),  # continuation: no opcode of its own
        (C2S, dt(b"\x72\xff\x01\x00")),  # keep-alive
        (S2C, plus_pdu(0x32, 0x054C, 8)),
    ]
    [op] = ops(run(steps))
    assert (op.function, op.request_frame, op.response_frame) == ("Get Multi Variables", 1, 4)


def test_s7_plus_notification() -> None:
    data = bytes([0x33, 0, 0, 0, 1, 0, 0, 0])
    tsdu = bytes([0x72, 0x02, 0, len(data)]) + data + b"\x72\x02\x00\x00"
    op = one_op([(S2C, dt(tsdu))])
    assert (op.function, op.detail["opcode"], op.detail["unsolicited"]) == (
        "Notification",
        "Notification",
        True,
    )


def _conversation() -> list[Chunk]:
    body = szl_body(0x001C, 0, szl_001c_records({1: b"PLC", 5: b"SER1"}))
    return [
        (C2S, cr()),
        (S2C, cc()),
        (C2S, job(0, setup_param())),
        (S2C, ack_data(0, setup_param(240))),
        (C2S, userdata(1, 4, 1, body=b"\x00\x1c\x00\x00")),
        (S2C, userdata(1, 4, 1, type_=8, seq=1, body=body)),
        (C2S, segmented(s7(1, 2, plc_stop_param()), 5)),
        (S2C, ack_data(2, b"\x29")),
        (C2S, b"\x00\x01garbage"),
        (C2S, job(3, var_param(0x04, [any_item(0x84, 1, 0)]))),
        (S2C, ack_data(3, b"\x04\x01", data_item(b"\x05\x06"))),
    ]


def _signature(events: list[DecoderEvent]) -> list[object]:
    return [
        (type(e).__name__, e.function, e.status, e.request_frame, e.response_frame, e.values)
        if isinstance(e, Operation)
        else e
        for e in events
    ]


def test_segmentation_invariance() -> None:
    steps = _conversation()
    whole = _signature(run(steps))
    assert [s[1] for s in whole if isinstance(s, tuple)] == [
        "COTP_CONNECT",
        "Setup Communication",
        "Read SZL",
        "PLC Stop",
        "Read Variable",
    ]
    assert any(isinstance(s, Malformed) for s in whole)
    assert _signature(run(steps, split=1)) == whole
    rng = random.Random(7)
    for _ in range(20):
        assert _signature(run(steps, split=rng.randint(1, 40))) == whole
