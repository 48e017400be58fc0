"""The IT side of the single pane: small sans-I/O decoders that turn the name, address
and banner traffic of an ordinary network into identity claims about its hosts.

One module per protocol:

=============  ==============================  =========================================
module         wire                            claims (``IdentityClaim.attribute``)
=============  ==============================  =========================================
``dns``        UDP/TCP 53, mDNS UDP 5353,      hostname (A/AAAA owners, CNAME aliases,
               LLMNR UDP 5355                  reverse PTR), role dns_server
``dhcp``       UDP 67/68                       hostname (opt 12, 81), os (opt 60), ip
                                               for the MAC, domain, role dhcp_server
``netbios``    UDP 137 (name service),         hostname, workgroup, os (browser OS
               UDP 138 (datagrams, browser)    version), role domain_controller
``lldp``       EtherType 0x88CC                hostname, description, os, roles from
                                               capabilities, ip for the MAC
``cdp``        802.3 LLC/SNAP 0x00000C/0x2000  hostname, model, software_version, os,
                                               roles, ip for the MAC
``tls``        TCP, first bytes 0x16 0x03      server_name (SNI) on the server,
                                               role web_server
``http``       TCP, a request line             server_name (Host), user_agent, os,
                                               browser, software (Server), web_server
``ssh``        TCP, ``SSH-`` lines             role ssh_server, software, os
``rdp``        TCP, TPKT + X.224 CR            role rdp_server, user (mstshash cookie)
``smb``        TCP 445 / 139 (+ ``ntlmssp``)   role file_server, hostname, domain, os,
                                               user (NTLM AUTHENTICATE)
``services``   served ports                    role domain_controller (Kerberos+LDAP)
=============  ==============================  =========================================

Every claim is an :class:`~otconduit.protocols.it.claims.ItClaim`: an
:class:`~otconduit.model.IdentityClaim` that also carries the ``evidence`` text and the
``mac`` when stated (layer-2 claims may have ``ip == ""``). The decoders make no
operations; problems are :class:`~otconduit.protocols.events.Malformed` events.

:data:`SPECS` describes the IP-based decoders as
:class:`~otconduit.protocols.base.ProtocolSpec` objects; they are not in the registry
yet, and neither are the layer-2 decoders (:data:`FRAME_DECODERS`, fed by
:func:`frame_decoder_for`), which take frames rather than connections.
"""

from __future__ import annotations

from collections.abc import Callable

from otconduit.protocols.base import (
    ConnectionDecoder,
    Endpoints,
    ProtocolSpec,
    Service,
    Verdict,
)
from otconduit.protocols.it import dhcp, dns, http, netbios, rdp, smb, ssh, tls
from otconduit.protocols.it._base import FrameDecoder
from otconduit.protocols.it.cdp import SNAP_HEADER, CdpDecoder
from otconduit.protocols.it.claims import ROLES, ItClaim
from otconduit.protocols.it.lldp import ETHERTYPE as LLDP_ETHERTYPE
from otconduit.protocols.it.lldp import LldpDecoder
from otconduit.protocols.it.services import DomainControllerHint

__all__ = [
    "FRAME_DECODERS",
    "ROLES",
    "SPECS",
    "CdpDecoder",
    "DomainControllerHint",
    "ItClaim",
    "LldpDecoder",
    "frame_decoder_for",
]


def _dns_factory(source: str | None) -> Callable[[Endpoints], ConnectionDecoder]:
    def factory(endpoints: Endpoints) -> ConnectionDecoder:
        if endpoints.transport == "tcp":
            return dns.DnsTcpDecoder(endpoints, source)
        return dns.DnsDecoder(endpoints, source)

    return factory


def _spec(
    name: str,
    title: str,
    services: tuple[Service, ...],
    verdict: Verdict,
    factory: Callable[[Endpoints], ConnectionDecoder],
    sources: frozenset[str],
    aliases: tuple[str, ...] = (),
) -> ProtocolSpec:
    return ProtocolSpec(
        name=name,
        transports=frozenset(s.transport for s in services),
        ports=frozenset(s.port for s in services),
        verdict=verdict,
        factory=factory,
        title=title,
        aliases=aliases,
        services=services,
        identity_sources=sources,
    )


SPECS: tuple[ProtocolSpec, ...] = (
    _spec(
        "dns",
        "DNS",
        (Service("udp", 53), Service("tcp", 53)),
        dns.dns_verdict,
        _dns_factory("dns"),
        frozenset({"dns"}),
    ),
    _spec(
        "mdns",
        "Multicast DNS",
        (Service("udp", 5353),),
        dns.dns_verdict,
        _dns_factory("mdns"),
        frozenset({"mdns"}),
        ("bonjour",),
    ),
    _spec(
        "llmnr",
        "LLMNR",
        (Service("udp", 5355), Service("tcp", 5355)),
        dns.dns_verdict,
        _dns_factory("llmnr"),
        frozenset({"llmnr"}),
    ),
    _spec(
        "dhcp",
        "DHCP",
        (Service("udp", 67), Service("udp", 68, "dhcp-client")),
        dhcp.dhcp_verdict,
        dhcp.DhcpDecoder,
        frozenset({"dhcp"}),
        ("bootp",),
    ),
    _spec(
        "netbios-ns",
        "NetBIOS Name Service",
        (Service("udp", 137),),
        netbios.netbios_ns_verdict,
        netbios.NameServiceDecoder,
        frozenset({"netbios"}),
        ("nbns", "nbt-ns"),
    ),
    _spec(
        "netbios-dgm",
        "NetBIOS Datagram Service",
        (Service("udp", 138),),
        netbios.netbios_dgm_verdict,
        netbios.DatagramServiceDecoder,
        frozenset({"netbios_browser"}),
        ("nbdgm", "browser"),
    ),
    _spec(
        "tls",
        "TLS",
        (Service("tcp", 443), Service("tcp", 8443)),
        tls.tls_verdict,
        tls.TlsDecoder,
        frozenset({"tls"}),
        ("ssl", "https"),
    ),
    _spec(
        "http",
        "HTTP/1.x",
        (Service("tcp", 80), Service("tcp", 8080), Service("tcp", 8000)),
        http.http_verdict,
        http.HttpDecoder,
        frozenset({"http"}),
    ),
    _spec(
        "ssh",
        "SSH",
        (Service("tcp", 22),),
        ssh.ssh_verdict,
        ssh.SshDecoder,
        frozenset({"ssh"}),
    ),
    _spec(
        "rdp",
        "RDP",
        (Service("tcp", 3389),),
        rdp.rdp_verdict,
        rdp.RdpDecoder,
        frozenset({"rdp"}),
        ("ms-wbt-server",),
    ),
    _spec(
        "smb",
        "SMB",
        (Service("tcp", 445), Service("tcp", 139, "netbios-ssn")),
        smb.smb_verdict,
        smb.SmbDecoder,
        frozenset({"smb", "ntlmssp"}),
        ("cifs", "smb2"),
    ),
)

FRAME_DECODERS: dict[str, type[FrameDecoder]] = {"lldp": LldpDecoder, "cdp": CdpDecoder}


def frame_decoder_for(ethertype: int, payload: bytes) -> str | None:
    """Which layer-2 decoder takes a non-IP frame: ``lldp`` for EtherType 0x88CC,
    ``cdp`` for an 802.3 frame (``ethertype`` 0, ``payload`` the LLC bytes) with CDP's
    SNAP header; None otherwise. (The engine's ``Packet`` gives exactly these two.)"""
    if ethertype == LLDP_ETHERTYPE:
        return "lldp"
    if ethertype == 0 and payload.startswith(SNAP_HEADER):
        return "cdp"
    return None
