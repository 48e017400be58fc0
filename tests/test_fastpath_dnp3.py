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
from tests.protocols import dnp3_helpers as dh
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
    """Nothing is left to the decoder but new shapes: not the connection that sends
    octets that start no DNP3 frame (skipped and reported by the kernel), nor buffers,
    released unsolicited responses, orphan answers or an outstation that talks to two
    masters."""
    with Store(tmp_path / "a.db") as store:
        analyze_file(store, repeated)
    stats = _stats(tmp_path / "a.db")
    handovers: dict[str, int] = stats["handovers"]["dnp3"]  # type: ignore[index]
    assert "framing" not in handovers
    # Connections that end holding an unsolicited response and requests with other
    # sequence numbers and problem reports (broadcast DISABLE_UNSOLICITED with a reserved
    # qualifier) are written from their flush templates, not ended by the decoder.
    assert "held_at_end" not in handovers
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


def _held_at_end(stats: dict[str, object]) -> int:
    handovers: dict[str, dict[str, int]] = stats.get("handovers", {})  # type: ignore[assignment]
    return handovers.get("dnp3", {}).get("held_at_end", 0)


def _ending_with_held(tmp_path: Path, *, one_segment: bool) -> list[int]:
    """Polls, then an unsolicited response asking for a confirm that never comes and two
    DISABLE_UNSOLICITED requests with another sequence number and a reserved qualifier
    (0xED: a decode problem each), unanswered when the capture ends; with
    ``one_segment`` the two requests share a TCP segment (one frame)."""
    from tests.bulkcap import compare

    payloads: list[tuple[int, bytes]] = []
    for n in range(40):
        payloads.append((0, dh.request(1, n & 0x0F, bytes.fromhex("3c0206"))))
        payloads.append((1, dh.response(0x81, n & 0x0F, control=0xC0 | (n & 0x0F))))
    payloads.append((1, dh.response(0x82, 5, bytes.fromhex("020100000001"), control=0xF5)))
    disable = dh.request(21, 1, bytes.fromhex("3c02063c03063c04ed"))
    if one_segment:
        payloads.append((0, disable + disable))
    else:
        payloads += [(0, disable), (0, disable)]
    cap = tmp_path / ("one_segment.pcap" if one_segment else "apart.pcap")
    dh.write_tcp_capture(cap, payloads)
    return compare(tmp_path, cap)


def test_a_connection_ending_with_mixed_sequence_numbers_is_written_from_a_template(
    tmp_path: Path,
) -> None:
    """What the connection holds at its end carries two sequence numbers and two decode
    problems: the flush template names each operation's messages by frame and number
    and reports the problems, so the decoder is not needed to end it; the records and
    problem counts are the per-packet path's (``compare``)."""
    taken = _ending_with_held(tmp_path, one_segment=False)
    assert min(taken) > 80
    for k in range(len(taken)):
        stats = _stats(tmp_path / f"fast{k}.db")
        assert _held_at_end(stats) == 0, stats["handovers"]
    problems = (
        sqlite3.connect(tmp_path / "fast0.db")
        .execute("SELECT frame, reason FROM problems ORDER BY frame")
        .fetchall()
    )
    assert [r for _, r in problems] == ["application layer: g60v4: reserved qualifier 0xed"] * 2
    assert problems[0][0] != problems[1][0]  # each request's own frame


def test_two_alike_requests_in_one_frame_are_left_to_the_decoder(tmp_path: Path) -> None:
    """Two identical requests in one segment: which operation (and which problem) came
    from which message cannot be told from their frames, so no template is made from
    such an exemplar (nor is its shape refused); the records are still the per-packet
    path's (``compare``)."""
    import numpy as np

    from otconduit.analysis.fastpath.kernels import shapes as ks
    from otconduit.analysis.fastpath.lanes.dnp3 import _kinds, _message_of
    from otconduit.analysis.fastpath.learning import Exemplar, Unclear, _problem_message
    from otconduit.protocols.events import Malformed

    taken = _ending_with_held(tmp_path, one_segment=True)
    assert min(taken) > 80
    disable = dh.request(21, 1, bytes.fromhex("3c02063c03063c04ed"))
    uns = dh.response(0x82, 5, bytes.fromhex("020100000001"), control=0xF5)
    messages = [(1, uns, 7, 70), (0, disable, 9, 90), (0, disable, 9, 90)]
    ex = Exemplar(
        messages, np.zeros(0, np.uint8), np.zeros(ks.X_FIELDS, np.int64),
        np.zeros((0, 2), np.int64), np.zeros(0, np.int64),
    )  # fmt: skip
    kinds = _kinds(ex)
    assert kinds == [(0x82, 5), (21, 1), (21, 1)]
    assert _message_of(ex, kinds, 7, 5, False) == 0
    assert _message_of(ex, kinds, 7, 5, True) == -1  # no request in frame 7
    assert _message_of(ex, kinds, 9, 2, True) == -1  # none with that number
    with pytest.raises(Unclear):
        _message_of(ex, kinds, 9, 1, True)
    with pytest.raises(Unclear):
        _problem_message(
            ex, Malformed(reason="application layer: x", offset=0, frame=9, ts_ns=90, data=b"")
        )
    assert (
        _problem_message(
            ex, Malformed(reason="application layer: x", offset=0, frame=7, ts_ns=70, data=b"")
        )
        == 0
    )


JUNK = bytes.fromhex("050511c40400030046a2c2c2143c02063c03063c0406d32f")  # part1: "05 05 ..."


def _polls_with_junk(tmp_path: Path, name: str, junk: list[tuple[int, bytes]]) -> Path:
    """200 polls; before poll k of ``junk``, the master sends those octets (no frame)."""
    at = dict(junk)
    payloads: list[tuple[int, bytes]] = []
    for n in range(200):
        if n in at:
            payloads.append((0, at[n]))
        payloads.append((0, dh.request(1, n & 0x0F, bytes.fromhex("3c0206"))))
        payloads.append((1, dh.response(0x81, n & 0x0F, control=0xC0 | (n & 0x0F))))
    cap = tmp_path / name
    dh.write_tcp_capture(cap, payloads)
    return cap


def _problem_rows(db: Path) -> list[tuple[int, str, str, str]]:
    rows = sqlite3.connect(db).execute(
        "SELECT frame, layer, reason, src_ip FROM problems ORDER BY frame, reason"
    )
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    ("case", "junk", "framing"),
    [
        # a whole segment of octets that start no frame (as in dnp3_test_data_part1)
        ("segment", [(20, JUNK), (90, JUNK), (150, JUNK)], 0),
        # octets, then a whole request, in one segment
        ("then_frame", [(30, JUNK[:7] + dh.request(1, 3, bytes.fromhex("3c0206")))], 0),
        # two segments of them before the next frame: one skipped run, one report
        ("two_segments", [(40, JUNK[:10]), (41, JUNK[10:])], 0),
        # a last 05 may start a header with the next segment: the decoder's to judge
        ("trailing_05", [(50, JUNK[:9] + b"\x05")], 1),
        # more than the slot keeps (JUNK_MAX): the decoder skips them
        ("long", [(60, JUNK * 3)], 1),
    ],
)
def test_octets_that_start_no_frame_are_skipped_by_the_kernel(
    tmp_path: Path, case: str, junk: list[tuple[int, bytes]], framing: int
) -> None:
    """The kernel skips what the link framer skips and reports the run when the next
    frame comes, at the frame of its last octet: the same records and problem rows
    as the per-packet path, and no hand-over but where the framer would judge more
    than a skipped run."""
    from tests.bulkcap import compare

    cap = _polls_with_junk(tmp_path, f"{case}.pcap", junk)
    taken = compare(tmp_path, cap)
    slow = _problem_rows(tmp_path / "slow.db")
    assert slow and all("no link header (05 64); skipped" in r[2] for r in slow)
    for k in range(len(taken)):
        assert _problem_rows(tmp_path / f"fast{k}.db") == slow
        stats = _stats(tmp_path / f"fast{k}.db")
        handovers: dict[str, dict[str, int]] = stats.get("handovers", {})  # type: ignore[assignment]
        assert handovers.get("dnp3", {}).get("framing", 0) == framing, handovers


def test_octets_left_at_the_end_are_reported_at_the_end(tmp_path: Path) -> None:
    """A run that no frame follows is reported when the connection ends, as the
    decoder's framer reports it at the end of its stream."""
    from tests.bulkcap import compare

    payloads: list[tuple[int, bytes]] = []
    for n in range(100):
        payloads.append((0, dh.request(1, n & 0x0F, bytes.fromhex("3c0206"))))
        payloads.append((1, dh.response(0x81, n & 0x0F, control=0xC0 | (n & 0x0F))))
    payloads.append((0, JUNK))
    cap = tmp_path / "end.pcap"
    dh.write_tcp_capture(cap, payloads)
    taken = compare(tmp_path, cap)
    assert min(taken) > 150
    slow = _problem_rows(tmp_path / "slow.db")
    assert [r[2] for r in slow] == ["no link header (05 64); skipped 24 octets"]
    for k in range(len(taken)):
        assert _problem_rows(tmp_path / f"fast{k}.db") == slow
        stats = _stats(tmp_path / f"fast{k}.db")
        assert _held_at_end(stats) == 0, stats["handovers"]  # reported by the lane
