"""BACnet as the registry's conformance harness will see it, and under fuzzing.

- the spec's dangerous-operation rules: each example raises its rule, nothing raises an
  undeclared rule, the classifier reads only the declared detail keys (also on the
  golden corpus);
- outcomes: only Operations (classes within the spec), IdentityClaims (sources within
  the spec) and Malformed events with a reason;
- fuzz: real datagrams (the golden corpus and the rule examples) mutated, truncated,
  padded and replaced by random bytes never raise, never hang, keep state within its
  bounds, decode the same twice, and the damage is reported.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols.bacnet import SPEC, BacnetConnectionDecoder
from otconduit.protocols.bacnet.session import MAX_OUTSTANDING, MAX_REASSEMBLIES
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from tests.conftest import CORPUS
from tests.protocols import bacnet_helpers as B

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE_ENDPOINTS = Endpoints(
    transport="udp",
    client_ip="10.0.0.1",
    client_port=50000,
    server_ip="10.0.0.2",
    server_port=47808,
)


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


def raised(events: list[DecoderEvent], seen: set[str]) -> set[str]:
    assert SPEC.classify is not None
    out = set()
    for ev in events:
        if isinstance(ev, Operation):
            row = {
                "protocol": ev.protocol,
                "operation": str(ev.operation),
                "function": ev.function,
                "function_code": ev.function_code,
                "detail": Recording(json.loads(json.dumps(ev.detail)), seen),
            }
            out |= {hit.rule for hit in SPEC.classify(row)}
    return out


def check(events: list[DecoderEvent]) -> None:
    for ev in events:
        assert isinstance(ev, Operation | IdentityClaim | Malformed), ev
        if isinstance(ev, Operation):
            assert ev.protocol in SPEC.names
            assert ev.operation in SPEC.operation_classes, (ev.function, ev.operation)
            json.dumps(ev.detail)  # storable
        elif isinstance(ev, IdentityClaim):
            assert ev.source in SPEC.identity_sources
        else:
            assert ev.reason and ev.offset >= 0


def run(
    datagrams: list[tuple[int, bytes]], endpoints: Endpoints = EXAMPLE_ENDPOINTS
) -> list[DecoderEvent]:
    dec = SPEC.factory(endpoints)
    assert isinstance(dec, BacnetConnectionDecoder)
    out: list[DecoderEvent] = []
    for frame, (d, data) in enumerate(datagrams, 1):
        dec.feed(d, data, frame, frame * 1_000_000)
        out += dec.events()
        assert dec.session.outstanding <= 2 * MAX_OUTSTANDING
        assert dec.session.reassembling <= MAX_REASSEMBLIES
    out += dec.finish()
    assert dec.session.idle
    return out


# -- the spec --------------------------------------------------------------------------
def test_every_rule_is_reached_by_its_examples() -> None:
    declared = {r.rule for r in SPEC.rules}
    assert len(declared) == len(SPEC.rules)
    assert {d.id for d in SPEC.defines} <= declared
    seen: set[str] = set()
    for rule in SPEC.rules:
        for i, example in enumerate(rule.examples):
            assert example.transport == "udp"
            events = run(list(example.messages))
            check(events)
            got = raised(events, seen)
            assert rule.rule in got, f"{rule.rule} example {i}: raised {got}"
            assert got <= declared
    assert seen <= SPEC.detail_keys


def test_golden_corpus_raises_only_declared_rules() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared corpus is absent")
    events, _ = B.decode_capture(B.ICSNPP / "bacnet_example.pcap")
    check(events)
    seen: set[str] = set()
    assert raised(events, seen) == {"program-download"}  # ReinitializeDevice abortrestore
    assert seen <= SPEC.detail_keys


# -- fuzz ------------------------------------------------------------------------------
@cache
def pool() -> tuple[tuple[int, bytes], ...]:
    out = [m for rule in SPEC.rules for ex in rule.examples for m in ex.messages]
    if CORPUS.is_dir():
        seen = set()
        for capture in (B.ICSNPP / "bacnet_example.pcap", B.ITI / "bacnet_test.pcap"):
            for flow in B.capture_flows(capture):
                for d, data, *_ in flow.chunks:
                    if data and data not in seen:
                        seen.add(data)
                        out.append((d, data))
    return tuple(out)


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(out))
        kind = rng.choice(("flip", "insert", "delete", "truncate", "length"))
        if kind == "insert" or not out:
            out[at:at] = rng.randbytes(rng.randint(1, 12))
        elif kind == "flip":
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif kind == "delete":
            del out[at : at + rng.randint(1, 8)]
        elif kind == "truncate":
            del out[at:]
        elif len(out) >= 4:  # keep the BVLC length honest so deeper layers get the damage
            out[2:4] = len(out).to_bytes(2, "big")
    return bytes(out)


def fuzzed(seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    items = pool()
    out = []
    for _ in range(rng.randint(1, 20)):
        d, data = items[rng.randrange(len(items))]
        roll = rng.random()
        if roll < 0.1:
            data = rng.randbytes(rng.randint(0, 200))
        elif roll < 0.8:
            data = mutate(data, rng)
        out.append((rng.choice((d, 1 - d)), data))
    return out


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_yields_only_documented_outcomes(seed: int) -> None:
    datagrams = fuzzed(seed)
    start = time.monotonic()
    events = run(datagrams)
    assert time.monotonic() - start < 5, "decoding took too long"
    check(events)
    assert run(datagrams) == events


def test_fuzzed_input_is_reported() -> None:
    events = [e for seed in range(200) for e in run(fuzzed(seed))]
    check(events)
    bad = sum(
        isinstance(e, Malformed) or (isinstance(e, Operation) and e.status is OpStatus.MALFORMED)
        for e in events
    )
    assert bad > 100


def test_random_bytes_of_every_length() -> None:
    rng = random.Random(7)
    for size in range(0, 64):
        for _ in range(20):
            check(
                run(
                    [
                        (0, rng.randbytes(size)),
                        (1, b"\x81\x0a" + size.to_bytes(2, "big") + rng.randbytes(size)),
                    ]
                )
            )
