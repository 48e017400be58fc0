"""The IT specs as a later integration step will read them, content identification of
the TCP protocols from a connection's first bytes (each one's real first bytes against
all the others'), and the domain controller hint from served ports."""

from __future__ import annotations

import pytest

from otconduit.protocols.base import Endpoints
from otconduit.protocols.it import SPECS, DomainControllerHint, ItClaim
from otconduit.protocols.it import claims as C
from otconduit.protocols.it.hints import (
    description_os,
    dhcp_vendor_os,
    http_server_os,
    smb_native_os,
    ssh_os,
    user_agent_browser,
    user_agent_os,
    windows_version,
)

from .test_it_fuzz import tcp_seeds

SOURCES = {v for k, v in vars(C).items() if k.startswith("SRC_")}


def test_specs_are_consistent() -> None:
    names = [s.name for s in SPECS]
    assert len(set(names)) == len(names)
    for spec in SPECS:
        assert spec.identity_sources <= SOURCES
        assert {s.transport for s in spec.well_known} == spec.transports
        for svc in spec.well_known:
            ep = Endpoints(
                transport=svc.transport,
                client_ip="10.0.0.1",
                client_port=50000,
                server_ip="10.0.0.2",
                server_port=svc.port,
            )
            dec = spec.factory(ep)
            dec.feed(0, b"", 1, 1)
            assert dec.events() == [] and dec.finish() == []


TCP = ["tls", "http", "ssh", "rdp", "smb"]


@pytest.mark.parametrize("name", TCP)
def test_first_bytes_identify_each_protocol(name: str) -> None:
    spec = next(s for s in SPECS if s.name == name)
    seeds = tcp_seeds()
    for other, convs in seeds.items():
        for conv in convs:
            client = b"".join(m for d, m in conv[:1] if d == 0)
            server = next((m for d, m in conv if d == 1), b"")
            verdict = spec.verdict(client[:512], server[:512], False)
            if other == name:
                assert verdict is True, (name, client[:40])
            else:
                assert verdict is not True, (name, other, client[:40])


def test_domain_controller_from_served_ports() -> None:
    hint = DomainControllerHint()
    hint.served("10.0.0.5", "tcp", 445, 1)
    hint.served("10.0.0.5", "tcp", 88, 2)
    assert hint.take() == []  # Kerberos without LDAP: not yet
    hint.served("10.0.0.5", "tcp", 389, 3)
    (claim,) = hint.take()
    assert isinstance(claim, ItClaim)
    assert (claim.ip, claim.attribute, claim.value, claim.source) == (
        "10.0.0.5",
        "role",
        "domain_controller",
        "it_ports",
    )
    assert claim.evidence == "serves kerberos (tcp/88), ldap (tcp/389), smb (tcp/445)"
    hint.served("10.0.0.5", "udp", 88, 4)
    assert hint.take() == []  # said once
    hint.served("0.0.0.0", "tcp", 88, 5)
    hint.served("0.0.0.0", "tcp", 389, 5)
    hint.served("10.0.0.6", "tcp", 80, 5)
    assert hint.take() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (("OpenSSH_8.9p1", "Ubuntu-3ubuntu0.6"), "Ubuntu 22.04"),
        (("OpenSSH_9.2p1", "Debian-2+deb12u3"), "Debian 12"),
        (("OpenSSH_7.4", ""), None),
        (("OpenSSH_for_Windows_8.1", ""), "Windows"),
        (("ROSSSH", ""), "MikroTik RouterOS"),
    ],
)
def test_ssh_hints(text: tuple[str, str], expected: str | None) -> None:
    assert ssh_os(*text) == expected


def test_other_hints() -> None:
    firefox = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    assert (user_agent_os(firefox), user_agent_browser(firefox)) == ("Ubuntu", "Firefox 121")
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
    )
    assert (user_agent_os(iphone), user_agent_browser(iphone)) == ("iOS 17.1", "Safari 17")
    edge = (
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/109.0.0.0 Safari/537.36 Edg/109.0.1518.78"
    )
    assert (user_agent_os(edge), user_agent_browser(edge)) == (
        "Windows 7 / Server 2008 R2",
        "Edge 109",
    )
    assert http_server_os("Microsoft-IIS/10.0") == "Windows"
    assert http_server_os("Apache/2.4.57 (Debian)") == "Debian"
    assert http_server_os("nginx") is None
    assert dhcp_vendor_os("dhcpcd-9.4.1:Linux-6.1.0-rpi7-rpi-v8:aarch64:BCM2835") == "Linux 6.1.0"
    assert dhcp_vendor_os("Cisco Systems, Inc. IP Phone CP-7841") is None
    assert description_os("Juniper Networks, Inc. ex2300-c internet router, kernel JUNOS 20.4R3")
    assert description_os("Linux sw1 5.10.0-23-amd64 #1 SMP Debian") == "Linux 5.10.0-23-amd64"
    assert description_os("Siemens, SIMATIC NET, SCALANCE XB208") is None
    assert smb_native_os("Windows 5.1", "Windows 2000 LAN Manager") == "Windows XP"
    assert smb_native_os("Windows 6.1", "Samba 4.17.12-Debian") == "Unix (Samba 4.17.12-Debian)"
    assert windows_version(10, 0, 22631) == "Windows 11"
    assert windows_version(10, 0, 17763) == "Windows 10 1809 / Server 2019"
    assert windows_version(3, 10) is None
