"""Agreement with tshark (Wireshark's GOOSE dissector) on every GOOSE capture of the
shared corpus, frame by frame: APPID, length, the simulation bit, gocbRef,
timeAllowedtoLive, datSet, goID, t, stNum, sqNum, simulation/test, confRev, ndsCom,
numDatSetEntries and the allData values tshark prints (booleans, bit strings with their
padding, integers); and the monitor reports one operation per control block's first
message and per stNum change tshark shows, with no anomaly on these clean captures."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import Operation
from otconduit.protocols.iec61850 import GooseMonitor, parse_goose
from otconduit.protocols.iec61850.ber import utc_time_ns
from tests.tsharkutil import tshark_fields

from .iec61850_helpers import GOOSE_CAPTURES
from .profinet_helpers import L2, packets

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not GOOSE_CAPTURES, reason="../shared corpus is absent"),
]

FIELDS = [
    "frame.number",
    "goose.appid",
    "goose.length",
    "goose.reserve1.s_bit",
    "goose.gocbRef",
    "goose.timeAllowedtoLive",
    "goose.datSet",
    "goose.goID",
    "goose.t",
    "goose.stNum",
    "goose.sqNum",
    "goose.simulation",
    "goose.confRev",
    "goose.ndsCom",
    "goose.numDatSetEntries",
    "goose.boolean",
    "goose.bit_string",
    "ber.bitstring.padding",
    "goose.integer",
]


def _flag(v: list[str]) -> bool:
    return bool(v) and v[0] in ("1", "True", "true")


def _t_ns(text: str) -> int:
    """tshark's 'Jul 24, 2008 14:25:05.140625000 UTC' as nanoseconds since 1970."""
    stamp, fraction = text.removesuffix(" UTC").rsplit(".", 1)
    seconds = datetime.strptime(stamp, "%b %d, %Y %H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def theirs(capture: Path) -> dict[int, dict[str, Any]]:
    out = {}
    for r in tshark_fields(capture, FIELDS, "goose"):
        row = dict(zip(FIELDS, r, strict=True))
        bits = [
            "".join(f"{b:08b}" for b in bytes.fromhex(h))[: len(h) * 4 - int(p)]
            for h, p in zip(row["goose.bit_string"], row["ber.bitstring.padding"], strict=True)
        ]
        out[int(row["frame.number"][0])] = {
            "appid": int(row["goose.appid"][0], 0),
            "length": int(row["goose.length"][0]),
            "s_bit": _flag(row["goose.reserve1.s_bit"]),
            "gocb_ref": row["goose.gocbRef"][0],
            "ttl": int(row["goose.timeAllowedtoLive"][0]),
            "dat_set": row["goose.datSet"][0],
            "go_id": row["goose.goID"][0] if row["goose.goID"] else None,
            "t_ns": _t_ns(",".join(row["goose.t"])),  # its date has a comma
            "st": int(row["goose.stNum"][0]),
            "sq": int(row["goose.sqNum"][0]),
            "simulation": _flag(row["goose.simulation"]),
            "conf_rev": int(row["goose.confRev"][0]),
            "nds_com": _flag(row["goose.ndsCom"]),
            "entries": int(row["goose.numDatSetEntries"][0]),
            "booleans": [v in ("1", "True") for v in row["goose.boolean"]],
            "bits": bits,
            "integers": [int(v) for v in row["goose.integer"]],
        }
    return out


def _flat(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        out += _flat(v) if isinstance(v, list) else [v]
    return out


def ours(capture: Path) -> dict[int, dict[str, Any]]:
    out = {}
    for p in packets(capture):
        if not isinstance(p, L2) or p.ethertype != 0x88B8:
            continue
        pdu = parse_goose(p.payload)
        assert not isinstance(pdu, str), (p.frame, pdu)
        values, problem = pdu.values()
        assert problem is None
        flat = _flat(values)
        assert pdu.t is not None
        out[p.frame] = {
            "appid": pdu.appid,
            "length": pdu.length,
            "s_bit": pdu.simulated_bit,
            "gocb_ref": pdu.gocb_ref,
            "ttl": pdu.time_allowed_to_live,
            "dat_set": pdu.dat_set,
            "go_id": pdu.go_id,
            "t_ns": utc_time_ns(pdu.t),
            "st": pdu.st_num,
            "sq": pdu.sq_num,
            "simulation": pdu.simulation,
            "conf_rev": pdu.conf_rev,
            "nds_com": pdu.nds_com,
            "entries": pdu.num_dat_set_entries,
            "booleans": [v for v in flat if isinstance(v, bool)],
            "bits": [v for v in flat if isinstance(v, str) and set(v) <= {"0", "1"}],
            "integers": [v for v in flat if isinstance(v, int) and not isinstance(v, bool)],
        }
    return out


@pytest.mark.parametrize("capture", GOOSE_CAPTURES, ids=lambda p: p.name)
def test_every_frame_agrees_with_tshark(capture: Path) -> None:
    expected, mine = theirs(capture), ours(capture)
    assert expected.keys() == mine.keys()
    for frame, row in expected.items():
        got = mine[frame]
        # tshark rounds the 24-bit fraction of a second its own way: within 100 ns.
        assert abs(got.pop("t_ns") - row["t_ns"]) < 100, frame
        assert got == {k: v for k, v in row.items() if k != "t_ns"}, frame


@pytest.mark.parametrize("capture", GOOSE_CAPTURES, ids=lambda p: p.name)
def test_monitor_reports_first_message_and_state_changes(capture: Path) -> None:
    expected = theirs(capture)
    changes: dict[tuple[int, str], int] = defaultdict(int)
    last: dict[tuple[int, str], int] = {}
    for row in expected.values():
        key = (row["appid"], row["gocb_ref"])
        if key not in last or last[key] != row["st"]:
            changes[key] += 1
        last[key] = row["st"]
    monitor = GooseMonitor()
    for p in packets(capture):
        if isinstance(p, L2):
            monitor.feed_frame(
                p.ethertype, p.src_mac, p.dst_mac, p.payload, p.frame, p.ts_ns, p.vlan
            )
    ops = [e for e in monitor.finish() if isinstance(e, Operation)]
    per_stream: dict[tuple[int, str], int] = defaultdict(int)
    for op in ops:
        assert "anomalies" not in op.detail, op.detail
        per_stream[(op.detail["appid"], op.detail["gocb_ref"])] += 1
    assert dict(per_stream) == dict(changes)
    for key, stream in monitor.streams.items():
        frames = sum(1 for r in expected.values() if (r["appid"], r["gocb_ref"]) == key)
        assert stream.frames == frames
        assert stream.frames == 1 + stream.state_changes + stream.retransmissions
