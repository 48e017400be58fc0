"""Conformance with Zeek's CISA ICSNPP Modbus parser on its own test capture.

Every row of the baseline's modbus_detailed, mask-write and read-write-multiple logs must
have a matching operation with the same fields. Zeek logs request and response of a few
functions it does not pair (READ_EXCEPTION_STATUS, REPORT_SLAVE_ID) as two unmatched rows;
we pair them, so each of those rows must match our single transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.store import Store, views
from tests.conftest import CORPUS, needs_shared
from tests.zeeklog import read_zeek_log

CASE = CORPUS / "icsnpp" / "modbus" / "modbus_example"
pytestmark = needs_shared


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    db = tmp_path_factory.mktemp("zeek") / "c.db"
    with Store(db) as store:
        analyze_file(store, CASE / "modbus_example.pcap")
        return list(views.operations(store))


def _ints(v: str | None) -> list[int] | None:
    return None if v is None else [int(x) for x in v.split(",")]


def _find(ops: list[dict[str, Any]], row: dict[str, str | None]) -> dict[str, Any]:
    hits = [
        o
        for o in ops
        if o["src_ip"] == row["id.orig_h"]
        and o["src_port"] == int(row["id.orig_p"] or 0)
        and o["dst_ip"] == row["id.resp_h"]
        and o["dst_port"] == int(row["id.resp_p"] or 0)
        and o["transaction_id"] == int(row["tid"] or -1)
        and o["unit"] == int(row["unit"] or -1)
    ]
    assert len(hits) == 1, f"expected one operation for {row}, found {hits}"
    return hits[0]


def test_every_detailed_row_matches(ops: list[dict[str, Any]]) -> None:
    rows = read_zeek_log(CASE / "zeek-baseline" / "modbus_detailed.log")
    assert len(rows) == 26
    for row in rows:
        op = _find(ops, row)
        assert op["function"] == row["func"], row
        if row["exception_code"]:
            assert op["status"] == "exception"
            assert op["exception"] == row["exception_code"]
            continue
        func = row["func"]
        if func in ("READ_FILE_RECORD", "WRITE_FILE_RECORD"):
            # Byte count 0 is outside the spec's 7..245: Zeek logs it plainly, we flag it.
            assert op["status"] == "malformed", (row, op)
            assert op["detail"]["request_byte_count"] == 0
        else:
            assert op["status"] == "ok", (row, op)
        if row["address"] is not None:
            assert op["address"] == int(row["address"]), (row, op)
        if row["quantity"] is not None:
            assert op["quantity"] == int(row["quantity"]), (row, op)
        if row["request_values"] is not None:
            assert op["values"] == _ints(row["request_values"]), (row, op)
        if row["response_values"] is not None and func.startswith("READ"):
            assert op["detail"]["response_values"] == _ints(row["response_values"]), (row, op)
        if row["request_subfunction_code"] is not None:
            assert op["detail"]["subfunction_name"] == row["request_subfunction_code"], (row, op)
        if row["mei_type"] is not None:
            assert op["detail"]["mei_name"] == row["mei_type"], (row, op)


def test_no_operation_beyond_the_baseline(ops: list[dict[str, Any]]) -> None:
    rows = read_zeek_log(CASE / "zeek-baseline" / "modbus_detailed.log")
    keys = {(r["id.orig_p"], r["tid"], r["func"]) for r in rows}
    ours = {(str(o["src_port"]), str(o["transaction_id"]), o["function"]) for o in ops}
    assert ours == keys


def test_mask_write_register_log(ops: list[dict[str, Any]]) -> None:
    for row in read_zeek_log(CASE / "zeek-baseline" / "modbus_mask_write_register.log"):
        op = _find(ops, row)
        assert op["function"] == "MASK_WRITE_REGISTER"
        assert op["address"] == int(row["address"] or -1)
        assert op["values"] == [int(row["and_mask"] or -1), int(row["or_mask"] or -1)]


def test_read_write_multiple_registers_log(ops: list[dict[str, Any]]) -> None:
    for row in read_zeek_log(CASE / "zeek-baseline" / "modbus_read_write_multiple_registers.log"):
        op = _find(ops, row)
        assert op["function"] == "READ_WRITE_MULTIPLE_REGISTERS"
        if row["request_response"] == "REQUEST":
            assert op["values"] == _ints(row["write_registers"])
            assert op["address"] == int(row["write_start_address"] or -1)
            assert op["detail"]["read_address"] == int(row["read_start_address"] or -1)
            assert op["detail"]["read_quantity"] == int(row["read_quantity"] or -1)
        else:
            assert op["detail"]["response_values"] == _ints(row["read_registers"])


def test_conn_log_agrees_on_packets(tmp_path: Path) -> None:
    """Packet counts per connection match Zeek's conn.log (orig_pkts/resp_pkts)."""
    with Store(tmp_path / "c.db") as store:
        analyze_file(store, CASE / "modbus_example.pcap")
        convs = views.conversations(store)
    for row in read_zeek_log(CASE / "zeek-baseline" / "conn.log"):
        hit = [
            c
            for c in convs
            if c["client_ip"] == row["id.orig_h"]
            and c["server_ip"] == row["id.resp_h"]
            and c["server_port"] == int(row["id.resp_p"] or 0)
        ]
        assert len(hit) == 1, row
        assert hit[0]["packets_c2s"] == int(row["orig_pkts"] or -1)
        assert hit[0]["packets_s2c"] == int(row["resp_pkts"] or -1)
        assert hit[0]["protocol"] == "modbus"
