"""Fuzz: mutated real MMS connections (with capture gaps and random bytes) and GOOSE
frames yield only the documented outcomes, never an exception; MMS gives the same
events however the fuzzed bytes are cut; broken input is reported."""

from __future__ import annotations

import random
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec61850 import ETHERTYPE_GOOSE, SPEC, GooseMonitor, MmsDecoder
from otconduit.protocols.iec61850 import danger as D
from tests.streams import flows

from . import iec61850_helpers as H
from .profinet_helpers import L2, packets
from .test_harness import mutate, random_pieces, resplit
from .test_iec61850_mms import CONVERSATION, association

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Chunk = tuple[int, bytes | None, int, int, int]


@cache
def mms_pool() -> tuple[tuple[Endpoints, tuple[Chunk, ...]], ...]:
    out: list[tuple[Endpoints, tuple[Chunk, ...]]] = [
        (H.ENDPOINTS, tuple((d, m, len(m), i, i) for i, (d, m) in enumerate(CONVERSATION, 1)))
    ]
    out.append(
        (H.ENDPOINTS, tuple((d, m, len(m), i, i) for i, (d, m) in enumerate(association("pw"), 1)))
    )
    for rule in D.RULES:
        for ex in rule.examples:
            out.append(
                (
                    H.ENDPOINTS,
                    tuple((d, m, len(m), i, i) for i, (d, m) in enumerate(ex.messages, 1)),
                )
            )
    for capture in H.MMS_CAPTURES:
        for flow in flows(capture, {H.PORT}):
            out.append((flow.endpoints, tuple(flow.chunks)))
    return tuple(out)


@cache
def goose_pool() -> tuple[bytes, ...]:
    frames = [H.goose_payload(st, sq) for st in (1, 2) for sq in (0, 1)]
    for capture in H.GOOSE_CAPTURES:
        frames += [p.payload for p in packets(capture) if isinstance(p, L2)][:50]
    return tuple(frames)


def fuzzed_mms(seed: int) -> tuple[Endpoints, list[Chunk]]:
    rng = random.Random(seed)
    pool = mms_pool()
    ep, chunks = pool[rng.randrange(len(pool))]
    out: list[Chunk] = []
    for d, data, n, frame, ts in chunks:
        roll = rng.random()
        if data is None or roll < 0.04:
            out.append((d, None, n if data is None else rng.randint(1, 500), frame, ts))
            continue
        if roll < 0.1:
            data = rng.randbytes(rng.randint(1, 200))
        elif roll < 0.7:
            data = mutate(data, rng)
        if data:
            out.append((d, data, len(data), frame, ts))
    return ep, out


def decode_mms(conv: tuple[Endpoints, list[Chunk]]) -> list[DecoderEvent]:
    ep, chunks = conv
    dec = MmsDecoder(ep, max_tsdu=4096)
    out: list[DecoderEvent] = []
    for d, data, n, frame, ts in chunks:
        if data is None:
            dec.gap(d, n, frame, ts)
        else:
            dec.feed(d, data, frame, ts)
        out += dec.events()
    return out + dec.finish()


def check(events: list[DecoderEvent]) -> None:
    for e in events:
        assert isinstance(e, Operation | IdentityClaim | Malformed), e
        if isinstance(e, Operation):
            assert e.protocol in SPEC.names
            assert e.operation in SPEC.operation_classes, (e.function, e.operation)
            D.classify({"protocol": e.protocol, "function": e.function, "detail": e.detail})
        elif isinstance(e, IdentityClaim):
            assert e.source in SPEC.identity_sources
        else:
            assert e.reason and e.offset >= 0


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_mms_fuzz_yields_only_documented_outcomes(seed: int) -> None:
    conv = fuzzed_mms(seed)
    events = decode_mms(conv)
    check(events)
    assert decode_mms(resplit(conv, random_pieces(seed))) == events


def test_mms_fuzzed_input_is_reported() -> None:
    events = [e for seed in range(200) for e in decode_mms(fuzzed_mms(seed))]
    check(events)
    assert (
        sum(
            isinstance(e, Malformed)
            or (isinstance(e, Operation) and e.status is OpStatus.MALFORMED)
            for e in events
        )
        > 50
    )


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_goose_fuzz_yields_only_documented_outcomes(seed: int) -> None:
    rng = random.Random(seed)
    m = GooseMonitor()
    frames = goose_pool()
    events: list[DecoderEvent] = []
    for i in range(rng.randint(1, 20)):
        f = rng.choice(frames)
        f = mutate(f, rng) if rng.random() < 0.7 else f
        m.feed_frame(
            ETHERTYPE_GOOSE, "00:00:00:00:00:01", "01:0c:cd:01:00:01", f, i, i * 10_000_000
        )
        events += m.events()
    check(events + m.finish())


@FUZZ
@given(data=st.binary(max_size=300))
def test_mms_random_tsdu(data: bytes) -> None:
    dec = MmsDecoder(H.ENDPOINTS)
    dec.feed(0, H.dt(data), 1, 1)
    dec.feed(1, H.dt(b"\x01\x00\x01\x00" + data), 2, 2)
    check(dec.events() + dec.finish())
