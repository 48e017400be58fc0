"""The plant on loopback: real servers and clients, a capture, labels checked by tshark.

One accelerated ``mixed`` run (every scenario) is shared by most tests; tshark is the
referee that the traffic each label describes is really in the capture. A second, short
``normal`` run is stopped with SIGINT to check the clean shutdown.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from otconduit.lab import addresses as A
from otconduit.lab.plant import check_ports_free
from otconduit.lab.sniffer import capture_unavailable_reason, read_pcap
from tests.tsharkutil import tshark_fields

REASON = capture_unavailable_reason()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
    pytest.mark.skipif(os.geteuid() != 0, reason="ports 102/502 need root"),
]
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

DURATION, SPEED, SEED = 16, 20, 7
FIELDS = [
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags.syn",
    "tcp.flags.ack",
    "frame.protocols",
    "modbus.func_code",
    "modbus.regval_uint16",
    "s7comm.header.rosctr",
    "s7comm.param.func",
    "modbus.data",
    "opcua.servicenodeid.numeric",
]


@dataclass
class Frame:
    t: float
    src: str
    dst: str
    sport: int
    dport: int
    syn: bool
    ack: bool
    protos: str
    fc: list[int]
    regs: list[int]
    rosctr: list[int]
    s7func: list[int]
    data: list[str]
    ua: list[int]  # OPC UA service encoding ids (673 WriteRequest, ...)


@dataclass
class Run:
    pcap: Path
    labels: list[dict[str, Any]]
    summary: dict[str, Any]
    meter_reads: list[dict[str, float]]
    returncode: int


def _int(v: str) -> int:
    return int(v, 0)


def start_plant(tmp: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m otconduit.lab`` and wait for its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "otconduit.lab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if sel.select(0.5):
                line = proc.stdout.readline()
                if line.startswith("ready:"):
                    return proc, line
                if not line:
                    break
        proc.kill()
        _out, err = proc.communicate(timeout=10)
        pytest.fail(f"plant did not become ready: {err[-2000:]}")
    finally:
        sel.close()


def read_meter(ip: str) -> dict[str, float]:
    """Read SDM630 registers like a historian would, decode the float32 pairs with struct."""
    client = ModbusTcpClient(ip, port=502, source_address=(A.HISTORIAN.ip, 0), timeout=2)
    assert client.connect()
    try:
        block = client.read_input_registers(0x0000, count=0x36, device_id=1).registers
        tail = client.read_input_registers(0x0046, count=4, device_id=1).registers
        total = client.read_input_registers(0x0156, count=2, device_id=1).registers
    finally:
        client.close()

    def f(words: list[int], i: int) -> float:
        return float(struct.unpack(">f", struct.pack(">HH", words[i], words[i + 1]))[0])

    return {
        "v1": f(block, 0x00),
        "v2": f(block, 0x02),
        "v3": f(block, 0x04),
        "i1": f(block, 0x06),
        "p1": f(block, 0x0C),
        "p2": f(block, 0x0E),
        "p3": f(block, 0x10),
        "ptotal": f(block, 0x34),
        "freq": f(tail, 0),
        "import_kwh": f(tail, 2),
        "total_kwh": f(total, 0),
    }


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("plant")
    pcap, labels = tmp / "plant.pcap", tmp / "labels.json"
    args = ["--duration", str(DURATION), "--speed", str(SPEED), "--seed", str(SEED)]
    args += ["--scenario", "mixed", "--pcap", str(pcap), "--labels", str(labels), "--json"]
    proc, _ready = start_plant(tmp, *args)
    reads = []
    try:
        time.sleep(1.0)
        for ip in (A.METER_1.ip, A.METER_2.ip):
            reads.append(read_meter(ip))
        time.sleep(6.0)
        reads.append(read_meter(A.METER_1.ip))
        out, err = proc.communicate(timeout=DURATION + 40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return Run(pcap, json.loads(labels.read_text()), json.loads(out), reads, proc.returncode)


@pytest.fixture(scope="module")
def frames(mixed_run: Run) -> list[Frame]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    rows = tshark_fields(
        mixed_run.pcap, FIELDS, "tcp", extra=["-o", "tcp.desegment_tcp_streams:TRUE"]
    )
    out = []
    for r in rows:
        out.append(
            Frame(
                t=float(r[0][0]),
                src=r[1][0],
                dst=r[2][0],
                sport=int(r[3][0]),
                dport=int(r[4][0]),
                syn=r[5] == ["1"] or r[5] == ["True"],
                ack=r[6] == ["1"] or r[6] == ["True"],
                protos=",".join(r[7]),
                fc=[_int(v) for v in r[8]],
                regs=[_int(v) for v in r[9]],
                rosctr=[_int(v) for v in r[10]],
                s7func=[_int(v) for v in r[11]],
                data=[v.replace(":", "") for v in r[12]],
                ua=[_int(v) for v in r[13]],
            )
        )
    return out


def _labels(run: Run, scenario: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [x for x in run.labels if x["scenario"] == scenario and kind in (None, x["kind"])]


def _near(frames: list[Frame], ts: float, window: float = 1.0, **match: Any) -> list[Frame]:
    out = []
    for f in frames:
        if abs(f.t - ts) > window:
            continue
        if all(
            (v in getattr(f, k)) if isinstance(getattr(f, k), list) else getattr(f, k) == v
            for k, v in match.items()
        ):
            out.append(f)
    return out


def test_run_finished_cleanly_with_a_complete_capture(mixed_run: Run) -> None:
    s = mixed_run.summary
    assert mixed_run.returncode == 0 and not s["interrupted"]
    assert s["capture"]["dropped"] == 0 and s["capture"]["packets"] > 5000
    assert set(s["scenarios"]) == {
        "bearing-wear",
        "recon",
        "rogue-write",
        "rogue-device",
        "plc-stop",
        "program-download",
        "opcua-write",
        "bacnet-attack",
        "iec104-command",
    }
    for role in ("hmi", "historian", "mes", "engineering", "office", "plc-io", "bms", "scada"):
        assert s["requests"].get(role, 0) > 0, role
    assert s["traffic"]["hmi-scada"]["pps"] > 50
    assert s["traffic"]["it-intruder"]["packets"] > 1000  # the scan


@needs_tshark
def test_each_device_answers_with_its_protocol(frames: list[Frame]) -> None:
    expected = {
        A.CONVEYOR_PLC: ("modbus", 502),
        A.PRESS_PLC: ("s7comm", 102),
        A.PACKAGING: ("opcua", 4840),
        A.REMOTE_IO: ("modbus", 502),
        A.METER_1: ("modbus", 502),
        A.METER_2: ("modbus", 502),
        A.SUBSTATION_RTU: ("iec60870_104", 2404),
    }
    for dev, (proto, port) in expected.items():
        answers = [f for f in frames if f.src == dev.ip and f.sport == port and proto in f.protos]
        assert len(answers) > 20, f"{dev.name}: {len(answers)} {proto} frames"


@needs_tshark
def test_every_role_speaks_from_its_own_address(frames: list[Frame]) -> None:
    sources = {f.src for f in frames}
    for node in (*A.HOSTS, A.ATTACKER, A.ROGUE):
        if node is not A.BMS:  # BACnet/IP is UDP: see test_bms_polls_and_subscribes
            assert node.ip in sources, node.name
    office = [f for f in frames if f.src in {pc.ip for pc in A.OFFICE_PCS}]
    assert office and all(f.dport == A.HTTP_PORT for f in office)
    hmi_targets = {f.dst for f in frames if f.src == A.HMI.ip}
    # The HMI runs the production cell; the building and the substation have their own
    # BMS and SCADA.
    cell = [d for d in A.DEVICES if d.zone == "cell-1"]
    assert {d.ip for d in cell} <= hmi_targets
    assert not {A.BUILDING_CONTROLLER.ip, A.SUBSTATION_RTU.ip} & hmi_targets
    rtu_clients = {f.src for f in frames if f.dst == A.SUBSTATION_RTU.ip and f.dport == 2404}
    assert rtu_clients == {A.SCADA_MASTER.ip, A.ROGUE.ip}  # not 127.0.0.1 (the relay)


def test_sdm630_registers_read_back_plausible_values(mixed_run: Run) -> None:
    first, second, later = mixed_run.meter_reads
    for m in (first, second, later):
        for v in ("v1", "v2", "v3"):
            assert 225.0 < m[v] < 235.0
        assert 49.9 <= m["freq"] <= 50.1
        assert m["ptotal"] == pytest.approx(m["p1"] + m["p2"] + m["p3"], rel=1e-3)
        assert m["ptotal"] > 1000.0 and m["i1"] > 0.5
        assert m["total_kwh"] == pytest.approx(m["import_kwh"], abs=0.01)
    assert later["total_kwh"] > first["total_kwh"]  # energy integrates over plant time


@needs_tshark
def test_rogue_write_is_in_the_capture(mixed_run: Run, frames: list[Frame]) -> None:
    (write,) = _labels(mixed_run, "rogue-write", "rogue-write")
    assert write["src_ip"] == A.ATTACKER.ip and write["function"] == "WRITE_SINGLE_REGISTER"
    hits = _near(frames, write["ts"], src=A.ATTACKER.ip, dst=A.CONVEYOR_PLC.ip, dport=502, fc=6)
    assert len(hits) == 1 and hits[0].data == ["0190"], hits  # 400 = 40.0 m/min
    assert abs(hits[0].t - write["ts"]) < 0.1


@needs_tshark
def test_opcua_write_is_in_the_capture(mixed_run: Run, frames: list[Frame]) -> None:
    labels = {x["kind"]: x for x in _labels(mixed_run, "opcua-write")}
    ends = {"src": A.ATTACKER.ip, "dst": A.PACKAGING.ip, "dport": 4840}
    # tshark's OPC UA dissector names each request's service: ActivateSession (467),
    # Browse (527), Write (673).
    session, browse, write = labels["opcua-session"], labels["opcua-browse"], labels["opcua-write"]
    assert session["operation"] == "session" and _near(frames, session["ts"], ua=467, **ends)
    browses = [
        f
        for f in frames
        if (f.src, f.dst, f.dport) == tuple(ends.values())
        and 527 in f.ua
        and browse["ts"] - 0.5 <= f.t <= browse["ts_end"] + 0.5
    ]
    assert sum(f.ua.count(527) for f in browses) == browse["values"]["nodes"] >= 100
    assert write["function"] == "Write" and write["values"] == [30.0]
    assert _near(frames, write["ts"], window=0.5, ua=673, **ends)


@needs_tshark
def test_plc_stop_is_in_the_capture(mixed_run: Run, frames: list[Frame]) -> None:
    labels = {x["protocol"]: x for x in _labels(mixed_run, "plc-stop")}
    coil = labels["modbus"]
    assert coil["function_code"] == 5 and coil["dst_ip"] == A.CONVEYOR_PLC.ip
    assert _near(frames, coil["ts"], src=A.ATTACKER.ip, dst=A.CONVEYOR_PLC.ip, fc=5)
    stop = labels["s7comm"]
    assert stop["function"] == "PLC_STOP" and stop["operation"] == "control"
    jobs = _near(frames, stop["ts"], src=A.ATTACKER.ip, dst=A.PRESS_PLC.ip, s7func=0x29)
    assert jobs and 1 in jobs[0].rosctr


@needs_tshark
def test_recon_is_in_the_capture(mixed_run: Run, frames: list[Frame]) -> None:
    (scan,) = _labels(mixed_run, "recon", "port-scan")
    syns = [
        f
        for f in frames
        if f.src == A.ATTACKER.ip
        and f.syn
        and not f.ack
        and scan["ts"] - 1 <= f.t <= scan["ts_end"] + 1
    ]
    targets = {f.dst for f in syns}
    assert len(targets) == 254 and all(t.startswith("127.0.10.") for t in targets)
    assert {f.dport for f in syns} == set(A.ICS_SCAN_PORTS)
    # the scan sweeps the cell's subnet (the building and the substation are elsewhere)
    cell = [d for d in A.DEVICES if d.zone == "cell-1"]
    device_ports = {f"{d.ip}:{s.port}" for d in cell for s in d.services}
    assert device_ports <= set(scan["values"]["open"])  # other local listeners may show too
    for ident in _labels(mixed_run, "recon", "identity-sweep"):
        assert _near(frames, ident["ts"], src=A.ATTACKER.ip, dst=ident["dst_ip"], fc=43)
    sweep = _labels(mixed_run, "recon", "fc-sweep")
    assert sorted(x["function_code"] for x in sweep) == list(range(1, 128))
    seen = {
        fc
        for f in frames
        if f.src == A.ATTACKER.ip and f.dst == A.CONVEYOR_PLC.ip and f.dport == 502
        for fc in f.fc
    }
    assert set(range(1, 128)) <= seen


@needs_tshark
def test_rogue_device_is_in_the_capture(mixed_run: Run, frames: list[Frame]) -> None:
    (label,) = _labels(mixed_run, "rogue-device")
    polls = [f for f in frames if f.src == A.ROGUE.ip and f.dport == 502 and 3 in f.fc]
    assert polls and abs(polls[0].t - label["ts"]) < 1.0
    assert label["ts_end"] >= polls[-1].t - 1.0
    assert len(polls) >= 3 and label["extra"]["polls"] >= len(polls) - 1


@needs_tshark
def test_program_download_is_in_the_capture(mixed_run: Run, frames: list[Frame]) -> None:
    labels = _labels(mixed_run, "program-download")
    by_fn = {x["function"]: x for x in labels}
    assert {"START_UPLOAD", "PLC_STOP", "REQUEST_DOWNLOAD", "PLC_CONTROL"} <= set(by_fn)
    assert all(x["src_ip"] == A.EWS.ip and x["dst_ip"] == A.PRESS_PLC.ip for x in labels)
    for x in labels:
        if x.get("function_code") is None:
            continue
        hits = _near(frames, x["ts"], src=A.EWS.ip, dst=A.PRESS_PLC.ip, s7func=x["function_code"])
        assert hits, x["function"]
    dl = by_fn["REQUEST_DOWNLOAD"]
    # the PLC drives the download: it asks the engineering station for the block and the end
    plc_jobs = {
        fn
        for f in frames
        if f.src == A.PRESS_PLC.ip and f.dst == A.EWS.ip and 1 in f.rosctr
        for fn in f.s7func
        if dl["ts"] - 1 <= f.t <= dl["ts_end"] + 1
    }
    assert {0x1B, 0x1C} <= plc_jobs


@needs_tshark
def test_bearing_failure_shows_in_the_polled_registers(mixed_run: Run, frames: list[Frame]) -> None:
    (trip,) = _labels(mixed_run, "bearing-wear", "conveyor-trip")
    (alarm,) = _labels(mixed_run, "bearing-wear", "vibration-alarm")
    (trend,) = _labels(mixed_run, "bearing-wear", "bearing-degradation")
    assert trend["ts"] < alarm["ts"] < trip["ts"] and trend["ts_end"] == trip["ts"]
    # HMI reads HR 0..24: state at index 10, motor current 13, vibration 15, temperature 16
    answers = [
        f
        for f in frames
        if f.src == A.CONVEYOR_PLC.ip and f.dst == A.HMI.ip and 3 in f.fc and len(f.regs) == 25
    ]
    before = [f for f in answers if f.t < trend["ts"]]
    after = [f for f in answers if f.t > trip["ts"] + 1.5]
    assert before and after
    assert all(f.regs[10] == 1 and f.regs[15] < 400 for f in before)  # running, < 4 mm/s
    assert all(f.regs[10] == 3 and f.regs[11] == 1 for f in after)  # FAULT, vibration trip
    assert after[-1].regs[13] == 0  # motor current ~0 after the unplanned stop
    near_alarm = [f for f in answers if abs(f.t - alarm["ts"]) < 1.0]
    assert any(f.regs[15] >= 600 for f in near_alarm)
    assert max(f.regs[16] for f in answers) > min(f.regs[16] for f in before) + 100  # +10 degC


@needs_tshark
def test_every_request_label_has_its_packet(mixed_run: Run, frames: list[Frame]) -> None:
    required = {"id", "scenario", "kind", "ts", "src_ip", "dst_ip", "protocol", "operation"}
    for x in mixed_run.labels:
        assert required <= set(x) and "function" in x
        assert x["operation"] in (
            "read",
            "write",
            "control",
            "program",
            "firmware",
            "identity",
            "diagnostic",
            "session",
            "other",
        )
        if x["scenario"] == "bearing-wear" or x.get("dst_port") is None:
            continue
        if x["protocol"] == "bacnet":  # UDP: test_bacnet_attack_is_in_the_capture
            continue
        hits = _near(frames, x["ts"], src=x["src_ip"], dst=x["dst_ip"], dport=x["dst_port"])
        assert hits, x


def test_sigint_stops_everything_cleanly(tmp_path: Path) -> None:
    pcap, labels = tmp_path / "normal.pcap", tmp_path / "normal.json"
    args = ["--duration", "120", "--speed", "10", "--seed", "3", "--scenario", "normal"]
    proc, _ready = start_plant(tmp_path, *args, "--pcap", str(pcap), "--labels", str(labels))
    try:
        time.sleep(3.0)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        started = time.monotonic()
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert took < 8.0
    assert "interrupted" in out
    assert json.loads(labels.read_text()) == []
    packets = list(read_pcap(pcap))
    assert len(packets) > 200
    # nothing left listening on the plant's addresses, no capture process left behind
    assert check_ports_free() == []
    if shutil.which("ss"):
        ss = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=False).stdout
        plant_ips = {n.ip for n in A.NODES}
        listening = [line for line in ss.splitlines() if any(f"{ip}:" in line for ip in plant_ips)]
        assert listening == []
    leftovers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(pcap).encode() in cmd:
                leftovers.append(entry.name)
    assert leftovers == []
    # normal operation: IT never talks to level 1
    if shutil.which("tshark"):
        rows = tshark_fields(pcap, ["ip.src", "ip.dst"], "ip.src == 127.0.40.0/24")
        assert rows and all(not r[1][0].startswith("127.0.10.") for r in rows)


# -- the building controller (BACnet/IP, bacpypes3) and the substation RTU (IEC 104, c104)


@dataclass
class Datagram:
    t: float
    src: str
    sport: int
    dst: str
    dport: int
    pdu_type: int  # BACnet APDU type: 0 confirmed request, 1 unconfirmed, 2 simple ack, 3 ack
    service: int | None  # confirmed or unconfirmed service choice


@pytest.fixture(scope="module")
def bacnet(mixed_run: Run) -> list[Datagram]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    fields = ["frame.time_epoch", "ip.src", "udp.srcport", "ip.dst", "udp.dstport"]
    fields += ["bacapp.type", "bacapp.confirmed_service", "bacapp.unconfirmed_service"]
    out = []
    for r in tshark_fields(mixed_run.pcap, fields, "bacapp"):
        service = r[6] or r[7]
        out.append(
            Datagram(
                float(r[0][0]),
                r[1][0],
                int(r[2][0]),
                r[3][0],
                int(r[4][0]),
                _int(r[5][0]),
                _int(service[0]) if service else None,
            )
        )
    return out


def test_bacnet_attack_is_in_the_capture(mixed_run: Run, bacnet: list[Datagram]) -> None:
    labels = {x["kind"]: x for x in _labels(mixed_run, "bacnet-attack")}
    assert set(labels) == {
        "bacnet-discovery", "bacnet-write", "bacnet-dcc", "bacnet-reinitialize",
        "bacnet-dcc-enable",
    }  # fmt: skip
    ctl = A.BUILDING_CONTROLLER.ip

    def exchange(x: dict[str, Any], request: tuple[int, int], answer: tuple[int, int]) -> None:
        sent = [d for d in bacnet if (d.src, d.dst, d.dport) == (A.ROGUE.ip, ctl, 47808)
                and (d.pdu_type, d.service) == request and abs(d.t - x["ts"]) < 0.5]  # fmt: skip
        assert len(sent) == 1, (x["kind"], sent)
        back = [d for d in bacnet if (d.src, d.dst) == (ctl, A.ROGUE.ip)
                and (d.pdu_type, d.service) == answer and 0 <= d.t - sent[0].t < 0.5]  # fmt: skip
        assert back, x["kind"]

    exchange(labels["bacnet-discovery"], (1, 8), (1, 0))  # Who-Is -> I-Am to the asker
    for kind in ("bacnet-write", "bacnet-dcc", "bacnet-reinitialize", "bacnet-dcc-enable"):
        x = labels[kind]
        exchange(x, (0, x["function_code"]), (2, x["function_code"]))  # -> SimpleAck
    write = labels["bacnet-write"]
    assert write["values"] == [30.0] and write["extra"]["priority"] == 8


def test_bms_polls_and_subscribes(mixed_run: Run, bacnet: list[Datagram]) -> None:
    ctl, bms = A.BUILDING_CONTROLLER.ip, A.BMS.ip
    polls = [d for d in bacnet if (d.src, d.dst, d.pdu_type, d.service) == (bms, ctl, 0, 14)]
    assert len(polls) >= 10 and {(d.sport, d.dport) for d in polls} == {(47809, 47808)}
    assert any((d.src, d.dst, d.service) == (bms, ctl, 8) for d in bacnet)  # directed Who-Is
    assert any((d.src, d.dst, d.pdu_type, d.service) == (bms, ctl, 0, 5) for d in bacnet)
    notes = [d for d in bacnet if (d.src, d.dst, d.pdu_type, d.service) == (ctl, bms, 1, 2)]
    assert notes  # the subscription's first notification at least
    # While the rogue host's DeviceCommunicationControl (disable-initiation) holds, the
    # controller sends no change-of-value notification; it answers the polls.
    off = _labels(mixed_run, "bacnet-attack", "bacnet-dcc")[0]
    on = _labels(mixed_run, "bacnet-attack", "bacnet-dcc-enable")[0]
    silent = [d for d in notes if off["ts"] + 0.05 < d.t < on["ts"]]
    assert not silent, silent
    assert any(off["ts"] < d.t < on["ts"] for d in polls)
    assert mixed_run.summary["traffic"]["bms-workstation"]["packets"] == len(
        [d for d in bacnet if d.src == bms]
    )


@dataclass
class Apdu104:
    t: float
    src: str
    dst: str
    utype: int | None  # U format: 1 STARTDT act, 2 STARTDT con
    type_id: list[int]
    cause: list[int]
    select: list[int]
    values: list[float]
    ioa: list[int]


@pytest.fixture(scope="module")
def iec104(mixed_run: Run) -> list[Apdu104]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    fields = ["frame.time_epoch", "ip.src", "ip.dst", "iec60870_104.utype"]
    fields += ["iec60870_asdu.typeid", "iec60870_asdu.causetx", "iec60870_asdu.sco.se"]
    fields += ["iec60870_asdu.float", "iec60870_asdu.ioa"]
    rows = tshark_fields(mixed_run.pcap, fields, "iec60870_104 or iec60870_asdu")
    return [
        Apdu104(
            float(r[0][0]),
            r[1][0],
            r[2][0],
            _int(r[3][0]) if r[3] else None,
            [_int(v) for v in r[4]],
            [_int(v) for v in r[5]],
            [_int(v) for v in r[6]],
            [float(v) for v in r[7]],
            [_int(v) for v in r[8]],
        )
        for r in rows
    ]


def test_scada_master_starts_interrogates_syncs_and_reads(iec104: list[Apdu104]) -> None:
    master, rtu = A.SCADA_MASTER.ip, A.SUBSTATION_RTU.ip
    sent = [a for a in iec104 if (a.src, a.dst) == (master, rtu)]
    assert any(a.utype == 1 for a in sent)  # STARTDT act
    assert any(a.utype == 2 for a in iec104 if (a.src, a.dst) == (rtu, master))  # con
    acts = {t for a in sent for t, c in zip(a.type_id, a.cause, strict=False) if c == 6}
    assert {100, 103} <= acts  # general interrogation and clock synchronisation
    reads = [a for a in sent if 102 in a.type_id]
    assert len(reads) >= 30
    answers = [a for a in iec104 if (a.src, a.dst) == (rtu, master) and 13 in a.type_id]
    assert answers and all(v > 0 for a in answers[:3] for v in a.values)  # feeder live


def test_iec104_command_is_in_the_capture(mixed_run: Run, iec104: list[Apdu104]) -> None:
    labels = {x["kind"]: x for x in _labels(mixed_run, "iec104-command")}
    assert set(labels) == {"iec104-interrogation", "iec104-select", "iec104-execute"}
    rogue, rtu = A.ROGUE.ip, A.SUBSTATION_RTU.ip
    sent = [a for a in iec104 if (a.src, a.dst) == (rogue, rtu)]
    assert any(a.utype == 1 for a in sent)  # STARTDT act
    gi = labels["iec104-interrogation"]
    assert any(100 in a.type_id and 6 in a.cause and abs(a.t - gi["ts"]) < 0.5 for a in sent)
    commands = [a for a in sent if 45 in a.type_id and 6 in a.cause]
    # select (S/E = 1), then execute (S/E = 0), both 'off': the breaker opens (flattened:
    # TCP may carry two APDUs in one segment)
    assert [se for a in commands for se in a.select] == [1, 0]
    assert all(abs(a.t - labels["iec104-execute"]["ts"]) < 1.0 for a in commands)
    answers = [
        cause
        for a in iec104
        if (a.src, a.dst) == (rtu, rogue)
        for t, cause in zip(a.type_id, a.cause, strict=False)
        if t == 45
    ]
    assert answers == [7, 7, 10]  # act con (select), act con (execute), act term
    # after the breaker opened, the feeder current the SCADA master reads is zero
    current = [
        a.values
        for a in iec104
        if a.src == rtu and a.dst == A.SCADA_MASTER.ip and a.ioa == [1002]
        and a.t > commands[-1].t + 1.0
    ]  # fmt: skip
    values = [v for row in current for v in row]  # the read's ActCon carries none
    assert values and all(v == 0.0 for v in values), current


def test_field_devices_account_for_the_attacks(mixed_run: Run) -> None:
    """The devices' own account (``truth.field``, counted inside bacpypes3 and c104
    handlers): the rogue host's setpoint stands, the controller was restarted once and
    told to stop and resume reporting, the RTU executed one command and its breaker is
    open."""
    field = mixed_run.summary["truth"]["field"]
    building, substation = field["building"], field["substation"]
    assert building["setpoint"] == 30.0  # nobody relinquished priority 8
    assert building["reinitialized"] == ["warmstart"]
    assert len(building["communication_control"]) == 2
    assert building["communication_control"][-1] == "enable"
    assert substation["commands"] == [{"select": False, "state": False}]
    assert substation["breaker_closed"] is False
