"""The tables derived from the protocol registry say what the specs say, and the
detection and policy code read them from there."""

from __future__ import annotations

import pytest

from otconduit.analysis.ports import ICS_TCP_PORTS, ICS_UDP_PORTS, server_side
from otconduit.cli.filters import PROTOCOL_ALIASES as CLI_ALIASES
from otconduit.cli.filters import PROTOCOLS
from otconduit.detect import rules
from otconduit.detect.abuse import ICS_LAYERS
from otconduit.detect.classify import Hit, classify
from otconduit.detect.recon import ICS_PORTS
from otconduit.detect.rules import Severity
from otconduit.policy.check import CLEARTEXT_CONTROL
from otconduit.policy.model import PROTOCOL_ALIASES as POLICY_ALIASES
from otconduit.policy.nftables import PROTOCOL_PORTS
from otconduit.protocols import registry
from otconduit.protocols.danger import RuleDefinition


def test_filters_find_variants_unless_they_have_their_own() -> None:
    assert PROTOCOLS["enip"] == ("enip", "cip")
    assert PROTOCOLS["s7comm"] == ("s7comm",) and PROTOCOLS["s7comm-plus"] == ("s7comm-plus",)
    assert PROTOCOLS["unknown"] == ("unknown",)
    assert CLI_ALIASES["cip"] == "enip" and CLI_ALIASES["s7plus"] == "s7comm-plus"


def test_policy_reads_the_registry_aliases() -> None:
    for alias, name in registry.aliases().items():
        assert POLICY_ALIASES[alias] == name
    assert POLICY_ALIASES["opc-ua"] == "opcua"
    assert POLICY_ALIASES["bacnet/ip"] == "bacnet" and POLICY_ALIASES["iec-104"] == "iec104"
    assert CLI_ALIASES["bip"] == "bacnet" and PROTOCOLS["iec104"] == ("iec104",)


def test_cleartext_control_is_per_stored_name() -> None:
    assert {
        *("modbus", "dnp3", "s7comm", "enip", "cip", "bacnet", "iec104"),
        *("mms", "goose", "profinet"),
    } == CLEARTEXT_CONTROL
    assert "s7comm-plus" not in CLEARTEXT_CONTROL  # integrity-protected


def test_services_and_ports() -> None:
    assert PROTOCOL_PORTS["enip"] == (("tcp", 44818), ("udp", 44818), ("udp", 2222))
    assert PROTOCOL_PORTS["dnp3"] == (("tcp", 20000), ("udp", 20000))
    assert ICS_PORTS[2222] == "enip-io" and ICS_PORTS[44818] == "enip"
    assert ICS_PORTS[4840] == "opcua" and PROTOCOL_PORTS["opcua"] == (("tcp", 4840),)
    assert ICS_PORTS[47808] == "bacnet" and PROTOCOL_PORTS["bacnet"] == (("udp", 47808),)
    assert ICS_PORTS[2404] == "iec104" and PROTOCOL_PORTS["iec104"] == (("tcp", 2404),)
    assert server_side(50000, 47808, "udp") == 1 and server_side(50000, 2404, "tcp") == 1
    for spec in registry.default_protocols():
        for t in spec.transports:
            assert spec.ports <= (ICS_TCP_PORTS if t == "tcp" else ICS_UDP_PORTS)
    assert server_side(50000, 502, "tcp") == 1


def test_problem_layers_include_lower_layers() -> None:
    assert {"tpkt", "cotp", "s7comm-plus", "cip"} <= ICS_LAYERS


def test_classify_maps_severities_and_falls_back_for_unknown_protocols() -> None:
    op = {"protocol": "dnp3", "operation": "other", "function": "AUTHENTICATE_REQ"}
    assert classify({**op, "function_code": 32, "detail": {}}) == [
        Hit("auth-operation", Severity.LOW, "secure authentication")
    ]
    other = {"protocol": "example-proto", "operation": "write", "function": "Set"}
    assert classify({**other, "detail": {}}) == [Hit("process-write", note="Set")]
    assert classify({**other, "operation": "read", "detail": {}}) == []


def test_protocol_rules_join_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    own = RuleDefinition(
        id="example-protocol-rule",
        title="An example",
        category="configuration",
        severity="high",
        techniques=("T0836",),
        description="A rule a protocol brings.",
    )
    monkeypatch.setattr(registry, "defined_rules", lambda: (own,))
    catalogue = rules._catalogue()
    assert catalogue["example-protocol-rule"].severity is Severity.HIGH
    monkeypatch.setattr(registry, "defined_rules", lambda: (own, own))
    with pytest.raises(ValueError, match="defined twice"):
        rules._catalogue()
