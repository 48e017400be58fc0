"""DNP3 on real captures: conformance with Zeek ICSNPP's logs and agreement with tshark.

Zeek's dnp3.log is not a transaction log: its script remembers the last request header
seen on the connection and writes one row per response header (fc_request "-" when
none is remembered, the memory cleared after each row). When a master sends several
requests before the answers, or an unsolicited response arrives between a request and
its answer, Zeek's rows pair what happened to be adjacent. Our operations pair by
application sequence number instead, so the comparison replays Zeek's rule over the
requests and response fragments our operations hold (frames, function names, IIN) and
expects exactly Zeek's rows, connection by connection. Every row is matched; none is
left out.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from otconduit.model import Operation, OpStatus
from otconduit.protocols.base import Endpoints
from otconduit.protocols.events import Malformed
from tests.protocols.dnp3_helpers import (
    ICSNPP,
    ITI,
    confirm,
    decode_capture,
    link_frame,
    request,
    response,
    segments,
    write_tcp_capture,
)
from tests.tsharkutil import tshark_fields
from tests.zeeklog import read_zeek_log

needs_icsnpp = pytest.mark.skipif(not ICSNPP.is_dir(), reason="../shared corpus is absent")
needs_iti = pytest.mark.skipif(not ITI.is_dir(), reason="../shared corpus is absent")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
ITI_CAPTURES = sorted(ITI.glob("*.pcap")) if ITI.is_dir() else []

# Zeek ICSNPP's spelling of CROB fields (its consts.zeek tables).
ZEEK_TRIP = {"NUL": "Nul", "CLOSE": "Close", "TRIP": "Trip"}
ZEEK_OP = {
    "NUL": "Nul",
    "PULSE_ON": "Pulse On",
    "PULSE_OFF": "Pulse Off",
    "LATCH_ON": "Latch On",
    "LATCH_OFF": "Latch Off",
}
ZEEK_STATUS = {0: "Success", 1: "Timeout", 2: "No Select", 3: "Format Error", 4: "Not Supported"}

Conn = frozenset[tuple[str, int]]


def conn_key(e: Endpoints) -> Conn:
    return frozenset({(e.client_ip, e.client_port), (e.server_ip, e.server_port)})


def zeek_conn(row: dict[str, str | None]) -> Conn:
    return frozenset(
        {
            (str(row["id.orig_h"]), int(str(row["id.orig_p"]))),
            (str(row["id.resp_h"]), int(str(row["id.resp_p"]))),
        }
    )


def zeek_replay(ops: list[Operation]) -> list[tuple[str, str, int]]:
    """dnp3.log rows as Zeek's script would write them for these operations."""
    timeline: list[tuple[int, int, str, int]] = []
    for op in ops:
        if op.request_frame is not None:
            timeline.append((op.request_frame, 0, op.function, 0))
        reply = "UNSOLICITED_RESPONSE" if op.detail.get("unsolicited") else "RESPONSE"
        fragments = op.detail.get("response_fragments")
        if fragments is None and op.response_frame is not None:
            fragments = [{"frame": op.response_frame, "iin": op.detail["iin_value"]}]
        for fragment in fragments or []:
            timeline.append((fragment["frame"], 1, reply, fragment["iin"]))
    rows, last = [], "-"
    for _, kind, name, iin in sorted(timeline):
        if kind == 0:
            last = name
        else:
            rows.append((last, name, iin))
            last = "-"
    return rows


@pytest.fixture(scope="module")
def example() -> dict[Conn, list[Operation]]:
    out: dict[Conn, list[Operation]] = {}
    for endpoints, events, _ in decode_capture(ICSNPP / "dnp3_example.pcap"):
        assert not [e for e in events if isinstance(e, Malformed)]
        out[conn_key(endpoints)] = [e for e in events if isinstance(e, Operation)]
    return out


@pytest.mark.shared
@needs_icsnpp
class TestZeekConformance:
    def test_dnp3_log(self, example: dict[Conn, list[Operation]]) -> None:
        rows = read_zeek_log(ICSNPP / "zeek-baseline" / "dnp3.log")
        expected: dict[Conn, Counter[tuple[str, str, int]]] = {}
        for row in rows:
            key = (row["fc_request"] or "-", str(row["fc_reply"]), int(str(row["iin"])))
            expected.setdefault(zeek_conn(row), Counter())[key] += 1
        assert len(rows) == 368 and len(expected) == 11
        got = {conn: Counter(zeek_replay(ops)) for conn, ops in example.items()}
        assert got == expected

    def test_operations_are_whole(self, example: dict[Conn, list[Operation]]) -> None:
        everything = [op for ops in example.values() for op in ops]
        assert Counter(op.function for op in everything) == {
            "READ": 97,
            "SELECT": 134,
            "OPERATE": 133,
            "UNSOLICITED_RESPONSE": 4,
        }
        assert all(op.status is OpStatus.OK for op in everything)
        requests = [op for op in everything if op.request_frame is not None]
        assert all(op.response_frame is not None for op in requests)  # every one answered
        assert {(op.src_ip, op.dst_ip, op.unit) for op in everything} == {
            ("10.10.20.5", "10.10.20.8", 5)
        }

    def test_dnp3_control_log(self, example: dict[Conn, list[Operation]]) -> None:
        rows = read_zeek_log(ICSNPP / "zeek-baseline" / "dnp3_control.log")
        fields = (
            "is_orig",
            "function_code",
            "index_number",
            "trip_control_code",
            "operation_type",
            "clear_bit",
            "execute_count",
            "on_time",
            "off_time",
            "status_code",
        )
        expected: dict[Conn, Counter[tuple[str | None, ...]]] = {}
        for row in rows:
            assert row["block_type"] == "Control Relay Output Block"
            expected.setdefault(zeek_conn(row), Counter())[tuple(row[f] for f in fields)] += 1
        got: dict[Conn, Counter[tuple[str | None, ...]]] = {}
        for conn, ops in example.items():
            for op in ops:
                for c in op.detail.get("crob", []):
                    common = (
                        str(c["index"]),
                        ZEEK_TRIP[c["trip_close"]],
                        ZEEK_OP[c["op_type"]],
                        "T" if c["clear"] else "F",
                        str(c["count"]),
                        str(c["on_time"]),
                        str(c["off_time"]),
                    )
                    rows_here = got.setdefault(conn, Counter())
                    rows_here[("T", op.function, *common, None)] += 1
                    if "response_status" in c:
                        status = ZEEK_STATUS[c["response_status"]]
                        rows_here[("F", "RESPONSE", *common, status)] += 1
        assert sum(sum(c.values()) for c in expected.values()) == 534
        assert got == expected


def tshark_requests(pcap: Path) -> tuple[Counter[int], int]:
    """(requests per function code, confirms) by tshark; confirms are not operations."""
    rows = tshark_fields(pcap, ["dnp3.ctl.dir", "dnp3.ctl.prm", "dnp3.al.func"], "dnp3")
    counts: Counter[int] = Counter()
    confirms = 0
    for _dir, _prm, funcs in rows:
        for f in funcs:
            code = int(f)
            if code == 0:
                confirms += 1
            elif code < 0x81:
                counts[code] += 1
    return counts, confirms


@pytest.mark.shared
@pytest.mark.tshark
@needs_iti
@needs_tshark
class TestTsharkAgreement:
    @pytest.mark.parametrize("pcap", ITI_CAPTURES, ids=lambda p: p.name)
    def test_requests_per_function_code(self, pcap: Path) -> None:
        expected, expected_confirms = tshark_requests(pcap)
        got: Counter[int] = Counter()
        confirms = 0
        for _, events, dec in decode_capture(pcap):
            confirms += dec.session.confirms
            for e in events:
                if isinstance(e, Operation) and e.request_frame is not None:
                    got[e.function_code] += 1
        assert got == expected
        assert confirms == expected_confirms

    @pytest.mark.parametrize("pcap", ITI_CAPTURES, ids=lambda p: p.name)
    def test_response_iin(self, pcap: Path) -> None:
        expected = {
            int(fr[0]): int(iin[0], 16)
            for fr, iin in tshark_fields(pcap, ["frame.number", "dnp3.al.iin"], "dnp3.al.iin")
        }
        got: dict[int, int] = {}
        for _, events, _ in decode_capture(pcap):
            for e in events:
                if isinstance(e, Operation) and e.response_frame is not None:
                    for f in e.detail.get("response_fragments") or [
                        {"frame": e.response_frame, "iin": e.detail["iin_value"]}
                    ]:
                        got[f["frame"]] = f["iin"]
        assert got == expected

    @pytest.mark.parametrize("pcap", ITI_CAPTURES, ids=lambda p: p.name)
    def test_crc_and_malformed_frames(self, pcap: Path) -> None:
        bad_crc = {
            int(r[0][0])
            for r in tshark_fields(
                pcap, ["frame.number"], "dnp3.hdr.CRC.incorrect || dnp3.data_chunk.CRC.incorrect"
            )
        }
        broken = {int(r[0][0]) for r in tshark_fields(pcap, ["frame.number"], "_ws.malformed")}
        ours = [e for _, events, _ in decode_capture(pcap) for e in events]
        malformed = [e for e in ours if isinstance(e, Malformed)]
        assert {m.frame for m in malformed if m.reason.startswith("bad CRC")} == bad_crc
        assert broken <= {m.frame for m in malformed}

    def test_good_cases(self) -> None:
        """The CRCs are right in both; one holds a control cut short, one an exception."""
        ((_, events, dec),) = decode_capture(ITI / "direct_operate_crob_malform_but_good_crc.pcap")
        (mal,) = [e for e in events if isinstance(e, Malformed)]
        assert mal.reason.startswith("application layer: truncated object data: g12v1")
        (op,) = [e for e in events if isinstance(e, Operation)]
        assert op.function == "DIRECT_OPERATE" and op.status is OpStatus.MALFORMED
        assert op.detail["crob"][0]["op_type"] == "PULSE_OFF" and dec.bad_crc_frames == 0
        ((_, events, dec),) = decode_capture(ITI / "cold_restart_and_response.pcap")
        (op,) = [e for e in events if isinstance(e, Operation)]
        assert op.function == "COLD_RESTART" and op.status is OpStatus.EXCEPTION
        assert op.exception == "NO_FUNC_CODE_SUPPORT" and dec.bad_crc_frames == 0
        assert not [e for e in events if isinstance(e, Malformed)]


@pytest.mark.tshark
@needs_tshark
def test_bad_crcs_flagged_like_tshark(tmp_path: Path) -> None:
    """A capture with damaged CRCs: every frame tshark flags, we flag. tshark does not
    dissect a TCP frame whose header CRC is wrong at all, so that one is ours alone."""
    fragment = bytes([0xC1, 0x03, 12, 1, 0x17, 1, 3, 0x41, 1]) + bytes(9) + bytes([60, 1, 6])
    segment = segments(fragment)[0]
    pcap = tmp_path / "crc.pcap"
    write_tcp_capture(
        pcap,
        [
            (0, request(1, 0, bytes([60, 1, 6]))),  # frame 4
            (1, response(0x81, 0)),  # 5
            (0, link_frame(segment, corrupt=0)),  # 6: first data block
            (0, link_frame(segment, corrupt=1)),  # 7: second, short block
            (0, link_frame(segment, corrupt=-2)),  # 8: header
            (1, response(0x81, 1, control=0xE1)),  # 9
            (0, confirm(0xC1)),  # 10
        ],
    )
    tshark = {
        int(r[0][0])
        for r in tshark_fields(
            pcap, ["frame.number"], "dnp3.hdr.CRC.incorrect || dnp3.data_chunk.CRC.incorrect"
        )
    }
    assert tshark == {6, 7}
    ((_, events, dec),) = decode_capture(pcap)
    flagged = {
        e.frame for e in events if isinstance(e, Malformed) and e.reason.startswith("bad CRC")
    }
    assert flagged == {6, 7, 8} and dec.bad_crc_frames == 3
    select = [e for e in events if isinstance(e, Operation) and e.function == "SELECT"]
    assert [op.status for op in select] == [OpStatus.MALFORMED, OpStatus.MALFORMED]
