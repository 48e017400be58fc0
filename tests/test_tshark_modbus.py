"""Agreement with tshark on every Modbus capture in the shared corpus and our fixtures.

Compared per conversation: request counts per function code, exception counts, and the
request/response pairing (tshark's modbus.request_frame against ours).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.store import Store
from otconduit.store import views
from tests.conftest import CORPUS, DATA, needs_tshark
from tests.tsharkutil import tshark_fields

pytestmark = [needs_tshark, pytest.mark.tshark]


def modbus_captures() -> list[Path]:
    found: list[Path] = []
    if CORPUS.is_dir():
        for sub in ("iti/ModbusTCP", "iti/bro/modbus", "iti/modicon", "icsnpp/modbus"):
            found += sorted((CORPUS / sub).rglob("*.pcap"))
    if DATA.is_dir():
        found += sorted(DATA.glob("modbus_*.pcap"))
    return found


def _ours(tmp: Path, cap: Path) -> list[dict[str, object]]:
    with Store(tmp / "c.db") as store:
        analyze_file(store, cap)
        return list(views.operations(store))


def _tshark(cap: Path) -> tuple[Counter[tuple[str, int, str, int]], Counter[tuple[str, str]],
                                set[tuple[int, int]]]:
    """Requests per (client, server, server port, fc), exceptions per pair, pairs."""
    rows = tshark_fields(
        cap,
        ["frame.number", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "mbtcp.trans_id",
         "modbus.func_code", "modbus.exception_code", "modbus.request_frame"],
        "mbtcp",
    )
    requests: Counter[tuple[str, int, str, int]] = Counter()
    exceptions: Counter[tuple[str, str]] = Counter()
    pairs: set[tuple[int, int]] = set()
    for frame, src, dst, sport, dport, _tids, fcs, excs, reqf in rows:
        if not src:
            continue
        fno = int(frame[0])
        if dport and int(dport[0]) == 502:
            for fc in fcs:
                requests[(src[0], int(sport[0]), dst[0], int(fc) & 0x7F)] += 1
        else:
            exceptions[(dst[0], src[0])] += len(excs)
            for r in reqf:
                pairs.add((int(r), fno))
    return requests, exceptions, pairs


@pytest.mark.parametrize("cap", modbus_captures(), ids=lambda p: p.name)
def test_agrees_with_tshark(cap: Path, tmp_path: Path) -> None:
    ops = _ours(tmp_path, cap)
    t_req, t_exc, t_pairs = _tshark(cap)
    o_req: Counter[tuple[str, int, str, int]] = Counter()
    o_exc: Counter[tuple[str, str]] = Counter()
    o_pairs: set[tuple[int, int]] = set()
    for o in ops:
        if o["dst_port"] != 502:
            continue
        if o["request_frame"] is not None:
            o_req[(o["src_ip"], o["src_port"], o["dst_ip"], o["function_code"])] += 1  # type: ignore[index]
        if o["exception_code"] is not None:
            o_exc[(o["src_ip"], o["dst_ip"])] += 1  # type: ignore[index]
        # tshark links a response to its request only when it is not an exception.
        paired = o["request_frame"] is not None and o["response_frame"] is not None
        if paired and o["exception_code"] is None:
            o_pairs.add((o["request_frame"], o["response_frame"]))  # type: ignore[arg-type]
    assert o_req == t_req
    assert +o_exc == +t_exc
    assert o_pairs == t_pairs
