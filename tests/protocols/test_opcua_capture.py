"""A live asyncua exchange captured on the loopback interface (127.0.0.1 only), read
back with the project's capture reader and TCP reassembler, and checked against tshark
on the same file: chunk and service counts per conversation, and the identity the
server states through its client API.

Needs root (or capture rights), tcpdump and tshark; skips with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from otconduit.protocols.opcua.services import BY_REQUEST
from tests.tsharkutil import tshark_fields

from .opcua_helpers import decode_capture, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed"),
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root"),
]


async def _exchange(port: int) -> list[str]:
    from asyncua import Client, Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/conduit/capture")
    server.set_server_name("Conduit Capture Test")
    await server.start()
    try:
        client = Client(f"opc.tcp://127.0.0.1:{port}/conduit/capture")
        async with client:
            values = [await client.get_node(ua.NodeId(i)).read_value() for i in (2261, 2263, 2264)]
            await client.nodes.objects.get_children()
            await client.get_endpoints()
    finally:
        await server.stop()
    return [str(v) for v in values]


def test_loopback_capture_agrees_with_tshark(tmp_path: Path) -> None:
    logging.disable(logging.CRITICAL)
    port = free_port()
    pcap = tmp_path / "opcua.pcap"
    dump = subprocess.Popen(
        [
            "tcpdump",
            "-i",
            "lo",
            "-U",
            "-s",
            "0",
            "-w",
            str(pcap),
            f"host 127.0.0.1 and tcp port {port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not pcap.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        values = asyncio.run(_exchange(port))
        time.sleep(0.5)
    finally:
        dump.terminate()
        dump.wait(timeout=10)
        logging.disable(logging.NOTSET)
    decoded = [d for d in decode_capture(pcap, {port}) if d.decoder.chunk_counts]
    assert len(decoded) == 1
    (d,) = decoded
    assert not d.malformed
    rows = tshark_fields(
        pcap,
        ["opcua.transport.type", "opcua.servicenodeid.numeric"],
        "opcua",
        extra=["-d", f"tcp.port=={port},opcua"],
    )
    types: Counter[str] = Counter(t for row in rows for t in row[0])
    services: Counter[int] = Counter(int(s) for row in rows for s in row[1])
    assert Counter(d.decoder.chunk_counts) == types
    assert Counter(d.decoder.service_counts) == services
    requested = Counter(
        o.function_code
        for o in d.operations
        if o.request_frame is not None and o.function_code in BY_REQUEST
    )
    assert requested == Counter({k: v for k, v in services.items() if k in BY_REQUEST})
    claims = {c.attribute: c.value for c in d.claims if c.source == "opcua_buildinfo"}
    assert [claims["product_name"], claims["vendor"], claims["software_version"]] == values
    assert all(c.ip == "127.0.0.1" for c in d.claims)
