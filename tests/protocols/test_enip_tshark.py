"""Agreement with tshark (Wireshark's ENIP and CIP dissectors) on the shared captures.

Per capture: the count of encapsulation messages per command (``enip.command``, both
directions) and of CIP requests per service code (``cip.service`` with the reply bit
clear, embedded requests of Multiple Service Packets and Unconnected Sends included)
equal ours, and our request operations account for exactly those requests.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from otconduit.model import OpClass, Operation
from otconduit.protocols.enip import IMPLICIT_IO, EnipDecoder
from tests.streams import flows
from tests.tsharkutil import tshark_fields

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus" / "iti"
CAPTURES = sorted((CORPUS / "EthernetIP").glob("*.pcap")) + sorted(
    (CORPUS / "openics").glob("*.pcap")
)

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared corpus is absent"),
]


def decode(capture: Path) -> tuple[Counter[int], Counter[int], list[Operation]]:
    commands: Counter[int] = Counter()
    services: Counter[int] = Counter()
    operations: list[Operation] = []
    for flow in flows(capture, {44818, 2222}):
        dec = EnipDecoder(flow.endpoints)
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
            operations += [e for e in dec.events() if isinstance(e, Operation)]
        operations += [e for e in dec.finish() if isinstance(e, Operation)]
        commands += dec.command_counts
        services += dec.cip_request_counts
    return commands, services, operations


def tshark_counts(capture: Path) -> tuple[Counter[int], Counter[int]]:
    commands: Counter[int] = Counter()
    services: Counter[int] = Counter()
    for row in tshark_fields(capture, ["enip.command", "cip.service"], "enip || cip"):
        commands.update(int(v, 16) for v in row[0])
        services.update(s for s in (int(v, 16) for v in row[1]) if not s & 0x80)
    return commands, services


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_counts_agree_with_tshark(capture: Path) -> None:
    commands, services, operations = decode(capture)
    t_commands, t_services = tshark_counts(capture)
    assert commands == t_commands
    assert services == t_services
    requested = Counter(
        op.function_code
        for op in operations
        if op.protocol == "cip" and op.request_frame is not None and op.function != IMPLICIT_IO
    )
    assert requested == services


def test_capture_list_is_not_empty() -> None:
    names = {p.name for p in CAPTURES}
    assert {"cip_stop_plc.pcap", "EIP-SoftwareUpload.pcap", "EthernetIP-CIP.pcap"} <= names


def test_stop_plc_is_a_control_operation() -> None:
    _, _, operations = decode(CORPUS / "EthernetIP" / "cip_stop_plc.pcap")
    (stop,) = operations
    assert (stop.function, stop.function_code, stop.operation) == ("Stop", 0x07, OpClass.CONTROL)
    assert stop.unit == 0x8E and stop.address == 1


def test_software_upload_yields_program_operations() -> None:
    _, _, operations = decode(CORPUS / "openics" / "EIP-SoftwareUpload.pcap")
    program = [op for op in operations if op.operation is OpClass.PROGRAM]
    assert len(program) >= 10
    assert {op.function_code for op in program} >= {0x4B, 0x4F}
    assert all(set(op.detail.get("classes", [op.unit])) & {0x68, 0x6D, 0x70} for op in program)
    sessions = Counter(op.function for op in operations if op.operation is OpClass.SESSION)
    assert sessions == {"Forward Open": 7, "Forward Close": 6}
