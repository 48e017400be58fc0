"""Agreement with tshark on every Modbus capture in the shared corpus and our fixtures.

Compared per conversation: request counts per function code, exception counts, and the
request/response pairing (tshark's modbus.request_frame against ours). Two documented
differences, both where tshark is the one taking a shortcut:

- A client that reuses a transaction id before the answer (two requests with one id in
  flight): tshark pairs every response with the *latest* request carrying the id; we
  pair first-in, first-out, as the server answers them.
- Captures whose TCP sequence numbers are fuzzed: tshark dissects each segment alone;
  we reassemble, so we only report what a consistent byte stream supports. There we
  check that we invent nothing tshark does not see.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.store import Store, views
from tests.conftest import CORPUS, DATA, needs_tshark
from tests.tsharkutil import tshark_fields

pytestmark = [needs_tshark, pytest.mark.tshark]

# tshark's Modbus dissector wants 8 bytes in a stream's first segment; this variant sends
# 1-3 byte segments, so tshark finds no Modbus in it (tests/test_tcp_variants.py covers it).
TSHARK_BLIND = {"modbus_split.pcap"}
FUZZED_TCP = {"fuzz-72.pcap"}


def modbus_captures() -> list[Path]:
    found: list[Path] = []
    if CORPUS.is_dir():
        for sub in ("iti/ModbusTCP", "iti/bro/modbus", "iti/modicon", "icsnpp/modbus"):
            found += sorted((CORPUS / sub).rglob("*.pcap"))
    if DATA.is_dir():
        found += sorted(p for p in DATA.glob("modbus_*.pcap") if p.name not in TSHARK_BLIND)
    return found


Key = tuple[str, int, str, int]


@dataclass
class View:
    requests: Counter[Key] = field(default_factory=Counter)
    exceptions: Counter[tuple[str, str]] = field(default_factory=Counter)
    pairs: dict[int, int] = field(default_factory=dict)  # response frame -> request frame
    tids: dict[int, set[int]] = field(default_factory=dict)  # request frame -> tids


def _ours(tmp: Path, cap: Path) -> View:
    with Store(tmp / "c.db") as store:
        analyze_file(store, cap)
        ops: list[dict[str, Any]] = list(views.operations(store))
    v = View()
    for o in ops:
        if o["dst_port"] != 502:
            continue
        if o["request_frame"] is not None:
            v.requests[(o["src_ip"], o["src_port"], o["dst_ip"], o["function_code"])] += 1
            v.tids.setdefault(o["request_frame"], set()).add(o["transaction_id"])
        if o["exception_code"] is not None:
            v.exceptions[(o["src_ip"], o["dst_ip"])] += 1
        # tshark links a response to its request only when it is not an exception.
        paired = o["request_frame"] is not None and o["response_frame"] is not None
        if paired and o["exception_code"] is None:
            v.pairs[o["response_frame"]] = o["request_frame"]
    return v


def _tshark_options(cap: Path) -> list[str]:
    # tshark only reassembles reordered segments when told to, and then waits forever
    # behind a hole: use it just for the capture that reorders.
    return ["-o", "tcp.reassemble_out_of_order:TRUE"] if "reorder" in cap.name else []


def _tshark(cap: Path) -> View:
    rows = tshark_fields(
        cap,
        [
            "frame.number",
            "ip.src",
            "ip.dst",
            "tcp.srcport",
            "tcp.dstport",
            "mbtcp.trans_id",
            "modbus.func_code",
            "modbus.exception_code",
            "modbus.request_frame",
        ],
        "mbtcp",
        extra=_tshark_options(cap),
    )
    v = View()
    for frame, src, dst, sport, dport, tids, fcs, excs, reqf in rows:
        if not src:
            continue
        fno = int(frame[0])
        if dport and int(dport[0]) == 502:
            for fc in fcs:
                v.requests[(src[0], int(sport[0]), dst[0], int(fc) & 0x7F)] += 1
            v.tids[fno] = {int(t) for t in tids}
        else:
            v.exceptions[(dst[0], src[0])] += len(excs)
            for r in reqf:
                v.pairs[fno] = int(r)
    return v


@pytest.mark.parametrize("cap", modbus_captures(), ids=lambda p: p.name)
def test_agrees_with_tshark(cap: Path, tmp_path: Path) -> None:
    ours, theirs = _ours(tmp_path, cap), _tshark(cap)
    if cap.name in FUZZED_TCP:
        assert not (ours.requests - theirs.requests)
        assert not (+ours.exceptions - +theirs.exceptions)
        assert all(theirs.pairs.get(r) == q for r, q in ours.pairs.items())
        return
    assert ours.requests == theirs.requests
    assert +ours.exceptions == +theirs.exceptions
    assert ours.pairs.keys() == theirs.pairs.keys()
    for resp, req in ours.pairs.items():
        t_req = theirs.pairs[resp]
        if req != t_req:  # transaction id reused while in flight: FIFO vs latest
            assert req < t_req and ours.tids[req] & theirs.tids[t_req], (resp, req, t_req)
