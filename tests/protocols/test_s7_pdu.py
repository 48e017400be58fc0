"""S7comm PDU decoding, one function family at a time, from hand-built PDUs."""

from __future__ import annotations

import pytest

from otconduit.protocols.s7 import S7Pdu, parse_pdu
from otconduit.protocols.s7 import functions as fn
from otconduit.protocols.s7.pdu import s7_timestamp

from .s7_helpers import (
    any_item,
    block_job_param,
    data_item,
    pi_param,
    plc_stop_param,
    s7,
    setup_param,
    var_param,
)


def parse(b: bytes) -> S7Pdu:
    pdu = parse_pdu(b)
    assert isinstance(pdu, S7Pdu), pdu
    return pdu


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x32\x01\x00", "header truncated"),
        (b"\x33" + bytes(9), "protocol id"),
        (b"\x32\x05" + bytes(8), "unknown S7 ROSCTR 5"),
        (b"\x32\x03" + bytes(8), "header truncated"),  # ack-data needs 12 bytes
        (s7(1, 1, b"\xf0")[:-1], "lengths exceed"),
    ],
)
def test_bad_headers_are_reasons(raw: bytes, why: str) -> None:
    result = parse_pdu(raw)
    assert isinstance(result, str) and why in result


def test_header_fields() -> None:
    pdu = parse(s7(3, 0x1234, b"\xf0" + bytes(7), error=0x8104))
    assert (pdu.rosctr, pdu.pdu_ref, pdu.error_class, pdu.error_code) == (3, 0x1234, 0x81, 0x04)
    assert pdu.function == fn.FUNC_SETUP_COMMUNICATION


def test_setup_communication_both_ways() -> None:
    req = parse(s7(1, 0, setup_param(pdu=480, amq=2)))
    assert req.info == {"max_amq_calling": 2, "max_amq_called": 2, "pdu_length": 480}
    resp = parse(s7(3, 0, setup_param(pdu=240, amq=1)))
    assert resp.info["negotiated_pdu_length"] == 240


def test_read_var_request_items() -> None:
    items = [any_item(0x84, 5, 12, size=0x02, count=4), any_item(0x83, 0, 16, 3, size=0x01)]
    pdu = parse(s7(1, 1, var_param(0x04, items)))
    db, flag = pdu.items
    assert (db.area, db.db, db.byte_address, db.bit_address, db.length) == (0x84, 5, 12, 0, 4)
    assert (db.transport_size, db.syntax_id) == (0x02, 0x10)
    assert (flag.area, flag.byte_address, flag.bit_address) == (0x83, 16, 3)
    assert pdu.problem is None


def test_read_var_response_data_with_fill_and_failure() -> None:
    # Odd-length item gets a fill byte unless last; a failed item carries no data even
    # when its length field is not zero (WS, and the s7ident capture).
    data = (
        data_item(b"\x01\x02\x03", size=0x04, last=False)
        + bytes([0x0A, 0x00, 0x00, 0x04])
        + data_item(b"\x01", size=0x03)
    )
    pdu = parse(s7(3, 1, b"\x04\x03", data))
    first, failed, bit = pdu.data_items
    assert first.data == b"\x01\x02\x03" and first.return_code == 0xFF
    assert failed.data == b"" and failed.return_code == 0x0A
    assert bit.data == b"\x01" and bit.transport_size == 0x03


def test_write_var_request_and_response() -> None:
    param = var_param(0x05, [any_item(0x84, 1, 0, size=0x02, count=2)])
    pdu = parse(s7(1, 2, param, data_item(b"\xaa\xbb", rc=0x00)))
    assert pdu.items[0].db == 1 and pdu.data_items[0].data == b"\xaa\xbb"
    resp = parse(s7(3, 2, b"\x05\x02", b"\xff\x05"))
    assert resp.return_codes == (0xFF, 0x05)


def test_non_s7any_item_keeps_raw_address() -> None:
    param = bytes([0x04, 1, 0x12, 7, 0xB0, 1, 2, 3, 4, 5, 6])  # DBREAD syntax
    item = parse(s7(1, 1, param)).items[0]
    assert item.syntax_id == 0xB0 and item.area is None and item.raw == bytes([1, 2, 3, 4, 5, 6])


def test_truncated_item_is_a_problem_not_a_crash() -> None:
    param = var_param(0x04, [any_item(0x84, 1, 0)])[:-2]
    pdu = parse(s7(1, 1, param))
    assert pdu.function == 0x04 and pdu.problem is not None and "truncated" in pdu.problem


def test_upload_family() -> None:
    start = parse(s7(1, 8, block_job_param(0x1D, b"_0B00000A")))
    assert start.info["filename"] == "_0B00000A"
    assert (start.info["block_type"], start.info["block_number"]) == ("0B", 0)
    assert start.info["block_type_name"] == "System Data Block"
    assert start.info["filesystem"] == "Active"
    ack = parse(s7(3, 8, block_job_param(0x1D, session=7)[:8] + b"\x070000216"))
    assert (ack.info["session_id"], ack.info["block_length"]) == (7, 216)
    up = parse(s7(1, 9, block_job_param(0x1E, session=7)))
    assert up.info["session_id"] == 7
    data = parse(s7(3, 9, b"\x1e\x00", b"\x00\xd8\x00\xfb" + bytes(216)))
    assert data.info["data_length"] == 216
    end = parse(s7(1, 10, block_job_param(0x1F, session=7)))
    assert end.function == 0x1F and end.info["session_id"] == 7


def test_download_family() -> None:
    req = parse(s7(1, 1, block_job_param(0x1A, b"_0A00001P", tail=b"\x0d1000216000088")))
    assert req.info["block_type_name"] == "Data Block" and req.info["block_number"] == 1
    assert req.info["filesystem"] == "Passive"
    assert (req.info["load_memory_length"], req.info["mc7_length"]) == (216, 88)
    block = parse(s7(1, 2, block_job_param(0x1B, b"_0A00001P")))
    ended = parse(s7(1, 3, block_job_param(0x1C, b"_0A00001P")))
    assert block.function == 0x1B and ended.function == 0x1C
    assert ended.info["filename"] == "_0A00001P"


@pytest.mark.parametrize(
    ("service", "block", "expect"),
    [
        (b"_INSE", b"\x01\x000A00001P", {"blocks": [{"block_type": "0A", "block_number": 1}]}),
        (b"_DELE", b"\x01\x000C00007B", {"blocks": [{"block_type": "0C", "block_number": 7}]}),
        (b"P_PROGRAM", b"C ", {"restart": "cold"}),
        (b"P_PROGRAM", b"", {"restart": "hot"}),
        (b"_GARB", b"", {"pi_service_name": "Compress PLC memory"}),
        (b"_MODU", b"EP", {"pi_service_name": "PLC Copy Ram to Rom", "parameter_block": "EP"}),
    ],
)
def test_pi_services(service: bytes, block: bytes, expect: dict[str, object]) -> None:
    info = parse(s7(1, 1, pi_param(service, block))).info
    assert info["pi_service"] == service.decode()
    for key, value in expect.items():
        if key == "blocks":
            got = [{k: b[k] for k in ("block_type", "block_number")} for b in info["blocks"]]
            assert got == value
        else:
            assert info[key] == value


def test_plc_stop() -> None:
    pdu = parse(s7(1, 1, plc_stop_param()))
    assert pdu.function == fn.FUNC_PLC_STOP and pdu.info["pi_service"] == "P_PROGRAM"


def test_userdata_szl_request_and_time() -> None:
    # param head 000112, length 4, method 0x11, type 4 | group 4, subfunction 1, seq 0
    param = bytes.fromhex("0001120411440100")
    pdu = parse(s7(7, 1, param, bytes.fromhex("ff090004001c0000")))
    ud = pdu.userdata
    assert ud is not None and (ud.type, ud.group, ud.subfunction, ud.sequence) == (4, 4, 1, 0)
    assert not ud.follow_up
    assert (pdu.info["szl_id"], pdu.info["szl_index"]) == (0x001C, 0)
    # Set clock request (group 7, subfunction 2) with a BCD timestamp.
    clock = parse(
        s7(7, 2, bytes.fromhex("0001120411470200"), bytes.fromhex("ff09000a00191602082308100002"))
    )
    assert clock.info["time"] == "2016-02-08T23:08:10.000"


def test_userdata_response_error_word_and_follow_up() -> None:
    param = bytes.fromhex("000112081283030000" + "00d209")[:12]
    pdu = parse(s7(7, 1, param, bytes.fromhex("0a000000")))
    assert pdu.userdata is not None and pdu.userdata.error_code == 0xD209
    follow = parse(s7(7, 3, bytes.fromhex("000112081244010200000000"), bytes.fromhex("0a000000")))
    assert follow.userdata is not None and follow.userdata.follow_up


def test_userdata_bad_head_is_a_problem() -> None:
    pdu = parse(s7(7, 1, bytes.fromhex("0001130411440100")))
    assert pdu.problem is not None and "head" in pdu.problem


def test_list_blocks_response_counts() -> None:
    param = bytes.fromhex("000112081283010000000000")
    body = bytes.fromhex("303800013041000230420008")
    data = bytes([0xFF, 0x09, 0, len(body)]) + body
    pdu = parse(s7(7, 7, param, data))
    assert pdu.info["block_counts"] == {"08": 1, "0A": 2, "0B": 8}


def test_timestamp_rejects_non_bcd() -> None:
    assert s7_timestamp(bytes.fromhex("00191408201205361124")) == "2014-08-20T12:05:36.112"
    assert s7_timestamp(bytes.fromhex("0019ff08201205361124")) is None
