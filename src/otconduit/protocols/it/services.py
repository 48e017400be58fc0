"""Roles that only the set of services a host answers on reveals: a Windows domain
controller serves Kerberos (88) and LDAP (389, or the global catalog on 3268),
usually with SMB (445) and DNS (53) beside them.

:class:`DomainControllerHint` is fed every (host, transport, port) the host was seen
serving, whatever the protocol decoders made of the bytes, and claims ``role =
domain_controller`` once Kerberos and LDAP are both served.
"""

from __future__ import annotations

from typing import Final

from otconduit.protocols.it._wire import usable_ip
from otconduit.protocols.it.claims import DOMAIN_CONTROLLER, ROLE, SRC_PORTS, ClaimSet, ItClaim

KERBEROS: Final = frozenset({("tcp", 88), ("udp", 88)})
LDAP: Final = frozenset({("tcp", 389), ("udp", 389), ("tcp", 3268), ("tcp", 636), ("tcp", 3269)})
SUPPORTING: Final = frozenset({("tcp", 445), ("tcp", 464), ("udp", 464), ("tcp", 53), ("udp", 53)})
NAMES: Final = {88: "kerberos", 389: "ldap", 636: "ldaps", 3268: "gc", 3269: "gc-tls"} | {
    445: "smb",
    464: "kpasswd",
    53: "dns",
}
MAX_HOSTS: Final = 65536


class DomainControllerHint:
    """Served directory ports per host -> a ``domain_controller`` role claim."""

    def __init__(self) -> None:
        self.claims = ClaimSet()
        self._served: dict[str, set[tuple[str, int]]] = {}

    def served(self, ip: str, transport: str, port: int, ts_ns: int) -> None:
        """``ip`` answered on ``transport``/``port`` (a SYN-ACK, a reply datagram)."""
        key = (transport, port)
        if key not in KERBEROS | LDAP | SUPPORTING or not usable_ip(ip):
            return
        seen = self._served.get(ip)
        if seen is None:
            if len(self._served) >= MAX_HOSTS:
                return
            seen = self._served[ip] = set()
        seen.add(key)
        if seen & KERBEROS and seen & LDAP:
            extra = seen & SUPPORTING
            names = sorted(f"{NAMES[p]} ({t}/{p})" for t, p in seen)
            self.claims.add(
                ip=ip,
                attribute=ROLE,
                value=DOMAIN_CONTROLLER,
                source=SRC_PORTS,
                confidence=0.8 if extra else 0.7,
                ts_ns=ts_ns,
                evidence="serves " + ", ".join(names),
            )

    def take(self) -> list[ItClaim]:
        """Claims made since the last call."""
        return self.claims.take()
