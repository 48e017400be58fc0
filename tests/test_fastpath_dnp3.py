"""The DNP3 fast path on the bench's real row (``dnp3_test_data_part1`` repeated): its
results are the per-packet path's, and it keeps what it learned to take (unconfirmed
unsolicited responses released by the next, orphan responses, connections that stay
open past the lane's buffer rows, an outstation answering two masters) instead of
handing those connections back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from otconduit.analysis.fastpath import lane as lane_mod
from otconduit.analysis.fastpath.lanes.dnp3 import Dnp3Lane
from otconduit.analysis.run import analyze_file
from otconduit.store import Store
from tests.conftest import CORPUS
from tests.test_bulk_equivalence import _repeat_module, _snapshot

PART1 = CORPUS / "iti" / "dnp3" / "dnp3_test_data_part1.pcap"
PACKETS = 20_000

needs_part1 = pytest.mark.skipif(not PART1.exists(), reason=f"{PART1} is not present")


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dnp3") / "part1_20k.pcap"
    _repeat_module().repeat(PART1, path, PACKETS)
    return path


def _stats(db: Path) -> dict[str, object]:
    row = sqlite3.connect(db).execute("SELECT stats FROM captures").fetchone()
    stats: dict[str, object] = json.loads(row[0])
    return stats


@needs_part1
def test_part1_repeats_equal_per_packet(repeated: Path, tmp_path: Path) -> None:
    """20k packets of the bench row: every record is what the per-packet path makes,
    with whole blocks and with tiny ones (connections handed back and forth)."""
    slow = _snapshot(tmp_path / "slow.db", repeated, bulk=False, block_size=8 << 20)
    for name, block in (("bulk", 8 << 20), ("bulk_small", 3000)):
        fast = _snapshot(tmp_path / f"{name}.db", repeated, bulk=True, block_size=block)
        for key in slow:
            assert fast[key] == slow[key], (name, key)
    stats = _stats(tmp_path / "bulk.db")
    assert int(stats["packets_bulk"]) > 0.9 * PACKETS  # type: ignore[call-overload]


@needs_part1
def test_part1_buffers_come_back(
    repeated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With few buffer rows, the connections that stay open idle (most of this capture's:
    no FIN) give theirs back when the lane runs short, so new ones still open fast; the
    records stay the per-packet path's."""
    monkeypatch.setattr(lane_mod, "MAX_BUFFERS", 64)
    slow = _snapshot(tmp_path / "slow.db", repeated, bulk=False, block_size=8 << 20)
    fast = _snapshot(tmp_path / "fast.db", repeated, bulk=True, block_size=8 << 20)
    for key in slow:
        assert fast[key] == slow[key], key
    handovers = _stats(tmp_path / "fast.db")["handovers"]
    assert "buffers_full" not in handovers["dnp3"]  # type: ignore[index]


@needs_part1
def test_part1_handovers(repeated: Path, tmp_path: Path) -> None:
    """What is left to the decoder: the connection that sends bytes that are no DNP3
    frame (framing, once a repetition at most); nothing for buffers, for released
    unsolicited responses, orphan answers or an outstation that talks to two masters."""
    with Store(tmp_path / "a.db") as store:
        analyze_file(store, repeated)
    stats = _stats(tmp_path / "a.db")
    handovers: dict[str, int] = stats["handovers"]["dnp3"]  # type: ignore[index]
    repeats = PACKETS // 181 + 1
    assert handovers.get("framing", 0) <= repeats
    assert "protocol_state" not in handovers
    assert "buffers_full" not in handovers


def test_lone_unsolicited_with_confirm_learns_as_flush() -> None:
    """The kernel writes an unsolicited response asking for a confirm alone only when
    the next releases it: the lane learns that shape from the decoder's finish()."""
    lane = Dnp3Lane.__new__(Dnp3Lane)
    # captured frames (dnp3_test_data_part1): unsolicited with CON, a confirm
    uns = bytes.fromhex("05640a4406000400bfb0d2f8820000f57f")
    confirm = bytes.fromhex("056408c404000300b4b8c0d7007ace")
    assert lane.learns_as_flush([(1, uns, 1, 0)])
    assert not lane.learns_as_flush([(0, confirm, 1, 0)])
    assert not lane.learns_as_flush([(1, uns, 1, 0), (0, confirm, 2, 0)])


def test_an_outstation_whose_master_never_confirms_goes_to_the_kernel(tmp_path: Path) -> None:
    """The connection starts with bytes that are no DNP3 frame, so the per-packet path
    has it first; its outstation sends unsolicited responses asking for confirms that
    never come, between polls. The decoder always holds one such response, so it was
    never quiescent and the kernel never took the connection: now the lane takes it
    over with that response kept, and the records stay the per-packet path's."""
    from tests.bulkcap import compare
    from tests.protocols import dnp3_helpers as dh

    payloads: list[tuple[int, bytes]] = [(0, b"\xa5" * 48)]  # no link header: skipped
    tseq = {0: 0, 1: 0}

    def out(fc: int, seq: int, control: int, objects: bytes = b"") -> tuple[int, bytes]:
        tseq[1] = (tseq[1] + 1) & 0x3F
        return 1, dh.response(fc, seq, objects, control=control, tseq=tseq[1])

    useq = 0
    for n in range(300):
        if n % 10 == 0:
            payloads.append(out(0x82, useq, 0xF0 | useq, bytes.fromhex("020100000001")))
            useq = (useq + 1) & 0x0F
        payloads.append((0, dh.request(1, n & 0x0F, bytes.fromhex("3c0206"))))
        payloads.append(out(0x81, n & 0x0F, 0xC0 | (n & 0x0F)))
    cap = tmp_path / "never_confirmed.pcap"
    dh.write_tcp_capture(cap, payloads)
    taken = compare(tmp_path, cap)
    assert min(taken) > 0.9 * len(payloads), taken
