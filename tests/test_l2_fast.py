"""GOOSE repetitions read from a template give exactly what the full decode gives.

:class:`GooseMonitor` takes a frame that equals its control block's last message outside
sqNum, stNum, t and timeAllowedtoLive from that message (``goose_template``) instead of
walking its BER. The reference here is the same monitor with no template ever offered
(every frame decoded by ``parse_goose``): every event (operations with their details,
identity claims, malformed frames) and every per-stream counter must be equal, on both
corpus GOOSE captures repeated as the mixed benchmark repeats them, and on crafted
sequences of each abuse signal. Each message built from a template is also checked
against ``parse_goose`` of the same bytes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.iec61850 import ETHERTYPE_GOOSE, GooseMonitor, goose_template, parse_goose
from otconduit.protocols.iec61850.goose import GooseStream
from tests.protocols.iec61850_helpers import GOOSE_CAPTURES, goose_payload
from tests.protocols.profinet_helpers import L2, packets

PUB = "0a:00:00:00:00:01"
OTHER = "0a:00:00:00:00:99"
DST = "01:0c:cd:01:00:01"
MS = 1_000_000

Frame = tuple[str, bytes, int]  # source MAC, payload, timestamp


class FullDecode(GooseMonitor):
    """The reference: no template is ever remembered, so every frame is decoded."""

    def _remember(self, s: GooseStream, src_mac: str, payload: bytes) -> None:
        return None


def _stream_state(m: GooseMonitor) -> dict[tuple[int, str], tuple[Any, ...]]:
    names = [f.name for f in fields(GooseStream) if f.name != "template"]
    return {key: tuple(getattr(s, n) for n in names) for key, s in m.streams.items()}


def run(monitor: GooseMonitor, frames: Sequence[Frame], vlan: int | None = 10) -> list[Any]:
    events: list[DecoderEvent] = []
    for i, (src, payload, ts) in enumerate(frames, 1):
        monitor.feed_frame(ETHERTYPE_GOOSE, src, DST, payload, i, ts, vlan)
        events += monitor.events()
    return events + monitor.finish()


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every message built from a template equals ``parse_goose`` of its bytes."""
    built: list[int] = []
    real = goose_template.Template.pdu_for

    def pdu_for(self: goose_template.Template, payload: bytes) -> Any:
        pdu = real(self, payload)
        assert pdu == parse_goose(payload)
        built.append(1)
        return pdu

    real_relayout = goose_template.Template.relayout

    def relayout(self: goose_template.Template, payload: bytes) -> Any:
        tpl = real_relayout(self, payload)
        if tpl is not None:
            full = parse_goose(payload)
            assert tpl.pdu == full
            assert tpl.values() == full.values()
            relaid.append(1)
        return tpl

    monkeypatch.setattr(goose_template.Template, "pdu_for", pdu_for)
    monkeypatch.setattr(goose_template.Template, "relayout", relayout)
    return built


relaid: list[int] = []  # frames built by ``relayout`` (checked in the ``checked`` fixture)


def assert_same(frames: Sequence[Frame]) -> GooseMonitor:
    fast, full = GooseMonitor(), FullDecode()
    assert run(fast, frames) == run(full, frames)
    assert _stream_state(fast) == _stream_state(full)
    assert (fast.frames, fast.gse_management) == (full.frames, full.gse_management)
    assert full.templated == 0
    return fast


# -- corpus, repeated ---------------------------------------------------------------------
def _repeated(capture: Path, times: int) -> Iterator[Frame]:
    frames = [p for p in packets(capture) if isinstance(p, L2) and p.ethertype == ETHERTYPE_GOOSE]
    span = frames[-1].ts_ns - frames[0].ts_ns + 1_000_000_000
    for r in range(times):
        for p in frames:
            yield p.src_mac, p.payload, p.ts_ns + r * span


@pytest.mark.skipif(not GOOSE_CAPTURES, reason="../shared corpus is absent (GOOSE captures)")
@pytest.mark.parametrize("capture", GOOSE_CAPTURES, ids=lambda p: p.name)
def test_corpus_repeated_gives_the_full_decode(capture: Path, checked: list[int]) -> None:
    frames = list(_repeated(capture, 40))
    fast = assert_same(frames)
    assert fast.templated > len(frames) // 3, "the template route was hardly taken"
    if capture.name == "Sample_File_GOOSE.pcap":  # new states with new values, same shape
        assert fast.relaid > len(frames) // 4
    if capture.name == "GOOSE_DEMO.pcap":  # one frame: every repetition a replay
        assert len(checked) == len(frames) - 1


# -- crafted sequences ---------------------------------------------------------------------
def _ttl(payload: bytes, ttl: int) -> bytes:
    """The helper's frames carry timeAllowedtoLive 2000 as 81 02 07 d0."""
    at = payload.index(b"\x81\x02\x07\xd0")
    return payload[:at] + b"\x81\x02" + struct.pack(">H", ttl) + payload[at + 4 :]


def _seq(*payloads: bytes | tuple[str, bytes], gap: int = 5 * MS) -> list[Frame]:
    out = []
    for i, p in enumerate(payloads):
        src, payload = p if isinstance(p, tuple) else (PUB, p)
        out.append((src, payload, 1_000_000_000 + i * gap))
    return out


G = goose_payload


def _D(i: int) -> bytes:
    """A flat dataset (boolean, bit-string, integer, float, utc-time) with values of ``i``."""
    return (
        bytes([0x83, 1, i & 1, 0x84, 2, 6, (i << 6) & 0xC0, 0x85, 1, i])
        + b"\x87\x05\x08"
        + struct.pack(">f", i / 4)
        + b"\x91\x08"
        + struct.pack(">I", 1_700_000_000 + i)
        + b"\x00\x00\x00\x0a"
    )


def _NESTED(i: int) -> bytes:
    """A structure of a boolean and an array of two integers, then an integer."""
    inner = bytes([0x85, 1, i, 0x85, 1, 2 * i])
    return (
        bytes([0xA2, 3 + 2 + len(inner), 0x83, 1, i & 1, 0xA1, len(inner)])
        + inner
        + bytes([0x85, 1, 100 + i])
    )


CASES = {
    "retransmissions": _seq(*(G(5, sq) for sq in range(20))),
    "t-and-ttl-change": _seq(
        G(5, 0), G(5, 1, t_seconds=1_700_000_001), _ttl(G(5, 2, t_seconds=1_700_000_002), 4000)
    ),
    "replay-identical": _seq(G(5, 0), G(5, 1), G(5, 1), G(5, 1), G(5, 2)),
    "replay-backwards": _seq(G(5, 0), G(5, 3), G(5, 2), G(5, 4)),
    "replay-old-state": _seq(G(5, 0), G(6, 0), G(5, 9), G(6, 1)),
    "stnum-jump": _seq(G(5, 0), G(9, 0), G(9, 1)),
    "stnum-next-same-values": _seq(G(5, 0), G(6, 0), G(7, 0), G(7, 1)),
    "sqnum-reset": _seq(G(5, 0), G(5, 1), G(5, 0), G(5, 1)),
    "sqnum-gap": _seq(G(5, 0), G(5, 1), G(5, 7), G(5, 8)),
    "stnum-reset": _seq(G(50, 0), G(1, 0), G(1, 1)),
    "confrev": _seq(G(5, 0), G(5, 1, conf_rev=2), G(5, 2, conf_rev=2)),
    "test-flag-flips": _seq(G(5, 0), G(5, 1, test=True), G(5, 2), G(5, 3, test=True)),
    "s-bit-flips": _seq(G(5, 0), G(5, 1, s_bit=True), G(5, 2, s_bit=True), G(5, 3)),
    "values-change-same-stnum": _seq(G(5, 0), G(5, 1, data=b"\x83\x01\xff"), G(5, 2)),
    "values-change-new-state": _seq(G(5, 0), G(6, 0, data=b"\x83\x01\xff"), G(6, 1)),
    "second-publisher": _seq(G(5, 0), (OTHER, G(5, 1)), G(5, 2), (OTHER, G(5, 3))),
    "time-backwards": _seq(G(5, 0), G(6, 0, t_seconds=1_600_000_000), G(6, 1)),
    "sqnum-grows-a-byte": _seq(*(G(5, sq) for sq in range(120, 140))),
    "rollover": _seq(G(7, 0xFFFFFFFE), G(7, 0xFFFFFFFF), G(7, 0), G(0xFFFFFFFF, 0), G(1, 0)),
    "mirror-duplicates": _seq(G(5, 0), G(5, 1), G(5, 1), G(5, 2), gap=20_000),
    "two-blocks-one-appid": _seq(
        *(G(5, sq, gocb="IED1LD0/LLN0$GO$a" if sq % 2 else "IED1LD0/LLN0$GO$b") for sq in range(12))
    ),
    "malformed-between": _seq(G(5, 0), G(5, 1)[:20], G(5, 2), b"\x00\x01", G(5, 3)),
    # new states in the same dataset shape (built from the template, values decoded
    # element by element), in a nested one, with a value that does not decode, and a
    # shape change (an integer one byte longer: decoded whole)
    "new-values-same-shape": _seq(*(G(5 + i, 0, data=_D(i)) for i in range(8))),
    "new-values-nested": _seq(*(G(5 + i, 0, data=_NESTED(i)) for i in range(6))),
    "bad-bit-string-padding": _seq(
        G(5, 0, data=b"\x84\x02\x06\x80"),
        G(6, 0, data=b"\x84\x02\x09\x80"),
        G(7, 0, data=b"\x84\x02\x06\xc0"),
    ),
    "shape-changes": _seq(
        G(5, 0, data=b"\x85\x01\x05"),
        G(6, 0, data=b"\x85\x02\x01\x05"),
        G(7, 0, data=b"\x85\x02\x01\x06"),
    ),
}


@pytest.mark.parametrize("frames", CASES.values(), ids=CASES.keys())
def test_crafted_sequences_give_the_full_decode(frames: list[Frame], checked: list[int]) -> None:
    assert_same(frames)


def test_new_values_in_a_known_shape_are_built_from_the_template(checked: list[int]) -> None:
    relaid.clear()
    m = assert_same(CASES["new-values-same-shape"] + [(PUB, G(13, 1, data=_D(7)), 2 * 10**9)])
    assert m.relaid == 7 and len(relaid) == 7  # every state after the first
    nested = GooseMonitor()
    ops = [e for e in run(nested, CASES["new-values-nested"]) if hasattr(e, "detail")]
    assert nested.relaid == 5
    assert ops[-1].detail["values"] == [[True, [5, 10]], 105]
    relaid.clear()
    m = assert_same(CASES["bad-bit-string-padding"])
    assert m.relaid == 2 and len(relaid) == 2
    bad = [e for e in run(GooseMonitor(), CASES["bad-bit-string-padding"]) if hasattr(e, "detail")]
    assert bad[1].detail["problems"] == ["allData: bad bit-string padding"]
    assert bad[2].detail["values"] == ["11"]
    m = assert_same(CASES["shape-changes"])
    assert m.relaid == 1  # the third frame: the second one's shape


def test_template_route_is_taken_and_signals_still_fire(checked: list[int]) -> None:
    frames = _seq(G(5, 0), G(5, 1), G(5, 2), G(5, 2), G(5, 0), G(9, 0), G(9, 1, test=True))
    m = GooseMonitor()
    ops = [e for e in run(m, frames) if hasattr(e, "function")]
    assert [o.detail.get("anomalies", []) for o in ops] == [
        [],
        ["replay"],
        ["sqnum-reset"],
        ["stnum-jump"],
        ["simulation-set"],
    ]
    assert m.templated == 5 and len(checked) == 3  # replay, reset, jump from the template


@pytest.mark.parametrize("seed", range(12))
def test_random_publishing_gives_the_full_decode(seed: int, checked: list[int]) -> None:
    """Random walks of one or two publishers through every kind of change."""
    rng = random.Random(seed)
    st, sq, t, conf, test, data, ttl = 5, 0, 1_700_000_000, 1, False, 0, 2000
    frames: list[Frame] = []
    ts = 1_000_000_000
    for _ in range(300):
        r = rng.random()
        if r < 0.55:
            sq += 1
        elif r < 0.62:
            st, sq, t = st + 1, 0, t + 1
            data = rng.randrange(3)
        elif r < 0.66:
            t += 1
        elif r < 0.69:
            ttl = rng.choice((2000, 4000, 100))
        elif r < 0.73:
            sq = max(0, sq - rng.randint(0, 2))
        elif r < 0.76:
            st = max(0, st + rng.choice((-2, 3)))
        elif r < 0.78:
            test = not test
        elif r < 0.80:
            conf += 1
        elif r < 0.84:
            data = rng.randrange(3)
        payload = G(st, sq, t_seconds=t, test=test, conf_rev=conf, data=bytes([0x83, 1, data]))
        if ttl != 2000:
            payload = _ttl(payload, ttl)
        src = OTHER if rng.random() < 0.03 else PUB
        ts += rng.choice((20_000, 2 * MS, 2 * MS, 1000 * MS))
        frames.append((src, payload, ts))
        if rng.random() < 0.05:
            frames.append((src, payload, ts + 10_000))  # mirror duplicate
    assert_same(frames)
