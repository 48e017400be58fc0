"""PROFINET IO (IEC 61158-5/6-10, IEC 61784-2): DCP, alarms and RT cyclic frames on
Ethernet (EtherType 0x8892), and IO context management over connectionless DCE/RPC
(UDP 34964 and the ports it hands out).

Public API::

    SPEC                     ProtocolSpec "profinet": IO-CM per UDP flow (verdict, factory,
                             dangerous operations); the engine's layer 2
                             (:mod:`otconduit.analysis.layer2`) takes the Ethernet frames
    ProfinetDecoder()        a whole capture: feed_frame(ethertype, src_mac, dst_mac,
                             payload, frame, ts_ns, vlan) for layer 2, feed_datagram(src_ip,
                             src_port, dst_ip, dst_port, payload, frame, ts_ns) for IO-CM;
                             events(), finish(); rt (counters per (source MAC, FrameID)),
                             dcp_counts, rta_counts, iocm.iocrs (FrameIDs an AR set up)
    IoCmDecoder()            IO-CM alone, pairing calls across UDP flows
    IoCmFlowDecoder(ep)      IO-CM as a ConnectionDecoder for one UDP flow
    parse_dcp / parse_rpc / parse_rta / parse_body   the layers on their own

Operations of layer-2 services carry MAC addresses where IP addresses would be (ports 0,
``detail["layer"] == "ethernet"``). Operation ``function_code`` ranges are in
:mod:`.frames`.
"""

from otconduit.model import OpClass
from otconduit.protocols.base import ProtocolSpec, Service
from otconduit.protocols.profinet import danger
from otconduit.protocols.profinet.alarms import RtaPdu, parse_rta
from otconduit.protocols.profinet.blocks import IocmBody, parse_body
from otconduit.protocols.profinet.dcp import DcpPdu, parse_dcp
from otconduit.protocols.profinet.decoder import ProfinetDecoder, RtStream
from otconduit.protocols.profinet.detect import verdict
from otconduit.protocols.profinet.frames import ETHERTYPE_PROFINET
from otconduit.protocols.profinet.iocm import IoCmDecoder, IoCmFlowDecoder, factory
from otconduit.protocols.profinet.rpc import RpcHeader, parse_rpc

PNIO_CM_PORT = 34964
ETHERTYPES = frozenset({ETHERTYPE_PROFINET})

SPEC = ProtocolSpec(
    name="profinet",
    transports=frozenset({"udp"}),
    ports=frozenset({PNIO_CM_PORT}),
    verdict=verdict,
    factory=factory,
    title="PROFINET IO",
    # tshark's dissector names (pn_io, pn_dcp, pn_rt) and Zeek ICSNPP's log name too.
    aliases=(
        *("pn", "pnio", "profinet-io", "pn-io", "pn-dcp", "pn-rt", "profinet-dcp"),
        *("pn_io", "pn_dcp", "pn_rt", "profinet_io_cm"),
    ),
    services=(Service("udp", PNIO_CM_PORT),),
    cleartext_control=True,
    layers=("dcerpc", "pn-dcp", "pn-rta", "pn-rt"),
    operation_classes=frozenset(OpClass) - {OpClass.FIRMWARE, OpClass.PROGRAM},
    identity_sources=frozenset({"pn_dcp", "pn_iocm", "pn_im0"}),
    classify=danger.classify,
    detail_keys=danger.DETAIL_KEYS,
    rules=danger.RULES,
)

__all__ = [
    "ETHERTYPES",
    "ETHERTYPE_PROFINET",
    "PNIO_CM_PORT",
    "SPEC",
    "DcpPdu",
    "IoCmDecoder",
    "IoCmFlowDecoder",
    "IocmBody",
    "ProfinetDecoder",
    "RpcHeader",
    "RtStream",
    "RtaPdu",
    "factory",
    "parse_body",
    "parse_dcp",
    "parse_rpc",
    "parse_rta",
    "verdict",
]
