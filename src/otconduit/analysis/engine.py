"""The analysis engine: decoded packets in, operations/assets/conversations out to the store.

This is the per-packet path. It is complete on its own (every link type, fragments,
IPv6, TCP reassembly); the fast path in :mod:`otconduit.analysis.fastpath` takes the common
case off its hands and must produce exactly the same records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from otconduit.analysis.connections import ConnStats, TcpConnection, UdpFlow
from otconduit.analysis.fastpath.emit import LaneBlock, Slice, join
from otconduit.analysis.it_side import ItSide
from otconduit.analysis.layer2 import Layer2
from otconduit.analysis.ports import server_side
from otconduit.analysis.tally import Tally, directed_broadcast
from otconduit.capture.decode import DecodeProblem, decode_frame
from otconduit.capture.ipfrag import Defragmenter
from otconduit.capture.packet import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Packet,
)
from otconduit.capture.reader import RawBlock, ReadReport
from otconduit.capture.tcp import StreamData, StreamGap
from otconduit.inventory.oui import mac_vendor
from otconduit.inventory.roles import Behaviour, infer_roles
from otconduit.model import IdentityClaim, Operation
from otconduit.protocols.base import DecoderEvent, ProtocolSpec
from otconduit.protocols.events import Malformed
from otconduit.protocols.registry import default_protocols
from otconduit.store.opchunks import OpBatch, concat, from_operations
from otconduit.store.sqlite import AssetRecord, ConversationRecord, Store
from otconduit.store.tdetails import TemplatedDetails
from otconduit.store.writer import ChunkWriter

MAX_PROBLEMS_KEPT = 10_000  # individual problem rows per capture; counts are always complete
OPS_BATCH = 32_768  # operations between looks for conversations ready to be stored
CHUNK_MIN_OPS = 2048  # a conversation's operations wait until a chunk holds this many
MAX_PENDING_OPS = 65_536  # ... unless this many wait in all: then every one is stored
SWEEP_EVERY = 4096  # packets between looks for connections to fold
LINGER_NS = 2_000_000_000  # a finished connection's last ACKs arrive within this
IDLE_NS = 3600 * 1_000_000_000  # a connection silent this long is folded (and re-opened)
DATAGRAM_IDLE_NS = 300 * 1_000_000_000  # the same for UDP/ICMP pairs, which never close
ROUTER_MAC_MIN_IPS = 4  # a MAC seen with this many IPs is a router's, not a host's


def _vlan_key(pkt: Packet) -> int:
    return pkt.vlans[-1] if pkt.vlans else -1


class Analyzer:
    """Accumulates one capture's analysis and writes it to the store."""

    def __init__(
        self, store: Store, capture_id: int, protocols: tuple[ProtocolSpec, ...] | None = None
    ) -> None:
        self.store = store
        self.capture_id = capture_id
        # Layer-2 industrial traffic (PROFINET, GOOSE) and PROFINET IO-CM across UDP flows.
        self.layer2 = Layer2(self)
        self.protocols = self.layer2.bind(
            protocols if protocols is not None else default_protocols()
        )
        self.defrag = Defragmenter()
        self.tcp: dict[tuple[str, int, str, int, int], TcpConnection] = {}
        self.udp: dict[tuple[str, int, str, int, int], UdpFlow] = {}
        self.icmp: dict[tuple[str, str, int], UdpFlow] = {}
        self.tally = Tally()
        self.conv_ids: dict[tuple[str, str, str, int, int, str], int] = {}
        # per conversation id: operations and whether each runs server -> client
        self.ops_pending: dict[int, tuple[list[Operation], list[int]]] = {}
        self.slices_pending: dict[int, list[Slice]] = {}  # from the fast lanes
        self.pending_per_conv: Counter[int] = Counter()
        self.ops_pending_count = 0
        self.flush_at = OPS_BATCH
        self.problems: list[tuple[int | None, str, str | None, str, str | None, str | None]] = []
        self.problem_counts: Counter[tuple[str, str]] = Counter()
        self.packets = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.stats_extra: dict[str, Any] = {}
        self.writer: ChunkWriter | None = None  # set by the caller to write in background
        # Finished connections folded into their conversation, so memory stays flat.
        self.conv_acc: dict[tuple[str, str, str, int, int, str], ConversationRecord] = {}
        self.closing: list[TcpConnection] = []
        self.on_fold: Callable[[TcpConnection], None] | None = None
        self._next_sweep = SWEEP_EVERY
        self._next_idle_sweep = 0
        # Connections that saw per-packet traffic since the bulk path last looked.
        self.touched: set[TcpConnection] = set()
        self.last_conn: TcpConnection | None = None  # of the last TCP packet fed
        # Names, OS and IT roles from IT traffic (kept apart from the industrial decoders).
        self.it: ItSide | None = ItSide(self.problem, self.tally)

    @property
    def operations(self) -> int:
        return self.tally.operations

    # -- problems ------------------------------------------------------------
    def problem(
        self,
        frame: int | None,
        layer: str,
        reason: str,
        protocol: str | None = None,
        src: str | None = None,
        dst: str | None = None,
    ) -> None:
        self.add_problems([(frame, layer, protocol, reason, src, dst)])

    def add_problems(
        self, rows: Sequence[tuple[int | None, str, str | None, str, str | None, str | None]]
    ) -> None:
        """Many :meth:`problem` at once: rows of (frame, layer, protocol, reason, src, dst)."""
        for _, layer, _, reason, _, _ in rows:
            self.problem_counts[(layer, reason.split(":", 1)[0].strip())] += 1
        room = MAX_PROBLEMS_KEPT - len(self.problems)
        if room > 0:
            self.problems += rows[:room]

    # -- input ---------------------------------------------------------------
    def feed_block(self, block: RawBlock) -> None:
        """Per-packet processing of a whole block."""
        buf = block.buf
        for i in range(len(block.offsets)):
            off = int(block.offsets[i])
            cap = int(block.caplens[i])
            res = decode_frame(
                buf[off : off + cap].tobytes(),
                int(block.linktypes[i]),
                block.first_frame + i,
                int(block.ts_ns[i]),
                int(block.wirelens[i]),
            )
            self.feed(res, int(block.ts_ns[i]))

    def feed(self, res: Packet | DecodeProblem, ts_ns: int) -> None:
        self.packets += 1
        if self.packets >= self._next_sweep:
            self.sweep(ts_ns)
        if self.first_ts is None:
            self.first_ts = ts_ns
        self.last_ts = ts_ns
        if isinstance(res, DecodeProblem):
            self.problem(res.frame, res.layer, res.reason)
            return
        pkt: Packet | None = res
        if res.l4_truncated:
            self.problem(
                res.frame,
                "capture",
                "snap length: frame cut short of its IP length",
                src=res.src_ip or None,
                dst=res.dst_ip or None,
            )
        if res.ip_version == 0 and self.layer2.wants(res):
            self.layer2.frame(res)  # PROFINET, GOOSE
            return
        if res.ip_version == 0 and self.it is not None:
            self.it.frame(res)  # LLDP, CDP
        if res.ip_version == 0:
            return
        self._host(res, ts_ns)
        pkt = self.defrag.feed(res)
        if pkt is None:
            return
        if pkt.ip_proto == IPPROTO_TCP:
            self._tcp(pkt)
        elif pkt.ip_proto == IPPROTO_UDP:
            self._udp(pkt)
        elif pkt.ip_proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            self._icmp(pkt)

    def _host(self, pkt: Packet, ts: int) -> None:
        vlan = _vlan_key(pkt)
        self.tally.host(pkt.src_ip, vlan, pkt.src_mac, ts, ts, 1, True)
        self.tally.host(pkt.dst_ip, vlan, pkt.dst_mac, ts, ts, 1, False)

    # -- transports ----------------------------------------------------------
    def _tcp(self, pkt: Packet) -> None:
        vlan = _vlan_key(pkt)
        fwd = (pkt.src_ip, pkt.sport, pkt.dst_ip, pkt.dport, vlan)
        rev = (pkt.dst_ip, pkt.dport, pkt.src_ip, pkt.sport, vlan)
        flags = pkt.tcp_flags
        conn = self.tcp.get(fwd)
        direction = 0
        if conn is None:
            conn = self.tcp.get(rev)
            direction = 1
        if conn is not None and (
            pkt.ts_ns - conn.stats.last_ts > IDLE_NS
            or (conn.finished_ts is not None and pkt.ts_ns - conn.finished_ts > LINGER_NS)
        ):
            # Silent past the idle limit, or finished longer ago than its last ACKs take:
            # whatever comes now is new (decided here, not by when a sweep last ran, so
            # that the split never depends on how the capture was read).
            self._fold(conn)
            conn = None
        # SYN together with FIN or RST is no handshake (fuzzed or crafted): ignore it
        # for orientation.
        hs = flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)
        syn_only = hs == TCP_SYN
        if (
            conn is not None
            and syn_only
            and direction == 0
            and (conn.closed or conn.stats.bytes[0] or conn.stats.bytes[1])
            and not conn.repeats_syn(pkt.tcp_seq)
        ):
            # A new connection reusing the 4-tuple: finish the old one first.
            self._fold(conn)
            conn = None
        if conn is None:
            if syn_only:
                c = (pkt.src_ip, pkt.sport, pkt.dst_ip, pkt.dport)
                by_syn = True
            elif hs == TCP_SYN | TCP_ACK:
                c = (pkt.dst_ip, pkt.dport, pkt.src_ip, pkt.sport)
                by_syn = True
            else:
                side = server_side(pkt.sport, pkt.dport, "tcp")
                if side == 1:
                    c = (pkt.src_ip, pkt.sport, pkt.dst_ip, pkt.dport)
                else:
                    c = (pkt.dst_ip, pkt.dport, pkt.src_ip, pkt.sport)
                by_syn = False
            stats = ConnStats(first_ts=pkt.ts_ns, last_ts=pkt.ts_ns)
            conn = TcpConnection(c[0], c[1], c[2], c[3], vlan, stats, oriented_by_syn=by_syn)
            self.tcp[(c[0], c[1], c[2], c[3], vlan)] = conn
            direction = 0 if (pkt.src_ip, pkt.sport) == (c[0], c[1]) else 1
        self.touched.add(conn)
        self.last_conn = conn
        st = conn.stats
        st.packets[direction] += 1
        st.bytes[direction] += pkt.ip_len
        if pkt.ts_ns > st.last_ts:
            st.last_ts = pkt.ts_ns
        if flags & TCP_ACK:
            acked = conn.reasm[1 - direction].peer_ack(pkt.tcp_ack, pkt.frame, pkt.ts_ns)
            if acked:
                self._stream(conn, 1 - direction, acked)
                self._it_tcp(conn, 1 - direction, acked)
        chunks = conn.reasm[direction].feed(pkt.tcp_seq, flags, pkt.payload, pkt.frame, pkt.ts_ns)
        if chunks:
            self._stream(conn, direction, chunks)
            self._it_tcp(conn, direction, chunks)
        if flags & (TCP_FIN | TCP_RST):
            conn.closed = True
            conn.fins |= 3 if flags & TCP_RST else 1 << direction
            if conn.fins == 3 and conn.finished_ts is None:
                conn.finished_ts = pkt.ts_ns
                self.closing.append(conn)

    def _stream(
        self, conn: TcpConnection, direction: int, chunks: list[StreamData | StreamGap]
    ) -> None:
        if conn.protocol is None:
            conn.probe.extend((direction, c) for c in chunks)
            conn.probe_bytes += sum(len(c.data) for c in chunks if isinstance(c, StreamData))
            if conn.decide(self.protocols):
                self._after_decide(conn)
            return
        dec = conn.decoder
        if dec is None:
            return
        for chunk in chunks:
            if chunk.__class__ is StreamGap:
                assert isinstance(chunk, StreamGap)
                dec.gap(direction, chunk.nbytes, chunk.frame, chunk.ts_ns)
                self.problem(
                    chunk.frame,
                    "tcp",
                    f"gap: {chunk.nbytes} bytes missing",
                    conn.protocol,
                    conn.client_ip,
                    conn.server_ip,
                )
            else:
                assert isinstance(chunk, StreamData)
                dec.feed(direction, chunk.data, chunk.frame, chunk.ts_ns)
            self._events(conn, dec.events())

    def _it_tcp(
        self, conn: TcpConnection, direction: int, chunks: list[StreamData | StreamGap]
    ) -> None:
        """The IT side's look at a connection no industrial decoder holds (its first
        bytes only: an industrial connection costs this one test)."""
        if self.it is not None and (conn.protocol is None or conn.protocol == "unknown"):
            self.it.tcp(conn, direction, chunks)

    def _after_decide(self, conn: TcpConnection) -> None:
        """Replay the probe buffer into the chosen decoder, or report what it was not."""
        spec = conn.spec
        if (
            spec is not None
            and conn.client_port in spec.ports
            and (conn.server_port not in spec.ports)
        ):
            # The handshake said otherwise, but the server is the side on the protocol's
            # port (content decided the protocol; the port decides who serves).
            self._flip(conn)
        probe, conn.probe = conn.probe, []
        if conn.decoder is not None:
            # Replay in delivery order so transactions pair as they did on the wire.
            for d, chunk in probe:
                self._stream(conn, d, [chunk])
            return
        if not any(isinstance(c, StreamData) for _, c in probe):
            return  # nothing was said: a refused or idle connection is no protocol error
        for other in self.protocols:
            if "tcp" in other.transports and conn.server_port in other.ports:
                first = next((c.frame for _, c in probe), None)
                self.problem(
                    first,
                    other.name,
                    f"not {other.label}: traffic on TCP port {conn.server_port} is not "
                    f"{other.label}",
                    other.name,
                    conn.client_ip,
                    conn.server_ip,
                )
                break

    def _flip(self, conn: TcpConnection) -> None:
        old = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port, conn.vlan)
        conn.flip()
        self.tcp.pop(old, None)
        key = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port, conn.vlan)
        self.tcp[key] = conn

    def _events(self, conn: TcpConnection | UdpFlow, events: list[DecoderEvent]) -> None:
        """Route what a decoder produced: operations, identity claims, problems."""
        for ev in events:
            if isinstance(ev, Operation):
                self._operation(conn, ev)
            elif isinstance(ev, IdentityClaim):
                self.tally.claim(ev.ip, conn.vlan, ev.attribute, ev.value, ev.source, ev.confidence)
            elif isinstance(ev, Malformed):
                self.problem(
                    ev.frame,
                    conn.protocol or "?",
                    ev.reason,
                    conn.protocol,
                    conn.client_ip,
                    conn.server_ip,
                )

    def _operation(self, conn: TcpConnection | UdpFlow, op: Operation) -> None:
        proto = op.protocol
        ckey = (conn.transport, conn.client_ip, conn.server_ip, conn.server_port, conn.vlan, proto)
        conv_id = self.conv_ids.get(ckey)
        if conv_id is None:
            conv_id = self.conv_ids[ckey] = self.store.conversation_id(*ckey)
        conn.seen_protocols.add(proto)
        self.tally.operations_of(
            ckey, op.function, op.status, op.operation, op.unit, op.src_ip, op.dst_ip, 1
        )
        pending = self.ops_pending.get(conv_id)
        if pending is None:
            pending = self.ops_pending[conv_id] = ([], [])
        pending[0].append(op)
        pending[1].append(0 if op.src_ip == conn.client_ip else 1)
        self.pending_per_conv[conv_id] += 1
        self.ops_pending_count += 1
        if self.ops_pending_count >= self.flush_at:
            self.flush_operations()

    def add_slice(self, conv_id: int, block: LaneBlock, lo: int, hi: int) -> None:
        """Operations ``lo..hi-1`` of a lane's block, all of one conversation."""
        self.slices_pending.setdefault(conv_id, []).append((block, lo, hi))
        self.pending_per_conv[conv_id] += hi - lo
        self.ops_pending_count += hi - lo

    @property
    def flush_due(self) -> bool:
        return self.ops_pending_count >= self.flush_at

    def flush_operations(self, *, final: bool = False) -> None:
        """Column-pack pending operations per conversation and write them in one go
        (on the writer thread when there is one). A conversation's operations wait until
        they fill a chunk of ``CHUNK_MIN_OPS`` (fewer, larger chunks: less to pack, to
        store and to read back), unless ``final`` or too many wait in all."""
        everything = final or self.ops_pending_count >= MAX_PENDING_OPS
        ready = [
            cid for cid, n in self.pending_per_conv.items() if everything or n >= CHUNK_MIN_OPS
        ]
        slow_ops = {cid: self.ops_pending.pop(cid) for cid in ready if cid in self.ops_pending}
        lane_slices = {
            cid: self.slices_pending.pop(cid) for cid in ready if cid in self.slices_pending
        }
        for cid in ready:
            self.ops_pending_count -= self.pending_per_conv.pop(cid)
        self.flush_at = self.ops_pending_count + OPS_BATCH
        if not slow_ops and not lane_slices:
            return

        def build() -> list[tuple[int, OpBatch]]:
            parts: dict[int, list[OpBatch]] = {}
            for cid, (ops, rev) in slow_ops.items():
                parts.setdefault(cid, []).append(from_operations(ops, rev))
            for cid, slices in lane_slices.items():
                parts.setdefault(cid, []).append(join(slices))
            out = []
            for cid, batches in parts.items():
                # Templated details (bulk path) joined with written-out ones (per-packet
                # path) would all have to be rendered: keep them in two chunks instead.
                tmpl = [b for b in batches if isinstance(b.details, TemplatedDetails)]
                rest = [b for b in batches if not isinstance(b.details, TemplatedDetails)]
                if tmpl and any(len(b.details) for b in rest):
                    out += [(cid, concat(rest)), (cid, concat(tmpl))]
                else:
                    out.append((cid, concat(batches)))
            return out

        if self.writer is not None:
            self.writer.submit(build)
        else:
            self.store.insert_op_chunks(self.capture_id, build())

    def _udp(self, pkt: Packet) -> None:
        vlan = _vlan_key(pkt)
        key = (pkt.src_ip, pkt.sport, pkt.dst_ip, pkt.dport, vlan)
        flow = self.udp.get(key)
        direction = 0
        if flow is None:
            flow = self.udp.get((pkt.dst_ip, pkt.dport, pkt.src_ip, pkt.sport, vlan))
            direction = 1
        if flow is not None and pkt.ts_ns - flow.stats.last_ts > DATAGRAM_IDLE_NS:
            # Quiet for longer than a flow lives: a new one (the sweep may have folded it
            # already; deciding here makes the split independent of when sweeps run).
            self._fold_udp(flow)
            self.udp.pop(
                (flow.client_ip, flow.client_port, flow.server_ip, flow.server_port, vlan), None
            )
            flow = None
        if flow is None:
            if server_side(pkt.sport, pkt.dport, "udp") == 1:
                c = (pkt.src_ip, pkt.sport, pkt.dst_ip, pkt.dport)
            else:
                c = (pkt.dst_ip, pkt.dport, pkt.src_ip, pkt.sport)
            flow = UdpFlow(*c, vlan, ConnStats(first_ts=pkt.ts_ns, last_ts=pkt.ts_ns))
            self.udp[(c[0], c[1], c[2], c[3], vlan)] = flow
            direction = 0 if pkt.src_ip == c[0] and pkt.sport == c[1] else 1
        flow.stats.packets[direction] += 1
        flow.stats.bytes[direction] += pkt.ip_len
        flow.stats.last_ts = max(flow.stats.last_ts, pkt.ts_ns)
        if not pkt.payload:
            return
        it = self.it  # the IT side (DNS, DHCP, NetBIOS...), by port
        if it is not None and (
            flow.server_port in it.udp_ports or flow.client_port in it.udp_ports
        ):
            it.udp(flow, direction, pkt)
        if flow.protocol is None:
            flow.probe.append((direction, pkt.payload, pkt.frame, pkt.ts_ns))
            if flow.decide(self.protocols):
                self._replay_udp(flow)
        elif flow.decoder is not None:
            flow.decoder.feed(direction, pkt.payload, pkt.frame, pkt.ts_ns)
            self._events(flow, flow.decoder.events())

    def _replay_udp(self, flow: UdpFlow) -> None:
        probe, flow.probe = flow.probe, []
        if flow.decoder is None:
            return
        for d, payload, frame, ts in probe:
            flow.decoder.feed(d, payload, frame, ts)
        self._events(flow, flow.decoder.events())

    def _icmp(self, pkt: Packet) -> None:
        key = (pkt.src_ip, pkt.dst_ip, _vlan_key(pkt))
        flow = self.icmp.get(key)
        if flow is not None and pkt.ts_ns - flow.stats.last_ts > DATAGRAM_IDLE_NS:
            self._accumulate("icmp", flow, "icmp", self.conv_acc)
            flow = None
        if flow is None:
            flow = self.icmp[key] = UdpFlow(
                pkt.src_ip,
                0,
                pkt.dst_ip,
                0,
                key[2],
                ConnStats(first_ts=pkt.ts_ns, last_ts=pkt.ts_ns),
            )
        flow.stats.packets[0] += 1
        flow.stats.bytes[0] += pkt.ip_len
        flow.stats.last_ts = max(flow.stats.last_ts, pkt.ts_ns)

    # -- end -----------------------------------------------------------------
    def _close_tcp(self, conn: TcpConnection) -> None:
        for d in (0, 1):
            chunks = conn.reasm[d].flush()
            if chunks:
                self._stream(conn, d, chunks)
                self._it_tcp(conn, d, chunks)
        if conn.protocol is None:
            conn.decide(self.protocols, force=True)
            self._after_decide(conn)
        if conn.decoder is not None:
            self._events(conn, conn.decoder.finish())
        for d, name in ((0, "client"), (1, "server")):
            r = conn.reasm[d]
            if r.retransmitted:
                self.problem_counts[("tcp", f"retransmitted segments ({name})")] += r.retransmitted

    def sweep(self, now_ts: int) -> None:
        """Fold connections that finished a while ago (or fell silent) into their
        conversation, so that memory follows the live connections, not the capture size."""
        self._next_sweep = self.packets + SWEEP_EVERY
        if self.closing:
            keep = []
            for conn in self.closing:
                if conn.finished_ts is not None and now_ts - conn.finished_ts > LINGER_NS:
                    self._fold(conn)
                else:
                    keep.append(conn)
            self.closing = keep
        if now_ts >= self._next_idle_sweep:
            self._next_idle_sweep = now_ts + DATAGRAM_IDLE_NS // 4
            for conn in [c for c in self.tcp.values() if now_ts - c.stats.last_ts > IDLE_NS]:
                self._fold(conn)
            # UDP and ICMP "flows" have no end: fold the quiet ones, or a capture full of
            # one-off datagrams (DNS, scans) would grow memory with every new pair.
            for ukey, flow in list(self.udp.items()):
                if now_ts - flow.stats.last_ts > DATAGRAM_IDLE_NS:
                    self._fold_udp(flow)
                    del self.udp[ukey]
            for ikey, flow in list(self.icmp.items()):
                if now_ts - flow.stats.last_ts > DATAGRAM_IDLE_NS:
                    self._accumulate("icmp", flow, "icmp", self.conv_acc)
                    del self.icmp[ikey]

    def _fold_udp(self, flow: UdpFlow) -> None:
        """Finish a UDP flow's decoding and add it to its conversation's totals."""
        if flow.protocol is None:
            flow.decide(self.protocols, force=True)
            self._replay_udp(flow)
        if flow.decoder is not None:
            self._events(flow, flow.decoder.finish())
        if self.it is not None:
            self.it.udp_end(flow)
        self._accumulate("udp", flow, flow.protocol or "unknown", self.conv_acc)

    def _fold(self, conn: TcpConnection) -> None:
        """Finish a connection and add it to its conversation's totals."""
        key = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port, conn.vlan)
        if self.tcp.get(key) is not conn:
            return  # already folded
        if self.on_fold is not None:
            self.on_fold(conn)  # the bulk path hands it back and frees its slot
        self._close_tcp(conn)
        if self.it is not None:
            self.it.tcp_end(conn)
        del self.tcp[key]
        self.touched.discard(conn)
        if conn.reasm[1].delivered_bytes:
            self.tally.answered.add((conn.server_ip, conn.vlan))
        self._accumulate("tcp", conn, conn.protocol or "unknown", self.conv_acc)

    def _accumulate(
        self,
        transport: str,
        f: TcpConnection | UdpFlow,
        protocol: str,
        merged: dict[tuple[str, str, str, int, int, str], ConversationRecord],
    ) -> None:
        seen = f.seen_protocols
        if seen and protocol not in seen:
            protocol = min(seen)  # e.g. an "s7comm" connection that carried S7comm-plus
        for other in seen - {protocol}:
            # Operations of a second protocol on the same connection: list the pair too.
            okey = (transport, f.client_ip, f.server_ip, f.server_port, f.vlan, other)
            self.note_conversation(okey, f.stats.first_ts, f.stats.last_ts)
        st = f.stats
        self.accumulate(
            (transport, f.client_ip, f.server_ip, f.server_port, f.vlan, protocol),
            st.connections, st.packets[0], st.packets[1], st.bytes[0], st.bytes[1],
            st.first_ts, st.last_ts,
        )  # fmt: skip

    def note_conversation(
        self, key: tuple[str, str, str, int, int, str], first: int, last: int
    ) -> None:
        """List a conversation without counting a connection in it: the second protocol
        of a connection that carried two, over that connection's time."""
        rec = self.conv_acc.get(key)
        if rec is None:
            self.conv_acc[key] = ConversationRecord(*key, 0, 0, 0, 0, 0, first, last, {})
            return
        rec.first_seen = min(rec.first_seen, first)
        rec.last_seen = max(rec.last_seen, last)

    def accumulate(
        self,
        key: tuple[str, str, str, int, int, str],
        connections: int,
        packets_c2s: int,
        packets_s2c: int,
        bytes_c2s: int,
        bytes_s2c: int,
        first: int,
        last: int,
    ) -> None:
        """Add finished connections' totals to their conversation's record (``key``:
        transport, client, server, server port, VLAN, protocol)."""
        rec = self.conv_acc.get(key)
        if rec is None:
            self.conv_acc[key] = ConversationRecord(
                *key, connections, packets_c2s, packets_s2c, bytes_c2s, bytes_s2c, first, last, {}
            )
            return
        rec.connections += connections
        rec.packets_c2s += packets_c2s
        rec.packets_s2c += packets_s2c
        rec.bytes_c2s += bytes_c2s
        rec.bytes_s2c += bytes_s2c
        rec.first_seen = min(rec.first_seen, first)
        rec.last_seen = max(rec.last_seen, last)

    def _conversation_records(self) -> list[ConversationRecord]:
        self.layer2.finish()  # unanswered requests, RT summaries, layer-2 conversations
        for conn in list(self.tcp.values()):
            self._fold(conn)
        merged = self.conv_acc
        for flow in self.udp.values():
            self._fold_udp(flow)
        self.udp.clear()
        for flow in self.icmp.values():
            self._accumulate("icmp", flow, "icmp", merged)
        for key, rec in merged.items():
            rec.functions = dict(self.tally.conv_functions.get(key, {}))
        return list(merged.values())

    def _asset_records(self) -> list[AssetRecord]:
        ips_per_mac: Counter[str] = Counter()
        for h in self.tally.hosts.values():
            for seen in h.macs:
                ips_per_mac[seen] += 1
        out = []
        for (ip, vlan), h in self.tally.hosts.items():
            if h.sent == 0 and directed_broadcast(ip):
                continue  # a subnet's broadcast address (BACnet Who-Is), not a device
            macs = [m for m, _ in h.macs.most_common() if ips_per_mac[m] < ROUTER_MAC_MIN_IPS]
            mac: str | None = macs[0] if macs else None
            rec = AssetRecord(ip, vlan, mac, h.first, h.last, h.sent, h.received)
            if mac:
                org = mac_vendor(mac)
                if org:
                    rec.attributes.append(("identity", "mac_vendor", org, "oui", 0.5, mac))
                    rec.attributes.append(("identity", "vendor", org, "oui", 0.4, mac))
            for (attr, value, source), conf in self.tally.identity.get((ip, vlan), {}).items():
                rec.attributes.append(("identity", attr, value, source, conf, None))
            if (ip, vlan) in self.tally.answered:
                rec.attributes.append(("activity", "answered", "tcp", "behaviour", 1.0, None))
            out.append(rec)
        index = {(r.ip, r.vlan): r for r in out}
        if self.it is not None:  # host names, OS and IT roles
            for key, attrs in self.it.attributes({k: r.mac for k, r in index.items()}).items():
                index[key].attributes.extend(attrs)
        per_host: dict[tuple[str, int], dict[str, Behaviour]] = {}
        for (ip, vlan, proto), b in self.tally.behaviour.items():
            per_host.setdefault((ip, vlan), {})[proto] = b
        for key, by_proto in per_host.items():
            found = index.get(key)
            if found is None:
                continue
            rec = found
            for proto, b in sorted(by_proto.items()):
                if b.operations_served:
                    rec.attributes.append(("protocol", proto, "server", "behaviour", 0.9, None))
                if b.operations_sent:
                    rec.attributes.append(("protocol", proto, "client", "behaviour", 0.9, None))
            # Roles describe the host, so its behaviour in every protocol is judged as one.
            stated: dict[str, str] = {}
            best: dict[str, float] = {}
            for (attr, value, _src), conf in self.tally.identity.get(key, {}).items():
                if conf > best.get(attr, -1.0):
                    stated[attr], best[attr] = value, conf
            for g in infer_roles(by_proto, stated):
                rec.attributes.append(
                    ("role", g.role, "inferred", "behaviour", g.confidence, g.evidence)
                )
        return out

    def finish(self, report: ReadReport) -> dict[str, Any]:
        """Close every connection, write the aggregates and mark the capture finished."""
        conversations = self._conversation_records()  # folds every open connection
        self.flush_operations(final=True)
        if self.writer is not None:
            self.writer.close()  # every operation is stored before the capture is complete
            self.writer = None
        if report.error:
            self.problem(None, "capture", f"read stopped: {report.error}")
        status = "complete" if not report.error else "partial"
        assets = self.layer2.assets(self._asset_records())  # MAC-only devices folded
        if self.it is not None and self.it.used:
            self.stats_extra["it"] = self.it.stats()
        stats = {
            "packets": self.packets,
            "operations": self.tally.operations,
            "operations_by_status": dict(self.tally.ops_by_status),
            "tcp_connections": sum(r.connections for r in conversations if r.transport == "tcp"),
            "ip_fragments_reassembled": getattr(self.defrag, "reassembled", 0),
            "read_error": report.error,
            **self.stats_extra,
        }
        self.store.finish_capture(
            self.capture_id,
            status=status,
            packets=self.packets,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            error=report.error,
            stats=stats,
            assets=assets,
            conversations=conversations,
            problems=self.problems,
            problem_counts=dict(self.problem_counts),
        )
        return stats


__all__ = ["Analyzer"]
