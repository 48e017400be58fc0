"""Helpers for the IT-side decoder tests: captures as frames and datagrams (through the
project's own capture reader and frame decoder), tshark as the oracle with an
aggregator that cannot occur in the values, and loopback capture with tcpdump."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from otconduit.capture.decode import DecodeProblem, decode_frame
from otconduit.capture.ipfrag import Defragmenter
from otconduit.capture.packet import IPPROTO_UDP, Packet
from otconduit.capture.reader import open_capture
from tests.conftest import CORPUS

SEP = "\x1f"  # unit separator: between repeated values of one field
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
needs_capture = [
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root"),
    needs_tshark,
]

# Every capture of ../shared/corpus holding one of the IT protocols, by tshark's
# protocol hierarchy (checked by test_it_corpus_list_is_complete).
IT_CAPTURES = {
    "iti/openics/EIP-SoftwareUpload.pcap": {"cdp", "lldp"},
    "iti/bro/modbus/modbusSmall.pcap": {"dns"},
    "iti/hart/hart_ip.pcap": {"tls", "nbss", "smb"},
    "iti/IEC60870-5-104/090813_diverse.pcap": {"nbdgm", "smb", "browser"},
    "icsnpp/profinet/profinet_io_cm_mixed_2/profinet_io_cm_mixed_2.pcapng": {
        "nbns",
        "llmnr",
        "dhcp",
        "nbdgm",
        "smb",
        "browser",
        "lldp",
    },
    "icsnpp/enip/enip_cip_example/enip_cip_example.pcap": {"lldp"},
    "icsnpp/opcua/open62541_client-server_mainloop/open62541_client-server_mainloop.pcap": {"dns"},
}
IT_PROTOCOLS = frozenset().union(*IT_CAPTURES.values()) | {
    "mdns",
    "http",
    "ssh",
    "rdp",
    "smb2",
    "ntlmssp",
    "nbns",
    "ssl",
}


def captures_with(*protocols: str) -> list[Path]:
    """The corpus captures that hold any of ``protocols``."""
    want = set(protocols)
    return [CORPUS / rel for rel, found in sorted(IT_CAPTURES.items()) if found & want]


def packets(pcap: Path) -> Iterator[Packet]:
    """Every frame of a capture the project's decoder could decode, IP fragments
    reassembled (a reassembled datagram carries its last fragment's frame number)."""
    defrag = Defragmenter()
    with open_capture(pcap) as reader:
        for block in reader:
            for i in range(len(block.offsets)):
                off, cap = int(block.offsets[i]), int(block.caplens[i])
                res = decode_frame(
                    block.buf[off : off + cap].tobytes(),
                    int(block.linktypes[i]),
                    block.first_frame + i,
                    int(block.ts_ns[i]),
                    int(block.wirelens[i]),
                )
                if isinstance(res, DecodeProblem):
                    continue
                if res.ip_version:
                    pkt = defrag.feed(res)
                    if pkt is not None:
                        yield pkt
                else:
                    yield res


def udp(pcap: Path, ports: set[int]) -> Iterator[Packet]:
    """UDP datagrams to or from ``ports``."""
    for pkt in packets(pcap):
        if pkt.ip_proto == IPPROTO_UDP and (pkt.sport in ports or pkt.dport in ports):
            yield pkt


def tshark(
    capture: Path, fields: list[str], display_filter: str, extra: list[str] | None = None
) -> dict[int, list[list[str]]]:
    """Frame number -> the values of each field (repeats kept apart, commas intact)."""
    cmd = ["tshark", "-n", "-r", str(capture), "-Y", display_filter, "-T", "fields"]
    cmd += ["-E", "separator=\t", "-E", "occurrence=a", "-E", f"aggregator={SEP}"]
    cmd += extra or []
    for f in ["frame.number", *fields]:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    rows: dict[int, list[list[str]]] = {}
    for line in out.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(fields) + 1 - len(cols))
        rows[int(cols[0])] = [c.split(SEP) if c else [] for c in cols[1:]]
    return rows


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def loopback_capture(pcap: Path, bpf: str) -> Iterator[Path]:
    """tcpdump on ``lo`` writing ``pcap`` while the block runs (127.0.0.0/8 traffic)."""
    dump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", str(pcap), bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not pcap.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        yield pcap
        time.sleep(0.5)
    finally:
        dump.terminate()
        dump.wait(timeout=10)
