"""Transaction matching and the mapping onto protocol-neutral Operations."""

from __future__ import annotations

import pytest
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu import bit_message as bm
from pymodbus.pdu import diag_message as dm
from pymodbus.pdu import mei_message as mm
from pymodbus.pdu import other_message as om
from pymodbus.pdu import register_message as rm
from pymodbus.pdu.pdu import ModbusPDU

from otconduit.model import OpClass, Operation, OpStatus
from otconduit.protocols.modbus import (
    ModbusMessage,
    ModbusSession,
    ModbusStream,
    ModbusTransaction,
    device_identity,
    transaction_to_operation,
)

from .modbus_helpers import adu, drain, raw_adu


def to_op(tx: ModbusTransaction) -> Operation:
    return transaction_to_operation(
        tx, src_ip="10.0.0.1", src_port=50000, dst_ip="10.0.0.2", dst_port=502
    )


def msg(data: bytes, *, is_request: bool, frame: int = 1, ts_ns: int = 1000) -> ModbusMessage:
    stream = ModbusStream(is_request=is_request)
    stream.feed(data, frame, ts_ns)
    (event,) = drain(stream)
    assert isinstance(event, ModbusMessage)
    return event


def req(pdu: ModbusPDU, tid: int, frame: int = 1, ts_ns: int = 1000) -> ModbusMessage:
    return msg(adu(pdu, tid=tid), is_request=True, frame=frame, ts_ns=ts_ns)


def resp(pdu: ModbusPDU, tid: int, frame: int = 2, ts_ns: int = 5000) -> ModbusMessage:
    return msg(adu(pdu, tid=tid), is_request=False, frame=frame, ts_ns=ts_ns)


def pair(request: ModbusMessage, response: ModbusMessage) -> ModbusTransaction:
    session = ModbusSession()
    assert session.request(request) == []
    (tx,) = session.response(response)
    assert tx.request is request
    return tx


def test_interleaved_transactions_match_by_tid() -> None:
    session = ModbusSession()
    r1 = req(rm.ReadHoldingRegistersRequest(address=0, count=2), tid=1, ts_ns=100)
    r2 = req(rm.ReadInputRegistersRequest(address=10, count=1), tid=2, ts_ns=200)
    r3 = req(bm.ReadCoilsRequest(address=0, count=3), tid=3, ts_ns=300)
    for r in (r1, r2, r3):
        assert session.request(r) == []
    assert session.outstanding == 3
    (tx2,) = session.response(resp(rm.ReadInputRegistersResponse(registers=[9]), tid=2, ts_ns=900))
    (tx1,) = session.response(
        resp(rm.ReadHoldingRegistersResponse(registers=[1, 2]), tid=1, ts_ns=1000)
    )
    assert (tx2.request, tx1.request) == (r2, r1)
    assert tx2.response is not None and tx2.response.values == (9,)
    assert to_op(tx2).latency_ns == 700
    assert to_op(tx1).latency_ns == 900
    (left,) = session.flush()
    assert (left.request, left.response) == (r3, None)
    assert session.outstanding == 0


def test_response_without_request() -> None:
    session = ModbusSession()
    response = resp(rm.ReadHoldingRegistersResponse(registers=[5]), tid=77)
    (tx,) = session.response(response)
    assert (tx.request, tx.response) == (None, response)
    op = to_op(tx)
    assert (op.status, op.latency_ns, op.request_frame, op.response_frame) == (
        OpStatus.OK,
        None,
        None,
        2,
    )
    assert op.ts_ns == response.ts_ns and op.transaction_id == 77


def test_reused_transaction_ids_are_answered_in_order() -> None:
    """Two requests with one id before any answer: responses pair first-in, first-out,
    as tshark pairs them and as a server processes them."""
    session = ModbusSession()
    first = req(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=5)
    second = req(rm.ReadHoldingRegistersRequest(address=1, count=1), tid=5)
    assert session.request(first) == []
    assert session.request(second) == []
    assert session.outstanding == 2
    (tx1,) = session.response(resp(rm.ReadHoldingRegistersResponse(registers=[3]), tid=5))
    assert tx1.request is first
    (tx2,) = session.response(resp(rm.ReadHoldingRegistersResponse(registers=[4]), tid=5))
    assert tx2.request is second
    assert session.outstanding == 0


def test_retry_without_answer_leaves_both_unanswered() -> None:
    session = ModbusSession()
    first = req(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=5)
    second = req(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=5)
    session.request(first)
    session.request(second)
    done = session.flush()
    assert [t.request for t in done] == [first, second]
    assert all(to_op(t).status is OpStatus.NO_RESPONSE for t in done)


def test_outstanding_table_is_bounded() -> None:
    session = ModbusSession(max_outstanding=4)
    done = []
    for tid in range(10):
        done += session.request(req(rm.ReadHoldingRegistersRequest(address=tid, count=1), tid=tid))
    assert session.outstanding == 4
    assert [tx.request.tid for tx in done if tx.request] == [0, 1, 2, 3, 4, 5]
    assert all(tx.response is None for tx in done)
    assert session.evicted == 6


def test_function_code_mismatch_splits_transaction() -> None:
    session = ModbusSession()
    request = req(rm.ReadHoldingRegistersRequest(address=0, count=1), tid=1)
    session.request(request)
    unanswered, orphan = session.response(resp(rm.ReadInputRegistersResponse(registers=[1]), tid=1))
    assert (unanswered.request, unanswered.response) == (request, None)
    assert orphan.request is None and orphan.response is not None


def test_read_coils_truncated_to_quantity() -> None:
    request = req(bm.ReadCoilsRequest(address=0, count=10), tid=1)
    bits = [True, False, True, True, False, False, True, False, True, True]
    tx = pair(request, resp(bm.ReadCoilsResponse(bits=bits), tid=1))
    assert tx.response is not None and tx.response.values == tuple(int(b) for b in bits)
    op = to_op(tx)
    assert op.operation is OpClass.READ
    assert (op.function, op.function_code, op.address, op.quantity) == ("READ_COILS", 1, 0, 10)
    assert op.values is None  # reads carry their data in the detail
    assert op.detail["response_values"] == [int(b) for b in bits]
    assert op.status is OpStatus.OK


def test_read_quantity_mismatch_is_malformed() -> None:
    request = req(rm.ReadHoldingRegistersRequest(address=0, count=3), tid=1)
    tx = pair(request, resp(rm.ReadHoldingRegistersResponse(registers=[1, 2]), tid=1))
    op = to_op(tx)
    assert op.status is OpStatus.MALFORMED
    assert "2 registers but 3 requested" in op.detail["response_malformed_reason"]


def test_exception_transaction() -> None:
    request = req(rm.WriteMultipleRegistersRequest(address=4, registers=[1, 2]), tid=3)
    tx = pair(request, resp(ExceptionResponse(16, 2), tid=3))
    op = to_op(tx)
    assert (op.status, op.exception, op.exception_code) == (
        OpStatus.EXCEPTION,
        "ILLEGAL_DATA_ADDRESS",
        2,
    )
    assert op.values == (1, 2)  # the attempted write is still recorded
    assert (op.request_frame, op.response_frame, op.latency_ns) == (1, 2, 4000)


@pytest.mark.parametrize(
    ("request_pdu", "response_pdu", "values"),
    [
        (
            bm.WriteSingleCoilRequest(address=1, bits=[True]),
            bm.WriteSingleCoilResponse(address=1, bits=[True]),
            (1,),
        ),
        (
            rm.WriteSingleRegisterRequest(address=2, registers=[77]),
            rm.WriteSingleRegisterResponse(address=2, registers=[77]),
            (77,),
        ),
        (
            bm.WriteMultipleCoilsRequest(address=3, bits=[True, False, True]),
            bm.WriteMultipleCoilsResponse(address=3, count=3),
            (1, 0, 1),
        ),
        (
            rm.WriteMultipleRegistersRequest(address=4, registers=[5, 6]),
            rm.WriteMultipleRegistersResponse(address=4, count=2),
            (5, 6),
        ),
        (
            rm.MaskWriteRegisterRequest(address=5, and_mask=0xF2, or_mask=0x25),
            rm.MaskWriteRegisterResponse(address=5, and_mask=0xF2, or_mask=0x25),
            (0xF2, 0x25),
        ),
    ],
)
def test_write_values(
    request_pdu: ModbusPDU, response_pdu: ModbusPDU, values: tuple[int, ...]
) -> None:
    tx = pair(req(request_pdu, tid=1), resp(response_pdu, tid=1))
    op = to_op(tx)
    assert op.operation is OpClass.WRITE
    assert op.values == values
    assert op.status is OpStatus.OK
    assert op.unit == 1 and op.protocol == "modbus"


def test_mask_write_detail() -> None:
    pdu = rm.MaskWriteRegisterRequest(address=5, and_mask=0xF2, or_mask=0x25)
    op = to_op(ModbusTransaction(request=req(pdu, tid=1), response=None))
    assert (op.detail["and_mask"], op.detail["or_mask"]) == (0xF2, 0x25)
    assert op.status is OpStatus.NO_RESPONSE


def test_read_write_multiple_registers_operation() -> None:
    pdu = rm.ReadWriteMultipleRegistersRequest(
        read_address=1, read_count=3, write_address=9, write_registers=[4, 5]
    )
    tx = pair(
        req(pdu, tid=2), resp(rm.ReadWriteMultipleRegistersResponse(registers=[7, 8, 9]), tid=2)
    )
    op = to_op(tx)
    assert op.operation is OpClass.WRITE
    assert (op.address, op.quantity, op.values) == (9, 2, (4, 5))
    assert (op.detail["read_address"], op.detail["read_quantity"]) == (1, 3)
    assert op.detail["response_values"] == [7, 8, 9]


def test_diagnostics_operation() -> None:
    tx = pair(
        req(dm.ReturnDiagnosticRegisterRequest(), tid=1),
        resp(dm.ReturnDiagnosticRegisterResponse(message=[3]), tid=1),
    )
    op = to_op(tx)
    assert op.operation is OpClass.DIAGNOSTIC
    assert op.detail["subfunction_name"] == "Return Diagnostic Register"
    control = to_op(
        ModbusTransaction(request=req(dm.ForceListenOnlyModeRequest(), tid=2), response=None)
    )
    assert control.operation is OpClass.CONTROL
    assert control.detail["subfunction_name"] == "Force Listen Only Mode"


def test_device_identification() -> None:
    info = {0: b"Acme", 1: b"AC-100", 2: b"V2.3", 4: b"Acme PLC", 5: b"AC-100/E"}
    tx = pair(
        req(mm.ReadDeviceInformationRequest(read_code=2, object_id=0), tid=1),
        resp(mm.ReadDeviceInformationResponse(read_code=2, information=info), tid=1),
    )
    op = to_op(tx)
    assert op.operation is OpClass.IDENTITY
    assert op.detail["mei_name"] == "Read Device Identification"
    assert op.detail["objects"]["VendorName"] == "Acme"
    assert device_identity(tx) == {
        "VendorName": "Acme",
        "ProductCode": "AC-100",
        "MajorMinorRevision": "V2.3",
        "ProductName": "Acme PLC",
        "ModelName": "AC-100/E",
    }


def test_report_slave_id_identity() -> None:
    tx = pair(
        req(om.ReportDeviceIdRequest(), tid=1),
        resp(om.ReportDeviceIdResponse(identifier=b"\x2a"), tid=1),
    )
    assert device_identity(tx) == {"SlaveId": "2aff"}
    assert to_op(tx).operation is OpClass.IDENTITY


def test_identity_empty_without_response() -> None:
    request = req(om.ReportDeviceIdRequest(), tid=1)
    assert device_identity(ModbusTransaction(request=request, response=None)) == {}


def test_malformed_request_status_and_reason() -> None:
    bad = msg(raw_adu(bytes.fromhex("03 0000 0000"), tid=1), is_request=True)
    op = to_op(ModbusTransaction(request=bad, response=None))
    assert op.status is OpStatus.MALFORMED
    assert "quantity 0" in op.detail["request_malformed_reason"]


def test_vendor_code_operation() -> None:
    umas = msg(raw_adu(bytes.fromhex("5a 00 02")), is_request=True)
    op = to_op(ModbusTransaction(request=umas, response=None))
    assert (op.function, op.operation) == ("PROGRAM_UNITY", OpClass.PROGRAM)
    assert op.detail["request_data"] == "0002"
