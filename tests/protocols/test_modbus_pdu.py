"""PDU decoding of every public function code, with pymodbus building the bytes."""

from __future__ import annotations

import pytest
from pymodbus.pdu import ExceptionResponse, FileRecord
from pymodbus.pdu import bit_message as bm
from pymodbus.pdu import diag_message as dm
from pymodbus.pdu import file_message as fm
from pymodbus.pdu import mei_message as mm
from pymodbus.pdu import other_message as om
from pymodbus.pdu import register_message as rm

from otconduit.protocols.modbus import ModbusMessage, decode_pdu

from .modbus_helpers import adu, decode_stream, raw_adu


def one(data: bytes, *, is_request: bool) -> ModbusMessage:
    """The single message a well-framed ADU yields."""
    events = decode_stream(data, is_request=is_request)
    assert len(events) == 1
    msg = events[0]
    assert isinstance(msg, ModbusMessage)
    assert msg.raw == data
    assert msg.is_request is is_request
    return msg


def ok(data: bytes, *, is_request: bool) -> ModbusMessage:
    msg = one(data, is_request=is_request)
    assert msg.malformed_reason is None, msg.malformed_reason
    return msg


# --- reads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("req_cls", "code"), [(bm.ReadCoilsRequest, 1), (bm.ReadDiscreteInputsRequest, 2)]
)
def test_read_bits_request(req_cls: type, code: int) -> None:
    msg = ok(adu(req_cls(address=100, count=19), tid=7, unit=9), is_request=True)
    assert (msg.tid, msg.pid, msg.length, msg.unit) == (7, 0, 6, 9)
    assert (msg.function_code, msg.address, msg.quantity) == (code, 100, 19)
    assert not msg.is_exception and msg.exception_code is None


def test_read_coils_response_bits_lsb_first() -> None:
    pattern = [True, False, False, True, True, False, True, True, False, True, False]
    msg = ok(adu(bm.ReadCoilsResponse(bits=pattern)), is_request=False)
    assert msg.extra["byte_count"] == 2
    assert msg.values is not None
    assert msg.values[: len(pattern)] == tuple(int(b) for b in pattern)
    assert len(msg.values) == 16  # whole bytes: the session truncates to the quantity


@pytest.mark.parametrize(
    ("req_cls", "resp_cls", "code"),
    [
        (rm.ReadHoldingRegistersRequest, rm.ReadHoldingRegistersResponse, 3),
        (rm.ReadInputRegistersRequest, rm.ReadInputRegistersResponse, 4),
    ],
)
def test_read_registers(req_cls: type, resp_cls: type, code: int) -> None:
    req = ok(adu(req_cls(address=40001 - 40001, count=125)), is_request=True)
    assert (req.function_code, req.address, req.quantity) == (code, 0, 125)
    resp = ok(adu(resp_cls(registers=[0, 1, 0xFFFF, 0x1234])), is_request=False)
    assert resp.values == (0, 1, 0xFFFF, 0x1234)
    assert resp.extra["byte_count"] == 8


# --- single writes -------------------------------------------------------------------


@pytest.mark.parametrize(("state", "value"), [(True, 1), (False, 0)])
def test_write_single_coil(state: bool, value: int) -> None:
    for cls, is_request in ((bm.WriteSingleCoilRequest, True), (bm.WriteSingleCoilResponse, False)):
        msg = ok(adu(cls(address=17, bits=[state])), is_request=is_request)
        assert (msg.function_code, msg.address, msg.values) == (5, 17, (value,))
        assert msg.extra["output_value"] == (0xFF00 if state else 0)


def test_write_single_coil_other_value_is_malformed() -> None:
    msg = one(raw_adu(bytes.fromhex("05 0011 1234")), is_request=True)
    assert msg.malformed_reason is not None and "0x1234" in msg.malformed_reason
    assert msg.address == 0x11  # what could be read is kept
    assert msg.extra["output_value"] == 0x1234


def test_write_single_register() -> None:
    for cls, is_request in (
        (rm.WriteSingleRegisterRequest, True),
        (rm.WriteSingleRegisterResponse, False),
    ):
        msg = ok(adu(cls(address=300, registers=[0xBEEF])), is_request=is_request)
        assert (msg.function_code, msg.address, msg.quantity, msg.values) == (6, 300, 1, (0xBEEF,))


# --- multiple writes -----------------------------------------------------------------


def test_write_multiple_coils() -> None:
    pattern = [True, True, False, True, False, False, False, True, True, False]
    req = ok(adu(bm.WriteMultipleCoilsRequest(address=20, bits=pattern)), is_request=True)
    assert (req.function_code, req.address, req.quantity) == (15, 20, 10)
    assert req.values == tuple(int(b) for b in pattern)  # truncated to the quantity
    assert req.extra["byte_count"] == 2
    resp = ok(adu(bm.WriteMultipleCoilsResponse(address=20, count=10)), is_request=False)
    assert (resp.address, resp.quantity, resp.values) == (20, 10, None)


def test_write_multiple_registers() -> None:
    regs = [1, 2, 3, 65535]
    req = ok(adu(rm.WriteMultipleRegistersRequest(address=5, registers=regs)), is_request=True)
    assert (req.function_code, req.address, req.quantity, req.values) == (16, 5, 4, tuple(regs))
    resp = ok(adu(rm.WriteMultipleRegistersResponse(address=5, count=4)), is_request=False)
    assert (resp.function_code, resp.address, resp.quantity) == (16, 5, 4)


def test_mask_write_register() -> None:
    for cls, is_request in (
        (rm.MaskWriteRegisterRequest, True),
        (rm.MaskWriteRegisterResponse, False),
    ):
        msg = ok(adu(cls(address=4, and_mask=0xF2, or_mask=0x25)), is_request=is_request)
        assert (msg.function_code, msg.address) == (22, 4)
        assert (msg.extra["and_mask"], msg.extra["or_mask"]) == (0xF2, 0x25)


def test_read_write_multiple_registers() -> None:
    req_pdu = rm.ReadWriteMultipleRegistersRequest(
        read_address=10, read_count=6, write_address=20, write_registers=[7, 8, 9]
    )
    req = ok(adu(req_pdu), is_request=True)
    assert req.function_code == 23
    assert (req.address, req.quantity, req.values) == (20, 3, (7, 8, 9))
    assert (req.extra["read_address"], req.extra["read_quantity"]) == (10, 6)
    assert (req.extra["write_address"], req.extra["write_quantity"]) == (20, 3)
    assert req.extra["byte_count"] == 6
    resp_pdu = rm.ReadWriteMultipleRegistersResponse(registers=[1, 2, 3, 4, 5, 6])
    resp = ok(adu(resp_pdu), is_request=False)
    assert resp.values == (1, 2, 3, 4, 5, 6)


# --- diagnostics and serial-line functions ------------------------------------------


def test_diagnostics_return_diagnostic_register() -> None:
    req = ok(adu(dm.ReturnDiagnosticRegisterRequest()), is_request=True)
    assert (req.function_code, req.subfunction, req.values) == (8, 2, (0,))
    resp = ok(adu(dm.ReturnDiagnosticRegisterResponse(message=[0xA5A5])), is_request=False)
    assert (resp.subfunction, resp.values, resp.extra["data"]) == (2, (0xA5A5,), b"\xa5\xa5")


def test_diagnostics_restart_and_listen_only() -> None:
    restart = ok(adu(dm.RestartCommunicationsOptionRequest(message=0xFF00)), is_request=True)
    assert (restart.subfunction, restart.values) == (1, (0xFF00,))
    listen = ok(adu(dm.ForceListenOnlyModeRequest()), is_request=True)
    assert listen.subfunction == 4


def test_diagnostics_truncated_subfunction() -> None:
    msg = one(raw_adu(b"\x08\x00"), is_request=True)
    assert msg.subfunction is None
    assert msg.malformed_reason is not None and "sub-function" in msg.malformed_reason


def test_read_exception_status() -> None:
    req = ok(adu(om.ReadExceptionStatusRequest()), is_request=True)
    assert req.function_code == 7
    resp = ok(adu(om.ReadExceptionStatusResponse(status=0x6D)), is_request=False)
    assert resp.extra["output_data"] == 0x6D
    assert resp.values == (1, 0, 1, 1, 0, 1, 1, 0)


def test_get_comm_event_counter() -> None:
    req = ok(adu(om.GetCommEventCounterRequest()), is_request=True)
    assert req.function_code == 11
    resp = ok(adu(om.GetCommEventCounterResponse(count=0x108, status=False)), is_request=False)
    assert (resp.extra["status"], resp.extra["event_count"]) == (0xFFFF, 0x108)


def test_get_comm_event_log() -> None:
    req = ok(adu(om.GetCommEventLogRequest()), is_request=True)
    assert req.function_code == 12
    pdu = om.GetCommEventLogResponse(message_count=0x121, event_count=0x108, events=[0x20, 0])
    resp = ok(adu(pdu), is_request=False)
    assert resp.extra["byte_count"] == 8
    assert (resp.extra["event_count"], resp.extra["message_count"]) == (0x108, 0x121)
    assert resp.extra["events"] == (0x20, 0)


def test_report_slave_id() -> None:
    req = ok(adu(om.ReportDeviceIdRequest()), is_request=True)
    assert req.function_code == 17
    resp = ok(adu(om.ReportDeviceIdResponse(identifier=b"PLC-7", status=True)), is_request=False)
    assert resp.extra["data"] == b"PLC-7\xff"
    assert resp.extra["slave_id"] == ord("P")
    # Spec layout (MB §6.13): server id, run indicator, additional data.
    spec = ok(raw_adu(bytes.fromhex("11 05 2a ff 01 02 03")), is_request=False)
    assert (spec.extra["slave_id"], spec.extra["run_indicator"]) == (0x2A, 0xFF)


# --- file records and FIFO -----------------------------------------------------------


def test_read_file_record() -> None:
    records = [
        FileRecord(file_number=4, record_number=1, record_length=4),
        FileRecord(file_number=3, record_number=9, record_length=4),
    ]
    req = ok(adu(fm.ReadFileRecordRequest(records=records)), is_request=True)
    assert req.function_code == 20
    assert req.extra["byte_count"] == 14
    got = [
        (r["reference_type"], r["file_number"], r["record_number"]) for r in req.extra["records"]
    ]
    assert got == [(6, 4, 1), (6, 3, 9)]
    assert [r["record_length"] for r in req.extra["records"]] == [2, 2]  # in registers
    data = [FileRecord(record_data=b"\x0d\xfe\x00\x20"), FileRecord(record_data=b"\x33\xcd")]
    resp = ok(adu(fm.ReadFileRecordResponse(records=data)), is_request=False)
    assert [r["record_data"] for r in resp.extra["records"]] == [b"\x0d\xfe\x00\x20", b"\x33\xcd"]


def test_write_file_record() -> None:
    record = FileRecord(file_number=4, record_number=7, record_data=b"\x06\xaf\x04\xbe\x10\x0d")
    for cls, is_request in ((fm.WriteFileRecordRequest, True), (fm.WriteFileRecordResponse, False)):
        msg = ok(adu(cls(records=[record])), is_request=is_request)
        assert msg.function_code == 21
        (rec,) = msg.extra["records"]
        assert (rec["file_number"], rec["record_number"], rec["record_length"]) == (4, 7, 3)
        assert rec["record_data"] == b"\x06\xaf\x04\xbe\x10\x0d"


def test_file_record_bad_reference_type() -> None:
    msg = one(raw_adu(bytes.fromhex("14 07 05 0004 0001 0002")), is_request=True)
    assert msg.malformed_reason is not None and "reference type 5" in msg.malformed_reason
    assert msg.extra["records"][0]["file_number"] == 4


def test_read_fifo_queue() -> None:
    req = ok(adu(fm.ReadFifoQueueRequest(address=0x4DE)), is_request=True)
    assert (req.function_code, req.address) == (24, 0x4DE)
    resp = ok(adu(fm.ReadFifoQueueResponse(values=[0x1B8, 0x1284])), is_request=False)
    assert resp.values == (0x1B8, 0x1284)
    assert (resp.extra["byte_count"], resp.extra["fifo_count"]) == (6, 2)


# --- encapsulated interface transport -----------------------------------------------


def test_read_device_identification() -> None:
    req = ok(adu(mm.ReadDeviceInformationRequest(read_code=1, object_id=0)), is_request=True)
    assert (req.function_code, req.mei_type) == (43, 14)
    assert (req.extra["read_device_id_code"], req.extra["object_id"]) == (1, 0)
    info = {0: b"Schneider Electric", 1: b"BMX P34 2020", 2: b"v3.10"}
    resp = ok(
        adu(mm.ReadDeviceInformationResponse(read_code=1, information=info)), is_request=False
    )
    assert resp.mei_type == 14
    assert resp.extra["conformity_level"] == 0x83
    assert (resp.extra["more_follows"], resp.extra["next_object_id"]) == (0, 0)
    assert resp.extra["number_of_objects"] == 3
    assert resp.extra["objects"] == {0: "Schneider Electric", 1: "BMX P34 2020", 2: "v3.10"}


def test_read_device_identification_object_count_mismatch() -> None:
    pdu = bytes.fromhex("2b 0e 01 01 00 00 02 00 03") + b"ABC"
    msg = one(raw_adu(pdu), is_request=False)
    assert msg.extra["objects"] == {0: "ABC"}
    assert msg.malformed_reason is not None and "number of objects 2" in msg.malformed_reason


def test_canopen_general_reference_kept_raw() -> None:
    msg = ok(raw_adu(bytes.fromhex("2b 0d 01 02 03")), is_request=True)
    assert (msg.function_code, msg.mei_type, msg.extra["mei_data"]) == (43, 13, b"\x01\x02\x03")


# --- exceptions and unknown codes ----------------------------------------------------


@pytest.mark.parametrize("code", [1, 3, 16, 43])
@pytest.mark.parametrize("exc", [1, 2, 4, 11])
def test_exception_response(code: int, exc: int) -> None:
    msg = ok(adu(ExceptionResponse(code, exc)), is_request=False)
    assert msg.is_exception
    assert (msg.function_code, msg.exception_code) == (code, exc)
    assert msg.raw[7] == code | 0x80


def test_exception_response_with_trailing_byte_is_malformed() -> None:
    msg = one(raw_adu(b"\x83\x02\x00"), is_request=False)
    assert msg.is_exception and msg.exception_code == 2
    assert msg.malformed_reason is not None


def test_unknown_and_vendor_codes_are_not_malformed() -> None:
    msg = ok(raw_adu(bytes.fromhex("5a 00 02 ab")), is_request=True)
    assert (msg.function_code, msg.function, msg.extra["data"]) == (
        90,
        "PROGRAM_UNITY",
        b"\x00\x02\xab",
    )
    odd = ok(raw_adu(bytes.fromhex("41 01 02")), is_request=False)
    assert odd.function == "USER_DEFINED_65"


def test_exception_bit_in_request_is_malformed() -> None:
    msg = one(raw_adu(b"\x83\x02"), is_request=True)
    assert not msg.is_exception
    assert msg.malformed_reason is not None and "reserved" in msg.malformed_reason


# --- spec violations keep what could be read ----------------------------------------


@pytest.mark.parametrize(
    ("pdu", "is_request", "needle"),
    [
        ("01 0000 0000", True, "quantity 0 outside 1..2000"),
        ("01 0000 07d1", True, "quantity 2001 outside 1..2000"),
        ("03 0000 007e", True, "quantity 126 outside 1..125"),
        ("0f 0000 07b1 f7" + "ff" * 247, True, "coil quantity 1969 outside 1..1968"),
        ("0f 0000 000a 01 ff", True, "10 coils need 2"),
        ("0f 0000 000a 02 ff", True, "byte count 2 but 1 bytes follow"),
        ("10 0000 0002 03 000100", True, "2 registers need 4"),
        ("10 0000 007c f8" + "00" * 248, True, "register quantity 124 outside 1..123"),
        ("17 0000 0001 0000 007a f4" + "00" * 244, True, "write quantity 122 outside 1..121"),
        ("17 0000 007e 0000 0001 02 0000", True, "read quantity 126 outside 1..125"),
        ("03 04 0001", False, "byte count 4 but 2 bytes follow"),
        ("03 03 000102", False, "odd register byte count 3"),
        ("01 02 ff", False, "byte count 2 but 1 bytes follow"),
        ("03 0001", True, "truncated"),
        ("06 0001 0002 03", True, "trailing"),
        ("18 0004 0001 0001 0002", False, "FIFO count 1 but 4 value bytes"),
        ("2b 0e 05 00", True, "read device id code 5"),
        ("2b 0e 01 83 07 00 00", False, "more follows 0x07"),
        ("2b", True, "missing MEI type"),
        ("07 00", True, "trailing"),
    ],
)
def test_malformed_pdus(pdu: str, is_request: bool, needle: str) -> None:
    decoded = decode_pdu(bytes.fromhex(pdu), is_request=is_request)
    assert decoded.malformed_reason is not None
    assert needle in decoded.malformed_reason


def test_malformed_keeps_fields() -> None:
    decoded = decode_pdu(bytes.fromhex("0f 0010 000a 01 ff"), is_request=True)
    assert (decoded.address, decoded.quantity, decoded.values) == (16, 10, (1,) * 8)
    truncated = decode_pdu(bytes.fromhex("03 0102"), is_request=True)
    assert (truncated.address, truncated.quantity) == (0x102, None)


def test_empty_pdu_is_malformed_not_an_error() -> None:
    decoded = decode_pdu(b"", is_request=True)
    assert decoded.malformed_reason is not None and "empty" in decoded.malformed_reason


def test_pymodbus_decodes_what_we_decode() -> None:
    """Cross-check: pymodbus's own server-side decoder agrees on a request we frame."""
    from pymodbus.pdu import DecodePDU

    data = adu(rm.WriteMultipleRegistersRequest(address=9, registers=[4, 5]))
    theirs = DecodePDU(is_server=True).decode(data[7:])
    ours = ok(data, is_request=True)
    assert theirs is not None
    assert (theirs.address, list(theirs.registers)) == (ours.address, list(ours.values or ()))
