"""Industrial traffic without IP, and PROFINET IO-CM across UDP flows, for the engine.

PROFINET (EtherType 0x8892: DCP, alarms, RT cyclic frames) and IEC 61850 GOOSE
(0x88B8, GSE management 0x88B9) run on Ethernet itself, so they never reach the
engine's TCP/UDP paths. :class:`Layer2` takes those frames (behind any VLAN tags, as
the packet parser hands them over: innermost EtherType, MACs, what follows the
EtherType) to the capture-wide :class:`~otconduit.protocols.profinet.ProfinetDecoder`
and :class:`~otconduit.protocols.iec61850.GooseMonitor`, and turns what they find into
the records IP traffic makes.

Conversations are keyed like IP ones, with MAC addresses for IP addresses and the
EtherType for the server port: (``"ethernet"``, sender MAC, receiver MAC, EtherType,
VLAN, protocol). An analyst asks of layer-2 traffic who talks to whom and what they
say, so one conversation per MAC pair and protocol, with its functions counted (DCP
Identify, GOOSE state changes, RT cyclic streams ...): a GOOSE publisher's control
blocks, or an IO device's cyclic frame ids, are the operations' ``unit`` and detail,
the way a Modbus unit or an S7 data block is, rather than conversations of their own,
which would only split one relationship into many rows. Frames go to the conversation
of the pair in either orientation, so a DCP answer counts on the requester's
conversation with that device (the Operation pairs them that way); multicast
requests (DCP Identify to 01:0e:cf:00:00:00, GOOSE to 01:0c:cd:01:..) have a
conversation of their own with the group address as receiver.

Devices without IP become assets keyed by their MAC (the asset's ``ip`` holds the MAC
and ``mac`` repeats it): the store's assets are unique per (ip, VLAN) and the
operations of these devices already carry MACs where IP addresses would be, so asset,
operations and conversations join on the same text and no table changes. A MAC that
also shows up with an IP address is folded into that IP asset instead (its DCP
name of station, roles and GOOSE control blocks with it).

IO-CM (DCE/RPC over UDP) pairs calls by activity, not by UDP ports: a device answers a
Connect sent to port 34964 from another port. Every PROFINET UDP flow the registry
recognises therefore feeds this capture's one IO-CM decoder (through :meth:`bind`,
which gives the engine a spec whose factory does so), and each operation goes to the
UDP flow its request travelled on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Self

from otconduit.analysis.connections import ConnStats, UdpFlow
from otconduit.analysis.tally import HostSeen
from otconduit.capture.packet import Packet
from otconduit.inventory.macs import is_group_mac
from otconduit.model import Operation
from otconduit.protocols import iec61850, profinet
from otconduit.protocols.base import DecoderEvent, Endpoints, Pending, ProtocolSpec
from otconduit.protocols.iec61850 import GooseMonitor
from otconduit.protocols.profinet import ProfinetDecoder
from otconduit.store.sqlite import AssetRecord

if TYPE_CHECKING:
    from otconduit.analysis.engine import Analyzer

TRANSPORT: Final = "ethernet"
ETHERTYPES: Final = profinet.ETHERTYPES | iec61850.ETHERTYPES
PROTOCOL_OF: Final = {
    **dict.fromkeys(profinet.ETHERTYPES, "profinet"),
    **dict.fromkeys(iec61850.ETHERTYPES, "goose"),
}
ETHERTYPE_OF: Final = {"profinet": profinet.ETHERTYPE_PROFINET, "goose": iec61850.ETHERTYPE_GOOSE}

L2Key = tuple[str, str, int, int]  # sender MAC, receiver MAC, EtherType, VLAN (-1: none)
UdpKey = tuple[str, int, str, int, int]


class Layer2:
    """One capture's layer-2 industrial traffic and PROFINET IO-CM, for an Analyzer."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.a = analyzer
        self.profinet = ProfinetDecoder()
        self.goose = GooseMonitor()
        self.flows: dict[L2Key, UdpFlow] = {}
        self.iocm_flows: dict[UdpKey, UdpFlow] = {}  # PROFINET UDP flows, folded ones too
        self.iocm_vlans: set[int] = set()
        self._strays: dict[UdpKey, UdpFlow] = {}
        self.frames = 0
        self._finished = False

    # -- wiring --------------------------------------------------------------------------
    def bind(self, specs: Sequence[ProtocolSpec]) -> tuple[ProtocolSpec, ...]:
        """``specs`` with PROFINET's per-flow factory replaced by one feeding this
        capture's IO-CM decoder (cross-flow pairing)."""
        return tuple(
            dataclasses.replace(s, factory=self._iocm_factory)
            if s.name == profinet.SPEC.name
            else s
            for s in specs
        )

    def _iocm_factory(self, endpoints: Endpoints) -> _SharedIoCm:
        return _SharedIoCm(self, endpoints)

    # -- frames --------------------------------------------------------------------------
    def wants(self, pkt: Packet) -> bool:
        return pkt.ethertype in ETHERTYPES and pkt.src_mac is not None

    def frame(self, pkt: Packet) -> None:
        """One PROFINET or GOOSE frame (``wants`` said so)."""
        src = pkt.src_mac or ""
        dst = pkt.dst_mac or ""
        vlan = pkt.vlans[-1] if pkt.vlans else -1
        ts = pkt.ts_ns
        self.frames += 1
        self._host(src, vlan, ts, True)
        if dst and not is_group_mac(dst):
            self._host(dst, vlan, ts, False)
        etype = pkt.ethertype
        tag = None if vlan < 0 else vlan
        if etype in profinet.ETHERTYPES:
            self.profinet.feed_frame(etype, src, dst, pkt.payload, pkt.frame, ts, tag)
            events = self.profinet.events()
        else:
            self.goose.feed_frame(etype, src, dst, pkt.payload, pkt.frame, ts, tag)
            events = self.goose.events()
        # Operations first: a DCP answer's operation opens (requester, device), and the
        # answer's frame then counts on it.
        rest: list[DecoderEvent] = []
        for ev in events:
            if isinstance(ev, Operation):
                self.a._events(self._owner(ev) or self._stray(ev), [ev])
            else:
                rest.append(ev)
        flow, direction = self._flow(src, dst, etype, vlan, PROTOCOL_OF[etype], ts)
        if rest:
            self.a._events(flow, rest)
        st = flow.stats
        st.packets[direction] += 1
        st.bytes[direction] += pkt.wirelen
        st.last_ts = max(st.last_ts, ts)

    def _host(self, mac: str, vlan: int, ts: int, sending: bool) -> None:
        """A device seen by its MAC (the tally takes unicast IP addresses only)."""
        hosts = self.a.tally.hosts
        if (mac, vlan) not in hosts and not is_group_mac(mac):
            hosts[(mac, vlan)] = HostSeen(ts, ts)
        self.a.tally.host(mac, vlan, mac, ts, ts, 1, sending)

    def _flow(
        self, src: str, dst: str, etype: int, vlan: int, protocol: str, ts: int
    ) -> tuple[UdpFlow, int]:
        """The conversation of a MAC pair (either orientation), and the direction."""
        flow = self.flows.get((src, dst, etype, vlan))
        if flow is not None:
            return flow, 0
        flow = self.flows.get((dst, src, etype, vlan))
        if flow is not None:
            return flow, 1
        flow = UdpFlow(src, 0, dst, etype, vlan, ConnStats(first_ts=ts, last_ts=ts))
        flow.transport = TRANSPORT
        flow.protocol = protocol
        self.flows[(src, dst, etype, vlan)] = flow
        return flow, 0

    # -- events --------------------------------------------------------------------------
    def route(self, events: list[DecoderEvent], flow: UdpFlow) -> list[DecoderEvent]:
        """Of what the IO-CM decoder produced while ``flow`` fed it, hand the operations
        of other flows (a Connect answered from another port belongs to the flow its
        request used) to the engine on those; return the rest, ``flow``'s own."""
        mine: list[DecoderEvent] = []
        for ev in events:
            owner = self._owner(ev) if isinstance(ev, Operation) else None
            if owner is None or owner is flow:
                mine.append(ev)
            else:
                self.a._events(owner, [ev])
        return mine

    def _owner(self, op: Operation) -> UdpFlow | None:
        """The conversation an operation belongs to: its MAC pair's for layer 2, the UDP
        flow of its request for IO-CM (None: not known)."""
        detail = op.detail or {}
        if detail.get("layer") == "ethernet":
            etype = ETHERTYPE_OF[op.protocol]
            vlan = detail.get("vlan", -1)
            flow, _ = self._flow(op.src_ip, op.dst_ip, etype, vlan, op.protocol, op.ts_ns)
            return flow
        for vlan in self.iocm_vlans:
            for key in (
                (op.src_ip, op.src_port, op.dst_ip, op.dst_port, vlan),
                (op.dst_ip, op.dst_port, op.src_ip, op.src_port, vlan),
            ):
                found = self.iocm_flows.get(key)
                if found is not None:
                    return found
        return None

    def iocm_flow(self, endpoints: Endpoints) -> UdpFlow | None:
        """The engine's UDP flow with these endpoints (just decided PROFINET): looked up
        on the VLANs PROFINET flows used so far, else searched for (once per VLAN)."""
        e = endpoints
        udp = self.a.udp
        for vlan in (*self.iocm_vlans, -1):
            found = udp.get((e.client_ip, e.client_port, e.server_ip, e.server_port, vlan))
            if found is not None:
                return found
        for key, flow in udp.items():
            if key[:4] == (e.client_ip, e.client_port, e.server_ip, e.server_port):
                return flow
        return None

    # -- end -----------------------------------------------------------------------------
    def finish(self) -> None:
        """End of capture: unanswered requests, RT stream summaries; then the layer-2
        conversations join the engine's."""
        if self._finished:
            return
        self._finished = True
        for ev in [*self.profinet.finish(), *self.goose.finish()]:
            owner = self._owner(ev) if isinstance(ev, Operation) else None
            if owner is None:
                owner = self._stray(ev)
            self.a._events(owner, [ev])
        for flow in self.flows.values():
            self.a._accumulate(TRANSPORT, flow, flow.protocol or "unknown", self.a.conv_acc)
        self._publishers_serve()
        for flow in self._strays.values():
            self.a._accumulate(flow.transport, flow, flow.protocol or "unknown", self.a.conv_acc)

    def _publishers_serve(self) -> None:
        """A GOOSE operation runs from its publisher to a group address, so the tally
        counts the publisher as a client; it is the IED whose data subscribers take:
        count it as serving (``goose/server``, a controller's role, not an HMI's)."""
        for (_ip, _vlan, proto), b in self.a.tally.behaviour.items():
            if proto == "goose" and b.operations_sent:
                b.operations_served += b.operations_sent
                b.clients_served |= b.servers_polled
                b.operations_sent = 0
                b.servers_polled = set()
                b.classes_sent = {}

    def _stray(self, ev: DecoderEvent) -> UdpFlow:
        """A flow for what has no conversation at the end: an IO-CM call whose UDP flow
        was never followed, an identity claim or problem raised by the end itself."""
        if isinstance(ev, Operation):
            key = (ev.src_ip, ev.src_port, ev.dst_ip, ev.dst_port, -1)
            transport = "udp"
        elif self.flows:
            return next(iter(self.flows.values()))
        elif self.iocm_flows:
            return next(iter(self.iocm_flows.values()))
        else:
            key, transport = ("", 0, "", 0, -1), TRANSPORT
        flow = self._strays.get(key)
        if flow is None:
            flow = UdpFlow(*key, ConnStats(first_ts=ev.ts_ns or 0, last_ts=ev.ts_ns or 0))
            flow.transport = transport
            flow.protocol = getattr(ev, "protocol", None) or "profinet"
            flow.stats.connections = 0
            self._strays[key] = flow
        return flow

    def assets(self, records: list[AssetRecord]) -> list[AssetRecord]:
        """Fold MAC-keyed assets into the IP asset with the same MAC, where there is one."""
        by_mac: dict[str, AssetRecord] = {}
        for r in records:
            if r.mac and r.ip != r.mac:
                by_mac.setdefault(r.mac, r)
        out: list[AssetRecord] = []
        for r in records:
            host = by_mac.get(r.mac or "") if r.ip == r.mac else None
            if host is None:
                out.append(r)
                continue
            host.first_seen = min(host.first_seen, r.first_seen)
            host.last_seen = max(host.last_seen, r.last_seen)
            host.packets_sent += r.packets_sent
            host.packets_received += r.packets_received
            have = set(host.attributes)
            host.attributes += [a for a in r.attributes if a not in have]
        return out


class _SharedIoCm:
    """A PROFINET UDP flow's decoder: its datagrams go to the capture's one IO-CM
    decoder, whose operations go to the flows their requests used."""

    def __init__(self, layer2: Layer2, endpoints: Endpoints) -> None:
        self.l2 = layer2
        self.endpoints = endpoints
        self.flow: UdpFlow | None = None

    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        e = self.endpoints
        if self.flow is None:
            self.flow = self.l2.iocm_flow(e)
            if self.flow is not None:
                key = (e.client_ip, e.client_port, e.server_ip, e.server_port, self.flow.vlan)
                self.l2.iocm_flows[key] = self.flow
                self.l2.iocm_vlans.add(self.flow.vlan)
        client, server = (e.client_ip, e.client_port), (e.server_ip, e.server_port)
        src, dst = (client, server) if direction == 0 else (server, client)
        self.l2.profinet.feed_datagram(src[0], src[1], dst[0], dst[1], data, frame, ts_ns)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        """Never called for UDP."""

    def events(self) -> list[DecoderEvent]:
        events = self.l2.profinet.events()
        if self.flow is None:
            return events
        return self.l2.route(events, self.flow)

    def finish(self) -> list[DecoderEvent]:
        """Calls stay open in the shared decoder until the capture ends."""
        return []

    def quiescent(self) -> bool:
        return bool(self.l2.profinet.iocm.idle)

    def export_state(self) -> None:
        return None

    def resume(self, state: object, pending: Sequence[Pending]) -> None:
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def fork(self) -> Self:
        return type(self)(self.l2, self.endpoints)


__all__ = ["ETHERTYPES", "TRANSPORT", "Layer2"]
