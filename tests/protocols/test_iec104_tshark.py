"""Agreement with tshark (Wireshark's IEC 60870-5-104 and ASDU dissectors) on every
IEC 104 capture of the shared corpus, connection by connection: APDU formats, U-format
functions, type ids and causes of transmission; then, per frame, the information
object addresses and the values of points, measured values and commands."""

from __future__ import annotations

import math
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import Operation
from otconduit.protocols.iec104 import ApduStream, Iec104ConnectionDecoder, parse_asdu
from otconduit.protocols.iec104 import types as T
from tests.protocols import iec104_helpers as H
from tests.streams import flows
from tests.tsharkutil import tshark_fields

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not H.CORPUS.is_dir(), reason="../shared corpus is absent"),
]
Counts = tuple[Counter[str], Counter[int], Counter[int], Counter[int]]
Client = tuple[str, int]


def ours(capture: Path) -> dict[Client, Counts]:
    out: dict[Client, Counts] = {}
    for flow in flows(capture, {H.PORT}):
        dec = Iec104ConnectionDecoder(flow.endpoints)
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
        dec.finish()
        formats: Counter[str] = Counter()
        for (_, kind), count in dec.format_counts.items():
            formats[kind] += count
        key = (flow.endpoints.client_ip, flow.endpoints.client_port)
        out[key] = (
            formats,
            Counter(dec.u_counts),
            Counter(dec.type_counts),
            Counter(dec.cot_counts),
        )
    return out


def theirs(capture: Path) -> dict[Client, Counts]:
    fields = [
        "ip.src",
        "tcp.srcport",
        "ip.dst",
        "tcp.dstport",
        "iec60870_104.type",
        "iec60870_104.utype",
        "iec60870_asdu.typeid",
        "iec60870_asdu.causetx",
    ]
    out: dict[Client, Counts] = defaultdict(lambda: (Counter(), Counter(), Counter(), Counter()))
    for row in tshark_fields(capture, fields, "iec60870_104 || iec60870_asdu"):
        src, sport, dst, dport = row[0][0], int(row[1][0]), row[2][0], int(row[3][0])
        counts = out[(src, sport) if dport == H.PORT else (dst, dport)]
        counts[0].update("IS?U"[int(v, 16)] for v in row[4])
        counts[1].update(int(v, 16) << 2 for v in row[5])  # tshark: function bit >> 2
        counts[2].update(int(v) for v in row[6] if v)
        counts[3].update(int(v) for v in row[7] if v)
    return dict(out)


@pytest.mark.parametrize("capture", H.CAPTURES, ids=lambda p: p.name)
def test_counts_per_connection_agree_with_tshark(capture: Path) -> None:
    mine, expected = ours(capture), theirs(capture)
    assert mine.keys() == expected.keys()
    for key, counts in expected.items():
        assert mine[key] == counts, key


def _our_objects(capture: Path) -> dict[int, list[tuple[int, Any]]]:
    """Frame -> (IOA, value) of every information object our ASDU decoder reads."""
    out: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for flow in flows(capture, {H.PORT}):
        streams = (ApduStream(), ApduStream())
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                streams[d].gap(n, frame, ts)
            else:
                streams[d].feed(data, frame, ts)
            for event in streams[d].events():
                asdu_bytes = getattr(event, "asdu", b"")
                if getattr(event, "format", "") != "I" or len(asdu_bytes) < 6:
                    continue
                a = parse_asdu(asdu_bytes)
                assert not isinstance(a, str)
                for obj in a.objects:
                    out[event.frame].append((obj.ioa, obj.fields.get("value")))
    return out


_VALUE_FIELDS = [
    "iec60870_asdu.siq.spi",
    "iec60870_asdu.diq.dpi",
    "iec60870_asdu.sco.on",
    "iec60870_asdu.dco.on",
    "iec60870_asdu.normval",
    "iec60870_asdu.scalval",
    "iec60870_asdu.float",
]


@pytest.mark.parametrize("capture", H.CAPTURES, ids=lambda p: p.name)
def test_objects_and_values_agree_with_tshark(capture: Path) -> None:
    ours_by_frame = _our_objects(capture)
    rows = tshark_fields(
        capture, ["frame.number", "iec60870_asdu.ioa", *_VALUE_FIELDS], "iec60870_asdu"
    )
    compared = 0
    for row in rows:
        frame = int(row[0][0])
        mine = ours_by_frame.get(frame, [])
        assert [ioa for ioa, _ in mine] == [int(v) for v in row[1]], frame
        values = [v for col in row[2:] for v in col]
        with_values = [v for _, v in mine if v is not None]  # qualifiers carry none
        assert len(values) == len(with_values), frame
        for ours_value, text in zip(with_values, values, strict=True):
            expected = {"True": 1, "False": 0}.get(text, text)
            if isinstance(ours_value, float):
                assert math.isclose(ours_value, float(expected), rel_tol=1e-6, abs_tol=1e-6), frame
            else:
                assert ours_value == int(expected), frame
            compared += 1
    assert compared == {"090813_diverse.pcap": 74, "TestDissectIec104.pcap": 22}[capture.name]


def test_type_names_cover_tshark() -> None:
    values = {
        int(line.split("\t")[2])
        for line in __import__("subprocess")
        .run(["tshark", "-G", "values"], capture_output=True, text=True, check=True)
        .stdout.splitlines()
        if line.startswith("V\tiec60870_asdu.typeid\t")
    }
    assert values and values <= set(T.TYPE_NAMES)


def test_diverse_capture_operations() -> None:
    events, _ = H.decode_capture(H.ITI / "090813_diverse.pcap")
    result = [e for e in events if isinstance(e, Operation)]
    commands = [o for o in result if o.operation.value == "control"]
    assert {o.function for o in commands} == {
        "C_SC_NA_1",
        "C_SC_TA_1",
        "C_DC_NA_1",
        "C_DC_TA_1",
        "C_SE_NC_1",
        "C_SE_TA_1",
        "C_SE_TC_1",
    }
    executed = [o for o in commands if o.detail["select"] is False]
    assert executed and all(o.detail.get("terminated") is True for o in executed)
    assert all(o.status.value == "ok" for o in result)
