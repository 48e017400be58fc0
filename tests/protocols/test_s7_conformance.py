"""Conformance with Zeek ICSNPP's s7comm baselines and agreement with tshark.

Zeek ICSNPP (cisagov/icsnpp-s7comm) baselines in ``../shared/corpus/icsnpp/s7comm``:
every row of s7comm.log, s7comm_read_szl.log, s7comm_upload_download.log and the CR/CC
rows of cotp.log must have a matching operation, and s7comm_known_devices.log must match
our identity claims. One systematic difference, documented rather than hidden: ICSNPP
logs the PDU reference byte-swapped (its binpac records inherit little-endian order, so
the wire bytes 01 00 are logged as 1), while we, like Wireshark, read it big-endian
(256). Rows are compared with the swap undone.

Rows ICSNPP leaves out are not a mismatch for us: it logs no Ack (ROSCTR 2) rows, and
it drops the first fragment response and the follow-up request of a fragmented Read SZL
(snap7.pcap PDU references 2 and 3). Every row it does log is matched.

tshark, on ``../shared/corpus/iti/s7`` and the ICSNPP captures: per capture, the number
of S7 job requests per function and of userdata requests per (group, subfunction)
equals ours.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.s7 import SPEC
from otconduit.protocols.s7 import functions as fn
from tests.streams import decode_flows
from tests.tsharkutil import tshark_fields
from tests.zeeklog import read_zeek_log

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ICSNPP = SHARED / "corpus" / "icsnpp" / "s7comm"
ITI = SHARED / "corpus" / "iti" / "s7"

needs_shared = pytest.mark.skipif(not ICSNPP.is_dir(), reason="../shared corpus absent")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark absent")

Row = dict[str, str | None]


def swap(ref: int) -> int:
    return ((ref & 0xFF) << 8) | (ref >> 8)


def decoded(name: str) -> list[Any]:
    return decode_flows(ICSNPP / name / f"{name}.pcap", {102}, SPEC.factory)


def operations(events: list[Any]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation) and e.protocol == "s7comm"]


def baseline(name: str, log: str) -> list[Row]:
    path = ICSNPP / name / "zeek-baseline" / log
    return read_zeek_log(path) if path.is_file() else []


def _ref(op: Operation, request_side: bool) -> int | None:
    """The PDU reference of one side of an operation, as ICSNPP logs it (byte-swapped)."""
    key = "pdu_reference"
    if not request_side and op.detail.get("rosctr") == "User-Data":
        key = "response_pdu_reference"
    ref = op.detail.get(key)
    return None if ref is None else swap(ref)


def _side_present(op: Operation, request_side: bool, sender_is_client: bool) -> bool:
    """The operation has this side, sent by the endpoint that sent the logged PDU."""
    frame = op.request_frame if request_side else op.response_frame
    request_from_client = not op.detail.get("from_server")
    return frame is not None and request_from_client == (sender_is_client == request_side)


def matches_s7comm_row(op: Operation, row: Row) -> bool:
    rosctr = int(row["rosctr_code"] or 0)
    function_name = row["function_name"] or ""
    request_side = rosctr == fn.ROSCTR_JOB or function_name.startswith("Request")
    if not _side_present(op, request_side, row["is_orig"] == "T"):
        return False
    if _ref(op, request_side) != int(row["pdu_reference"] or -1):
        return False
    if rosctr in (fn.ROSCTR_JOB, fn.ROSCTR_ACK_DATA):
        if op.detail.get("rosctr") != "Job-Request" or op.function != function_name:
            return False
        if rosctr == fn.ROSCTR_ACK_DATA and op.detail.get("response_rosctr") != "ACK-Data":
            return False
        if op.function_code != int(row["function_code"] or "-1", 16):
            return False
        pi = (op.detail.get("pi_service"), op.detail.get("pi_service_name"))
        if row["subfunction_code"] is not None and pi != (  # PLC Control: the PI service
            row["subfunction_code"],
            row["subfunction_name"],
        ):
            return False
    elif rosctr == fn.ROSCTR_USERDATA:
        type_group = int(row["function_code"] or "0", 16)
        group, sub = type_group & 0x0F, int(row["subfunction_code"] or "0", 16)
        kind = "Request" if request_side else "Response"
        if function_name != f"{kind}: {fn.group_name(group)}":
            return False
        if (
            op.function_code != fn.userdata_code(group, sub)
            or op.function != row["subfunction_name"]
        ):
            return False
    else:
        return False
    if request_side:
        return True
    if row["error_class"] == "No error":  # the header (or userdata parameter) error only:
        # an all-items-failed read is an exception for us but "No error" for ICSNPP
        return op.detail.get("error_source") in (None, "item")
    return op.status == OpStatus.EXCEPTION and op.exception_code == int(
        row["error_code"] or "0", 16
    )


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("name", ["snap7", "s7ident"])
def test_every_s7comm_log_row_has_an_operation(name: str) -> None:
    rows = baseline(name, "s7comm.log")
    assert rows, "baseline missing"
    ops = operations(decoded(name))
    unmatched = [r for r in rows if not any(matches_s7comm_row(op, r) for op in ops)]
    assert unmatched == []


@needs_shared
@pytest.mark.shared
def test_row_matcher_rejects_altered_rows() -> None:
    """The matcher is not vacuous: each altered field makes a logged row unmatched."""
    ops = operations(decoded("snap7"))
    row = next(r for r in baseline("snap7", "s7comm.log") if r["subfunction_code"] == "_MODU")
    assert any(matches_s7comm_row(op, row) for op in ops)
    for key, value in [
        ("pdu_reference", "30"),
        ("function_name", "PLC Stop"),
        ("subfunction_code", "_GARB"),
        ("is_orig", "F"),
    ]:
        assert not any(matches_s7comm_row(op, {**row, key: value}) for op in ops), key


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("name", ["snap7", "s7ident"])
def test_cotp_connection_rows(name: str) -> None:
    rows = [r for r in baseline(name, "cotp.log") if r["pdu_code"] in ("0x0e", "0x0d")]
    connects = [op for op in operations(decoded(name)) if op.function == fn.COTP_CONNECT]
    requests = sum(r["pdu_code"] == "0x0e" for r in rows)
    confirms = sum(r["pdu_code"] == "0x0d" for r in rows)
    assert sum(op.request_frame is not None for op in connects) == requests
    assert sum(op.response_frame is not None for op in connects) == confirms
    assert all(op.operation == OpClass.SESSION for op in connects)


@needs_shared
@pytest.mark.shared
def test_read_szl_rows() -> None:
    rows = baseline("snap7", "s7comm_read_szl.log")
    assert len(rows) == 9
    szl_ops = [op for op in operations(decoded("snap7")) if op.function == "Read SZL"]
    unmatched = []
    for row in rows:
        request_side = row["method"] == "Request"
        want = (int(row["szl_id"] or "0", 16), int(row["szl_index"] or "0", 16), row["szl_id_name"])
        if not any(
            _side_present(op, request_side, row["is_orig"] == "T")
            and _ref(op, request_side) == int(row["pdu_reference"] or -1)
            and (op.detail.get("szl_id"), op.detail.get("szl_index"), op.detail.get("szl_id_name"))
            == want
            and op.operation == OpClass.IDENTITY
            for op in szl_ops
        ):
            unmatched.append(row)
    assert unmatched == []


def _matches_transfer(op: Operation, row: Row) -> bool:
    request_side = row["rosctr"] == "Job-Request"
    if op.function != row["function_name"] or op.operation != OpClass.PROGRAM:
        return False
    if not _side_present(op, request_side, row["is_orig"] == "T"):
        return False
    if _ref(op, True) != int(row["pdu_reference"] or -1):
        return False
    d = op.detail
    if request_side:
        if row["filename"] is not None and d.get("filename") != row["filename"]:
            return False
        if row["block_type"] is not None and d.get("block_type_name") != row["block_type"]:
            return False
        if row["block_number"] is not None and d.get("block_number") != int(row["block_number"]):
            return False
        fs = row["destination_filesystem"]
        return fs is None or d.get("filesystem") == fs
    if row["session_id"] is not None and d.get("session_id") != int(row["session_id"]):
        return False
    length = row["blocklength"]
    return length is None or int(length) in (d.get("block_length"), d.get("data_length"))


@needs_shared
@pytest.mark.shared
def test_upload_download_rows() -> None:
    rows = baseline("snap7", "s7comm_upload_download.log")
    assert len(rows) == 25
    ops = operations(decoded("snap7"))
    assert [r for r in rows if not any(_matches_transfer(op, r) for op in ops)] == []


@needs_shared
@pytest.mark.shared
def test_known_devices_match_identity_claims() -> None:
    [row] = baseline("s7ident", "s7comm_known_devices.log")
    claims = [e for e in decoded("s7ident") if isinstance(e, IdentityClaim)]
    got = {c.attribute: c.value for c in claims if c.ip == row["id.resp_h"]}
    assert got["plc_name"] == row["automation_system_name"]
    assert got["module_name"] == row["module_name"]
    assert got["serial"] == row["module_serial"]
    assert row["plant_name"] == "(empty)" and "plant_id" not in got
    assert got["vendor"] == "Siemens" and got["model"] == "6ES7 315-2EH14-0AB0"
    assert all(c.source == "s7_szl" for c in claims)


# --- tshark ----------------------------------------------------------------------------------


def s7_captures() -> list[Path]:
    found = (
        sorted(p for p in ITI.iterdir() if p.suffix in (".pcap", ".pcapng")) if ITI.is_dir() else []
    )
    return found + (sorted(ICSNPP.rglob("*.pcap")) if ICSNPP.is_dir() else [])


def tshark_requests(capture: Path) -> Counter[tuple[int, ...]]:
    fields = [
        "s7comm.header.rosctr",
        "s7comm.param.func",
        "s7comm.param.userdata.type",
        "s7comm.param.userdata.funcgroup",
        "s7comm.param.userdata.subfunc",
    ]
    out: Counter[tuple[int, ...]] = Counter()
    for rosctr, func, typ, group, sub in tshark_fields(capture, fields, "s7comm"):
        assert len(rosctr) == 1, "one S7 PDU per frame in this corpus"
        if rosctr[0] == "1":
            out[(1, int(func[0], 16))] += 1
        elif rosctr[0] == "7" and typ == ["4"]:
            out[(7, int(group[0]), int(sub[0]))] += 1
    return out


def our_requests(events: list[Any]) -> Counter[tuple[int, ...]]:
    out: Counter[tuple[int, ...]] = Counter()
    for op in operations(events):
        if op.request_frame is None:
            continue
        if op.detail.get("rosctr") == "Job-Request":
            out[(1, op.function_code)] += 1
        elif op.detail.get("rosctr") == "User-Data" and op.detail.get("type") == "Request":
            out[(7, op.detail["group"], op.detail["subfunction"])] += 1
    return out


@needs_shared
@needs_tshark
@pytest.mark.shared
@pytest.mark.tshark
@pytest.mark.parametrize("capture", s7_captures(), ids=lambda p: p.name)
def test_request_counts_agree_with_tshark(capture: Path) -> None:
    events = decode_flows(capture, {102}, SPEC.factory)
    assert our_requests(events) == tshark_requests(capture)


@needs_shared
@pytest.mark.shared
def test_plc_stop_capture() -> None:
    events = decode_flows(ITI / "snap7_s300_stop.pcapng", {102}, SPEC.factory)
    [op] = operations(events)
    assert (op.function, op.function_code, op.operation) == ("PLC Stop", 0x29, OpClass.CONTROL)
    assert op.status == OpStatus.OK and op.detail["pi_service"] == "P_PROGRAM"


@needs_shared
@pytest.mark.shared
def test_step7_download_capture() -> None:
    events = decode_flows(ITI / "step7_s300_download.pcapng", {102}, SPEC.factory)
    program = [op for op in operations(events) if op.operation == OpClass.PROGRAM]
    names = [op.function for op in program]
    assert names == ["Request Download", "Download Block", "Download Ended", "PLC Control"]
    assert all(op.status == OpStatus.OK and op.response_frame is not None for op in program)
    assert {op.detail["filename"] for op in program[:3]} == {"_0A00001P"}
    assert program[1].detail["from_server"]  # the PLC pulls the block from the PG
    assert program[3].detail["pi_service"] == "_INSE"


@needs_shared
@pytest.mark.shared
def test_s7_plus_capture() -> None:
    events = decode_flows(ITI / "s7-1200-hmi.pcap", {102}, SPEC.factory)
    plus = [e for e in events if isinstance(e, Operation) and e.protocol == "s7comm-plus"]
    got = Counter((op.function, op.operation) for op in plus)
    assert got == Counter(
        {
            ("Create Object", "session"): 1,
            ("Set Multi Variables", "write"): 2,
            ("Get Multi Variables", "read"): 9,
        }
    )
    assert all(op.status == OpStatus.OK and op.latency_ns is not None for op in plus)
    others = [e for e in events if not isinstance(e, Operation)]
    assert [(c.attribute, c.value) for c in others if isinstance(c, IdentityClaim)] == [
        ("vendor", "Siemens")
    ]
    assert len(others) == 1  # nothing malformed
