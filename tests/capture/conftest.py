"""Shared helpers for the capture tests: sample frames, whole-file reads and tshark fields."""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from otconduit.capture import pcapwriter as pw
from otconduit.capture.packet import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_PSH
from otconduit.capture.reader import ReadReport, open_capture

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

MAC_A = "00:1d:9c:c7:b0:01"
MAC_B = "00:80:f4:0a:1b:2c"
T0 = 1_700_000_000_123_456_789  # a timestamp with nanosecond digits
MODBUS_READ = bytes.fromhex("00010000000601030000000a")  # read holding registers 0-9


@dataclass(frozen=True)
class Rec:
    """One packet as the reader reports it."""

    frame: int
    ts_ns: int
    caplen: int
    wirelen: int
    linktype: int
    data: bytes


def read_all(path: Path, block_size: int = 8 << 20) -> tuple[list[Rec], ReadReport]:
    """Every packet of a capture, plus the reader's final report."""
    recs: list[Rec] = []
    with open_capture(path, block_size) as reader:
        for block in reader:
            for i in range(len(block)):
                recs.append(
                    Rec(
                        block.first_frame + i,
                        int(block.ts_ns[i]),
                        int(block.caplens[i]),
                        int(block.wirelens[i]),
                        int(block.linktypes[i]),
                        block.data(i),
                    )
                )
    return recs, reader.report


def tcp_frame(i: int = 0, payload: bytes = MODBUS_READ, vlans: tuple[int, ...] = ()) -> bytes:
    """Ethernet/IPv4/TCP from a Modbus client; ``i`` varies the port, seq and IP id."""
    return pw.build_tcp_ipv4_frame(
        MAC_A,
        MAC_B,
        "192.168.1.10",
        "192.168.1.20",
        40000 + i,
        502,
        1000 + i,
        7,
        TCP_PSH | TCP_ACK,
        payload,
        vlans=vlans,
        ip_id=i,
    )


def ipv6_ext_tcp(src: str = "fd00::10", dst: str = "fd00::20", payload: bytes = b"hello") -> bytes:
    """IPv6 with hop-by-hop, routing and destination options headers before TCP."""
    seg = pw.tcp_segment(src, dst, 2404, 50000, 1, 2, TCP_ACK, payload)
    # Destination options (RFC 8200 §4.6): next header, length 0, PadN option of 4.
    dst_opts = bytes([IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0])
    # Routing (RFC 8200 §4.4): type 0 with no addresses and no segments left, length 0.
    routing = bytes([60, 0, 0, 0, 0, 0, 0, 0])
    hop = bytes([43, 0, 1, 4, 0, 0, 0, 0])
    return pw.ipv6(src, dst, 0, hop + routing + dst_opts + seg)


def sample_frames() -> list[bytes]:
    """A mix of Ethernet frames: TCP (plain, VLAN, QinQ), UDP, ICMP, IPv6, ARP, padding."""
    icmp = pw.ipv4("10.0.0.1", "10.0.0.2", IPPROTO_ICMP, bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"ab")
    arp = bytes.fromhex("0001080006040001") + bytes(20)
    small_udp = pw.build_udp_ipv4_frame(MAC_B, MAC_A, "10.1.1.1", "10.1.1.2", 47808, 47808, b"x")
    return [
        tcp_frame(0),
        tcp_frame(1, vlans=(10,)),
        tcp_frame(2, vlans=(100, 20)),
        pw.build_udp_ipv4_frame(MAC_A, MAC_B, "10.0.0.5", "10.0.0.6", 20000, 2222, b"u" * 40),
        pw.ethernet(MAC_A, MAC_B, pw.ETHERTYPE_IPV4, icmp),
        pw.ethernet(MAC_A, MAC_B, pw.ETHERTYPE_IPV6, ipv6_ext_tcp()),
        pw.ethernet(MAC_A, "ff:ff:ff:ff:ff:ff", 0x0806, arp),
        small_udp + bytes(60 - len(small_udp)),  # Ethernet padding to the 60-byte minimum
        tcp_frame(3, payload=b"z" * 1400),
    ]


def raw_ipv4_udp(i: int = 0) -> bytes:
    dgram = pw.udp_datagram("172.16.0.1", "172.16.0.2", 1000 + i, 20000, b"raw" * (i + 1))
    return pw.ipv4("172.16.0.1", "172.16.0.2", IPPROTO_UDP, dgram, ip_id=i)


def tshark_fields(path: Path, fields: list[str], *options: str) -> list[list[str]]:
    """One row per frame of ``tshark -T fields``; repeated fields are comma-joined."""
    assert TSHARK is not None
    args = [TSHARK, "-n", "-r", str(path), *options, "-T", "fields", "-E", "separator=\t"]
    for name in fields:
        args += ["-e", name]
    for attempt in range(3):
        try:
            out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
            break
        except OSError:
            # The peer could not be started (seen once on this VM: EFAULT from exec while
            # other tests ran): that says nothing about the capture; try again.
            if attempt == 2:
                raise
    return [line.split("\t") for line in out.stdout.splitlines()]


def epoch_ns(text: str) -> int:
    """tshark's frame.time_epoch ("1700000000.123456789") in nanoseconds."""
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def nrb_block() -> bytes:
    """A Name Resolution Block (pcapng §4.5) with one IPv4 record, a block we skip."""
    record = struct.pack("<HH4s", 1, 12, bytes([10, 0, 0, 1])) + b"plc1\0\0\0\0"
    return pw.pcapng_block(4, record + struct.pack("<HH", 0, 0))
