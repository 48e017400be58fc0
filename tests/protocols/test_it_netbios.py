"""NetBIOS name service (UDP 137) and datagram/browser announcements (UDP 138): row by
row against tshark's NBNS, NBDGM and BROWSER dissectors on every corpus capture that
carries them, and the names, workgroups, OS and roles claimed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otconduit.protocols.events import Malformed
from otconduit.protocols.it import netbios
from otconduit.protocols.it.claims import ItClaim
from tests.streams import decode_flows

from .it_helpers import captures_with, needs_corpus, needs_tshark, tshark, udp

NS_FIELDS = ["nbns.flags.response", "nbns.flags.opcode", "nbns.name", "nbns.addr", "nbns.nb_flags"]
DGM_FIELDS = [
    "nbdgm.type",
    "nbdgm.src.ip",
    "nbdgm.source_name",
    "nbdgm.destination_name",
    "browser.command",
    "browser.server",
    "browser.mb_server",
    "browser.os_major",
    "browser.os_minor",
    "browser.server_type",
]
NS_CAPTURES = captures_with("nbns")
DGM_CAPTURES = captures_with("nbdgm", "browser")
_KIND = re.compile(r" \([^)]*\)$")  # tshark appends the name's meaning: "NAME<00> (Workstation)"

pytestmark = [pytest.mark.tshark, pytest.mark.shared, needs_tshark, needs_corpus]


def ns_row(m: netbios.NameServiceMessage) -> list[list[str]]:
    names = [str(q) for q in m.questions]
    names += [str(netbios.decode_name(r.name)) for r in m.message.records]
    return [
        ["1" if m.response else "0"],
        [str(m.opcode)],
        names,
        [e.address for e in m.entries if e.address],
        [f"0x{e.flags:04x}" for e in m.entries if e.address],
    ]


@pytest.mark.parametrize("capture", NS_CAPTURES, ids=lambda p: p.name)
def test_name_service_rows_agree_with_tshark(capture: Path) -> None:
    mine = {p.frame: ns_row(netbios.parse_name_service(p.payload)) for p in udp(capture, {137})}
    oracle = tshark(capture, NS_FIELDS, "nbns")
    for row in oracle.values():
        row[0] = ["1" if v in ("1", "True") else "0" for v in row[0]]
        row[2] = [_KIND.sub("", n) for n in row[2]]
    assert len(mine) == 731
    assert mine == oracle


def dgm_row(d: netbios.Datagram) -> list[list[str]]:
    b = d.browser
    row = [
        [str(d.msg_type)],
        [d.source_ip],
        [str(d.source_name)] if d.source_name else [],
        [str(d.destination_name)] if d.destination_name else [],
    ]
    if b is None:
        return [*row, *([] for _ in range(6))]
    announcement = b.command in (0x01, 0x0C, 0x0F)
    return [
        *row,
        [f"0x{b.command:02x}"],
        [b.server] if announcement else [],
        [b.comment] if b.command == 0x0C else [],
        [str(b.os_major)] if announcement else [],
        [str(b.os_minor)] if announcement else [],
        [f"0x{b.server_type:08x}"] if announcement else [],
    ]


@pytest.mark.parametrize("capture", DGM_CAPTURES, ids=lambda p: p.name)
def test_datagram_rows_agree_with_tshark(capture: Path) -> None:
    mine = {p.frame: dgm_row(netbios.parse_datagram(p.payload)) for p in udp(capture, {138})}
    oracle = tshark(capture, DGM_FIELDS, "nbdgm")
    for row in oracle.values():
        row[2:4] = [[_KIND.sub("", n) for n in col] for col in row[2:4]]
    assert mine
    assert mine == oracle


def _claims(capture: Path, port: int, factory: type) -> list[ItClaim]:
    events = decode_flows(capture, {port}, factory)
    assert not [e for e in events if isinstance(e, Malformed)]
    return [e for e in events if isinstance(e, ItClaim)]


def test_registrations_name_the_host_and_its_workgroup() -> None:
    (pn,) = [p for p in NS_CAPTURES if p.name.startswith("profinet")]
    claims = {(c.ip, c.attribute, c.value) for c in _claims(pn, 137, netbios.NameServiceDecoder)}
    # KW-VLIPC<00>, KW-VLIPC<20> unique and WORKGROUP<00> group, registered by 192.168.1.1;
    # the many queries (ARMMF.ADOBE.COM, WPAD, AMERICAS<1c>) say nothing about anyone.
    assert claims == {
        ("192.168.1.1", "hostname", "KW-VLIPC"),
        ("192.168.1.1", "workgroup", "WORKGROUP"),
    }


def test_browser_announcements() -> None:
    by_name = {p.name: p for p in DGM_CAPTURES}
    evon = _claims(by_name["090813_diverse.pcap"], 138, netbios.DatagramServiceDecoder)
    got = {(c.ip, c.attribute, c.value) for c in evon}
    assert got == {
        ("10.0.0.10", "hostname", "EVON"),
        ("10.0.0.10", "workgroup", "ARBETSGRUPP"),
        ("10.0.0.10", "os", "Windows XP"),  # OS version 5.1 in a local master announcement
    }
    (os_claim,) = [c for c in evon if c.attribute == "os"]
    assert "OS version 5.1" in os_claim.evidence and "server type 0x00051003" in os_claim.evidence
    pn = _claims(by_name["profinet_io_cm_mixed_2.pcapng"], 138, netbios.DatagramServiceDecoder)
    got = {(c.ip, c.attribute, c.value) for c in pn}
    # A domain announcement: its version fields are not an OS version.
    assert got == {
        ("169.254.216.43", "hostname", "LT-US-DSWANSON"),
        ("169.254.216.43", "workgroup", "AMERICAS"),
    }


def test_domain_controller_names() -> None:
    """``<1C>`` group members are the domain's controllers (node status answer built per
    RFC 1002 §4.2.18, the names a Windows DC lists)."""
    names = [
        (b"DC01", 0x00, 0x0400),
        (b"CORP", 0x00, 0x8400),
        (b"CORP", 0x1C, 0x8400),
        (b"DC01", 0x20, 0x0400),
        (b"CORP", 0x1B, 0x0400),
    ]
    rdata = bytes([len(names)])
    for name, suffix, flags in names:
        rdata += name.ljust(15, b" ") + bytes([suffix]) + flags.to_bytes(2, "big")
    rdata += bytes.fromhex("005056aabbcc") + bytes(40)
    star = b"\x20" + b"CK" + b"AA" * 15 + b"\x00"
    msg = (
        b"\x00\x01\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00"
        + star
        + b"\x00\x21\x00\x01\x00\x00\x00\x00"
        + len(rdata).to_bytes(2, "big")
        + rdata
    )
    from otconduit.protocols.base import SERVER_TO_CLIENT, Endpoints

    ep = Endpoints(
        transport="udp",
        client_ip="10.1.1.5",
        client_port=137,
        server_ip="10.1.1.2",
        server_port=137,
    )
    dec = netbios.NameServiceDecoder(ep)
    dec.feed(SERVER_TO_CLIENT, msg, 1, 1)
    got = {(c.ip, c.mac, c.attribute, c.value) for c in dec.events() if isinstance(c, ItClaim)}
    assert got == {
        ("10.1.1.2", "00:50:56:aa:bb:cc", "hostname", "DC01"),
        ("10.1.1.2", "00:50:56:aa:bb:cc", "workgroup", "CORP"),
        ("10.1.1.2", "00:50:56:aa:bb:cc", "role", "domain_controller"),
    }
