"""What the IT-side decoders say about hosts: :class:`ItClaim` and its vocabulary.

An :class:`ItClaim` is an :class:`~otconduit.model.IdentityClaim` (the engine and the
inventory take it as one) with two more fields: ``evidence``, the wire text the claim
was read from (a banner, a User-Agent, a DHCP vendor class), and ``mac``, the hardware
address when the protocol states it. Layer-2 protocols (LLDP, CDP) and DHCP clients
without an address yet make claims with ``ip == ""`` and a ``mac``: the asset is known
by its MAC only.

Attributes (``IdentityClaim.attribute``):

- ``hostname``: a name the host goes by (DNS/mDNS/LLMNR owner names, DHCP option 12/81,
  NetBIOS names, LLDP system name, CDP device id, NTLM computer names);
- ``domain`` / ``workgroup``: the DNS or Windows domain, the NetBIOS workgroup;
- ``os``: an operating system the host states or its software implies;
- ``role``: an IT role, one of :data:`ROLES`;
- ``server_name``: the name a client asked this server for (TLS SNI, HTTP Host);
- ``software``: server software (SSH version string, HTTP ``Server``), ``user_agent``
  and ``browser`` for HTTP clients, ``model`` / ``description`` / ``software_version``
  from LLDP and CDP, ``user`` from an RDP cookie or an NTLM authentication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otconduit.model import IdentityClaim
from otconduit.protocols.it._wire import MAX_TEXT

# -- attributes ---------------------------------------------------------------------
HOSTNAME: Final = "hostname"
DOMAIN: Final = "domain"
WORKGROUP: Final = "workgroup"
OS: Final = "os"
ROLE: Final = "role"
SERVER_NAME: Final = "server_name"
SOFTWARE: Final = "software"
SOFTWARE_VERSION: Final = "software_version"
USER_AGENT: Final = "user_agent"
BROWSER: Final = "browser"
MODEL: Final = "model"
DESCRIPTION: Final = "description"
USER: Final = "user"
IP: Final = "ip"  # an address stated for a MAC-only asset (DHCP, LLDP, CDP)

# -- sources --------------------------------------------------------------------------
SRC_DNS: Final = "dns"
SRC_MDNS: Final = "mdns"
SRC_LLMNR: Final = "llmnr"
SRC_DHCP: Final = "dhcp"
SRC_NETBIOS: Final = "netbios"  # name service, UDP 137
SRC_BROWSER: Final = "netbios_browser"  # host announcements, UDP 138
SRC_LLDP: Final = "lldp"
SRC_CDP: Final = "cdp"
SRC_TLS: Final = "tls"
SRC_HTTP: Final = "http"
SRC_SSH: Final = "ssh"
SRC_RDP: Final = "rdp"
SRC_SMB: Final = "smb"
SRC_NTLM: Final = "ntlmssp"
SRC_PORTS: Final = "it_ports"  # served ports (the domain controller hint)

# -- roles ------------------------------------------------------------------------------
DNS_SERVER: Final = "dns_server"
DHCP_SERVER: Final = "dhcp_server"
DOMAIN_CONTROLLER: Final = "domain_controller"
WEB_SERVER: Final = "web_server"
SSH_SERVER: Final = "ssh_server"
RDP_SERVER: Final = "rdp_server"
FILE_SERVER: Final = "file_server"
SWITCH: Final = "switch"
ROUTER: Final = "router"
WIRELESS_AP: Final = "wireless_ap"
IP_PHONE: Final = "ip_phone"
ROLES: Final = frozenset(
    {
        DNS_SERVER,
        DHCP_SERVER,
        DOMAIN_CONTROLLER,
        WEB_SERVER,
        SSH_SERVER,
        RDP_SERVER,
        FILE_SERVER,
        SWITCH,
        ROUTER,
        WIRELESS_AP,
        IP_PHONE,
    }
)

MAX_CLAIMS: Final = 4096  # distinct claims one decoder makes; later ones are counted


@dataclass(frozen=True, slots=True, kw_only=True)
class ItClaim(IdentityClaim):
    """An identity claim with the wire text it rests on and the MAC when stated."""

    evidence: str = ""
    mac: str = ""


class ClaimSet:
    """The claims of one decoder, each (ip, mac, attribute, value, source) made once
    (again only with a higher confidence), at most :data:`MAX_CLAIMS` distinct ones (the
    rest are counted in ``dropped``)."""

    __slots__ = ("_pending", "_seen", "dropped")

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str, str, str], float] = {}
        self._pending: list[ItClaim] = []
        self.dropped = 0

    def add(
        self,
        *,
        ip: str,
        attribute: str,
        value: str,
        source: str,
        confidence: float,
        ts_ns: int,
        evidence: str = "",
        mac: str = "",
    ) -> None:
        """Claim ``attribute = value`` for the host at ``ip`` (or ``mac``); empty values
        and claims about nobody are ignored."""
        value = value.strip()[:MAX_TEXT]
        if not value or not (ip or mac):
            return
        key = (ip, mac, attribute, value, source)
        before = self._seen.get(key)
        if before is not None and before >= confidence:
            return
        if before is None and len(self._seen) >= MAX_CLAIMS:
            self.dropped += 1
            return
        self._seen[key] = confidence
        self._pending.append(
            ItClaim(
                ip=ip,
                attribute=attribute,
                value=value,
                source=source,
                confidence=confidence,
                ts_ns=ts_ns,
                evidence=evidence[:MAX_TEXT],
                mac=mac,
            )
        )

    def take(self) -> list[ItClaim]:
        """Claims made since the last call."""
        out, self._pending = self._pending, []
        return out
