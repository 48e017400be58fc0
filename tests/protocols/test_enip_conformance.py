"""Conformance with Zeek ICSNPP's ENIP/CIP logs on its own example capture.

Every row of ``enip.log``, ``cip.log`` and ``cip_identity.log`` must have a matching
operation or identity claim from our decoder, and every connection of ``cip_io.log``
must be counted with ICSNPP's number of packets. The baseline masks timestamps, so rows
are matched as multisets on the fields that identify them:

- ``enip.log``: direction, command, length, session handle, status, sender context.
  Each row is one encapsulation message; our operations carry the request's and the
  reply's header fields (CIP operations of embedded requests share their carrier's, so
  only top-level ones count).
- ``cip.log``: direction, sequence count, service code and name, then class id, class
  name and instance (requests) or status code and name (responses). ICSNPP logs every
  request of a Multiple Service Packet as its own row, as we make each an operation.
- ``cip_identity.log``: socket address and every identity attribute.

No row is left unmatched on this capture.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.enip import IMPLICIT_IO, SPEC
from tests.streams import decode_flows

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EXAMPLE = SHARED / "corpus" / "icsnpp" / "enip" / "enip_cip_example"
PCAP = EXAMPLE / "enip_cip_example.pcap"
BASELINE = EXAMPLE / "zeek-baseline"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not PCAP.is_file(), reason="../shared ICSNPP ENIP example is absent"),
]
# Columns shared by the ICSNPP logs: ts uid orig_h orig_p resp_h resp_p is_orig
# source_h source_p destination_h destination_p; protocol fields start at index 11.
IS_ORIG, FIRST = 6, 11


def rows(name: str) -> list[list[str]]:
    lines = (BASELINE / name).read_text().splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def events() -> list[object]:
    return list(decode_flows(PCAP, {44818, 2222}, SPEC.factory))


@pytest.fixture(scope="module")
def operations(events: list[object]) -> list[Operation]:
    return [e for e in events if isinstance(e, Operation)]


def test_enip_log(operations: list[Operation]) -> None:
    logged = Counter(
        (r[IS_ORIG], int(r[11], 16), r[12], int(r[13]), int(r[14], 16), r[15], r[16][2:])
        for r in rows("enip.log")
    )
    ours: Counter[tuple[str, int, str, int, int, str, str]] = Counter()
    codes = {"Send Unit Data": 0x70, "Send RR Data": 0x6F, "List Identity": 0x63}
    for op in operations:
        d = op.detail
        if "enip_command" not in d or "embedded_in" in d:
            continue
        command, context = d["enip_command"], d["sender_context"]
        if op.request_frame is not None:
            session = d.get("request_session_handle", d["session_handle"])
            key = ("T", codes[command], command, d["request_length"], session, "Success", context)
            ours[key] += 1
        if op.response_frame is not None:
            key = (
                "F",
                codes[command],
                command,
                d["response_length"],
                d["session_handle"],
                d["enip_status"],
                context,
            )
            ours[key] += 1
    assert sum(logged.values()) == 269
    assert logged == ours


def test_cip_log(operations: list[Operation]) -> None:
    requests: Counter[tuple[object, ...]] = Counter()
    responses: Counter[tuple[object, ...]] = Counter()
    for r in rows("cip.log"):
        seq, direction, code, name, status, status_name = r[FIRST : FIRST + 6]
        if direction == "request":
            cls, cls_name, inst = r[FIRST + 8], r[FIRST + 9], r[FIRST + 10]
            key = (r[IS_ORIG], int(seq), int(code, 16), name, int(cls, 16), cls_name, int(inst, 16))
            requests[key] += 1
        else:
            responses[
                (r[IS_ORIG], int(seq), int(code, 16), name, int(status, 16), status_name)
            ] += 1
    our_requests: Counter[tuple[object, ...]] = Counter()
    our_responses: Counter[tuple[object, ...]] = Counter()
    for op in operations:
        if op.protocol != "cip" or op.function == IMPLICIT_IO:
            continue
        d = op.detail
        sequence = d.get("sequence_count")
        if op.request_frame is not None:
            our_requests[
                ("T", sequence, op.function_code, op.function, op.unit, d["class_name"], op.address)
            ] += 1
        if op.response_frame is not None:
            our_responses[
                (
                    "F",
                    sequence,
                    op.function_code,
                    op.function,
                    d["general_status"],
                    d["general_status_name"],
                )
            ] += 1
    assert sum(requests.values()) == 585 and sum(responses.values()) == 573
    assert requests == our_requests
    assert responses == our_responses


def test_cip_identity_log(events: list[object]) -> None:
    claims = {(c.ip, c.attribute, c.value) for c in events if isinstance(c, IdentityClaim)}
    (row,) = rows("cip_identity.log")
    ip = row[FIRST + 1]
    state = {3: "Operational"}[int(row[FIRST + 12], 16)]
    expected = {
        (ip, "vendor", row[FIRST + 4]),
        (ip, "device_type", row[FIRST + 6]),
        (ip, "product_code", row[FIRST + 7]),
        (ip, "revision", row[FIRST + 8]),
        (ip, "serial", row[FIRST + 10]),
        (ip, "product_name", row[FIRST + 11]),
        (ip, "state", state),
    }
    assert expected <= claims
    assert all(c.source == "cip_identity" for c in events if isinstance(c, IdentityClaim))


def test_cip_io_log_connections_counted(operations: list[Operation]) -> None:
    logged = Counter((r[FIRST - 4], int(r[FIRST], 16)) for r in rows("cip_io.log"))
    ours = {
        (op.src_ip, op.detail["connection_id"]): op.quantity
        for op in operations
        if op.function == IMPLICIT_IO
    }
    assert len(logged) == 24 and sum(logged.values()) == 398
    assert ours == dict(logged)
