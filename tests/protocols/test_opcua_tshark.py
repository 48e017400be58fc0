"""Agreement with tshark (Wireshark's OPC UA dissector) on every OPC UA capture of the
shared corpus.

Per conversation (the client's port): the count of UA TCP chunks per message type
(``opcua.transport.type``), the count of service messages per encoding id
(``opcua.servicenodeid.numeric``, requests and responses) and the number of secure
channel chunks whose service tshark cannot name (encrypted ones) equal ours, and our
request operations account for exactly the requests tshark names.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from otconduit.protocols.opcua.services import BY_REQUEST
from tests.tsharkutil import tshark_fields

from .opcua_helpers import CORPUS, decode_capture, opcua_captures

CAPTURES = opcua_captures()

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared corpus is absent"),
]

Counts = dict[int, tuple[Counter[str], Counter[int], int]]


def tshark_counts(capture: Path) -> Counts:
    out: Counts = {}
    fields = ["tcp.srcport", "tcp.dstport", "opcua.transport.type", "opcua.servicenodeid.numeric"]
    for sport, dport, types, services in tshark_fields(capture, fields, "opcua"):
        port = int(sport[0]) if int(dport[0]) == 4840 else int(dport[0])
        kinds, ids, _ = out.setdefault(port, (Counter(), Counter(), 0))
        kinds.update(types)
        ids.update(int(s) for s in services)
        unnamed = sum(1 for t in types if t in ("OPN", "CLO", "MSG")) - len(services)
        out[port] = (kinds, ids, out[port][2] + unnamed)
    return out


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_counts_per_conversation_agree_with_tshark(capture: Path) -> None:
    theirs = tshark_counts(capture)
    ours: Counts = {}
    requests: dict[int, Counter[int]] = {}
    for d in decode_capture(capture):
        if not d.decoder.chunk_counts:
            continue  # a connection without OPC UA bytes (tshark has no row for it)
        dec = d.decoder
        secure = sum(dec.chunk_counts[t] for t in ("OPN", "CLO", "MSG"))
        ours[d.endpoints.client_port] = (
            Counter(dec.chunk_counts),
            Counter(dec.service_counts),
            secure - sum(dec.service_counts.values()),
        )
        requests[d.endpoints.client_port] = Counter(
            o.function_code
            for o in d.operations
            if o.request_frame is not None
            and o.function_code in BY_REQUEST
            and not o.detail.get("encrypted")
        )
        assert not d.malformed
    assert ours == theirs
    for port, (_, ids, _) in theirs.items():
        assert requests[port] == Counter({k: v for k, v in ids.items() if k in BY_REQUEST})


def test_every_capture_with_opcua_is_covered() -> None:
    names = {p.name for p in CAPTURES}
    assert {
        "open62541_client-server_mainloop.pcap",
        "open62541_client-server_mainloop-no-handshake.pcap",
        "open62541_client-server-getEndpoints.pcap",
        "open62541_client-server_encrypted.pcap",
        "python_opcua-client-server_minimal.pcap",
    } <= names
