"""The protocols the engine knows, listed explicitly (no registration by import side
effect): order is the tie-break when two protocols claim the same connection.

Every other table that used to list protocols (CLI filters and aliases, policy aliases,
cleartext-control protocols, firewall services, industrial ports, problem layers,
dangerous-operation classifiers, fast lanes) is derived here from the specs, so a new
protocol is its folder plus one line in :func:`default_protocols`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from otconduit.model import Operation
from otconduit.protocols import bacnet, dnp3, enip, iec104, iec61850, modbus, opcua, profinet, s7
from otconduit.protocols.base import DecoderEvent, Endpoints, ProtocolSpec, Service
from otconduit.protocols.danger import Hit, OpView, RuleDefinition


def default_protocols() -> tuple[ProtocolSpec, ...]:
    return (
        modbus.SPEC,
        dnp3.SPEC,
        iec61850.SPEC,  # before S7: both speak TPKT/COTP on port 102 (see s7.detect)
        s7.SPEC,
        enip.SPEC,
        opcua.SPEC,
        bacnet.SPEC,
        iec104.SPEC,
        profinet.SPEC,
    )


@cache
def _by_stored_name() -> Mapping[str, ProtocolSpec]:
    out: dict[str, ProtocolSpec] = {}
    for spec in default_protocols():
        for name in spec.names:
            if name in out:
                raise ValueError(f"protocol name {name!r} is claimed by two specs")
            out[name] = spec
    return MappingProxyType(out)


def spec_for(name: str) -> ProtocolSpec | None:
    """The spec whose decoder stores ``name`` (its own name or a variant's)."""
    return _by_stored_name().get(name)


def stored_names() -> frozenset[str]:
    """Every protocol name a decoder stores on conversations and operations."""
    return frozenset(_by_stored_name())


@cache
def filters() -> Mapping[str, tuple[str, ...]]:
    """Protocol filter -> the stored names it covers: a protocol's filter finds its
    variants too (``enip`` finds ``cip``) unless a variant has a filter of its own."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in default_protocols():
        folded = tuple(v.name for v in spec.variants if not v.own_filter)
        out[spec.name] = (spec.name, *folded)
        for v in spec.variants:
            if v.own_filter:
                out[v.name] = (v.name,)
    return MappingProxyType(out)


@cache
def aliases() -> Mapping[str, str]:
    """Spelling people type -> protocol filter name (a folded variant's name is an
    alias of its protocol: ``cip`` -> ``enip``)."""
    out: dict[str, str] = {}
    for spec in default_protocols():
        out.update(dict.fromkeys(spec.aliases, spec.name))
        for v in spec.variants:
            target = v.name if v.own_filter else spec.name
            if not v.own_filter:
                out[v.name] = spec.name
            out.update(dict.fromkeys(v.aliases, target))
    return MappingProxyType(out)


@cache
def cleartext_control() -> frozenset[str]:
    """Stored names of protocols that carry control commands in clear text."""
    out = set()
    for spec in default_protocols():
        if spec.cleartext_control:
            out.add(spec.name)
        out.update(v.name for v in spec.variants if v.cleartext_control)
    return frozenset(out)


@cache
def problem_layers() -> frozenset[str]:
    """Layers a decode problem of an industrial protocol may name."""
    return frozenset(n for s in default_protocols() for n in (*s.names, *s.layers))


def services() -> tuple[Service, ...]:
    """Every registered protocol's well-known services, named."""
    return tuple(svc for spec in default_protocols() for svc in spec.well_known)


@cache
def service_ports() -> Mapping[str, tuple[tuple[str, int], ...]]:
    """Protocol name -> its (transport, port) services, for firewall rules."""
    return MappingProxyType(
        {s.name: tuple((v.transport, v.port) for v in s.well_known) for s in default_protocols()}
    )


@cache
def port_names() -> Mapping[int, str]:
    """Well-known port -> the service name on it (first registered wins)."""
    out: dict[int, str] = {}
    for svc in services():
        out.setdefault(svc.port, svc.name)
    return MappingProxyType(out)


@cache
def server_ports(transport: str) -> frozenset[int]:
    """Ports that mark the server side of a ``transport`` conversation: the recognition
    ports of every protocol that runs over it."""
    return frozenset(p for s in default_protocols() if transport in s.transports for p in s.ports)


def classify(op: OpView) -> list[Hit] | None:
    """Dangerous-operation hits from the protocol that stored ``op``; None when no
    registered protocol classifies that name."""
    spec = spec_for(op["protocol"])
    if spec is None or spec.classify is None:
        return None
    return spec.classify(op)


@cache
def detail_keys() -> frozenset[str]:
    """Operation detail keys some protocol's classifier reads."""
    return frozenset(k for s in default_protocols() for k in s.detail_keys)


@cache
def flagged_classes() -> Mapping[str, frozenset[str]]:
    """Stored name -> the operation classes of the operations its protocol's classifier
    flags in the spec's own rule examples (an IEC 104 interrogation is a read): detection
    classifies these even where it skips a class as routine."""
    out: dict[str, frozenset[str]] = {}
    for spec in default_protocols():
        classes: set[str] = set()
        for rule in spec.rules:
            for ex in rule.examples:
                ends = Endpoints(
                    transport=ex.transport,
                    client_ip="10.0.0.1",
                    client_port=50000,
                    server_ip="10.0.0.2",
                    server_port=min(spec.ports),
                )
                dec = spec.factory(ends)
                events: list[DecoderEvent] = []
                for i, (d, m) in enumerate(ex.messages, 1):
                    dec.feed(d, m, i, i)
                    events += dec.events()
                for ev in [*events, *dec.finish()]:
                    if isinstance(ev, Operation) and spec.classify is not None:
                        op: OpView = {
                            "protocol": ev.protocol,
                            "operation": str(ev.operation),
                            "function": ev.function,
                            "function_code": ev.function_code,
                            "detail": ev.detail,
                        }
                        if spec.classify(op):
                            classes.add(str(ev.operation))
        out.update(dict.fromkeys(spec.names, frozenset(classes)))
    return MappingProxyType(out)


def unsupported_codes(name: str) -> frozenset[int]:
    """Exception codes meaning "function not supported" for a stored protocol name."""
    spec = spec_for(name)
    return spec.unsupported_codes if spec is not None else frozenset()


def announcements(name: str) -> frozenset[str]:
    """Functions by which a device announces its own identity, for a stored protocol name."""
    spec = spec_for(name)
    return spec.announcements if spec is not None else frozenset()


def setup_identity(name: str) -> frozenset[str]:
    """Identity functions that are part of opening a session, for a stored protocol name."""
    spec = spec_for(name)
    return spec.setup_identity if spec is not None else frozenset()


def defined_rules() -> tuple[RuleDefinition, ...]:
    """Catalogue rules that registered protocols bring with them."""
    return tuple(r for s in default_protocols() for r in s.defines)
