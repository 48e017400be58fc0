"""GOOSE decoding and the per-control-block sequence watch on hand-built frames (encoder
in :mod:`iec61850_helpers`, from IEC 61850-8-1 Annex C): normal publishing is quiet;
replays, stNum jumps and resets, sqNum resets, a second publisher, a confRev change,
the simulation flag and a time going backwards are each reported and classified."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850 import ETHERTYPE_GOOSE, GooseMonitor, parse_goose
from otconduit.protocols.iec61850 import danger as D

from . import iec61850_helpers as H

PUB = "0a:00:00:00:00:01"
DST = "01:0c:cd:01:00:01"
SECOND = 1_000_000_000

Frame = tuple[bytes, str] | bytes


def feed(
    frames: Sequence[Frame], start_ts: int = SECOND
) -> tuple[GooseMonitor, list[DecoderEvent]]:
    m = GooseMonitor()
    for i, f in enumerate(frames, 1):
        payload, src = f if isinstance(f, tuple) else (f, PUB)
        m.feed_frame(ETHERTYPE_GOOSE, src, DST, payload, i, start_ts + i * SECOND, 10)
    return m, m.finish()


def ops(events: list[DecoderEvent]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def anomalies(events: list[DecoderEvent]) -> list[list[str]]:
    return [o.detail.get("anomalies", []) for o in ops(events)]


def test_normal_publishing_reports_first_message_and_state_changes_only() -> None:
    frames = [H.goose_payload(5, sq) for sq in range(4)] + [
        H.goose_payload(6, sq, t_seconds=1_700_000_001) for sq in range(3)
    ]
    m, events = feed(frames)
    assert [o.function for o in ops(events)] == ["publish", "state-change"]
    assert anomalies(events) == [[], []]
    first = ops(events)[0]
    assert (first.src_ip, first.dst_ip, first.src_port) == (PUB, DST, 0)
    assert first.detail["gocb_ref"] == "IED1LD0/LLN0$GO$gcb1" and first.detail["vlan"] == 10
    assert first.detail["values"] == [False] and first.values == (0,)
    assert first.detail["t"] == "2023-11-14T22:13:20.500000Z"
    (stream,) = m.streams.values()
    assert (stream.frames, stream.state_changes, stream.retransmissions) == (7, 1, 5)
    claims = [e for e in events if isinstance(e, IdentityClaim)]
    assert [(c.ip, c.attribute, c.value) for c in claims] == [(PUB, "iec61850_ld", "IED1LD0")]
    json.dumps([o.detail for o in ops(events)])


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([H.goose_payload(5, 0), H.goose_payload(5, 1), H.goose_payload(5, 1)], ["replay"]),
        ([H.goose_payload(5, 0), H.goose_payload(5, 3), H.goose_payload(5, 2)], ["replay"]),
        ([H.goose_payload(5, 0), H.goose_payload(6, 0), H.goose_payload(5, 9)], ["replay"]),
        ([H.goose_payload(5, 0), H.goose_payload(9, 0)], ["stnum-jump"]),
        ([H.goose_payload(5, 0), H.goose_payload(5, 1), H.goose_payload(5, 0)], ["sqnum-reset"]),
        ([H.goose_payload(50, 0), H.goose_payload(1, 0)], ["stnum-reset"]),
        ([H.goose_payload(5, 0), H.goose_payload(5, 1, conf_rev=2)], ["confrev-changed"]),
        ([H.goose_payload(5, 0), H.goose_payload(6, 0, test=True)], ["simulation-set"]),
        ([H.goose_payload(5, 0), H.goose_payload(6, 0, s_bit=True)], ["simulation-set"]),
        (
            [H.goose_payload(5, 0), (H.goose_payload(5, 1), "0a:00:00:00:00:99")],
            ["second-publisher"],
        ),
        (
            [H.goose_payload(5, 0), H.goose_payload(6, 0, t_seconds=1_600_000_000)],
            ["time-backwards"],
        ),
    ],
    ids=[
        "replay",
        "backwards",
        "old-state",
        "jump",
        "sq-reset",
        "st-reset",
        "confrev",
        "test",
        "s-bit",
        "publisher",
        "time",
    ],
)
def test_abuse_signals(frames: list[Frame], expected: list[str]) -> None:
    _, events = feed(frames)
    found = [a for a in anomalies(events) if a]
    assert found == [expected]
    op = next(o for o in ops(events) if o.detail.get("anomalies"))
    view = json.loads(
        json.dumps({"protocol": op.protocol, "function": op.function, "detail": op.detail})
    )
    rules = {h.rule for h in D.classify(view)}
    assert rules == ({"goose-simulation"} if expected == ["simulation-set"] else {"goose-spoofing"})


def test_counters_roll_over() -> None:
    _, events = feed([H.goose_payload(0xFFFFFFFF, 0), H.goose_payload(1, 0)])
    assert anomalies(events) == [[], []]
    m, events = feed(
        [H.goose_payload(7, 0xFFFFFFFE), H.goose_payload(7, 0xFFFFFFFF), H.goose_payload(7, 0)]
    )
    assert anomalies(events) == [[]]
    assert next(iter(m.streams.values())).retransmissions == 2


def test_mirror_duplicates_are_counted_not_reported() -> None:
    m = GooseMonitor()
    frame = H.goose_payload(5, 1)
    m.feed_frame(ETHERTYPE_GOOSE, PUB, DST, frame, 1, SECOND)
    m.feed_frame(ETHERTYPE_GOOSE, PUB, DST, frame, 2, SECOND + 5_000)
    events = m.finish()
    assert len(ops(events)) == 1 and next(iter(m.streams.values())).duplicates == 1


def test_entries_count_mismatch_is_a_problem() -> None:
    _, events = feed([H.goose_payload(5, 0, entries=3)])
    (op,) = ops(events)
    assert op.status is OpStatus.MALFORMED and "numDatSetEntries" in op.detail["problems"][0]


def test_values_of_every_common_type() -> None:
    data = (
        H.prim(3, b"\x01")
        + H.prim(4, b"\x03\xa0")
        + H.prim(5, b"\xfe")
        + H.prim(6, b"\x00\xff")
        + H.prim(7, b"\x08\x3f\xc0\x00\x00")
        + H.prim(10, b"abc")
        + H.prim(17, bytes.fromhex("5a0000008000000a"))
        + H.ctx(2, H.prim(3, b"\x00") + H.prim(9, b"\x01\x02"))
        + H.prim(12, bytes.fromhex("0000ea60"))
    )
    pdu = parse_goose(H.goose_payload(1, 0, data=data, entries=9))
    assert not isinstance(pdu, str)
    values, problem = pdu.values()
    assert problem is None
    assert values == [
        True,
        "10100",
        -2,
        255,
        1.5,
        "abc",
        "2017-11-06T06:24:00.500000Z",
        [False, "0102"],
        "0:01:00",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\x01\x00\x05",
        H.goose_payload(1, 0)[:20],
        b"\x00\x01\x00\x0c\x00\x00\x00\x00\x62\x00\x00\x00",
    ],
)
def test_bad_frames_are_reported(payload: bytes) -> None:
    _, events = feed([payload])
    assert [type(e) for e in events] == [Malformed]


def test_frame_rules_are_raised_by_their_examples() -> None:
    for rule in D.FRAME_RULES:
        for example in rule.examples:
            frames = [m for _, m in example.messages]
            m = GooseMonitor()
            for i, f in enumerate(frames, 1):
                m.feed_frame(
                    (f[12] << 8) | f[13], f[6:12].hex(":"), f[0:6].hex(":"), f[14:], i, i * SECOND
                )
            raised = {
                h.rule
                for o in ops(m.finish())
                for h in D.classify(
                    {"protocol": o.protocol, "function": o.function, "detail": o.detail}
                )
            }
            assert rule.rule in raised, rule.rule
