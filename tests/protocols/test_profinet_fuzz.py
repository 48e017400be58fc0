"""Fuzz: mutated real PROFINET frames and IO-CM datagrams (and random bytes) yield only
the documented outcomes (operations, identity claims, Malformed events) within the
spec's classes and sources, never an exception, and the decoder ends; what is broken is
reported."""

from __future__ import annotations

import random
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent
from otconduit.protocols.events import Malformed
from otconduit.protocols.profinet import SPEC, ProfinetDecoder
from otconduit.protocols.profinet import danger as D

from . import profinet_helpers as H
from .test_harness import mutate

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Item = H.L2 | H.Datagram


@cache
def pool() -> tuple[Item, ...]:
    """Real frames and datagrams (corpus when present), plus the rules' examples."""
    items: list[Item] = []
    for capture in H.CAPTURES:
        seen: set[bytes] = set()
        for p in H.packets(capture):
            if isinstance(p, H.L2) and p.ethertype == H.ETHERTYPE and p.payload[:2] not in seen:
                seen.add(p.payload[:2])
                items.append(p)
            elif isinstance(p, H.Datagram) and len(items) < 400 and p.payload[:1] == b"\x04":
                items.append(p)
    for rule in (*D.RULES, *D.FRAME_RULES):
        for ex in rule.examples:
            for _, m in ex.messages:
                if ex.transport == "ethernet":
                    items.append(
                        H.L2(0, 0, H.ETHERTYPE, m[6:12].hex(":"), m[0:6].hex(":"), m[14:], None)
                    )
                else:
                    items.append(H.Datagram(0, 0, "10.0.0.1", 50000, "10.0.0.2", 34964, m))
    return tuple(items)


def decode(items: list[Item]) -> list[DecoderEvent]:
    dec = ProfinetDecoder()
    out: list[DecoderEvent] = []
    for i, p in enumerate(items, 1):
        if isinstance(p, H.L2):
            dec.feed_frame(H.ETHERTYPE, p.src_mac, p.dst_mac, p.payload, i, i * 1000)
        else:
            dec.feed_datagram(p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.payload, i, i * 1000)
        out += dec.events()
    return out + dec.finish()


def fuzzed(seed: int) -> list[Item]:
    rng = random.Random(seed)
    items = list(pool())
    out: list[Item] = []
    for _ in range(rng.randint(1, 16)):
        p = rng.choice(items)
        roll = rng.random()
        data = p.payload
        if roll < 0.1:
            data = rng.randbytes(rng.randint(0, 120))
        elif roll < 0.8:
            data = mutate(data, rng)
        if isinstance(p, H.L2):
            out.append(H.L2(0, 0, p.ethertype, p.src_mac, p.dst_mac, data, None))
        else:
            out.append(H.Datagram(0, 0, p.src_ip, p.src_port, p.dst_ip, p.dst_port, data))
    return out


def check(events: list[DecoderEvent]) -> None:
    for e in events:
        assert isinstance(e, Operation | IdentityClaim | Malformed), e
        if isinstance(e, Operation):
            assert e.protocol in SPEC.names
            assert e.operation in SPEC.operation_classes, (e.function, e.operation)
            D.classify({"protocol": e.protocol, "function": e.function, "detail": e.detail})
        elif isinstance(e, IdentityClaim):
            assert e.source in SPEC.identity_sources, e.source
        else:
            assert e.reason and e.offset >= 0


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_yields_only_documented_outcomes(seed: int) -> None:
    items = fuzzed(seed)
    events = decode(items)
    check(events)
    assert decode(items) == events  # deterministic


def test_fuzzed_input_is_reported() -> None:
    events = [e for seed in range(300) for e in decode(fuzzed(seed))]
    check(events)
    reported = sum(
        isinstance(e, Malformed) or (isinstance(e, Operation) and e.status is OpStatus.MALFORMED)
        for e in events
    )
    assert reported > 50


@FUZZ
@given(
    data=st.binary(max_size=200),
    frame_id=st.sampled_from([0xFEFE, 0xFEFF, 0xFEFD, 0xFEFC, 0xFC01, 0xFE01, 0xC000, 0x0080]),
)
def test_random_payload_after_each_frame_id(data: bytes, frame_id: int) -> None:
    check(
        decode(
            [
                H.L2(
                    0,
                    0,
                    H.ETHERTYPE,
                    "00:00:00:00:00:01",
                    "00:00:00:00:00:02",
                    frame_id.to_bytes(2, "big") + data,
                    None,
                )
            ]
        )
    )
