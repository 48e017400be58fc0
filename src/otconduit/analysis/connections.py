"""Per-connection state: direction, TCP reassembly, protocol identification, decoders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from otconduit.capture.tcp import StreamData, StreamGap, TcpReassembler
from otconduit.protocols.base import ConnectionDecoder, Endpoints, ProtocolSpec

PROBE_LIMIT = 512  # bytes kept per connection while deciding what it speaks
PROBE_DATAGRAMS = 4  # UDP datagrams kept while deciding


@dataclass(slots=True)
class ConnStats:
    packets: list[int] = field(default_factory=lambda: [0, 0])  # c2s, s2c
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    first_ts: int = 0
    last_ts: int = 0
    connections: int = 1


def identify(
    specs: Sequence[ProtocolSpec],
    transport: str,
    client: bytes,
    server: bytes,
    server_port: int,
    client_port: int,
    force: bool,
) -> ProtocolSpec | bool | None:
    """The protocol these first bytes speak: a spec, ``False`` (none of ours) or ``None``
    (undecided: wait for more data unless ``force``).

    Specs whose well-known port the connection uses are asked first, so a port is a
    prior that breaks ties, never a verdict on its own.
    """
    candidates = [s for s in specs if transport in s.transports]
    candidates.sort(key=lambda s: not ({server_port, client_port} & s.ports))
    waiting: list[tuple[ProtocolSpec, bool]] = []  # undecided, with their port prior
    for spec in candidates:
        on_port = bool({server_port, client_port} & spec.ports)
        verdict = spec.verdict(client, server, on_port)
        if verdict:
            return spec
        if verdict is None:
            waiting.append((spec, on_port))
    if not waiting:
        return False
    if not force:
        return None
    # Out of data: a spec that settles an undecided connection may still claim it.
    for spec, on_port in waiting:
        if spec.settle is not None and spec.settle(client, server, on_port):
            return spec
    return False


@dataclass(slots=True, eq=False)  # identity semantics: flows live in sets
class Flow:
    """What TCP connections and UDP flows share: endpoints, counters, the decoder."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    vlan: int
    stats: ConnStats
    protocol: str | None = None  # None while undecided
    spec: ProtocolSpec | None = None
    decoder: ConnectionDecoder | None = None
    transport: str = "tcp"
    seen_protocols: set[str] = field(default_factory=set)  # of the operations it carried

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            transport=self.transport,
            client_ip=self.client_ip,
            client_port=self.client_port,
            server_ip=self.server_ip,
            server_port=self.server_port,
        )

    def _adopt(self, found: ProtocolSpec | bool | None) -> bool:
        """Apply what :func:`identify` found; True once the protocol is decided."""
        if found is None:
            return False
        if found is False:
            self.protocol = "unknown"
            return True
        assert isinstance(found, ProtocolSpec)
        self.spec = found
        self.protocol = found.name
        self.decoder = found.factory(self.endpoints)
        return True


@dataclass(slots=True, eq=False)
class TcpConnection(Flow):
    """One TCP connection, oriented client → server."""

    oriented_by_syn: bool = False
    reasm: tuple[TcpReassembler, TcpReassembler] = field(
        default_factory=lambda: (TcpReassembler(), TcpReassembler())
    )
    # (direction, chunk) in delivery order while the protocol is undecided.
    probe: list[tuple[int, StreamData | StreamGap]] = field(default_factory=list)
    probe_bytes: int = 0
    closed: bool = False  # FIN or RST seen
    fins: int = 0  # bit d: FIN from direction d (3 with an RST: the connection is over)
    finished_ts: int | None = None
    slot: int = -1  # index in its fast lane's slots, -1 when never handed to it
    lane: str | None = None  # the fast lane that holds its slot
    fast_bounces: int = 0  # times the fast lane gave it back (forgiven after a long run)
    fast_retry: int = 0  # its packet count before which the lane does not take it again

    def repeats_syn(self, seq: int) -> bool:
        """A SYN with this sequence number is the opening SYN sent again (its answer was
        lost or late): same initial sequence number, nothing said or closed since. It
        belongs to this connection, not to a new one on the same ports."""
        r0, r1 = self.reasm
        return (
            not self.closed
            and self.oriented_by_syn
            and r0.next_seq == (seq + 1) & 0xFFFFFFFF
            and r0.delivered_bytes == 0
            and r1.delivered_bytes == 0
            and r0.clean
            and r1.clean
        )

    def flip(self) -> None:
        """Swap client and server (content showed the handshake's initiator serves)."""
        self.client_ip, self.server_ip = self.server_ip, self.client_ip
        self.client_port, self.server_port = self.server_port, self.client_port
        self.reasm = (self.reasm[1], self.reasm[0])
        self.probe = [(1 - d, c) for d, c in self.probe]
        self.fins = ((self.fins & 1) << 1) | ((self.fins >> 1) & 1)
        st = self.stats
        st.packets.reverse()
        st.bytes.reverse()
        if self.spec is not None:
            self.decoder = self.spec.factory(self.endpoints)

    def decide(self, specs: Sequence[ProtocolSpec], force: bool = False) -> bool:
        """Identify the application protocol from the first bytes of both directions.

        Returns True once decided. Undecided connections keep their data in a small
        probe buffer; ``force`` decides on whatever has arrived (end of capture).
        """
        if self.protocol is not None:
            return True
        client = b"".join(c.data for d, c in self.probe if d == 0 and isinstance(c, StreamData))
        server = b"".join(c.data for d, c in self.probe if d == 1 and isinstance(c, StreamData))
        found = identify(
            specs,
            "tcp",
            client[:PROBE_LIMIT],
            server[:PROBE_LIMIT],
            self.server_port,
            self.client_port,
            force or self.probe_bytes >= PROBE_LIMIT,
        )
        return self._adopt(found)


@dataclass(slots=True, eq=False)
class UdpFlow(Flow):
    """Datagrams between a client and a server port (UDP has no connection)."""

    transport: str = "udp"
    probe: list[tuple[int, bytes, int, int]] = field(default_factory=list)

    def decide(self, specs: Sequence[ProtocolSpec], force: bool = False) -> bool:
        if self.protocol is not None:
            return True
        client = next((p for d, p, _, _ in self.probe if d == 0), b"")
        server = next((p for d, p, _, _ in self.probe if d == 1), b"")
        found = identify(
            specs,
            "udp",
            client,
            server,
            self.server_port,
            self.client_port,
            force or len(self.probe) >= PROBE_DATAGRAMS,
        )
        return self._adopt(found)
