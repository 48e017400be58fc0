"""What analysis counts besides the operations themselves: per-host traffic, per-connection
counters, per-conversation function counts, role evidence and identity claims.

One sink for both paths: the per-packet engine reports each packet and operation as it
decodes it, the fast path reports a connection's packets and a template's operations in
aggregate (``count`` at a time). Both must end with the same numbers, which is why
neither keeps counters of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from ipaddress import ip_address

from otconduit.inventory.roles import Behaviour
from otconduit.model import OpClass, OpStatus

ConvKey = tuple[str, str, str, int, int, str]  # transport, client, server, port, vlan, protocol


@dataclass(slots=True)
class HostSeen:
    first: int
    last: int
    sent: int = 0
    received: int = 0
    macs: Counter[str] = field(default_factory=Counter)


def is_unicast(ip: str) -> bool:
    try:
        a = ip_address(ip)
    except ValueError:
        return False
    return not (a.is_multicast or a.is_unspecified or str(a) == "255.255.255.255")


def directed_broadcast(ip: str) -> bool:
    """An IPv4 address ending in .255: with nothing sent from it, the broadcast address
    of its subnet (a host numbered .255 in a wider subnet sends and stays an asset)."""
    return ip.count(".") == 3 and ip.endswith(".255")


class Tally:
    """Counters of one capture's analysis."""

    def __init__(self) -> None:
        self.hosts: dict[tuple[str, int], HostSeen] = {}
        self.behaviour: dict[tuple[str, int, str], Behaviour] = {}
        self.identity: dict[tuple[str, int], dict[tuple[str, str, str], float]] = {}
        self.conv_functions: dict[ConvKey, Counter[str]] = {}
        # Servers that sent application bytes on a connection no decoder took: with the
        # identified conversations, what tells a real host from a port-sweep target.
        self.answered: set[tuple[str, int]] = set()
        self.ops_by_status: Counter[str] = Counter()
        self.operations = 0

    def host(
        self, ip: str, vlan: int, mac: str | None, first: int, last: int, count: int, sending: bool
    ) -> None:
        """``count`` packets sent (or received) by ``ip`` between ``first`` and ``last``."""
        key = (ip, vlan)
        h = self.hosts.get(key)
        if h is None:
            if not is_unicast(ip):
                return
            h = self.hosts[key] = HostSeen(first, last)
        if first < h.first:
            h.first = first
        if last > h.last:
            h.last = last
        if sending:
            h.sent += count
        else:
            h.received += count
        if mac:
            h.macs[mac] += count

    def operations_of(
        self,
        ckey: ConvKey,
        function: str,
        status: OpStatus,
        operation: OpClass,
        unit: int | None,
        client: str,
        server: str,
        count: int,
    ) -> None:
        """``count`` operations of one kind on conversation ``ckey``, sent by ``client``
        to ``server`` (the roles follow the operation, not the TCP connection: a DNP3
        outstation may open the connection)."""
        _, _, _, _, vlan, proto = ckey
        self.operations += count
        self.ops_by_status[status] += count
        self.conv_functions.setdefault(ckey, Counter())[function] += count
        b = self.behaviour.get((client, vlan, proto))
        if b is None:
            b = self.behaviour[(client, vlan, proto)] = Behaviour()
        b.operations_sent += count
        b.servers_polled.add(server)
        b.classes_sent[operation] = b.classes_sent.get(operation, 0) + count
        b = self.behaviour.get((server, vlan, proto))
        if b is None:
            b = self.behaviour[(server, vlan, proto)] = Behaviour()
        b.operations_served += count
        b.clients_served.add(client)
        if unit is not None:
            b.units_served.add(unit)

    def units_served(self, ip: str, vlan: int, protocol: str, unit: int) -> None:
        """``ip`` answered operations addressed to ``unit`` (counted with the operations)."""
        b = self.behaviour.get((ip, vlan, protocol))
        if b is None:
            b = self.behaviour[(ip, vlan, protocol)] = Behaviour()
        b.units_served.add(unit)

    def claim(
        self, ip: str, vlan: int, attribute: str, value: str, source: str, confidence: float
    ) -> None:
        """An identity claim; the highest confidence seen for it is kept."""
        claims = self.identity.setdefault((ip, vlan), {})
        key = (attribute, value, source)
        claims[key] = max(claims.get(key, 0.0), confidence)
