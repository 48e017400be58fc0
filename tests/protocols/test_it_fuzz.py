"""Hostile input for every IT-side decoder: mutations of real messages (corpus datagrams
and frames, Samba/OpenSSH bytes from it_seeds, OpenSSL hellos from Python's ssl),
random bytes and random segmentation. Only the documented outcomes may come out
(ItClaim with a declared source, Malformed), never an exception, always in bounded time
and memory; TCP decoders give the same events however the stream is cut."""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from functools import cache

import pytest

from otconduit.capture.packet import IPPROTO_UDP
from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.it import SPECS, frame_decoder_for
from otconduit.protocols.it._base import FrameDecoder, StreamDecoder
from otconduit.protocols.it.cdp import CdpDecoder
from otconduit.protocols.it.claims import ItClaim
from otconduit.protocols.it.lldp import LldpDecoder

from .it_helpers import CORPUS, IT_CAPTURES, packets
from .it_seeds import SMB1, SMB3, SSH

Conversation = list[tuple[int, bytes]]
SPEC = {s.name: s for s in SPECS}
ROUNDS = 300


def _tls_hellos() -> Conversation:
    """A real OpenSSL ClientHello (SNI, ALPN) and the ServerHello answering it, made in
    memory by Python's ssl module."""
    import tempfile
    from pathlib import Path

    from tests.protocols.test_it_web import _context

    with tempfile.TemporaryDirectory() as tmp:
        server_ctx = _context(Path(tmp))
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="scada.plant.example")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = c_out.read()
    s_in.write(hello)
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    return [(0, hello), (1, s_out.read())]


HTTP: Conversation = [
    (
        0,
        b"GET / HTTP/1.1\r\nHost: hmi.plant.example\r\nUser-Agent: curl/7.88.1\r\n"
        b"Accept: */*\r\n\r\n",
    ),
    (1, b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 5\r\n\r\nhello"),
    (
        0,
        b"POST /a HTTP/1.1\r\nHost: hmi.plant.example\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nabcd\r\n0\r\n\r\n",
    ),
    (1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"),
]
RDP: Conversation = [
    (
        0,
        bytes.fromhex("0300002b26e00000000000")
        + b"Cookie: mstshash=operator\r\n"
        + bytes.fromhex("010008000b000000"),
    ),
    (1, bytes.fromhex("030000130ed000001234000200080002000000")),
]


@cache
def tcp_seeds() -> dict[str, list[Conversation]]:
    return {
        "smb": [SMB3, SMB1],
        "ssh": [SSH],
        "tls": [_tls_hellos()],
        "http": [HTTP],
        "rdp": [RDP],
    }


@cache
def udp_seeds() -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {k: [] for k in ("dns", "netbios-ns", "netbios-dgm", "dhcp")}
    import dns.message
    import dns.rrset

    q = dns.message.make_query("hmi.plant.example", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("hmi.plant.example.", 60, "IN", "A", "10.1.2.3"))
    out["dns"] += [q.to_wire(), r.to_wire()]
    if CORPUS.is_dir():
        by_port = {53: "dns", 137: "netbios-ns", 138: "netbios-dgm", 67: "dhcp"}
        for rel in IT_CAPTURES:
            for p in packets(CORPUS / rel):
                if p.ip_proto != IPPROTO_UDP:
                    continue
                kind = by_port.get(p.dport) or by_port.get(p.sport)
                if kind and len(out[kind]) < 12 and p.payload not in out[kind]:
                    out[kind].append(p.payload)
    return out


@cache
def frame_seeds() -> dict[str, list[tuple[str, bytes]]]:
    out: dict[str, list[tuple[str, bytes]]] = {"lldp": [], "cdp": []}
    if CORPUS.is_dir():
        for rel in IT_CAPTURES:
            for p in packets(CORPUS / rel):
                kind = frame_decoder_for(p.ethertype, p.payload)
                if kind and len(out[kind]) < 6:
                    out[kind].append((p.src_mac or "", p.payload))
    return out


def _ep(spec: str, transport: str = "tcp") -> Endpoints:
    port = next(s.port for s in SPEC[spec].well_known if s.transport == transport)
    return Endpoints(
        transport=transport,
        client_ip="10.0.0.1",
        client_port=50000,
        server_ip="10.0.0.2",
        server_port=port,
    )


def run(
    spec: str,
    conv: Conversation,
    pieces: Callable[[bytes], list[int]] | None = None,
    transport: str = "tcp",
) -> list[DecoderEvent]:
    dec = SPEC[spec].factory(_ep(spec, transport))
    out: list[DecoderEvent] = []
    for i, (d, data) in enumerate(conv, 1):
        if pieces is None or transport == "udp" or len(data) < 2:
            dec.feed(d, data, i, i * 1000)
        else:
            pos = 0
            for size in pieces(data):
                dec.feed(d, data[pos : pos + size], i, i * 1000)
                pos += size
        out += dec.events()
    out += dec.finish()
    if isinstance(dec, StreamDecoder):
        assert all(len(b) <= dec.limit for b in dec._buf)
    return out


def documented(spec: str, events: list[DecoderEvent]) -> None:
    for ev in events:
        assert isinstance(ev, ItClaim | Malformed), ev
        if isinstance(ev, ItClaim):
            assert ev.source in SPEC[spec].identity_sources, ev.source
            assert ev.value and (ev.ip or ev.mac)
        else:
            assert ev.reason and ev.offset >= 0


def one_byte(data: bytes) -> list[int]:
    return [1] * len(data)


def random_pieces(rng: random.Random) -> Callable[[bytes], list[int]]:
    def pieces(data: bytes) -> list[int]:
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
        return [b - a for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    return pieces


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b)) :]
        elif op == 2:
            at = rng.randrange(len(b) + 1)
            b[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and len(b) > 4:
            at = rng.randrange(len(b) - 2)
            b[at : at + 2] = rng.choice([b"\xff\xff", b"\x00\x00", b"\xc0\x0c", b"\x7f\xff"])
        elif b:
            a = rng.randrange(len(b))
            b += b[a : a + rng.randint(1, 64)]
    return bytes(b)


TCP = ["smb", "ssh", "tls", "http", "rdp"]


@pytest.mark.parametrize("spec", TCP)
def test_seeds_decode_cleanly_and_claim(spec: str) -> None:
    for conv in tcp_seeds()[spec]:
        events = run(spec, conv)
        documented(spec, events)
        assert not [e for e in events if isinstance(e, Malformed)], events
        assert [e for e in events if isinstance(e, ItClaim)]


@pytest.mark.parametrize("spec", TCP)
def test_segmentation_does_not_matter(spec: str) -> None:
    rng = random.Random(spec)
    for conv in tcp_seeds()[spec]:
        whole = run(spec, conv)
        assert run(spec, conv, one_byte) == whole
        for _ in range(20):
            assert run(spec, conv, random_pieces(rng)) == whole


@pytest.mark.parametrize("spec", TCP)
def test_mutated_streams(spec: str) -> None:
    rng = random.Random(f"mutate-{spec}")
    start = time.monotonic()
    reported = 0
    for conv in tcp_seeds()[spec]:
        for _ in range(ROUNDS):
            bad = [(d, mutate(rng, m) if rng.random() < 0.5 else m) for d, m in conv]
            events = run(spec, bad, random_pieces(rng) if rng.random() < 0.5 else None)
            documented(spec, events)
            reported += any(isinstance(e, Malformed) for e in events)
    assert reported  # broken input is reported, not silently swallowed
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("spec", ["dns", "netbios-ns", "netbios-dgm", "dhcp", "mdns", "llmnr"])
def test_mutated_datagrams(spec: str) -> None:
    seeds = udp_seeds()[{"mdns": "dns", "llmnr": "dns"}.get(spec, spec)]
    rng = random.Random(f"udp-{spec}")
    start = time.monotonic()
    for seed in seeds:
        documented(spec, run(spec, [(0, seed), (1, seed)], transport="udp"))
        for _ in range(ROUNDS):
            d = rng.randrange(2)
            documented(spec, run(spec, [(d, mutate(rng, seed))], transport="udp"))
    for _ in range(ROUNDS):
        documented(spec, run(spec, [(0, rng.randbytes(rng.randrange(600)))], transport="udp"))
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("decoder", [LldpDecoder, CdpDecoder], ids=["lldp", "cdp"])
def test_mutated_frames(decoder: type[FrameDecoder]) -> None:
    kind = decoder.protocol
    seeds = frame_seeds()[kind] or [("00:00:00:00:00:01", b"")]
    rng = random.Random(kind)
    for mac, payload in seeds:
        for _ in range(ROUNDS):
            dec = decoder()
            dec.feed_frame(mac, mutate(rng, payload), 1, 1)
            dec.feed_frame(mac, rng.randbytes(rng.randrange(400)), 2, 2)
            for ev in dec.finish():
                assert isinstance(ev, ItClaim | Malformed), ev
                if isinstance(ev, ItClaim):
                    assert ev.source == kind


@pytest.mark.parametrize("spec", TCP)
def test_random_bytes_and_gaps(spec: str) -> None:
    rng = random.Random(f"random-{spec}")
    for _ in range(ROUNDS):
        dec = SPEC[spec].factory(_ep(spec))
        for i in range(rng.randint(1, 6)):
            if rng.random() < 0.2:
                dec.gap(rng.randrange(2), rng.randint(1, 5000), i, i)
            else:
                dec.feed(rng.randrange(2), rng.randbytes(rng.randrange(2000)), i, i)
        documented(spec, dec.events() + dec.finish())


# -- hostile lengths: bounded buffering, a report, and the direction given up -----------
def _stream(spec: str, data: bytes, piece: int = 4096) -> tuple[StreamDecoder, list[DecoderEvent]]:
    dec = SPEC[spec].factory(_ep(spec))
    assert isinstance(dec, StreamDecoder)
    for i in range(0, len(data), piece):
        dec.feed(0, data[i : i + piece], 1, 1)
        assert len(dec._buf[0]) <= dec.limit
    return dec, dec.finish()


def test_endless_http_header_is_cut_off() -> None:
    dec, events = _stream("http", b"GET / HTTP/1.1\r\nX: " + b"a" * 200_000)
    assert [e for e in events if isinstance(e, Malformed)] and dec.done[0]


def test_huge_http_bodies_are_skipped_not_buffered() -> None:
    head = b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 10000000\r\n\r\n"
    dec, events = _stream("http", head + b"x" * 1_000_000, 65536)
    assert not events or all(isinstance(e, ItClaim) for e in events)
    assert dec.ignored[0] == 1_000_000 and not dec._buf[0]


def test_huge_smb_messages_are_skipped() -> None:
    msg = b"\x00\xff\xff\xff" + b"\xfeSMB" + bytes(60) + b"x" * 500_000
    dec, events = _stream("smb", msg, 65536)
    assert events == [] and dec._skip[0] == 0xFFFFFF - 65536 - (len(msg) - 4 - 65536)


def test_oversized_tls_hello_is_reported() -> None:
    record = b"\x16\x03\x01\x40\x00" + b"\x01\xff\xff\xff" + bytes(0x4000 - 4)
    dec, events = _stream("tls", record * 8)
    assert [e for e in events if isinstance(e, Malformed)] and dec.done[0]


def test_endless_ssh_preamble_is_reported() -> None:
    dec = SPEC["ssh"].factory(_ep("ssh"))
    for i in range(100):
        dec.feed(1, b"welcome to the plant\r\n", i, i)
    events = dec.finish()
    assert len([e for e in events if isinstance(e, Malformed)]) == 1
