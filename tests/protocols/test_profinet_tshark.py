"""Agreement with tshark (Wireshark's PN-RT, PN-DCP, PNIO and DCE/RPC dissectors) on
every PROFINET capture of the shared corpus:

- DCP: frames per (source MAC, ServiceID, ServiceType), and per frame the Xid and the
  NameOfStation (an Identify filter or a device's answer);
- RT: frames per (source MAC, FrameID) for everything that is neither DCP nor alarm
  (cyclic data, PTCP, fragments), counted, not decoded;
- alarms: RTA PDUs per (source MAC, PDU type), and the PNIOStatus of each ERR-RTA;
- IO-CM: DCE/RPC packets per type; per call (activity UUID, sequence number) and side,
  the operation number, the record indices and the control commands.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import Operation
from otconduit.protocols.profinet import alarms, blocks, rpc
from tests.tsharkutil import tshark_fields

from .profinet_helpers import CAPTURES, decode_capture

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not CAPTURES, reason="../shared corpus is absent"),
]

FIELDS = [
    "frame.number",
    "eth.src",
    "pn_rt.frame_id",
    "pn_dcp.service_id",
    "pn_dcp.service_type",
    "pn_dcp.xid",
    "pn_dcp.suboption_device_nameofstation",
    "pn_io.pdu_type.type",
    "pn_io.error_code",
    "pn_io.error_code2",
    "dcerpc.pkt_type",
    "dcerpc.opnum",
    "dcerpc.dg_act_id",
    "dcerpc.dg_seqnum",
    "dcerpc.dg_frag_num",
    "pn_io.index",
    "pn_io.control_command",
]
COMMAND_BITS = {name: bit for bit, name in blocks.CONTROL_COMMANDS}
DCP_IDS = {0xFEFC, 0xFEFD, 0xFEFE, 0xFEFF}
ALARM_IDS = {0xFC01, 0xFE01}


class Decoded:
    def __init__(self, capture: Path) -> None:
        self.decoder, events = decode_capture(capture)
        self.ops = [e for e in events if isinstance(e, Operation)]
        self.rows = [
            dict(zip(FIELDS, row, strict=True))
            for row in tshark_fields(capture, FIELDS, "pn_rt || pn_io || dcerpc")
        ]


@pytest.fixture(scope="module", params=CAPTURES, ids=lambda p: p.name)
def case(request: pytest.FixtureRequest) -> Decoded:
    return Decoded(request.param)


def _int(values: list[str]) -> int | None:
    return int(values[0], 0) if values else None


def test_dcp_frames_per_source_and_service(case: Decoded) -> None:
    theirs: Counter[tuple[str, int, int]] = Counter()
    for r in case.rows:
        if r["pn_dcp.service_id"]:
            sid, stype = int(r["pn_dcp.service_id"][0]), int(r["pn_dcp.service_type"][0])
            theirs[(r["eth.src"][0], sid, stype)] += 1
    assert dict(case.decoder.dcp_counts) == dict(theirs)


def test_dcp_xid_and_station_name_per_frame(case: Decoded) -> None:
    theirs: dict[int, tuple[int | None, str | None]] = {}
    for r in case.rows:
        if r["pn_dcp.service_id"]:
            names = r["pn_dcp.suboption_device_nameofstation"]
            theirs[int(r["frame.number"][0])] = (_int(r["pn_dcp.xid"]), names[0] if names else None)
    ours: dict[int, tuple[int | None, str | None]] = {}
    for op in case.ops:
        d = op.detail
        if not op.function.startswith("DCP"):
            continue
        flt = d.get("filter", "")
        asked = flt.split("=", 1)[1] if flt.startswith("name_of_station=") else None
        if op.request_frame is not None:
            for frame in (op.request_frame, *d.get("repeat_frames", ())):
                ours[frame] = (
                    d["xid"],
                    asked if not d.get("unsolicited") else d.get("name_of_station"),
                )
        if op.response_frame is not None:
            ours[op.response_frame] = (d["xid"], d.get("name_of_station"))
    assert ours == theirs


def test_rt_frames_per_source_and_frame_id(case: Decoded) -> None:
    theirs: Counter[tuple[str, int]] = Counter()
    for r in case.rows:
        fid = _int(r["pn_rt.frame_id"])
        if fid is not None and fid not in DCP_IDS | ALARM_IDS:
            theirs[(r["eth.src"][0], fid)] += 1
    ours = {key: s.frames for key, s in case.decoder.rt.items()}
    assert ours == dict(theirs)
    summaries = {
        (o.src_ip, o.address): o.quantity
        for o in case.ops
        if o.function_code >= 0x300 and o.function_code < 0x400
    }
    assert summaries == ours


def test_alarm_pdus_and_status(case: Decoded) -> None:
    theirs: Counter[tuple[str, str]] = Counter()
    statuses: dict[int, tuple[int | None, int | None]] = {}
    for r in case.rows:
        if _int(r["pn_rt.frame_id"]) in ALARM_IDS:
            kind = alarms.PDU_TYPES[_int(r["pn_io.pdu_type.type"]) or 0]
            theirs[(r["eth.src"][0], kind)] += 1
            if kind == "ERR-RTA":
                statuses[int(r["frame.number"][0])] = (
                    _int(r["pn_io.error_code"]),
                    _int(r["pn_io.error_code2"]),
                )
    assert dict(case.decoder.rta_counts) == dict(theirs)
    ours = {
        o.request_frame: (
            int(o.detail["pnio_status"][:2], 16),
            int(o.detail["pnio_status"][6:], 16),
        )
        for o in case.ops
        if o.function == "Alarm Abort"
    }
    assert ours == statuses


def _calls(case: Decoded) -> tuple[Counter[Any], Counter[Any], Counter[Any]]:
    """tshark's view per call and side: (activity, seq, type, opnum), indices, commands."""
    heads: Counter[Any] = Counter()
    indices: Counter[Any] = Counter()
    commands: Counter[Any] = Counter()
    for r in case.rows:
        if not r["dcerpc.pkt_type"]:
            continue
        ptype = _int(r["dcerpc.pkt_type"])
        if ptype not in (rpc.REQUEST, rpc.RESPONSE):
            continue
        key = (r["dcerpc.dg_act_id"][0], _int(r["dcerpc.dg_seqnum"]), ptype)
        if _int(r["dcerpc.dg_frag_num"]) == 0:
            heads[(*key, _int(r["dcerpc.opnum"]))] += 1
        if r["pn_io.index"]:
            indices[(*key, tuple(int(i, 16) for i in r["pn_io.index"]))] += 1
        if r["pn_io.control_command"]:
            commands[(*key, tuple(int(c, 16) for c in r["pn_io.control_command"]))] += 1
    return heads, indices, commands


def test_iocm_calls_agree(case: Decoded) -> None:
    heads, indices, commands = _calls(case)
    ours_heads: Counter[Any] = Counter()
    ours_indices: Counter[Any] = Counter()
    ours_commands: Counter[Any] = Counter()
    for op in case.ops:
        d = op.detail
        if "activity_uuid" not in d or op.function == "Ping":
            continue
        base = (d["activity_uuid"], op.transaction_id)
        request_index: list[int] = []
        if "index" in d:
            request_index = [d["index"], *d.get("indices", [])]
        response_index = [r["index"] for r in d.get("response_records", d.get("records", []))]
        sides = []
        if op.request_frame is not None:
            sides.append((rpc.REQUEST, request_index, d.get("control_command")))
        if op.response_frame is not None and d.get("response_type") == "Response":
            sides.append((rpc.RESPONSE, response_index, d.get("response_control_command")))
        for ptype, idx, cmd in sides:
            ours_heads[(*base, ptype, op.function_code)] += 1
            if idx:
                ours_indices[(*base, ptype, tuple(idx))] += 1
            if cmd is not None:
                ours_commands[(*base, ptype, (sum(COMMAND_BITS[c] for c in cmd),))] += 1
    assert ours_heads == heads
    assert ours_indices == indices
    assert ours_commands == commands


def test_dcerpc_packet_types(case: Decoded) -> None:
    theirs = Counter(
        rpc.PTYPE_NAMES[_int(r["dcerpc.pkt_type"]) or 0] for r in case.rows if r["dcerpc.pkt_type"]
    )
    assert dict(case.decoder.iocm.packet_counts) == dict(theirs)
