"""The conformance harness: the same checks for every registered protocol.

A protocol joins by being in the registry; nothing here names one. Per protocol:

- its spec is consistent (services on its transports, rule ids in the catalogue with
  ATT&CK techniques, a fast lane that carries this spec, kernel sources that exist);
- every dangerous-operation rule it declares is raised by each of its examples, it
  raises no rule it does not declare, and its classifier reads only the detail keys it
  declares (detection groups operations by those keys);
- its events are the same whether the bytes come whole, one at a time or in random
  pieces, and bytes of an unfinished next message change nothing before the end; on
  the rule examples and on its golden corpus (``../shared/corpus/icsnpp/<name>``);
- fuzzed input (mutated examples, random bytes, capture gaps, random pieces) yields
  only the documented outcomes: operations, identity claims and ``Malformed`` events,
  never an exception; operation classes and identity sources stay within the spec, and
  the malformed input is reported (``Malformed`` events or malformed operations).

Row-by-row agreement with Zeek on the golden corpora is in each protocol's own golden
test (:data:`GOLDEN_TESTS`); a protocol with a golden corpus must name one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.analysis.fastpath.path import lane_classes
from otconduit.analysis.kernel_cache import protocol_sources
from otconduit.detect.attack import attack_table
from otconduit.detect.rules import RULES
from otconduit.model import IdentityClaim, Operation, OpStatus
from otconduit.protocols import registry
from otconduit.protocols.base import DecoderEvent, Endpoints, ProtocolSpec
from otconduit.protocols.danger import Example
from otconduit.protocols.events import Malformed
from tests.conftest import CORPUS, REPO
from tests.streams import flows

SPECS = registry.default_protocols()
# Golden test (Zeek ICSNPP row by row) of each protocol with an ICSNPP corpus.
GOLDEN_TESTS = {
    "modbus": "tests/test_conformance_zeek.py",
    "dnp3": "tests/protocols/test_dnp3_corpus.py",
    "s7comm": "tests/protocols/test_s7_conformance.py",
    "enip": "tests/protocols/test_enip_conformance.py",
    "opcua": "tests/protocols/test_opcua_zeek.py",
    "bacnet": "tests/protocols/test_bacnet_zeek.py",
    "profinet": "tests/protocols/test_profinet_zeek.py",
}
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (direction, bytes or None for a gap, gap size, frame, ts_ns)
Chunk = tuple[int, bytes | None, int, int, int]
Conversation = tuple[Endpoints, list[Chunk]]


def by_name(fn: Any) -> Any:
    return pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])(fn)


# -- driving a decoder -------------------------------------------------------------------
def endpoints(spec: ProtocolSpec, transport: str) -> Endpoints:
    port = next(s.port for s in spec.well_known if s.transport == transport)
    return Endpoints(
        transport=transport,
        client_ip="10.0.0.1",
        client_port=50000,
        server_ip="10.0.0.2",
        server_port=port,
    )


def decode(spec: ProtocolSpec, conv: Conversation, *, finish: bool = True) -> list[DecoderEvent]:
    ep, chunks = conv
    dec = spec.factory(ep)
    out: list[DecoderEvent] = []
    for d, data, n, frame, ts in chunks:
        if data is None:
            dec.gap(d, n, frame, ts)
        else:
            dec.feed(d, data, frame, ts)
        out += dec.events()
    return out + dec.finish() if finish else out


def resplit(conv: Conversation, pieces: Any) -> Conversation:
    """The same bytes cut by ``pieces(data) -> sizes``, each piece keeping the frame and
    time of the chunk it came from; UDP datagrams and gaps stay whole."""
    ep, chunks = conv
    if ep.transport != "tcp":
        return conv
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


def random_pieces(seed: int) -> Any:
    rng = random.Random(seed)

    def pieces(data: bytes) -> list[int]:
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
        return [b - a for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    return pieces


def example_conversation(spec: ProtocolSpec, example: Example) -> Conversation:
    chunks = [(d, m, len(m), i, i * 1_000_000) for i, (d, m) in enumerate(example.messages, 1)]
    return endpoints(spec, example.transport), chunks


def samples(spec: ProtocolSpec) -> list[Conversation]:
    """Per transport, every rule example of the spec one after the other."""
    out: dict[str, list[Chunk]] = {}
    for rule in spec.rules:
        for ex in rule.examples:
            chunks = out.setdefault(ex.transport, [])
            for d, m in ex.messages:
                frame = len(chunks) + 1
                chunks.append((d, m, len(m), frame, frame * 1_000_000))
    return [(endpoints(spec, t), chunks) for t, chunks in out.items()]


# -- the operation as detection sees it -------------------------------------------------
class Recording(dict[str, Any]):
    """An operation's detail that notes which keys a classifier looked at."""

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


def view(op: Operation, seen: set[str]) -> dict[str, Any]:
    """``op`` in the shape ``store.views.operations`` returns (details through JSON)."""
    return {
        "protocol": op.protocol,
        "operation": str(op.operation),
        "function": op.function,
        "function_code": op.function_code,
        "detail": Recording(json.loads(json.dumps(op.detail, default=str)), seen),
    }


def rules_raised(spec: ProtocolSpec, events: list[DecoderEvent], seen: set[str]) -> set[str]:
    assert spec.classify is not None
    return {
        hit.rule
        for ev in events
        if isinstance(ev, Operation)
        for hit in spec.classify(view(ev, seen))
    }


def check_outcomes(spec: ProtocolSpec, events: list[DecoderEvent]) -> None:
    """Only the documented outcomes, within what the spec declares."""
    for ev in events:
        assert isinstance(ev, Operation | IdentityClaim | Malformed), ev
        if isinstance(ev, Operation):
            assert ev.protocol in spec.names, ev.protocol
            assert ev.operation in spec.operation_classes, (ev.function, ev.operation)
        elif isinstance(ev, IdentityClaim):
            assert ev.source in spec.identity_sources, ev.source
        else:
            assert ev.reason and ev.offset >= 0, ev


def reported(events: list[DecoderEvent]) -> int:
    return sum(
        isinstance(e, Malformed) or (isinstance(e, Operation) and e.status is OpStatus.MALFORMED)
        for e in events
    )


# -- the spec ----------------------------------------------------------------------------
@by_name
def test_spec_is_consistent(spec: ProtocolSpec) -> None:
    assert spec.names == tuple(dict.fromkeys(spec.names)), "a name twice"
    assert spec.transports <= {"tcp", "udp"} and spec.ports
    for svc in spec.well_known:
        assert svc.transport in spec.transports, svc
    for name in (*spec.names, *spec.aliases):
        assert name == name.lower() and registry.aliases().get(name, name) in registry.filters()
    assert spec.classify is not None and spec.rules, "declare the dangerous operations"
    assert spec.operation_classes and spec.detail_keys


@by_name
def test_rules_are_in_the_catalogue_with_attack_techniques(spec: ProtocolSpec) -> None:
    for rule in spec.rules:
        assert rule.rule in RULES, f"{spec.name}: rule {rule.rule!r} is not in the catalogue"
        techniques = RULES[rule.rule].techniques
        known = attack_table().techniques
        assert techniques and all(t in known for t in techniques), rule.rule
    assert len({r.rule for r in spec.rules}) == len(spec.rules), "a rule declared twice"


@by_name
def test_fast_lane_carries_this_spec(spec: ProtocolSpec) -> None:
    if spec.fast_lane is None:
        pytest.skip(f"{spec.name} has no fast lane")
    (lane,) = [cls for cls in lane_classes() if cls.spec is spec]
    assert {*(lane.op_protocols or (lane.op_protocol,))} <= set(spec.names)
    for path in protocol_sources():
        assert path.is_file()


# -- dangerous operations ------------------------------------------------------------------
@by_name
def test_every_rule_is_reached_by_its_examples(spec: ProtocolSpec) -> None:
    declared = {r.rule for r in spec.rules}
    seen: set[str] = set()
    for rule in spec.rules:
        for i, example in enumerate(rule.examples):
            events = decode(spec, example_conversation(spec, example))
            check_outcomes(spec, events)
            raised = rules_raised(spec, events, seen)
            assert rule.rule in raised, f"{spec.name} {rule.rule} example {i}: raised {raised}"
            assert raised <= declared, f"undeclared rules {raised - declared}"
    assert seen <= spec.detail_keys, f"classifier reads undeclared keys {seen - spec.detail_keys}"


# -- segmentation ------------------------------------------------------------------------
def golden_conversations(spec: ProtocolSpec) -> list[Conversation]:
    out: list[Conversation] = []
    for pcap in sorted((CORPUS / "icsnpp" / spec.name).glob("*/*.pcap*")):
        for flow in flows(pcap, set(spec.ports)):
            if flow.endpoints.transport in spec.transports and flow.chunks:
                out.append((flow.endpoints, [(d, b, n, f, t) for d, b, n, f, t in flow.chunks]))
    return out


def conversations(spec: ProtocolSpec, source: str) -> list[Conversation]:
    if source == "examples":
        return samples(spec)
    if not (CORPUS / "icsnpp" / spec.name).is_dir():
        pytest.skip(f"no golden corpus ../shared/corpus/icsnpp/{spec.name}")
    return golden_conversations(spec)


SOURCES = pytest.mark.parametrize("source", ["examples", "golden"])


@by_name
@SOURCES
def test_same_events_however_the_bytes_are_cut(spec: ProtocolSpec, source: str) -> None:
    for n, conv in enumerate(conversations(spec, source)):
        whole = decode(spec, conv)
        check_outcomes(spec, whole)
        assert decode(spec, resplit(conv, one_byte)) == whole, f"conversation {n}, one byte"
        for seed in range(3):
            cut = resplit(conv, random_pieces(seed))
            assert decode(spec, cut) == whole, f"conversation {n}, random pieces {seed}"


def trailing(conv: Conversation) -> Iterator[Conversation]:
    """The conversation followed by the first half of a message it holds, per direction
    (a next message still arriving when the capture ends)."""
    ep, chunks = conv
    last = chunks[-1][3] if chunks else 0
    for d in (0, 1):
        first = next((data for dd, data, *_ in chunks if dd == d and data), None)
        if first is not None and len(first) > 1 and ep.transport == "tcp":
            half = first[: len(first) // 2]
            yield ep, [*chunks, (d, half, len(half), last + 1, (last + 1) * 1_000_000)]


@by_name
@SOURCES
def test_an_unfinished_next_message_changes_nothing(spec: ProtocolSpec, source: str) -> None:
    for n, conv in enumerate(conversations(spec, source)):
        before = decode(spec, conv, finish=False)
        for longer in trailing(conv):
            assert decode(spec, longer, finish=False) == before, f"conversation {n}"
            check_outcomes(spec, decode(spec, longer))


@by_name
def test_golden_corpus_has_a_golden_test(spec: ProtocolSpec) -> None:
    if not (CORPUS / "icsnpp" / spec.name).is_dir():
        pytest.skip(f"no golden corpus ../shared/corpus/icsnpp/{spec.name}")
    assert (REPO / GOLDEN_TESTS[spec.name]).is_file()
    convs = golden_conversations(spec)
    events = [e for conv in convs for e in decode(spec, conv)]
    assert any(isinstance(e, Operation) for e in events)
    seen: set[str] = set()
    declared = {r.rule for r in spec.rules}
    assert rules_raised(spec, events, seen) <= declared
    assert seen <= spec.detail_keys


# -- fuzz ----------------------------------------------------------------------------------
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


@cache
def fuzz_pool(name: str) -> tuple[Conversation, ...]:
    """What fuzzing starts from: the rule examples, and the golden corpus when present
    (which has the devices' side too)."""
    spec = registry.spec_for(name)
    assert spec is not None
    golden = golden_conversations(spec) if (CORPUS / "icsnpp" / name).is_dir() else []
    return (*samples(spec), *golden)


def fuzzed(spec: ProtocolSpec, seed: int) -> Conversation:
    """Messages of one pooled conversation, mutated, with random bytes and capture gaps
    among them."""
    rng = random.Random(seed)
    pool = fuzz_pool(spec.name)
    ep, chunks = pool[rng.randrange(len(pool))]
    start = rng.randrange(len(chunks))
    out: list[Chunk] = []
    for d, data, n, frame, ts in chunks[start : start + 12]:
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
    if ep.transport != "tcp":
        out = [c for c in out if c[1] is not None]
    return ep, out


@by_name
@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_yields_only_documented_outcomes(spec: ProtocolSpec, seed: int) -> None:
    conv = fuzzed(spec, seed)
    events = decode(spec, conv)
    check_outcomes(spec, events)
    assert decode(spec, resplit(conv, random_pieces(seed))) == events


@by_name
def test_fuzzed_input_is_reported(spec: ProtocolSpec) -> None:
    """Mutated messages are reported, not silently dropped: over a fixed set of fuzzed
    conversations the decoder says something was malformed."""
    events = [e for seed in range(200) for e in decode(spec, fuzzed(spec, seed))]
    check_outcomes(spec, events)
    assert reported(events) > 0
