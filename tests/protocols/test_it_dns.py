"""DNS, mDNS and LLMNR: row by row against tshark's DNS dissector on every corpus
capture that carries them, on a live dnspython exchange captured on loopback, and the
claims made from them."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from otconduit.protocols.base import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.it import dns as itdns
from otconduit.protocols.it.claims import ItClaim

from .it_helpers import (
    captures_with,
    free_port,
    loopback_capture,
    needs_capture,
    needs_corpus,
    needs_tshark,
    tshark,
    udp,
)

FIELDS = [
    "dns.flags.response",
    "dns.qry.name",
    "dns.resp.name",
    "dns.a",
    "dns.aaaa",
    "dns.cname",
    "dns.ptr.domain_name",
]
PORTS = {53, 5353, 5355}


def _name(n: str) -> str:
    return n or "<Root>"


def our_row(msg: itdns.Message) -> list[list[str]]:
    recs = msg.records

    def data(t: int) -> list[str]:
        return [r.data for r in recs if r.rtype == t and r.data is not None]

    return [
        ["1" if msg.response else "0"],
        [_name(q.name) for q in msg.questions],
        [_name(r.name) for r in recs],
        data(itdns.TYPE_A),
        data(itdns.TYPE_AAAA),
        [_name(x) for x in data(itdns.TYPE_CNAME)],
        [_name(x) for x in data(itdns.TYPE_PTR)],
    ]


def ours(pcap: Path, ports: set[int]) -> dict[int, list[list[str]]]:
    """Datagrams on the DNS ports, and on any other port those our content check takes
    for DNS (as tshark's heuristic does)."""
    out = {}
    for p in udp(pcap, set(range(1, 65536))):
        known = p.sport in ports or p.dport in ports
        if known or itdns.dns_verdict(p.payload, b"", False):
            out[p.frame] = our_row(itdns.parse_message(p.payload))
    return out


def theirs(pcap: Path, extra: list[str] | None = None) -> dict[int, list[list[str]]]:
    rows = tshark(pcap, FIELDS, "dns || mdns || llmnr", extra)
    for row in rows.values():
        row[0] = ["1" if v in ("1", "True") else "0" for v in row[0]]
    return rows


CAPTURES = captures_with("dns", "mdns", "llmnr")


@needs_tshark
@needs_corpus
@pytest.mark.tshark
@pytest.mark.shared
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_rows_agree_with_tshark(capture: Path) -> None:
    mine, oracle = ours(capture, PORTS), theirs(capture)
    assert mine
    assert mine == oracle


def _decode(pcap: Path, ports: set[int]) -> list[object]:
    from tests.streams import decode_flows

    return decode_flows(pcap, ports, lambda ep: itdns.DnsDecoder(ep))


@needs_corpus
@pytest.mark.shared
def test_answers_name_the_addresses() -> None:
    (small,) = [p for p in CAPTURES if p.name == "modbusSmall.pcap"]
    events = _decode(small, {53})
    assert not [e for e in events if isinstance(e, Malformed)]
    claims = {(c.ip, c.attribute, c.value, c.source) for c in events if isinstance(c, ItClaim)}
    assert ("74.125.239.54", "hostname", "googlemail.l.google.com", "dns") in claims
    assert ("74.125.239.54", "hostname", "mail.google.com", "dns") in claims  # the alias
    assert ("91.189.89.22", "hostname", "videosearch.ubuntu.com", "dns") in claims
    assert ("118.189.96.132", "role", "dns_server", "dns") in claims
    # Glue records in the additional section are not taken from a unicast answer.
    assert not any(ip == "216.239.32.10" for ip, *_ in claims)


@needs_corpus
@pytest.mark.shared
def test_llmnr_queries_claim_nothing() -> None:
    (pn,) = [p for p in CAPTURES if p.name.startswith("profinet")]
    events = _decode(pn, {5355})
    assert events == []  # only queries: asking for a name says nothing about the asker


# -- a live exchange: dnspython client and server, captured on loopback ------------------
def _responder(sock: socket.socket, stop: threading.Event) -> None:
    import dns.message
    import dns.rrset

    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            wire, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        qname = query.question[0].name.to_text()
        if qname == "www.plant.example.":
            response.answer.append(
                dns.rrset.from_text(qname, 300, "IN", "CNAME", "hmi-01.plant.example.")
            )
            response.answer.append(
                dns.rrset.from_text("hmi-01.plant.example.", 300, "IN", "A", "10.20.30.40")
            )
        elif qname == "40.30.20.10.in-addr.arpa.":
            response.answer.append(
                dns.rrset.from_text(qname, 300, "IN", "PTR", "hmi-01.plant.example.")
            )
        elif qname == "historian.plant.example.":
            response.answer.append(dns.rrset.from_text(qname, 300, "IN", "AAAA", "fd00:10::5"))
        sock.sendto(response.to_wire(), peer)


@pytest.mark.slow
@pytest.mark.tshark
@pytest.mark.parametrize("_", [0], ids=["dnspython"])
@needs_capture[0]
@needs_capture[1]
@needs_capture[2]
def test_live_dnspython_exchange(tmp_path: Path, _: int) -> None:
    dns_query = pytest.importorskip("dns.query")
    import dns.message

    port = free_port(socket.SOCK_DGRAM)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", port))
    stop = threading.Event()
    thread = threading.Thread(target=_responder, args=(server, stop), daemon=True)
    thread.start()
    pcap = tmp_path / "dns.pcap"
    try:
        with loopback_capture(pcap, f"host 127.0.0.1 and udp port {port}"):
            for name, rtype in (
                ("www.plant.example", "A"),
                ("40.30.20.10.in-addr.arpa", "PTR"),
                ("historian.plant.example", "AAAA"),
            ):
                q = dns.message.make_query(name, rtype)
                dns_query.udp(q, "127.0.0.1", port=port, timeout=5)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    mine = ours(pcap, {port})
    oracle = theirs(pcap, ["-d", f"udp.port=={port},dns"])
    assert len(mine) == 6
    assert mine == oracle
    ep = Endpoints(
        transport="udp",
        client_ip="127.0.0.1",
        client_port=0,
        server_ip="127.0.0.1",
        server_port=port,
    )
    dec = itdns.DnsDecoder(ep)
    for pkt in udp(pcap, {port}):
        dec.feed(
            CLIENT_TO_SERVER if pkt.dport == port else SERVER_TO_CLIENT,
            pkt.payload,
            pkt.frame,
            pkt.ts_ns,
        )
    claims = {(c.ip, c.value, c.confidence) for c in dec.finish() if isinstance(c, ItClaim)}
    assert ("10.20.30.40", "hmi-01.plant.example", 0.6) in claims
    assert ("10.20.30.40", "www.plant.example", 0.5) in claims
    assert ("10.20.30.40", "hmi-01.plant.example", 0.7) in claims  # from the PTR
    assert ("fd00:10::5", "historian.plant.example", 0.6) in claims
    assert ("127.0.0.1", "dns_server", 0.8) in claims


# -- the wire format on its own -------------------------------------------------------
def _header(qd: int = 1, an: int = 0, flags: int = 0x8180) -> bytes:
    return (
        (0x1234).to_bytes(2, "big") + flags.to_bytes(2, "big") + bytes([0, qd, 0, an, 0, 0, 0, 0])
    )


def test_compression_loop_is_malformed() -> None:
    looped = _header() + b"\xc0\x0c" + b"\x00\x01\x00\x01"  # the name points at itself
    with pytest.raises(itdns.WireError, match="loop"):
        itdns.parse_message(looped)


def test_pointer_chains_are_bounded_and_names_limited() -> None:
    # 200 labels of 1 byte: a 401-octet name exceeds 255.
    long_name = b"".join(b"\x01a" for _ in range(200)) + b"\x00"
    with pytest.raises(itdns.WireError, match="255"):
        itdns.parse_message(_header() + long_name + b"\x00\x01\x00\x01")


def test_record_counts_are_bounded() -> None:
    with pytest.raises(itdns.WireError, match="records announced"):
        itdns.parse_message(b"\x00\x00\x81\x80\xff\xff\xff\xff\x00\x00\x00\x00")


def test_reverse_names() -> None:
    assert itdns.reverse_address("4.3.2.1.in-addr.arpa") == "1.2.3.4"
    v6 = ".".join(reversed("fd0d" + "0" * 27 + "1")) + ".ip6.arpa."
    assert itdns.reverse_address(v6) == "fd0d::1"
    assert itdns.reverse_address("1.2.3.in-addr.arpa") is None
    assert itdns.reverse_address("999.1.1.1.in-addr.arpa") is None


def test_mdns_answers_are_the_hosts_own() -> None:
    import dns.message
    import dns.rrset

    q = dns.message.make_query("printer.local", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("printer.local.", 120, "IN", "A", "192.168.5.7"))
    ep = Endpoints(
        transport="udp",
        client_ip="192.168.5.7",
        client_port=5353,
        server_ip="224.0.0.251",
        server_port=5353,
    )
    dec = itdns.DnsDecoder(ep)
    dec.feed(SERVER_TO_CLIENT, r.to_wire(), 1, 1)
    (claim,) = dec.events()
    assert isinstance(claim, ItClaim)
    assert (claim.ip, claim.value, claim.source, claim.confidence) == (
        "192.168.5.7",
        "printer.local",
        "mdns",
        0.8,
    )


def test_dns_over_tcp_in_any_pieces() -> None:
    """Length-prefixed messages (RFC 1035 §4.2.2) made by dnspython, fed whole and one
    byte at a time: the same claims."""
    import dns.message
    import dns.rrset

    q = dns.message.make_query("plc-gw.plant.example", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("plc-gw.plant.example.", 60, "IN", "A", "10.4.0.1"))
    ep = Endpoints(
        transport="tcp",
        client_ip="10.4.0.9",
        client_port=40000,
        server_ip="10.4.0.53",
        server_port=53,
    )
    conv = [(0, q.to_wire()), (1, r.to_wire())]

    def run(step: int) -> list[object]:
        dec = itdns.DnsTcpDecoder(ep)
        for i, (d, wire) in enumerate(conv, 1):
            framed = len(wire).to_bytes(2, "big") + wire
            for at in range(0, len(framed), step):
                dec.feed(d, framed[at : at + step], i, i)
        return [*dec.events(), *dec.finish()]

    whole = run(1 << 16)
    assert run(1) == whole
    assert {(c.ip, c.value) for c in whole if isinstance(c, ItClaim)} == {
        ("10.4.0.1", "plc-gw.plant.example"),
        ("10.4.0.53", "dns_server"),
    }
