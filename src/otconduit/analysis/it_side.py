"""The IT side of analysis: name, address and banner traffic (DNS, mDNS, LLMNR, DHCP,
NetBIOS, LLDP, CDP, TLS, HTTP, SSH, RDP, SMB) turned into host names, operating
systems and IT roles of the assets the engine sees.

Kept apart from the industrial registry on purpose: these decoders make no operations,
their flows keep the conversation protocol the engine gives them, and nothing here
enters the policy or detection tables. The engine calls in at four places (a UDP
datagram on an IT port, the first bytes of a TCP connection no industrial decoder took,
a non-IP frame, a flow's end) and asks at the end for the attributes per asset.

Cost is bounded so that IT traffic cannot slow industrial analysis: UDP is dispatched
by port only; a TCP connection is looked at only while no industrial decoder holds it,
identified from its first :data:`PROBE_LIMIT` bytes, and decoded for at most
:data:`MAX_TCP_BYTES` per direction; live decoders, claims per asset and distinct values
per attribute are capped, and what a cap refused is counted (:meth:`ItSide.stats`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.analysis.connections import TcpConnection, UdpFlow, identify
from otconduit.analysis.tally import Tally
from otconduit.capture.packet import Packet
from otconduit.capture.tcp import StreamData, StreamGap
from otconduit.model import IdentityClaim
from otconduit.protocols.base import ConnectionDecoder, DecoderEvent, ProtocolSpec
from otconduit.protocols.events import Malformed
from otconduit.protocols.it import FRAME_DECODERS, SPECS, frame_decoder_for
from otconduit.protocols.it._base import FrameDecoder, StreamDecoder
from otconduit.protocols.it.claims import IP, ROLE
from otconduit.protocols.it.services import KERBEROS, LDAP, SUPPORTING, DomainControllerHint

PROBE_LIMIT: Final = 512  # bytes per direction looked at to identify an IT connection
MAX_TCP_BYTES: Final = 65536  # per direction fed to an IT decoder; the rest is ignored
MAX_UDP_DATAGRAMS: Final = 4096  # per flow fed to an IT decoder
MAX_LIVE_FLOWS: Final = 65536  # IT decoders alive at once (TCP and UDP each)
MAX_TARGETS: Final = 65536  # hosts (addresses or MACs) claims are kept for
MAX_VALUES: Final = 8  # distinct values per host and attribute (8 names, 8 OS strings)
MAX_EVIDENCE: Final = 200  # characters of wire text kept as evidence
MAX_REPEATS: Final = 8192  # datagrams/frames remembered to skip their identical repeats
# Protocols whose messages start with a 16-bit transaction id that says nothing about the
# hosts: a repeated query differs only there (RFC 1035 §4.1.1, RFC 1002 §4.2.1.1).
_ID_FIRST: Final = frozenset({"dns", "mdns", "llmnr", "netbios-ns"})

# Attributes that are not identity: roles become ``role`` rows, a MAC's stated address
# only resolves which host a layer-2 claim is about.
_NOT_IDENTITY: Final = frozenset({ROLE, IP})
_DC_PORTS: Final = {p for _, p in KERBEROS | LDAP | SUPPORTING}

# One kept claim: attribute, value, source -> (confidence, evidence).
Claims = dict[tuple[str, str, str], tuple[float, str]]
Problem = Callable[[int | None, str, str, str | None, str | None, str | None], None]
Attribute = tuple[str, str, str, str, float, str | None]  # as AssetRecord.attributes holds


@dataclass(slots=True)
class _TcpWatch:
    """One TCP connection the IT side looks at."""

    probe: list[tuple[int, StreamData]] = field(default_factory=list)
    probed: list[int] = field(default_factory=lambda: [0, 0])
    spec: ProtocolSpec | None = None
    decoder: ConnectionDecoder | None = None
    fed: list[int] = field(default_factory=lambda: [0, 0])


_SKIP: Final = _TcpWatch()  # a connection the IT side has finished with


class ItSide:
    """IT decoders beside the engine, and what they claimed per host."""

    def __init__(
        self, problem: Problem, tally: Tally | None = None, specs: Iterable[ProtocolSpec] = SPECS
    ) -> None:
        self._problem = problem
        self._tally = tally
        specs = tuple(specs)
        self.tcp_specs = tuple(s for s in specs if "tcp" in s.transports)
        self._udp_by_port: dict[int, ProtocolSpec] = {}
        for s in specs:
            for svc in s.services:
                if svc.transport == "udp":
                    self._udp_by_port.setdefault(svc.port, s)
        self.udp_ports: frozenset[int] = frozenset(self._udp_by_port) | frozenset(_DC_PORTS)
        self._tcp: dict[TcpConnection, _TcpWatch] = {}
        self._udp: dict[UdpFlow, tuple[ProtocolSpec, ConnectionDecoder, list[int]]] = {}
        self._frames: dict[str, FrameDecoder] = {}
        self._dc: dict[int, DomainControllerHint] = {}
        self._served_seen: set[tuple[int, str, str, int]] = set()
        self.by_ip: dict[tuple[str, int], Claims] = {}
        self.by_mac: dict[str, Claims] = {}
        self.counts: Counter[str] = Counter()
        # Datagrams and frames already decoded without a problem: hosts repeat the same
        # announcements and queries all day, and the same bytes claim the same things.
        # Kept as hashes (SipHash with a per-process key: not collidable from the wire).
        self._decoded: set[int] = set()

    def _repeat(self, key: tuple[Any, ...]) -> bool:
        if hash(key) in self._decoded:
            self.counts["repeats_skipped"] += 1
            return True
        return False

    def _remember(self, key: tuple[Any, ...], problems_before: int) -> None:
        if self.counts["malformed"] != problems_before:
            return  # every bad copy is decoded, so that each is counted
        if len(self._decoded) >= MAX_REPEATS:
            self._decoded.clear()
        self._decoded.add(hash(key))

    # -- UDP ---------------------------------------------------------------------------
    def udp(self, flow: UdpFlow, direction: int, pkt: Packet) -> None:
        """One datagram of a flow on an IT port (:attr:`udp_ports`)."""
        if direction == 1 and flow.server_port in _DC_PORTS:
            self._served(flow.vlan, flow.server_ip, "udp", flow.server_port, pkt.ts_ns, pkt.frame)
        live = self._udp.get(flow)
        spec = (
            live[0]
            if live is not None
            else self._udp_by_port.get(flow.server_port) or self._udp_by_port.get(flow.client_port)
        )
        if spec is None:
            return
        body = pkt.payload[2:] if spec.name in _ID_FIRST else pkt.payload
        key = (spec.name, flow.vlan, pkt.src_ip, pkt.dst_ip, direction, body)
        if self._repeat(key):
            return
        if live is None:
            if len(self._udp) >= MAX_LIVE_FLOWS:
                self.counts["flows_not_decoded"] += 1
                return
            live = self._udp[flow] = (spec, spec.factory(flow.endpoints), [0])
            self.counts[f"flows_{spec.name}"] += 1
        spec, dec, seen = live
        if seen[0] >= MAX_UDP_DATAGRAMS:
            self.counts["datagrams_not_decoded"] += 1
            return
        seen[0] += 1
        before = self.counts["malformed"]
        dec.feed(direction, pkt.payload, pkt.frame, pkt.ts_ns)
        self._take(flow.vlan, dec.events(), pkt.frame, spec.name, flow.client_ip, flow.server_ip)
        self._remember(key, before)

    def udp_end(self, flow: UdpFlow) -> None:
        """The flow was folded: its decoder's last events, and it is forgotten."""
        live = self._udp.pop(flow, None)
        if live is not None:
            spec, dec, _ = live
            self._take(flow.vlan, dec.finish(), None, spec.name, flow.client_ip, flow.server_ip)

    # -- TCP ---------------------------------------------------------------------------
    def tcp(
        self, conn: TcpConnection, direction: int, chunks: list[StreamData | StreamGap]
    ) -> None:
        """Stream bytes of a connection no industrial decoder holds: identified from its
        first bytes, then decoded up to :data:`MAX_TCP_BYTES` per direction."""
        w = self._tcp.get(conn)
        if w is _SKIP:
            return
        if w is None:
            if len(self._tcp) >= MAX_LIVE_FLOWS:
                self.counts["connections_not_decoded"] += 1
                return
            w = self._tcp[conn] = _TcpWatch()
        if w.decoder is None:
            gap = False
            for chunk in chunks:
                if isinstance(chunk, StreamGap):
                    gap = True
                elif w.probed[direction] < PROBE_LIMIT:
                    w.probe.append((direction, chunk))
                    w.probed[direction] += len(chunk.data)
            self._identify(conn, w, force=gap)
            return
        self._feed(conn, w, direction, chunks)

    def _identify(self, conn: TcpConnection, w: _TcpWatch, force: bool) -> None:
        client = b"".join(c.data for d, c in w.probe if d == 0)
        server = b"".join(c.data for d, c in w.probe if d == 1)
        found = identify(
            self.tcp_specs,
            "tcp",
            client[:PROBE_LIMIT],
            server[:PROBE_LIMIT],
            conn.server_port,
            conn.client_port,
            force or max(w.probed) >= PROBE_LIMIT,
        )
        if found is None:
            return
        if not isinstance(found, ProtocolSpec):
            self._tcp[conn] = _SKIP
            if client and conn.oriented_by_syn:
                self._not_it(conn, w)
            return
        w.spec, w.decoder = found, found.factory(conn.endpoints)
        self.counts[f"connections_{found.name}"] += 1
        probe, w.probe = w.probe, []
        for d, chunk in probe:
            if self._tcp.get(conn) is _SKIP:
                break
            self._feed(conn, w, d, [chunk])

    def _not_it(self, conn: TcpConnection, w: _TcpWatch) -> None:
        """A connection seen from its handshake whose first bytes are none of the IT
        protocols, on the port of one of them (garbage on 443): a problem to count."""
        for spec in self.tcp_specs:
            if conn.server_port in spec.ports:
                frame = next((c.frame for d, c in w.probe if d == 0), None)
                label = spec.label
                self.counts["not_it"] += 1
                self._problem(
                    frame,
                    spec.name,
                    f"not {label}: traffic on TCP port {conn.server_port} is not {label}",
                    spec.name,
                    conn.client_ip,
                    conn.server_ip,
                )
                return

    def _feed(
        self,
        conn: TcpConnection,
        w: _TcpWatch,
        direction: int,
        chunks: list[StreamData | StreamGap],
    ) -> None:
        dec, spec = w.decoder, w.spec
        assert dec is not None and spec is not None
        for chunk in chunks:
            if isinstance(chunk, StreamGap):
                dec.gap(direction, chunk.nbytes, chunk.frame, chunk.ts_ns)
                continue
            room = MAX_TCP_BYTES - w.fed[direction]
            if room <= 0:
                self.counts["bytes_not_decoded"] += len(chunk.data)
                continue
            data = chunk.data[:room]
            w.fed[direction] += len(data)
            dec.feed(direction, data, chunk.frame, chunk.ts_ns)
            self._take(
                conn.vlan, dec.events(), chunk.frame, spec.name, conn.client_ip, conn.server_ip
            )
        if (isinstance(dec, StreamDecoder) and all(dec.done)) or min(w.fed) >= MAX_TCP_BYTES:
            self._finish_tcp(conn, w)

    def _finish_tcp(self, conn: TcpConnection, w: _TcpWatch) -> None:
        self._tcp[conn] = _SKIP
        if w.decoder is not None and w.spec is not None:
            events = w.decoder.finish()
            self._take(conn.vlan, events, None, w.spec.name, conn.client_ip, conn.server_ip)

    def tcp_end(self, conn: TcpConnection) -> None:
        """The connection was folded: the served-ports hint, the decoder's last events."""
        if conn.server_port in _DC_PORTS and conn.reasm[1].delivered_bytes:
            self._served(conn.vlan, conn.server_ip, "tcp", conn.server_port, conn.stats.last_ts)
        w = self._tcp.pop(conn, None)
        if w is not None and w is not _SKIP:
            self._finish_tcp(conn, w)
            del self._tcp[conn]

    # -- layer 2 -----------------------------------------------------------------------
    def frame(self, pkt: Packet) -> None:
        """A non-IP frame: LLDP (EtherType 0x88CC) or CDP (802.3 SNAP) to their decoder."""
        kind = frame_decoder_for(pkt.ethertype, pkt.payload)
        if kind is None:
            return
        vlan = pkt.vlans[-1] if pkt.vlans else -1
        key = (kind, vlan, pkt.src_mac, pkt.payload)
        if self._repeat(key):
            return
        before = self.counts["malformed"]
        dec = self._frames.get(kind)
        if dec is None:
            dec = self._frames[kind] = FRAME_DECODERS[kind]()
        dec.feed_frame(pkt.src_mac or "", pkt.payload, pkt.frame, pkt.ts_ns)
        self.counts[f"frames_{kind}"] += 1
        events = dec.events()
        if self._tally is not None:
            # A switch that states its management address and its name is a host even
            # when no IP traffic of its own was captured (no packets are counted).
            hosts = self._tally.hosts
            for ev in events:
                if (
                    isinstance(ev, IdentityClaim)
                    and ev.ip
                    and ev.attribute not in _NOT_IDENTITY
                    and (ev.ip, vlan) not in hosts
                ):
                    self._tally.host(ev.ip, vlan, pkt.src_mac, pkt.ts_ns, pkt.ts_ns, 0, True)
        self._take(vlan, events, pkt.frame, kind, None, None)
        self._remember(key, before)

    # -- claims ------------------------------------------------------------------------
    def _served(
        self, vlan: int, ip: str, transport: str, port: int, ts_ns: int, frame: int | None = None
    ) -> None:
        """``ip`` answered on a directory-related port: the domain controller hint (told
        once per host and service: a DNS server answers thousands of times)."""
        key = (vlan, ip, transport, port)
        if key in self._served_seen or len(self._served_seen) >= MAX_TARGETS:
            return
        self._served_seen.add(key)
        hint = self._dc.get(vlan)
        if hint is None:
            hint = self._dc[vlan] = DomainControllerHint()
        hint.served(ip, transport, port, ts_ns)
        self._take(vlan, hint.take(), frame, "", None, None)

    def _take(
        self,
        vlan: int,
        events: list[DecoderEvent] | list[Any],
        frame: int | None,
        protocol: str,
        src: str | None,
        dst: str | None,
    ) -> None:
        for ev in events:
            if isinstance(ev, IdentityClaim):
                self._claim(vlan, ev, frame)
            elif isinstance(ev, Malformed):
                self.counts["malformed"] += 1
                self._problem(ev.frame, protocol, ev.reason, protocol, src, dst)

    def _claim(self, vlan: int, ev: IdentityClaim, frame: int | None) -> None:
        self.counts["claims"] += 1
        said = str(getattr(ev, "evidence", "") or "")
        evidence = (f"frame {frame}: {said}" if frame is not None else said)[:MAX_EVIDENCE]
        if ev.ip:
            target = self.by_ip.get((ev.ip, vlan))
            if target is None:
                if len(self.by_ip) >= MAX_TARGETS:
                    self.counts["claims_dropped"] += 1
                    return
                target = self.by_ip[(ev.ip, vlan)] = {}
        else:
            mac = str(getattr(ev, "mac", "") or "").lower()
            if not mac:
                return
            target = self.by_mac.get(mac)
            if target is None:
                if len(self.by_mac) >= MAX_TARGETS:
                    self.counts["claims_dropped"] += 1
                    return
                target = self.by_mac[mac] = {}
        key = (ev.attribute, ev.value, ev.source)
        before = target.get(key)
        if before is None:
            values = {v for (a, v, _) in target if a == ev.attribute}
            if ev.value not in values and len(values) >= MAX_VALUES:
                self.counts["claims_over_cap"] += 1
                return
        elif before[0] >= ev.confidence:
            return
        target[key] = (ev.confidence, evidence)

    def attributes(
        self, hosts: dict[tuple[str, int], str | None]
    ) -> dict[tuple[str, int], list[Attribute]]:
        """Asset attributes per seen host (``hosts``: (ip, vlan) -> its MAC). A claim
        about an address nobody used is dropped (a DNS answer names many hosts that are
        not on this network); a layer-2 claim goes to the hosts with that MAC or with an
        address the same frames stated for it."""
        out: dict[tuple[str, int], list[Attribute]] = {}
        by_mac: dict[str, list[tuple[str, int]]] = {}
        for key, mac in hosts.items():
            if mac:
                by_mac.setdefault(mac.lower(), []).append(key)
        for key, claims in self.by_ip.items():
            if key in hosts:
                out.setdefault(key, []).extend(_rows(claims))
            else:
                self.counts["claims_unattached"] += len(claims)
        for mac, claims in self.by_mac.items():
            targets = set(by_mac.get(mac, []))
            for (attr, value, _), _c in claims.items():
                if attr == IP:
                    targets |= {k for k in hosts if k[0] == value}
            if not targets:
                self.counts["claims_unattached"] += len(claims)
                continue
            for key in sorted(targets):
                out.setdefault(key, []).extend(_rows(claims))
        self.counts["hosts_named"] = sum(
            1 for rows in out.values() if any(r[1] == "hostname" for r in rows)
        )
        self.counts["hosts_with_claims"] = len(out)
        return out

    def stats(self) -> dict[str, int]:
        """What the IT side decoded, claimed and refused (its caps), for capture stats."""
        return dict(sorted(self.counts.items()))

    @property
    def used(self) -> bool:
        return bool(self.counts)


def _rows(claims: Claims) -> list[Attribute]:
    out: list[Attribute] = []
    for (attr, value, source), (conf, evidence) in sorted(claims.items()):
        if attr == ROLE:
            out.append(("role", value, "observed", source, conf, evidence or None))
        elif attr not in _NOT_IDENTITY:
            out.append(("identity", attr, value, source, conf, evidence or None))
    return out


__all__ = ["ItSide"]
