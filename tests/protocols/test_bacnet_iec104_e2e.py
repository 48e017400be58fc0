"""BACnet/IP and IEC 104 through the whole engine (registry -> analysis -> store ->
detection) on every capture of theirs in the shared corpus: conversations carry the
protocol, stored operations match tshark's count per function, identity reaches the
asset summary, and the dangerous operations the captures hold raise their rules."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.detect.alerts import list_alerts
from otconduit.detect.run import detect_capture
from otconduit.protocols.bacnet.classify import BVLC_BASE, NETWORK_BASE, UNCONFIRMED_BASE
from otconduit.protocols.iec104 import types as T
from otconduit.store import Store, views
from tests.conftest import CORPUS, needs_shared
from tests.tsharkutil import tshark_fields

pytestmark = [
    needs_shared,
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]

BACNET = [
    CORPUS / "iti/BACnet/bacnet_test.pcap",
    CORPUS / "icsnpp/bacnet/bacnet_example/bacnet_example.pcap",
]
IEC104 = [
    CORPUS / "iti/IEC60870-5-104/090813_diverse.pcap",
    CORPUS / "iti/IEC60870-5-104/TestDissectIec104.pcap",
]
# Rules each capture's dangerous operations raise (source of the operation).
ALERTS = {
    "bacnet_test.pcap": {("bacnet-foreign-device", "10.1.1.167")},
    "bacnet_example.pcap": {
        ("identity-sweep", "172.20.32.200"),  # Who-Is broadcasts
        # 120 ReinitializeDevice abort-restore with guessed passwords after a BVLC length
        # that does not cover them (decoded on UDP 47808, reported malformed)
        ("program-download", "172.20.32.250"),
        ("malformed-pdu", "172.20.32.250"),
    },
    "090813_diverse.pcap": {("direct-operate", "10.0.0.10"), ("iec104-interrogation", "10.0.0.10")},
    "TestDissectIec104.pcap": {
        ("direct-operate", "172.27.248.109"),
        ("iec104-interrogation", "172.27.248.109"),
        ("time-set", "172.27.248.109"),
    },
}
_BVLC_REQUESTS = frozenset({0x01, 0x02, 0x05, 0x06, 0x08})  # BDT/FDT management, register
_NOT_REQUESTS = frozenset({7, 9, 10})  # act con, deact con, act term: fold into a request
_U_ACTS = {0x01: "STARTDT", 0x04: "STOPDT", 0x10: "TESTFR"}  # tshark's utype (bits >> 2)


def _analyze(tmp_path: Path, capture: Path) -> dict[str, Any]:
    with Store(tmp_path / "e2e.db") as store:
        res = analyze_file(store, capture)
        assert res.capture_id is not None
        detect_capture(store, res.capture_id)
        return {
            "conversations": views.conversations(store),
            "operations": list(views.operations(store)),
            "assets": views.assets(store),
            "alerts": list_alerts(store),
        }


def _bacnet_tshark(capture: Path) -> Counter[int]:
    """Function codes of the operations tshark's dissection implies: a confirmed request
    (segments counted apart), an unconfirmed service, a network layer message, a BVLL
    management request."""
    rows = tshark_fields(
        capture,
        ["bvlc.function", "bacnet.mesgtyp", "bacapp.type", "bacapp.confirmed_service",
         "bacapp.unconfirmed_service"],
        "bvlc",
    )  # fmt: skip
    out: Counter[int] = Counter()
    for bvlc, mesg, kind, confirmed, unconfirmed in rows:
        out.update(BVLC_BASE + int(v, 16) for v in bvlc if int(v, 16) in _BVLC_REQUESTS)
        out.update(NETWORK_BASE + int(v, 0) for v in mesg)
        for k in (int(v) for v in kind):
            if k == 0:
                out[int(confirmed[0])] += 1
            elif k == 1:
                out[UNCONFIRMED_BASE + int(unconfirmed[0])] += 1
    return out


def _iec104_tshark(capture: Path) -> Counter[str]:
    """Operation names tshark's dissection implies: every ASDU of an IEC 104 type that
    is not a confirmation or termination (those complete their activation's operation),
    and every STARTDT/STOPDT/TESTFR act."""
    rows = tshark_fields(
        capture,
        ["iec60870_104.utype", "iec60870_asdu.typeid", "iec60870_asdu.causetx"],
        "iec60870_104 || iec60870_asdu",
    )
    out: Counter[str] = Counter()
    for utype, types, causes in rows:
        out.update(_U_ACTS[int(v, 16)] for v in utype if int(v, 16) in _U_ACTS)
        for t, c in zip(types, causes, strict=False):
            if int(t) in T.TYPE_NAMES and int(c) not in _NOT_REQUESTS:
                out[T.type_name(int(t))] += 1
    return out


@pytest.mark.parametrize("capture", BACNET, ids=lambda p: p.name)
def test_bacnet_end_to_end(tmp_path: Path, capture: Path) -> None:
    got = _analyze(tmp_path, capture)
    bacnet = {
        frozenset({c["client_ip"], c["server_ip"]})
        for c in got["conversations"]
        if c["protocol"] == "bacnet"
    }
    rows = tshark_fields(capture, ["ip.src", "ip.dst"], "bvlc")
    assert bacnet == {frozenset({src[0], dst[0]}) for src, dst in rows}
    ops = got["operations"]
    assert {o["protocol"] for o in ops} == {"bacnet"}
    assert Counter(o["function_code"] for o in ops) == _bacnet_tshark(capture)
    assert _rules(got) >= ALERTS[capture.name]


def test_bacnet_identity_reaches_the_asset(tmp_path: Path) -> None:
    got = _analyze(tmp_path, BACNET[0])
    (nae,) = [a for a in got["assets"] if a["ip"] == "10.1.1.165"]
    assert (nae["vendor"], nae["model"], nae["firmware"], nae["name"]) == (
        "Johnson Controls, Inc.",  # vendor-identifier 5 (the device's vendor-name: JCI)
        "MS-NAE4510-2",
        "5.1.0.4400",
        "KBRNAE",
    )
    assert nae["identity"]["vendor_name"]["value"] == "JCI" and not nae["conflicts"]


@pytest.mark.parametrize("capture", IEC104, ids=lambda p: p.name)
def test_iec104_end_to_end(tmp_path: Path, capture: Path) -> None:
    got = _analyze(tmp_path, capture)
    assert {c["protocol"] for c in got["conversations"] if c["server_port"] == 2404} == {"iec104"}
    ops = got["operations"]
    assert {o["protocol"] for o in ops} == {"iec104"}
    assert Counter(o["function"] for o in ops) == _iec104_tshark(capture)
    assert _rules(got) >= ALERTS[capture.name]


def _rules(got: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["rule"], a["src_ip"]) for a in got["alerts"]}


def test_bacnet_announcements_tie_break_and_broadcast(tmp_path: Path) -> None:
    """bacnet_example.pcap: 31 devices broadcast I-Am (announcing themselves is not an
    identity sweep: only the Who-Is sender is one); the host sending ReinitializeDevice
    to devices on 47808 from 47808 is the client of those conversations (it spoke
    first, as tshark's frame order shows); the Who-Is broadcast address is no asset."""
    capture = BACNET[1]
    got = _analyze(tmp_path, capture)
    sweeps = {a["src_ip"] for a in got["alerts"] if a["rule"] == "identity-sweep"}
    assert sweeps == {"172.20.32.200"}
    first = tshark_fields(capture, ["ip.src"], "bacapp.confirmed_service == 20")[0][0][0]
    assert first == "172.20.32.250"
    reinit = [c for c in got["conversations"] if "reinitialize_device" in c["functions"]]
    assert len(reinit) == 22 and {c["client_ip"] for c in reinit} == {first}
    assets = {a["ip"] for a in got["assets"]}
    assert "172.20.32.255" not in assets and {"172.20.32.200", "172.20.32.250"} <= assets
    # 90 guesses refused, then 30 restores carried out: the alerts say high, not "refused"
    downloads = [a for a in got["alerts"] if a["rule"] == "program-download"]
    assert len(downloads) == 22 and {a["severity"] for a in downloads} == {"high"}
