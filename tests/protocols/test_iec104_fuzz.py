"""IEC 104 as the registry's conformance harness will see it, and under fuzzing.

- the spec's dangerous-operation rules: each example raises its rule (whole, one byte
  at a time and in random pieces), nothing raises an undeclared rule, the classifier
  reads only the declared detail keys;
- the corpus captures give the same events whole, byte by byte and in random pieces,
  and half a next message changes nothing before the end;
- fuzz: the corpus streams and the examples, mutated, with random bytes and capture
  gaps among them, never raise or hang, keep buffers and state within bounds, give the
  same events however cut, and the damage is reported.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.iec104 import SPEC, Iec104ConnectionDecoder
from otconduit.protocols.iec104.apci import MAX_APDU
from otconduit.protocols.iec104.session import MAX_PENDING
from tests.protocols import iec104_helpers as H
from tests.streams import flows

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE_ENDPOINTS = Endpoints(
    transport="tcp", client_ip="10.0.0.1", client_port=50000, server_ip="10.0.0.2", server_port=2404
)
# (direction, bytes or None for a gap, gap size, frame, ts_ns)
Chunk = tuple[int, bytes | None, int, int, int]
Conversation = tuple[Endpoints, list[Chunk]]


class Recording(dict[str, Any]):
    """A detail that notes which keys were looked at."""

    def __init__(self, data: Mapping[str, Any], seen: set[str]) -> None:
        super().__init__(data)
        self.seen = seen

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return super().__contains__(key)


def decode(conv: Conversation, *, finish: bool = True) -> list[DecoderEvent]:
    ep, chunks = conv
    dec = SPEC.factory(ep)
    assert isinstance(dec, Iec104ConnectionDecoder)
    out: list[DecoderEvent] = []
    for d, data, n, frame, ts in chunks:
        if data is None:
            dec.gap(d, n, frame, ts)
        else:
            dec.feed(d, data, frame, ts)
        out += dec.events()
        assert all(s.buffered <= MAX_APDU + 4096 for s in dec.streams)
        assert dec.session.outstanding <= MAX_PENDING + 6
    if not finish:
        return out
    out += dec.finish()
    assert dec.session.idle and all(s.buffered == 0 for s in dec.streams)
    return out


def resplit(conv: Conversation, pieces: Callable[[bytes], list[int]]) -> Conversation:
    ep, chunks = conv
    out: list[Chunk] = []
    for d, data, n, frame, ts in chunks:
        if data is None or len(data) < 2:
            out.append((d, data, n, frame, ts))
            continue
        pos = 0
        for size in pieces(data):
            out.append((d, data[pos : pos + size], size, frame, ts))
            pos += size
    return ep, out


def one_byte(data: bytes) -> list[int]:
    return [1] * len(data)


def random_pieces(seed: int) -> Callable[[bytes], list[int]]:
    rng = random.Random(seed)

    def pieces(data: bytes) -> list[int]:
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
        return [b - a for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    return pieces


def check(events: list[DecoderEvent]) -> None:
    for ev in events:
        assert isinstance(ev, Operation | IdentityClaim | Malformed), ev
        if isinstance(ev, Operation):
            assert ev.protocol in SPEC.names
            assert ev.operation in SPEC.operation_classes, (ev.function, ev.operation)
            json.dumps(ev.detail)
        elif isinstance(ev, IdentityClaim):
            assert ev.source in SPEC.identity_sources
        else:
            assert ev.reason and ev.offset >= 0


def raised(events: list[DecoderEvent], seen: set[str]) -> set[str]:
    assert SPEC.classify is not None
    out = set()
    for ev in events:
        if isinstance(ev, Operation):
            row: dict[str, Any] = {
                "protocol": ev.protocol,
                "operation": str(ev.operation),
                "function": ev.function,
                "function_code": ev.function_code,
                "detail": Recording(json.loads(json.dumps(ev.detail)), seen),
            }
            out |= {hit.rule for hit in SPEC.classify(row)}
    return out


def example(messages: tuple[tuple[int, bytes], ...]) -> Conversation:
    return EXAMPLE_ENDPOINTS, [
        (d, m, len(m), i, i * 1_000_000) for i, (d, m) in enumerate(messages, 1)
    ]


# -- the spec ------------------------------------------------------------------------------
def test_every_rule_is_reached_by_its_examples() -> None:
    declared = {r.rule for r in SPEC.rules}
    assert len(declared) == len(SPEC.rules)
    assert {d.id for d in SPEC.defines} <= declared
    seen: set[str] = set()
    for rule in SPEC.rules:
        for i, ex in enumerate(rule.examples):
            conv = example(ex.messages)
            events = decode(conv)
            check(events)
            got = raised(events, seen)
            assert rule.rule in got, f"{rule.rule} example {i}: raised {got}"
            assert got <= declared
            assert decode(resplit(conv, one_byte)) == events
            assert decode(resplit(conv, random_pieces(i))) == events
    assert seen <= SPEC.detail_keys


# -- the corpus ----------------------------------------------------------------------------
@cache
def corpus() -> tuple[Conversation, ...]:
    if not H.CORPUS.is_dir():
        return ()
    out = []
    for capture in H.CAPTURES:
        for flow in flows(capture, {H.PORT}):
            out.append((flow.endpoints, list(flow.chunks)))
    return tuple(out)


def test_corpus_events_do_not_depend_on_how_the_bytes_are_cut() -> None:
    for n, conv in enumerate(corpus()):
        whole = decode(conv)
        check(whole)
        seen: set[str] = set()
        raised(whole, seen)
        assert seen <= SPEC.detail_keys
        assert decode(resplit(conv, one_byte)) == whole, n
        for seed in range(3):
            assert decode(resplit(conv, random_pieces(seed))) == whole, (n, seed)
        before = decode(conv, finish=False)
        ep, chunks = conv
        last = chunks[-1][3] if chunks else 0
        for d in (0, 1):
            if not ends_at_a_message_boundary(conv, d):
                continue  # a garbage run still open is reported when framing resumes
            first = next((data for dd, data, *_ in chunks if dd == d and data), None)
            if first is not None and len(first) > 1:
                half = first[: len(first) // 2]
                longer = (ep, [*chunks, (d, half, len(half), last + 1, (last + 1) * 1_000_000)])
                assert decode(longer, finish=False) == before, n


def ends_at_a_message_boundary(conv: Conversation, direction: int) -> bool:
    ep, chunks = conv
    dec = Iec104ConnectionDecoder(ep)
    for d, data, n, frame, ts in chunks:
        if data is None:
            dec.gap(d, n, frame, ts)
        else:
            dec.feed(d, data, frame, ts)
    return dec.streams[direction].idle


# -- fuzz ------------------------------------------------------------------------------------
def pool() -> tuple[Conversation, ...]:
    return tuple(example(ex.messages) for rule in SPEC.rules for ex in rule.examples) + corpus()


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(out))
        kind = rng.choice(("flip", "insert", "delete"))
        if kind == "insert" or not out:
            out[at:at] = rng.randbytes(rng.randint(1, 12))
        elif kind == "flip":
            out[min(at, len(out) - 1)] = rng.randrange(256)
        else:
            del out[at : at + rng.randint(1, 8)]
    return bytes(out)


def fuzzed(seed: int) -> Conversation:
    rng = random.Random(seed)
    items = pool()
    ep, chunks = items[rng.randrange(len(items))]
    start = rng.randrange(len(chunks))
    out: list[Chunk] = []
    for d, data, n, frame, ts in chunks[start : start + 20]:
        roll = rng.random()
        if data is None or roll < 0.03:
            out.append((d, None, n if data is None else rng.randint(1, 2000), frame, ts))
            continue
        if roll < 0.1:
            data = rng.randbytes(rng.randint(1, 300))
        elif roll < 0.7:
            data = mutate(data, rng)
        if data:
            out.append((d, data, len(data), frame, ts))
    return ep, out


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_yields_only_documented_outcomes(seed: int) -> None:
    conv = fuzzed(seed)
    start = time.monotonic()
    events = decode(conv)
    assert time.monotonic() - start < 5, "decoding took too long"
    check(events)
    assert decode(resplit(conv, random_pieces(seed))) == events


def test_fuzzed_input_is_reported() -> None:
    events = [e for seed in range(200) for e in decode(fuzzed(seed))]
    check(events)
    bad = sum(
        isinstance(e, Malformed) or (isinstance(e, Operation) and e.status is OpStatus.MALFORMED)
        for e in events
    )
    assert bad > 100


def test_a_stream_of_noise_stays_bounded() -> None:
    rng = random.Random(3)
    dec = Iec104ConnectionDecoder(EXAMPLE_ENDPOINTS)
    for frame in range(2000):
        dec.feed(frame % 2, rng.randbytes(rng.randint(1, 1500)), frame, frame)
        check(dec.events())
        assert all(s.buffered <= MAX_APDU + 4096 for s in dec.streams)
    check(dec.finish())
