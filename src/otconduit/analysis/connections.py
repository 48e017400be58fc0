"""Per-connection state: direction, TCP reassembly, protocol identification, decoders."""

from __future__ import annotations

from dataclasses import dataclass, field

from otconduit.capture.tcp import StreamData, StreamGap, TcpReassembler
from otconduit.model import Operation
from otconduit.protocols.events import Malformed
from otconduit.protocols.modbus.detect import modbus_verdict
from otconduit.protocols.modbus.session import (
    ModbusSession,
    ModbusTransaction,
    transaction_to_operation,
)
from otconduit.protocols.modbus.stream import ModbusMessage, ModbusStream

PROBE_LIMIT = 512  # bytes of client data kept while deciding what a connection speaks


@dataclass(slots=True)
class ConnStats:
    packets: list[int] = field(default_factory=lambda: [0, 0])  # c2s, s2c
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    first_ts: int = 0
    last_ts: int = 0
    connections: int = 1


class ModbusDecoder:
    """Both directions of one Modbus/TCP connection plus transaction matching."""

    __slots__ = ("endpoints", "session", "streams")

    def __init__(self, endpoints: tuple[str, int, str, int]) -> None:
        self.streams = (ModbusStream(is_request=True), ModbusStream(is_request=False))
        self.session = ModbusSession()
        self.endpoints = endpoints

    def data(
        self, direction: int, chunk: StreamData | StreamGap
    ) -> tuple[list[ModbusTransaction], list[Malformed]]:
        stream = self.streams[direction]
        if isinstance(chunk, StreamGap):
            stream.gap(chunk.nbytes, chunk.frame, chunk.ts_ns)
        else:
            stream.feed(chunk.data, chunk.frame, chunk.ts_ns)
        return self._drain(direction)

    def _drain(self, direction: int) -> tuple[list[ModbusTransaction], list[Malformed]]:
        stream = self.streams[direction]
        txs: list[ModbusTransaction] = []
        bad: list[Malformed] = []
        while True:
            ev = stream.next_event()
            if isinstance(ev, ModbusMessage):
                if direction == 0:
                    txs.extend(self.session.request(ev))
                else:
                    txs.extend(self.session.response(ev))
            elif isinstance(ev, Malformed):
                bad.append(ev)
            else:
                break
        return txs, bad

    def finish(self) -> tuple[list[ModbusTransaction], list[Malformed]]:
        txs: list[ModbusTransaction] = []
        bad: list[Malformed] = []
        for d in (0, 1):
            self.streams[d].end()
            t, b = self._drain(d)
            txs += t
            bad += b
        txs += self.session.flush()
        return txs, bad

    def operation(self, tx: ModbusTransaction) -> Operation:
        c_ip, c_port, s_ip, s_port = self.endpoints
        return transaction_to_operation(
            tx, src_ip=c_ip, src_port=c_port, dst_ip=s_ip, dst_port=s_port
        )


@dataclass(slots=True, eq=False)  # identity semantics: connections live in sets
class TcpConnection:
    """One TCP connection, oriented client → server."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    vlan: int
    stats: ConnStats
    oriented_by_syn: bool = False
    reasm: tuple[TcpReassembler, TcpReassembler] = field(
        default_factory=lambda: (TcpReassembler(), TcpReassembler())
    )
    protocol: str | None = None  # None while undecided
    # (direction, chunk) in delivery order while the protocol is undecided.
    probe: list[tuple[int, StreamData | StreamGap]] = field(default_factory=list)
    probe_bytes: int = 0
    decoder: ModbusDecoder | None = None
    closed: bool = False  # FIN or RST seen
    fins: int = 0  # bit d: FIN from direction d (3 with an RST: the connection is over)
    finished_ts: int | None = None
    slot: int = -1  # index in the bulk path's state arrays, -1 when never handed to it

    @property
    def endpoints(self) -> tuple[str, int, str, int]:
        return (self.client_ip, self.client_port, self.server_ip, self.server_port)

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
        if self.decoder is not None:
            self.decoder = ModbusDecoder(self.endpoints)

    def decide(self, force: bool = False) -> bool:
        """Identify the application protocol from the first bytes of both directions.

        Returns True once decided. Undecided connections keep their data in a small
        probe buffer; ``force`` decides on whatever has arrived (end of capture).
        """
        if self.protocol is not None:
            return True
        client = b"".join(c.data for d, c in self.probe if d == 0 and isinstance(c, StreamData))
        server = b"".join(c.data for d, c in self.probe if d == 1 and isinstance(c, StreamData))
        verdict = modbus_verdict(
            client[:PROBE_LIMIT],
            server[:PROBE_LIMIT],
            on_port_502=502 in (self.server_port, self.client_port),
        )
        if verdict:
            self.protocol = "modbus"
            self.decoder = ModbusDecoder(self.endpoints)
            return True
        # Undecided: keep probing unless the probe is full or the connection is over.
        if verdict is None and not force and self.probe_bytes < PROBE_LIMIT:
            return False
        self.protocol = "unknown"
        return True
