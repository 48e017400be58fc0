"""PROFINET and IEC 61850 (GOOSE, MMS) through the whole monitor: capture -> engine (with
the fast path, as ``conduit analyze`` runs) -> store -> detection.

On every capture of these protocols in the shared corpus (``icsnpp/profinet/*``,
``iti/profinet/PROFINET-RT-DCP``, ``iti/IEC61850/{GOOSE,MMS}``), the stored operations
and the monitor's own decoder counters agree with the peers, by the same checks the
decoders' own tests make on the decoders alone:

- PROFINET: tshark's DCP frames per source and service, Xid and NameOfStation per
  frame, RT frames per (source, FrameID) and their summaries, alarms, IO-CM calls per
  side with indices and control commands, DCE/RPC packet types
  (:mod:`tests.protocols.test_profinet_tshark`); Zeek ICSNPP's ``profinet_io_cm.log``
  rows (every Request/Response/Ping row is a stored operation, fragments counted);
- MMS: tshark's PDU kind, service, invoke id and names per frame, on conversations the
  monitor stores as ``mms`` (not ``s7comm``: both run on TPKT/COTP port 102);
- GOOSE: one stored operation per control block's first message and per stNum change
  tshark shows.

Frames crafted here cover what the corpus lacks: DCP Set of IP / name / factory reset
and GOOSE simulation raising their alerts, VLAN-tagged GOOSE, a DCP Identify answer
naming a device that then shows in ``conduit assets`` by MAC with vendor and name.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from otconduit.analysis import run as run_module
from otconduit.analysis.engine import Analyzer
from otconduit.analysis.run import analyze_file
from otconduit.capture.pcapwriter import write_pcap
from otconduit.detect.alerts import list_alerts
from otconduit.detect.run import detect_capture
from otconduit.protocols.iec61850 import services as S
from otconduit.protocols.profinet import danger as pn_danger
from otconduit.store import Store, views
from tests.conftest import CORPUS, REPO
from tests.protocols import test_iec61850_goose_tshark as goose_tshark
from tests.protocols import test_iec61850_mms_tshark as mms_tshark
from tests.protocols import test_profinet_tshark as pn_tshark
from tests.protocols import test_profinet_zeek as pn_zeek
from tests.protocols.iec61850_helpers import goose_payload
from tests.protocols.profinet_helpers import dcp_block, dcp_pdu

HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason="../shared/corpus is not present (real ICS captures)"
)

PROFINET_CAPTURES = (
    sorted((CORPUS / "icsnpp" / "profinet").glob("*/*.pcap*"))
    + sorted((CORPUS / "iti" / "profinet").glob("*/*.pcap*"))
    if CORPUS.is_dir()
    else []
)
ICSNPP_CASES = sorted(p.parent for p in (CORPUS / "icsnpp" / "profinet").glob("*/*.pcap*"))
MMS_CAPTURES = sorted((CORPUS / "iti" / "IEC61850" / "MMS").glob("*.pcap"))
GOOSE_CAPTURES = sorted((CORPUS / "iti" / "IEC61850" / "GOOSE").glob("*.pcap"))


@dataclass
class Monitored:
    """One capture as the monitor stored it, and its analyzer's layer-2 decoders."""

    capture: Path
    analyzer: Analyzer
    ops: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    assets: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def op_objects(self) -> list[SimpleNamespace]:
        """Stored operations with the attribute names of :class:`Operation`."""
        return [SimpleNamespace(**o) for o in self.ops]


def monitor(capture: Path, db: Path, *, bulk: bool = True) -> Monitored:
    """``analyze_file`` + detection on ``capture``, keeping the engine's Analyzer."""
    made: list[Analyzer] = []

    class Keeping(Analyzer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "Analyzer", Keeping)
        with Store(db) as store:
            t = time.perf_counter()
            res = analyze_file(store, capture, bulk=bulk)
            seconds = time.perf_counter() - t
            assert res.capture_id is not None
            detect_capture(store, res.capture_id)
            return Monitored(
                capture,
                made[0],
                list(views.operations(store)),
                views.conversations(store),
                views.assets(store),
                list_alerts(store),
                seconds,
            )


_CACHE: dict[Path, Monitored] = {}


def monitored(capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    if capture not in _CACHE:
        _CACHE[capture] = monitor(capture, tmp_path_factory.mktemp("l2") / "m.db")
    return _CACHE[capture]


# -- PROFINET ---------------------------------------------------------------------------
@needs_corpus
@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("capture", PROFINET_CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "check",
    [
        pn_tshark.test_dcp_frames_per_source_and_service,
        pn_tshark.test_dcp_xid_and_station_name_per_frame,
        pn_tshark.test_rt_frames_per_source_and_frame_id,
        pn_tshark.test_alarm_pdus_and_status,
        pn_tshark.test_iocm_calls_agree,
        pn_tshark.test_dcerpc_packet_types,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_profinet_through_the_monitor_agrees_with_tshark(
    capture: Path, check: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    m = monitored(capture, tmp_path_factory)
    case = pn_tshark.Decoded.__new__(pn_tshark.Decoded)
    case.decoder = m.analyzer.layer2.profinet  # the monitor's own decoder and counters
    case.ops = [o for o in m.op_objects() if o.protocol == "profinet"]
    case.rows = [
        dict(zip(pn_tshark.FIELDS, row, strict=True))
        for row in pn_tshark.tshark_fields(capture, pn_tshark.FIELDS, "pn_rt || pn_io || dcerpc")
    ]
    check(case)


@needs_corpus
@pytest.mark.parametrize("case", ICSNPP_CASES, ids=lambda p: p.name)
def test_profinet_zeek_rows_are_stored_operations(
    case: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (pcap,) = [p for p in case.iterdir() if p.suffix in (".pcap", ".pcapng")]
    m = monitored(pcap, tmp_path_factory)
    ops = [o for o in m.op_objects() if "activity_uuid" in (o.detail or {})]
    theirs: Counter[tuple[str, tuple[Any, ...]]] = Counter()
    fragments: Counter[tuple[str, str, int]] = Counter()
    for row in pn_zeek.zeek_rows(case):
        kind = row["packet_type"] or ""
        if kind == "Fragment Acknowledge":
            continue
        activity = pn_zeek._value_uuid(
            row["activity_uuid"] or "", row["integer_encoding"] == "Little Endian"
        )
        seq = int(row["sequence_num"] or 0)
        if kind in ("Request", "Response"):
            fragments[(kind, activity, seq)] += 1
            if row["fragment_num"] != "0":
                continue
        ends = (row["source_h"], int(row["source_p"] or 0))
        ends += (row["destination_h"], int(row["destination_p"] or 0))
        theirs[(kind, (*ends, activity, seq, row["operation_num"]))] += 1
    ours: Counter[tuple[str, tuple[Any, ...]]] = Counter()
    our_fragments: Counter[tuple[str, str, int]] = Counter()
    for op in ops:
        ours.update(pn_zeek._side_rows(op))  # type: ignore[arg-type]
        d = op.detail
        key = (d["activity_uuid"], op.transaction_id or 0)
        if op.request_frame is not None and "request_fragments" in d:
            our_fragments[("Request", *key)] += d["request_fragments"]
        if "response_fragments" in d:
            our_fragments[("Response", *key)] += d["response_fragments"]
    assert ours == theirs
    assert our_fragments == fragments
    # Every IO-CM operation is on a PROFINET UDP conversation.
    udp = {(c["client_ip"], c["server_ip"]) for c in m.conversations if c["protocol"] == "profinet"}
    for op in ops:
        assert (op.src_ip, op.dst_ip) in udp or (op.dst_ip, op.src_ip) in udp


# -- MMS ---------------------------------------------------------------------------------
@needs_corpus
@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("capture", MMS_CAPTURES, ids=lambda p: p.name)
def test_mms_through_the_monitor_agrees_with_tshark(
    capture: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    m = monitored(capture, tmp_path_factory)
    assert {c["protocol"] for c in m.conversations if c["server_port"] == 102} == {"mms"}
    mine: dict[int, Any] = {}
    for op in m.ops:
        if op["protocol"] != "mms":
            continue
        d = op["detail"] or {}
        names = tuple(
            n
            for key in ("variables", "program_invocation", "domain", "semaphore")
            for n in (d[key] if isinstance(d.get(key), list) else [d[key]] if key in d else [])
        )
        tid = op["transaction_id"]
        if op["request_frame"] is not None and "pdu" in d:
            kind = mms_tshark._kind(d["pdu"])
            service = op["function_code"] if kind == S.CONFIRMED_REQUEST else None
            mine[op["request_frame"]] = (kind, service, tid if kind < 8 else None, names)
        if op["response_frame"] is not None and "response_pdu" in d:
            kind = mms_tshark._kind(d["response_pdu"])
            service = d.get("response_service") if kind == S.CONFIRMED_RESPONSE else None
            mine[op["response_frame"]] = (kind, service, tid if kind < 8 else None, ())
    expected = mms_tshark.theirs(capture)
    assert expected
    extra = {f: v for f, v in mine.items() if f not in expected}
    for frame, (kind, *_rest) in extra.items():  # a bare conclude tshark does not take
        assert kind == S.CONCLUDE_REQUEST, frame
    assert {f: v for f, v in mine.items() if f in expected} == expected


# Rules the MMS captures' dangerous requests raise.
MMS_ALERTS = {
    "iec61850_write.pcap": {"process-write"},
    "mms-deleteProgramInvocation.pcap": {"program-modify"},
    "mms-initiateDownloadSequence.pcap": {"program-download"},
    "mms-killRequest.pcap": {"controller-stop"},
    "mms-resetRequest.pcap": {"device-restart"},
    "mms-startRequest.pcap": {"controller-start"},
    "mms-stopRequest.pcap": {"controller-start", "controller-stop"},
}


@needs_corpus
@pytest.mark.parametrize("capture", MMS_CAPTURES, ids=lambda p: p.name)
def test_mms_dangerous_requests_raise_alerts(
    capture: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    m = monitored(capture, tmp_path_factory)
    rules = {a["rule"] for a in m.alerts}
    assert MMS_ALERTS.get(capture.name, set()) <= rules, rules


# -- GOOSE -------------------------------------------------------------------------------
@needs_corpus
@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("capture", GOOSE_CAPTURES, ids=lambda p: p.name)
def test_goose_through_the_monitor_agrees_with_tshark(
    capture: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    expected = goose_tshark.theirs(capture)
    changes: dict[tuple[int, str], int] = defaultdict(int)
    last: dict[tuple[int, str], int] = {}
    for row in expected.values():
        key = (row["appid"], row["gocb_ref"])
        if key not in last or last[key] != row["st"]:
            changes[key] += 1
        last[key] = row["st"]
    m = monitored(capture, tmp_path_factory)
    per_stream: dict[tuple[int, str], int] = defaultdict(int)
    for op in m.ops:
        assert op["protocol"] == "goose"
        per_stream[(op["detail"]["appid"], op["detail"]["gocb_ref"])] += 1
    assert dict(per_stream) == dict(changes)
    frames = sum(c["packets_c2s"] + c["packets_s2c"] for c in m.conversations)
    assert frames == len(expected)
    for c in m.conversations:
        assert (c["transport"], c["protocol"], c["server_port"]) == ("ethernet", "goose", 0x88B8)
    publishers = {c["client_ip"] for c in m.conversations}
    by_ip = {a["ip"]: a for a in m.assets}
    for mac in publishers:  # an IED without IP, by its MAC, named by its control blocks
        asset = by_ip[mac]
        assert asset["mac"] == mac and asset["identity"]["iec61850_ld"]["source"] == "goose"
    assert not [a for a in m.alerts if a["rule"].startswith("goose")]


# -- crafted frames ------------------------------------------------------------------------
PLC = "00:1b:1b:aa:bb:01"  # Siemens OUI
ES = "08:00:06:0a:0b:0c"  # engineering station, Siemens Nixdorf OUI
DCP_MCAST = "01:0e:cf:00:00:00"
GOOSE_MCAST = "01:0c:cd:01:00:01"


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def eth(dst: str, src: str, etype: int, payload: bytes, vlan: int | None = None) -> bytes:
    tag = b"" if vlan is None else struct.pack(">HH", 0x8100, vlan)
    return _mac(dst) + _mac(src) + tag + struct.pack(">H", etype) + payload


def _identify_exchange() -> list[bytes]:
    request = dcp_pdu(0xFEFE, 5, 0, 0x77, dcp_block(0xFF, 0xFF, b"", None), delay=1)
    answer = dcp_pdu(
        0xFEFF,
        5,
        1,
        0x77,
        dcp_block(2, 2, b"plc-press-1")
        + dcp_block(2, 1, b"S7-1500")
        + dcp_block(2, 3, struct.pack(">HH", 0x002A, 0x010E))
        + dcp_block(2, 4, b"\x02\x00"),
    )
    return [eth(DCP_MCAST, ES, 0x8892, request), eth(ES, PLC, 0x8892, answer)]


def _frames(tmp_path: Path, name: str, frames: list[bytes]) -> Path:
    path = tmp_path / name
    write_pcap(path, [(1_700_000_000_000_000_000 + i * 1_000_000, f) for i, f in enumerate(frames)])
    return path


def test_dcp_identify_names_a_device_without_ip(tmp_path: Path) -> None:
    cap = _frames(tmp_path, "dcp.pcap", _identify_exchange())
    m = monitor(cap, tmp_path / "m.db")
    (op,) = m.ops
    assert (op["function"], op["src_ip"], op["dst_ip"]) == ("DCP Identify", ES, PLC)
    (conv,) = [c for c in m.conversations if c["server_ip"] == PLC]
    assert (conv["transport"], conv["protocol"], conv["client_ip"]) == ("ethernet", "profinet", ES)
    assert conv["packets_s2c"] == 1 and conv["functions"] == {"DCP Identify": 1}
    plc = next(a for a in m.assets if a["ip"] == PLC)
    assert plc["mac"] == PLC and plc["mac_vendor"].startswith("Siemens")
    ident = plc["identity"]
    assert ident["name_of_station"]["value"] == "plc-press-1"
    assert ident["vendor"]["value"] == "Siemens" and ident["device_id"]["value"] == "0x010e"
    assert "device_role" in ident
    # the multicast group address is no asset
    assert DCP_MCAST not in {a["ip"] for a in m.assets}


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("conduit")), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, COLUMNS="250"),
        timeout=300,
    )


def test_cli_lists_layer2_assets_and_conversations(tmp_path: Path) -> None:
    goose = eth(GOOSE_MCAST, "00:17:a4:dd:98:1e", 0x88B8, goose_payload(1, 0), vlan=10)
    cap = _frames(tmp_path, "l2.pcap", [*_identify_exchange(), goose])
    db = tmp_path / "cli.db"
    res = _cli("analyze", cap, "--db", db)
    assert res.returncode == 0, res.stderr
    assets = json.loads(_cli("assets", "--db", db, "-f", "json").stdout)
    rows = {a["ip"]: a for a in assets}
    assert rows[PLC]["mac"] == PLC
    assert rows["00:17:a4:dd:98:1e"]["vlan"] == 10
    table = _cli("assets", "--db", db).stdout
    assert PLC in table and "plc-press-1" in table
    convs = json.loads(_cli("conversations", "--db", db, "-f", "json").stdout)
    kinds = {(c["transport"], c["protocol"]) for c in convs}
    assert kinds == {("ethernet", "profinet"), ("ethernet", "goose")}


@pytest.mark.parametrize(
    ("example", "rule"),
    [
        (ex.messages[0][1], r.rule)
        for r in pn_danger.FRAME_RULES
        for ex in r.examples
        if ex.transport == "ethernet"
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_dcp_set_raises_its_rule(example: bytes, rule: str, tmp_path: Path) -> None:
    m = monitor(_frames(tmp_path, "set.pcap", [example]), tmp_path / "m.db")
    assert rule in {a["rule"] for a in m.alerts}


def test_goose_simulation_and_replay_raise_alerts(tmp_path: Path) -> None:
    src = "00:17:a4:dd:98:1e"
    frames = [
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(5, 0)),
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(6, 0)),
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(2, 0)),  # stNum back: replay
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(7, 0, test=True)),  # simulation
    ]
    m = monitor(_frames(tmp_path, "goose.pcap", frames), tmp_path / "m.db")
    rules = {a["rule"] for a in m.alerts}
    assert {"goose-spoofing", "goose-simulation"} <= rules


def test_vlan_tagged_and_untagged_goose_reach_the_decoder(tmp_path: Path) -> None:
    src = "00:17:a4:dd:98:1e"
    frames = [
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(1, 0), vlan=5),
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(2, 0), vlan=5),
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(1, 0, gocb="IED2/LLN0$GO$g")),
    ]
    m = monitor(_frames(tmp_path, "vlan.pcap", frames), tmp_path / "m.db")
    got = {c["vlan"]: c["packets_c2s"] for c in m.conversations}
    assert got == {None: 1, 5: 2}
    assert len(m.ops) == 3


def test_hostile_layer2_frames_are_counted_not_fatal(tmp_path: Path) -> None:
    """Truncated and garbled PROFINET/GOOSE frames: problems, never a crash."""
    frames = [
        eth(DCP_MCAST, ES, 0x8892, b"\xfe"),
        eth(DCP_MCAST, ES, 0x8892, b"\xfe\xfe\x05\x00"),
        eth(GOOSE_MCAST, PLC, 0x88B8, b"\x00\x01\x00\x30\x00\x00\x00\x00\x61\x82\xff"),
        eth(GOOSE_MCAST, PLC, 0x88B8, b""),
        *(eth(DCP_MCAST, ES, 0x8892, bytes([i]) * (i % 60)) for i in range(256)),
    ]
    with Store(tmp_path / "m.db") as store:
        res = analyze_file(store, _frames(tmp_path, "bad.pcap", frames))
        assert res.packets == len(frames)
        problems = views.problem_summary(store)
    assert problems and sum(p["count"] for p in problems) >= 3


# -- fast path ---------------------------------------------------------------------------
def _snapshot(m: Monitored) -> dict[str, Any]:
    ops = sorted(
        ({k: v for k, v in o.items() if k != "capture"} for o in m.ops),
        key=lambda o: (o["ts"], o["request_frame"] or 0, o["response_frame"] or 0, str(o)),
    )
    return {"ops": ops, "conversations": m.conversations, "assets": m.assets}


def corpus_l2_captures() -> Iterator[Path]:
    yield from PROFINET_CAPTURES
    yield from GOOSE_CAPTURES
    yield from MMS_CAPTURES


@needs_corpus
@pytest.mark.parametrize("capture", list(corpus_l2_captures()), ids=lambda p: p.name)
def test_fast_path_on_or_off_stores_the_same(capture: Path, tmp_path: Path) -> None:
    slow = monitor(capture, tmp_path / "slow.db", bulk=False)
    fast = monitor(capture, tmp_path / "fast.db", bulk=True)
    assert _snapshot(fast) == _snapshot(slow)
    assert slow.ops, "no operation stored"


def test_console_shows_a_layer2_device_by_its_mac(tmp_path: Path) -> None:
    from tests.console.conftest import make_env

    goose = eth(GOOSE_MCAST, "00:17:a4:dd:98:1e", 0x88B8, goose_payload(1, 0))
    cap = _frames(tmp_path, "l2.pcap", [*_identify_exchange(), goose])
    db = tmp_path / "console-l2.db"
    with Store(db) as store:
        analyze_file(store, cap)
    env = make_env(db, tmp_path, policy=None)
    try:
        with env.client("viewer") as c:
            page = c.get("/api/assets", params={"q": "plc-press"})
            assert page.status_code == 200, page.text
            assert [a["ip"] for a in page.json()["items"]] == [PLC]
            one = c.get(f"/api/assets/{PLC}")
            assert one.status_code == 200, one.text
            body = one.json()
            asset = body["asset"]
            assert asset["mac"] == PLC and asset["name"] == "plc-press-1"
            assert asset["model"] == "S7-1500" and asset["mac_vendor"].startswith("Siemens")
            convs = body["conversations"]
            assert {(x["client_ip"], x["protocol"]) for x in convs} == {(ES, "profinet")}
    finally:
        env.ctx.close()


MITRE = CORPUS.parent / "reference" / "mitre-ics-attack.json"


@pytest.mark.skipif(not MITRE.is_file(), reason="../shared/reference/mitre-ics-attack.json absent")
def test_rules_of_the_new_protocols_name_live_attack_for_ics_techniques() -> None:
    from otconduit.detect.rules import RULES
    from otconduit.protocols import iec61850, profinet

    bundle = json.loads(MITRE.read_text())
    live = {
        ref["external_id"]
        for o in bundle["objects"]
        if o.get("type") == "attack-pattern"
        and not o.get("revoked")
        and not o.get("x_mitre_deprecated")
        for ref in o.get("external_references", [])
        if ref.get("source_name") in ("mitre-attack", "mitre-ics-attack")
    }
    rules = {r.rule for spec in (profinet.SPEC, iec61850.SPEC) for r in spec.rules}
    rules |= {r.rule for r in pn_danger.FRAME_RULES}
    rules |= {d.id for d in iec61850.SPEC.defines}
    assert {"network-config-change", "device-restart", "goose-spoofing"} <= rules
    for rule in sorted(rules):
        techniques = RULES[rule].techniques
        assert techniques and set(techniques) <= live, (rule, set(techniques) - live)


def _mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        at = rng.randrange(14, max(len(data), 15))  # keep the MACs and EtherType
        if op < 0.5 and at < len(data):
            data[at] = rng.randrange(256)
        elif op < 0.75:
            del data[at:]
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(data)


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_layer2_frames_are_reported_not_fatal(seed: int, tmp_path: Path) -> None:
    """Mutated DCP, alarm-less RT and GOOSE frames through the whole engine (fast path on):
    the capture completes, every frame is counted, and the damage shows as decode
    problems or malformed operations."""
    rng = random.Random(seed)
    src = "00:17:a4:dd:98:1e"
    seeds = [
        *_identify_exchange(),
        *(ex.messages[0][1] for r in pn_danger.FRAME_RULES for ex in r.examples),
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(3, 1), vlan=7),
        eth(GOOSE_MCAST, src, 0x88B8, goose_payload(4, 0, test=True)),
        eth("01:0e:cf:00:01:01", PLC, 0x8892, b"\x80\x00" + bytes(40) + b"\x35\x00\x00\x00"),
    ]
    frames = [_mutate(rng.choice(seeds), rng) for _ in range(400)]
    with Store(tmp_path / "m.db") as store:
        res = analyze_file(store, _frames(tmp_path, "fuzz.pcap", frames))
        assert res.status == "complete" and res.packets == len(frames)
        problems = sum(p["count"] for p in views.problem_summary(store))
        malformed = [o for o in views.operations(store) if o["status"] == "malformed"]
    assert problems + len(malformed) > 0
