"""The decoder on a real exchange: cpppo's EtherNet/IP server and client on loopback,
recorded by ``scripts/record_enip_fixture.py`` into ``tests/data/enip_cpppo.pcap`` with
a manifest of what was sent (``enip_cpppo.json``)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import IdentityClaim, OpClass, Operation, OpStatus
from otconduit.protocols.enip import SPEC
from tests.streams import decode_flows
from tests.tsharkutil import tshark_fields

DATA = Path(__file__).resolve().parents[1] / "data"
PCAP = DATA / "enip_cpppo.pcap"
MANIFEST: dict[str, Any] = json.loads((DATA / "enip_cpppo.json").read_text())
ENCAP_CODES = {"ListIdentity": 0x63, "RegisterSession": 0x65, "UnRegisterSession": 0x66}


@pytest.fixture(scope="module")
def events() -> list[Any]:
    return decode_flows(PCAP, {44818, 2222}, SPEC.factory)


def operations(events: list[Any]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def test_every_operation_answered_and_well_formed(events: list[Any]) -> None:
    ops = operations(events)
    assert ops and all(op.status is OpStatus.OK for op in ops)
    assert all("malformed_reason" not in op.detail for op in ops)


def test_operations_follow_the_manifest(events: list[Any]) -> None:
    # the CIP requests travel inside Unconnected Send: drop the wrappers
    ops = [op for op in operations(events) if op.function != "Unconnected Send"]
    expected = [s.get("service") or s["command"] for s in MANIFEST["steps"]]
    got = [
        op.function.replace(" ", "").lower() if op.protocol != "cip" else op.function for op in ops
    ]
    assert got == [name if " " in name else name.lower() for name in expected]
    by_name = {op.function: op for op in ops}
    assert by_name["List Identity"].operation is OpClass.IDENTITY
    register, unregister = by_name["Register Session"], by_name["Unregister Session"]
    session = MANIFEST["steps"][1]["session"]
    assert register.detail["session_handle"] == session
    assert unregister.detail["session_handle"] == session


def test_tag_write_and_read(events: list[Any]) -> None:
    steps = {s["service"]: s for s in MANIFEST["steps"] if "service" in s}
    ops = {op.function: op for op in operations(events)}
    for name, op_class in (
        ("Write Tag Fragmented", OpClass.WRITE),
        ("Read Tag Fragmented", OpClass.READ),
    ):
        step, op = steps[name], ops[name]
        assert (op.function_code, op.operation) == (step["code"], op_class)
        assert op.detail["tag"] == f"{step['tag']}[{step['index']}]"
        assert op.detail["embedded_in"] == "Unconnected Send"
        assert op.detail.get("dangerous") is None
    write = ops["Write Tag Fragmented"]
    assert write.detail["data_type"] == steps["Write Tag Fragmented"]["type"]
    raw = bytes.fromhex(write.detail["data"])
    assert [
        int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)
    ] == (steps["Write Tag Fragmented"]["values"])


def test_identity_claims_match_cpppo(events: list[Any]) -> None:
    ident = MANIFEST["identity"]
    claims = {e.attribute: e.value for e in events if isinstance(e, IdentityClaim)}
    assert claims["product_code"] == str(ident["product_code"])
    assert claims["revision"] == ident["revision"]
    assert claims["product_name"] == ident["product_name"]
    assert claims["serial"] == f"0x{ident['serial_number']:08x}"
    assert claims["vendor"] == "Rockwell Automation/Allen-Bradley"  # vendor id 1
    assert ident["vendor_id"] == 1
    (gaa,) = [op for op in operations(events) if op.function == "Get Attributes All"]
    assert gaa.operation is OpClass.IDENTITY and (gaa.unit, gaa.address) == (1, 1)
    reported = gaa.detail["identity"]
    assert (reported["vendor_id"], reported["device_type"], reported["product_code"]) == (
        ident["vendor_id"],
        ident["device_type"],
        ident["product_code"],
    )
    assert reported["serial"] == ident["serial_number"]


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_agrees_on_counts(events: list[Any]) -> None:
    commands: Counter[int] = Counter()
    services: Counter[int] = Counter()
    # cip.service is the whole service byte (cip.sc masks the reply bit, and cip.rr does
    # not repeat one to one with it), so requests are the values with bit 0x80 clear
    for row in tshark_fields(PCAP, ["enip.command", "cip.service"], "enip || cip"):
        commands.update(int(v, 16) for v in row[0])
        services.update(s for s in (int(v, 16) for v in row[1]) if not s & 0x80)
    # requests and replies of each command, except UnRegisterSession (no reply)
    expected_commands = Counter({0x63: 2, 0x65: 2, 0x6F: 6, 0x66: 1})
    assert commands == expected_commands
    cip_steps = [s for s in MANIFEST["steps"] if "service" in s]
    # each tag / identity request rides in an Unconnected Send (0x52 to class 6)
    expected_services = Counter({0x52: len(cip_steps)}) + Counter(s["code"] for s in cip_steps)
    assert services == expected_services
    ours = Counter(op.function_code for op in operations(events) if op.protocol == "cip")
    assert ours == expected_services
    assert {ENCAP_CODES[s["command"]] for s in MANIFEST["steps"] if "command" in s} <= set(commands)
