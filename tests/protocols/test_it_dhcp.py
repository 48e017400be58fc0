"""DHCP: row by row against tshark's DHCP dissector on every corpus capture carrying
it, and the claims about clients and servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.protocols.base import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.it import dhcp
from otconduit.protocols.it.claims import ItClaim
from tests.streams import decode_flows

from .it_helpers import captures_with, needs_corpus, needs_tshark, tshark, udp

FIELDS = [
    "dhcp.option.dhcp",
    "dhcp.hw.mac_addr",
    "dhcp.ip.client",
    "dhcp.ip.your",
    "dhcp.option.hostname",
    "dhcp.option.vendor_class_id",
    "dhcp.fqdn.name",
    "dhcp.option.requested_ip_address",
]
CAPTURES = captures_with("dhcp")


def row(m: dhcp.DhcpMessage) -> list[list[str]]:
    macs = [m.chaddr]
    cid = m.options.get(dhcp.OPT_CLIENT_ID)
    if cid is not None and len(cid) == 7 and cid[0] == 1:
        macs.append(cid[1:].hex(":"))  # tshark shows a hardware client id as a MAC too
    opt = [m.message_type] if m.message_type is not None else []
    return [
        [str(t) for t in opt],
        macs,
        [m.ciaddr],
        [m.yiaddr],
        [m.hostname] if m.hostname is not None else [],
        [m.vendor_class] if m.vendor_class is not None else [],
        [m.fqdn] if m.fqdn is not None else [],
        [m.ip_option(dhcp.OPT_REQUESTED_IP) or ""] if dhcp.OPT_REQUESTED_IP in m.options else [],
    ]


@needs_tshark
@needs_corpus
@pytest.mark.tshark
@pytest.mark.shared
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_rows_agree_with_tshark(capture: Path) -> None:
    mine = {p.frame: row(dhcp.parse_message(p.payload)) for p in udp(capture, {67, 68})}
    assert len(mine) == 62
    assert mine == tshark(capture, FIELDS, "dhcp")


@needs_corpus
@pytest.mark.shared
def test_discovers_name_clients_by_mac() -> None:
    (pn,) = CAPTURES
    events = decode_flows(pn, {67}, dhcp.DhcpDecoder)
    assert not [e for e in events if isinstance(e, Malformed)]
    claims = {(c.ip, c.mac, c.attribute, c.value) for c in events if isinstance(c, ItClaim)}
    # Only DISCOVERs: no address yet, so the claims are about MACs.
    assert ("", "e4:11:5b:5a:d9:73", "hostname", "LT-US-DSWANSON") in claims
    assert ("", "e4:11:5b:5a:d9:73", "os", "Windows") in claims
    assert ("", "00:0e:8c:ef:75:c5", "hostname", "siemens-x208-switch") in claims
    (win,) = [c for c in events if isinstance(c, ItClaim) and c.attribute == "os"]
    assert win.evidence == "DHCP vendor class (option 60): MSFT 5.0"


def _message(op: int, mtype: int, options: bytes, yiaddr: bytes = bytes(4)) -> bytes:
    head = bytes([op, 1, 6, 0]) + b"\x12\x34\x56\x78" + bytes(4) + bytes(4) + yiaddr
    head += bytes(8) + bytes.fromhex("0050569a0b0c") + bytes(10) + bytes(192)
    return head + dhcp.MAGIC + bytes([53, 1, mtype]) + options + b"\xff"


def test_request_and_ack_tie_name_address_and_mac() -> None:
    """A REQUEST with host name, FQDN (RFC 4702 wire form) and Android's vendor class;
    the ACK binds the address and names the server (layouts per RFC 2131/2132)."""
    fqdn = b"\x05" + b"\x00\x00" + b"\x06tablet\x05plant\x07example\x00"
    request = _message(
        1,
        3,
        bytes([12, 6])
        + b"tablet"
        + bytes([60, 15])
        + b"android-dhcp-13"
        + bytes([50, 4, 10, 9, 8, 7])
        + bytes([81, len(fqdn)])
        + fqdn,
    )
    ack = _message(
        2, 5, bytes([54, 4, 10, 9, 8, 1, 15, 13]) + b"plant.example", bytes([10, 9, 8, 7])
    )
    ep = Endpoints(
        transport="udp",
        client_ip="0.0.0.0",
        client_port=68,
        server_ip="255.255.255.255",
        server_port=67,
    )
    dec = dhcp.DhcpDecoder(ep)
    dec.feed(CLIENT_TO_SERVER, request, 1, 1)
    dec.feed(SERVER_TO_CLIENT, ack, 2, 2)
    got = {(c.ip, c.mac, c.attribute, c.value) for c in dec.events() if isinstance(c, ItClaim)}
    mac = "00:50:56:9a:0b:0c"
    assert got == {
        ("10.9.8.7", mac, "hostname", "tablet"),
        ("10.9.8.7", mac, "hostname", "tablet.plant.example"),
        ("10.9.8.7", mac, "os", "Android 13"),
        ("10.9.8.7", mac, "ip", "10.9.8.7"),
        ("10.9.8.7", mac, "domain", "plant.example"),
        ("10.9.8.1", "", "role", "dhcp_server"),
    }


def test_overload_and_split_options() -> None:
    msg = bytearray(_message(1, 1, bytes([52, 1, 1, 12, 3]) + b"abc" + bytes([12, 3]) + b"def"))
    msg[108:114] = bytes([60, 4]) + b"MSFT"  # option 60 in the file field (overload 1)
    m = dhcp.parse_message(bytes(msg))
    assert m.hostname == "abcdef"  # RFC 3396: split options are joined
    assert m.vendor_class == "MSFT"


def test_option_budget_and_truncation() -> None:
    with pytest.raises(dhcp.WireError, match="options"):
        dhcp.parse_message(_message(1, 1, bytes([1, 0]) * 300))
    with pytest.raises(dhcp.WireError):
        dhcp.parse_message(_message(1, 1, b"")[:-1] + bytes([12, 40]) + b"short")
