"""The conformance harness's checks, run on the MMS spec before it is registered: spec
consistency, every rule reached by its examples with only declared detail keys read, the
same events however the examples' bytes are cut, and an unfinished next message that
changes nothing (see :mod:`test_harness`)."""

from __future__ import annotations

from otconduit.detect.attack import attack_table
from otconduit.detect.rules import RULES
from otconduit.protocols import registry
from otconduit.protocols.iec61850 import SPEC
from otconduit.protocols.iec61850 import danger as D

from .test_harness import (
    check_outcomes,
    decode,
    example_conversation,
    one_byte,
    random_pieces,
    resplit,
    rules_raised,
    samples,
    trailing,
)


def test_spec_is_consistent_and_registered_under_its_own_names() -> None:
    aliases = registry.aliases()
    for name in SPEC.names:
        assert name == name.lower() and registry.spec_for(name) is SPEC, name
    for name in (*SPEC.aliases, *(a for v in SPEC.variants for a in v.aliases)):
        assert name == name.lower() and aliases.get(name) in SPEC.names, name
    for svc in SPEC.well_known:
        assert svc.transport in SPEC.transports
    assert SPEC.classify is not None and SPEC.rules and SPEC.detail_keys


def test_rules_have_attack_techniques() -> None:
    known = attack_table().techniques
    own = {d.id: d for d in SPEC.defines}
    for rule in (*SPEC.rules, *D.FRAME_RULES):
        techniques = own[rule.rule].techniques if rule.rule in own else RULES[rule.rule].techniques
        assert techniques and all(t in known for t in techniques), rule.rule
    # its own rules reach the catalogue from the registry, once, as it defines them
    assert all(RULES[i].title == d.title for i, d in own.items())
    assert len(registry.defined_rules()) == len({r.id for r in registry.defined_rules()})


def test_every_rule_is_reached_by_its_examples() -> None:
    declared = {r.rule for r in SPEC.rules}
    seen: set[str] = set()
    for rule in SPEC.rules:
        for example in rule.examples:
            events = decode(SPEC, example_conversation(SPEC, example))
            check_outcomes(SPEC, events)
            raised = rules_raised(SPEC, events, seen)
            assert rule.rule in raised and raised <= declared, (rule.rule, raised)
    assert seen <= SPEC.detail_keys


def test_same_events_however_the_examples_are_cut() -> None:
    for conv in samples(SPEC):
        whole = decode(SPEC, conv)
        assert decode(SPEC, resplit(conv, one_byte)) == whole
        for seed in range(3):
            assert decode(SPEC, resplit(conv, random_pieces(seed))) == whole
        before = decode(SPEC, conv, finish=False)
        for longer in trailing(conv):
            assert decode(SPEC, longer, finish=False) == before
