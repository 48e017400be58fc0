"""Agreement with tshark (Wireshark's BVLC, BACnet NPDU and BACapp dissectors) on every
BACnet capture of the shared corpus, conversation by conversation: the count of BVLC
functions, of network layer message types, and of APDUs per (PDU type, service choice);
and our operations account for every confirmed request and unconfirmed service."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.bacnet import BacnetConnectionDecoder
from otconduit.protocols.bacnet.classify import UNCONFIRMED_BASE
from otconduit.protocols.base import DecoderEvent
from tests.protocols import bacnet_helpers as B
from tests.tsharkutil import tshark_fields

CAPTURES = [B.ICSNPP / "bacnet_example.pcap", B.ITI / "bacnet_test.pcap"]
pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not B.CORPUS.is_dir(), reason="../shared corpus is absent"),
]

Conversation = frozenset[tuple[str, int]]
Counts = tuple[Counter[int], Counter[int], Counter[tuple[int, int | None]]]
_CONFIRMED_TYPES = frozenset({0, 2, 3, 5})


def ours(capture: Path) -> tuple[dict[Conversation, Counts], list[Operation]]:
    out: dict[Conversation, Counts] = {}
    operations: list[Operation] = []
    for flow in B.capture_flows(capture):
        events: list[DecoderEvent] = []
        dec = BacnetConnectionDecoder(flow.endpoints)
        for d, data, _n, frame, ts in flow.chunks:
            if data is not None:
                dec.feed(d, data, frame, ts)
                events += dec.events()
        events += dec.finish()
        operations += [e for e in events if isinstance(e, Operation)]
        e = flow.endpoints
        key = frozenset({(e.client_ip, e.client_port), (e.server_ip, e.server_port)})
        counts = out.setdefault(key, (Counter(), Counter(), Counter()))
        counts[0].update(dec.bvlc_counts)
        counts[1].update(dec.network_message_counts)
        counts[2].update(dec.pdu_counts)
    return {k: v for k, v in out.items() if any(v)}, operations


def theirs(capture: Path) -> dict[Conversation, Counts]:
    fields = [
        "ip.src",
        "udp.srcport",
        "ip.dst",
        "udp.dstport",
        "bvlc.function",
        "bacnet.mesgtyp",
        "bacapp.type",
        "bacapp.confirmed_service",
        "bacapp.unconfirmed_service",
    ]
    out: dict[Conversation, Counts] = {}
    for row in tshark_fields(capture, fields, "bvlc"):
        src, sport, dst, dport = row[0][0], int(row[1][0]), row[2][0], int(row[3][0])
        counts = out.setdefault(
            frozenset({(src, sport), (dst, dport)}), (Counter(), Counter(), Counter())
        )
        counts[0].update(int(v, 16) for v in row[4])
        counts[1].update(int(v, 0) for v in row[5])
        for kind in (int(v) for v in row[6]):
            if kind in _CONFIRMED_TYPES:
                counts[2][(kind, int(row[7][0]))] += 1
            elif kind == 1:
                counts[2][(kind, int(row[8][0]))] += 1
            else:
                counts[2][(kind, None)] += 1
    return out


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_counts_per_conversation_agree_with_tshark(capture: Path) -> None:
    mine, _ = ours(capture)
    expected = theirs(capture)
    assert mine.keys() == expected.keys()
    for key, counts in expected.items():
        assert mine[key] == counts, sorted(key)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_request_is_an_operation(capture: Path) -> None:
    _, operations = ours(capture)
    requests: Counter[int] = Counter()
    for counts in theirs(capture).values():
        for (kind, service), n in counts[2].items():
            if kind == 0 and service is not None:
                requests[service] += n
            elif kind == 1 and service is not None:
                requests[UNCONFIRMED_BASE + service] += n
    made = Counter(
        o.function_code
        for o in operations
        if o.request_frame is not None and o.function_code < 0x200
    )
    assert made == requests


def test_device_identity_from_the_scan() -> None:
    """bacnet_test.pcap reads a controller's device object one property at a time."""
    events, _ = B.decode_capture(B.ITI / "bacnet_test.pcap")
    claims = {(c.attribute, c.value) for c in events if isinstance(c, IdentityClaim)}
    assert {
        ("vendor_id", "5"),
        ("vendor_name", "JCI"),
        ("firmware", "5.1.0.4400"),
        ("model", "MS-NAE4510-2"),
        ("device_name", "KBRNAE"),
        ("bacnet_device_instance", "500"),
    } <= claims
