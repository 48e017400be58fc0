"""The probe's request bytes as Wireshark reads them: every message a dry run prints is
written to a capture and decoded by tshark, and the fields tshark names must say what
the probe claims to send (never our own decoder judging our own bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.capture.pcapwriter import build_tcp_ipv4_frame, build_udp_ipv4_frame, write_pcap
from otconduit.probe import dialogue
from otconduit.probe.opcua.codec import get_endpoints
from tests.conftest import needs_tshark
from tests.tsharkutil import tshark_fields

pytestmark = [needs_tshark, pytest.mark.tshark]
CLIENT, SERVER = "127.0.99.1", "127.0.99.2"
MAC_C, MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"
T0 = 1_790_000_000_000_000_000


def _pcap(tmp_path: Path, protocol: str, messages: list[bytes], port: int, udp: bool) -> Path:
    frames = []
    seq = 1000
    for i, data in enumerate(messages):
        if udp:
            frame = build_udp_ipv4_frame(MAC_C, MAC_S, CLIENT, SERVER, 40000, port, data)
        else:
            frame = build_tcp_ipv4_frame(
                MAC_C, MAC_S, CLIENT, SERVER, 40000, port, seq, 1, 0x18, data
            )
            seq += len(data)
        frames.append((T0 + i * 1_000_000, frame))
    path = tmp_path / f"{protocol}.pcap"
    write_pcap(path, frames)
    return path


def _plan(protocol: str) -> list[bytes]:
    d = dialogue(protocol, SERVER)
    return [m.data for m in d.plan()]


def test_modbus_read_device_identification(tmp_path: Path) -> None:
    pcap = _pcap(tmp_path, "modbus", _plan("modbus"), 502, udp=False)
    rows = tshark_fields(
        pcap,
        ["mbtcp.trans_id", "mbtcp.unit_id", "modbus.func_code", "modbus.mei",
         "modbus.read_device_id", "modbus.object_id"],
        "modbus",
    )  # fmt: skip
    assert [[c[0] for c in r] for r in rows] == [
        ["1", "255", "43", "14", "2", "0"],  # regular objects from 0
        ["2", "255", "43", "14", "1", "0"],  # the fallback: basic objects
    ]


def test_s7_connect_setup_and_szl_reads(tmp_path: Path) -> None:
    pcap = _pcap(tmp_path, "s7", _plan("s7comm"), 102, udp=False)
    cotp = tshark_fields(pcap, ["cotp.type", "cotp.src-tsap", "cotp.dst-tsap"], "cotp.type == 0x0e")
    assert [[c[0] for c in r] for r in cotp] == [
        ["0x0e", "0x0100", "0x0102"],
        ["0x0e", "0x0100", "0x0200"],  # the fallback called TSAP
    ]
    setup = tshark_fields(
        pcap,
        ["s7comm.header.rosctr", "s7comm.param.func", "s7comm.param.pdu_length",
         "s7comm.param.maxamq_calling"],
        "s7comm.param.func == 0xf0",
    )  # fmt: skip
    assert [[c[0] for c in r] for r in setup] == [["1", "0xf0", "480", "1"]]
    szl = tshark_fields(
        pcap,
        ["s7comm.header.rosctr", "s7comm.param.userdata.funcgroup",
         "s7comm.param.userdata.subfunc", "s7comm.data.userdata.szl_id",
         "s7comm.data.userdata.szl_index"],
        "s7comm.header.rosctr == 7",
    )  # fmt: skip
    got = [[c[0] for c in r] for r in szl]
    assert [r[:3] for r in got] == [["7", "4", "1"], ["7", "4", "1"]]  # CPU functions, read SZL
    assert [int(r[3], 16) for r in got] == [0x0011, 0x001C]
    assert [int(r[4], 16) for r in got] == [0, 0]


def test_enip_list_identity(tmp_path: Path) -> None:
    pcap = _pcap(tmp_path, "enip", _plan("enip"), 44818, udp=False)
    rows = tshark_fields(pcap, ["enip.command", "enip.length", "enip.session"], "enip")
    assert [[c[0] for c in r] for r in rows] == [["0x0063", "0", "0x00000000"]]


def test_bacnet_read_property_and_who_is(tmp_path: Path) -> None:
    pcap = _pcap(tmp_path, "bacnet", _plan("bacnet"), 47808, udp=True)
    rows = tshark_fields(
        pcap,
        ["bvlc.function", "bacnet.control_expect", "bacapp.type", "bacapp.confirmed_service",
         "bacapp.objectType", "bacapp.instance_number", "bacapp.property_identifier",
         "bacapp.invoke_id", "bacapp.unconfirmed_service"],
        "bacapp",
    )  # fmt: skip
    got = [[c[0] if c else "" for c in r] for r in rows]
    # Original-Unicast-NPDU, expecting a reply, Confirmed-Request ReadProperty (12) of the
    # device object (8) with the wildcard instance, vendor-name / model-name / firmware.
    reads = [r for r in got if r[3]]
    assert [r[0] for r in reads] == ["0x0a"] * 3
    assert {r[1] for r in reads} <= {"1", "True"}  # expecting a reply
    assert [(r[2], r[3], r[4], r[5], r[6], r[7]) for r in reads] == [
        ("0", "12", "8", "4194303", "121", "1"),
        ("0", "12", "8", "4194303", "70", "2"),
        ("0", "12", "8", "4194303", "44", "3"),
    ]
    who_is = [r for r in got if r[8]]
    assert [(r[2], r[8]) for r in who_is] == [("1", "8")]  # Unconfirmed-Request Who-Is


def test_opcua_hello_open_get_endpoints_close(tmp_path: Path) -> None:
    d = dialogue("opcua", SERVER)
    msgs = [m.data for m in d.plan()]
    # As sent after an OPN answer that gave channel 7 and token 9.
    msgs[2] = get_endpoints(d.url, 7, 9)  # type: ignore[attr-defined]
    pcap = _pcap(tmp_path, "opcua", msgs, 4840, udp=False)
    rows = tshark_fields(
        pcap,
        ["opcua.transport.type", "opcua.transport.ver", "opcua.transport.endpoint",
         "opcua.servicenodeid.numeric", "opcua.security.spu",
         "opcua.SecurityTokenRequestType", "opcua.MessageSecurityMode",
         "opcua.transport.scid", "opcua.security.tokenid", "opcua.EndpointUrl"],
        "opcua",
    )  # fmt: skip
    got = [[",".join(c) for c in r] for r in rows]
    assert [r[0] for r in got] == ["HEL", "OPN", "MSG", "CLO"]
    assert got[0][1] == "0" and got[0][2] == f"opc.tcp://{SERVER}:4840"
    assert got[1][3] == "446"  # OpenSecureChannelRequest
    assert got[1][4] == "http://opcfoundation.org/UA/SecurityPolicy#None"
    assert int(got[1][5], 0) == 0  # Issue
    assert int(got[1][6], 0) == 1  # MessageSecurityMode None
    assert got[2][3] == "428" and got[2][7] == "7" and got[2][8] == "9"  # GetEndpoints
    assert got[2][9] == f"opc.tcp://{SERVER}:4840"
    assert got[3][3] == "452"  # CloseSecureChannelRequest
