"""LLDP and CDP: row by row against tshark's dissectors on every corpus capture that
carries them, and the device names, descriptions, OS and roles claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.capture.packet import Packet
from otconduit.protocols.it import FRAME_DECODERS, frame_decoder_for
from otconduit.protocols.it.cdp import CdpDecoder, cdp_payload, parse_cdp
from otconduit.protocols.it.claims import ItClaim
from otconduit.protocols.it.lldp import LldpDecoder, Lldpdu, parse_lldpdu

from .it_helpers import captures_with, needs_corpus, needs_tshark, packets, tshark

LLDP_FIELDS = [
    "lldp.chassis.subtype",
    "lldp.chassis.id",
    "lldp.chassis.id.mac",
    "lldp.port.subtype",
    "lldp.port.id",
    "lldp.port.id.mac",
    "lldp.tlv.system.name",
    "lldp.tlv.system.desc",
    "lldp.tlv.system_cap",
    "lldp.tlv.enable_system_cap",
    "lldp.mgn.addr.ip4",
]
CDP_FIELDS = [
    "cdp.deviceid",
    "cdp.platform",
    "cdp.software_version",
    "cdp.portid",
    "cdp.capabilities",
    "cdp.nrgyz.ip_address",
]
LLDP_CAPTURES = captures_with("lldp")
CDP_CAPTURES = captures_with("cdp")

pytestmark = [needs_corpus, pytest.mark.shared]


def _frames(capture: Path, kind: str) -> list[Packet]:
    return [p for p in packets(capture) if frame_decoder_for(p.ethertype, p.payload) == kind]


def lldp_row(du: Lldpdu) -> list[list[str]]:
    def opt(v: object, fmt: str = "{}") -> list[str]:
        return [] if v is None else [fmt.format(v)]

    chassis_mac = du.chassis_subtype == 4
    port_mac = du.port_subtype == 3
    return [
        [str(du.chassis_subtype)],
        [] if chassis_mac else [du.chassis_id.hex()],
        [du.chassis_text] if chassis_mac else [],
        [str(du.port_subtype)],
        [] if port_mac else [du.port_text],
        [du.port_text] if port_mac else [],
        opt(du.system_name),
        opt(du.system_description),
        opt(du.capabilities, "0x{:04x}"),
        opt(du.enabled, "0x{:04x}"),
        [a for a in du.management if "." in a],
    ]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("capture", LLDP_CAPTURES, ids=lambda p: p.name)
def test_lldp_rows_agree_with_tshark(capture: Path) -> None:
    mine = {p.frame: lldp_row(parse_lldpdu(p.payload)) for p in _frames(capture, "lldp")}
    assert mine
    assert mine == tshark(capture, LLDP_FIELDS, "lldp")


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("capture", CDP_CAPTURES, ids=lambda p: p.name)
def test_cdp_rows_agree_with_tshark(capture: Path) -> None:
    mine = {}
    for p in _frames(capture, "cdp"):
        body = cdp_payload(p.payload)
        assert body is not None
        c = parse_cdp(body)
        mine[p.frame] = [
            [c.device_id or ""],
            [c.platform or ""],
            [c.software_version or ""],
            [c.port_id or ""],
            [f"0x{c.capabilities:08x}"],
            [*c.addresses, *c.management_addresses],
        ]
    oracle = tshark(capture, CDP_FIELDS, "cdp")
    for row in oracle.values():
        row[2] = [" ".join(row[2])]  # tshark gives the software version line by line
    assert mine
    assert mine == oracle


def _claims(capture: Path, kind: str) -> list[ItClaim]:
    dec = FRAME_DECODERS[kind]()
    for p in _frames(capture, kind):
        dec.feed_frame(p.src_mac or "", p.payload, p.frame, p.ts_ns)
    events = dec.finish()
    assert all(isinstance(e, ItClaim) for e in events), events
    return [e for e in events if isinstance(e, ItClaim)]


def test_cdp_names_a_cisco_switch() -> None:
    (cap,) = CDP_CAPTURES
    got = {(c.ip, c.mac, c.attribute, c.value) for c in _claims(cap, "cdp")}
    ip, mac = "192.168.10.253", "00:1e:f6:73:59:81"
    assert got == {
        (ip, mac, "hostname", "Ns5gt"),
        (ip, mac, "model", "cisco WS-CE500-24TT"),
        (
            ip,
            mac,
            "software_version",
            "Cisco IOS Software, CE500 Software (CE500-LANBASE-M), Version 12.2(25)SEG4, "
            "RELEASE SOFTWARE (fc1) Copyright (c) 1986-2007 by Cisco Systems, Inc. Compiled "
            "Mon 13-Aug-07 17:34 by yenanh",
        ),
        (ip, mac, "os", "Cisco IOS 12.2(25)SEG4"),
        (ip, mac, "role", "switch"),
        (ip, mac, "ip", ip),
    }


def test_lldp_names_profinet_devices_by_mac() -> None:
    (pn,) = [p for p in LLDP_CAPTURES if p.name.startswith("profinet")]
    got = {(c.ip, c.mac, c.attribute, c.value) for c in _claims(pn, "lldp")}
    desc = "Siemens AG SIMATIC S7 MULTIPORT SCALANCE X 200 FAM"
    assert ("", "00:0e:8c:ef:75:c9", "hostname", "siemens-x208-switch") in got
    assert ("", "00:0e:8c:ef:75:c9", "description", desc) in got
    # A stated management address makes the claims about an IP as well as the MAC.
    assert ("192.168.1.2", "00:09:91:43:e0:68", "hostname", "versamax-pns11") in got
    assert ("192.168.1.2", "00:09:91:43:e0:68", "ip", "192.168.1.2") in got
    # "station only" is no role; a 0.0.0.0 management address names no one
    assert not {a for _, _, a, _ in got} & {"role", "os"}
    assert {ip for ip, *_ in got} == {"", "192.168.1.2"}


def test_frame_dispatch() -> None:
    assert frame_decoder_for(0x88CC, b"") == "lldp"
    assert frame_decoder_for(0, bytes.fromhex("aaaa0300000c2000")) == "cdp"
    assert frame_decoder_for(0, bytes.fromhex("aaaa0300000c2004")) is None  # DTP
    assert frame_decoder_for(0x0800, b"") is None
    assert set(FRAME_DECODERS.values()) == {LldpDecoder, CdpDecoder}
