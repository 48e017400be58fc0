"""A small plant on disk for tests that need no root: a monitor store written with the
store's own writers (the HMI polling the conveyor's setpoints, an IT host writing the
speed setpoint, later the HMI dropping the run coil), detection run over it, a gateway
historian whose conveyor stops one second after that coil write, and the example
gateway config pointing at that historian."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from otconduit.detect.run import detect_capture
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.plantconfig import plant_gateway
from otconduit.model import OpClass, Operation
from otconduit.store import Store
from otconduit.store.opchunks import from_operations
from otconduit.store.sqlite import AssetRecord, ConversationRecord

NS = 1_000_000_000
T0 = 1_790_000_000 * NS  # 2026-09-21T14:13:20Z
PLC, HMI, ATTACKER = "127.0.10.10", "127.0.20.10", "127.0.40.66"
WRITE_AT, STOP_AT, END = 30, 400, 600  # seconds after T0
LINE = "acme/plant1/packaging/line1"


@dataclass
class Plant:
    db: Path
    historian: Path
    config: Path


def _op(
    t: float, src: str, fc: int, fn: str, cls: OpClass, address: int, **kw: object
) -> Operation:
    return Operation(
        ts_ns=T0 + int(t * NS), protocol="modbus", src_ip=src, src_port=40000, dst_ip=PLC,
        dst_port=502, operation=cls, function=fn, function_code=fc, unit=1, address=address,
        request_frame=int(t * 10) + 1, response_frame=int(t * 10) + 2, transaction_id=int(t),
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def write_store(path: Path) -> None:
    hmi = []
    for s in range(END):
        sp = 400 if s > WRITE_AT else 250
        hmi.append(_op(s + 0.5, HMI, 3, "READ_HOLDING_REGISTERS", OpClass.READ, 0, quantity=3,
                       detail={"response_values": [sp, 0, 1]}))  # fmt: skip
    hmi.append(_op(STOP_AT, HMI, 5, "WRITE_SINGLE_COIL", OpClass.WRITE, 0, quantity=1,
                   values=(0,)))  # fmt: skip
    hmi.sort(key=lambda o: o.ts_ns)
    rogue = [
        _op(WRITE_AT - 0.2, ATTACKER, 3, "READ_HOLDING_REGISTERS", OpClass.READ, 0, quantity=3,
            detail={"response_values": [250, 0, 1]}),
        _op(WRITE_AT, ATTACKER, 6, "WRITE_SINGLE_REGISTER", OpClass.WRITE, 0, quantity=1,
            values=(400,)),
    ]  # fmt: skip
    with Store(path) as st:
        cid = st.begin_capture("/synthetic/plant.pcap", "synthplant", 1, "pcap")
        conv = {c: st.conversation_id("tcp", c, PLC, 502, -1, "modbus") for c in (HMI, ATTACKER)}
        st.insert_op_chunks(cid, [(conv[HMI], from_operations(hmi)),
                                  (conv[ATTACKER], from_operations(rogue))])  # fmt: skip
        assets = [
            AssetRecord(ip, -1, None, T0, T0 + END * NS, 10, 10,
                        [("role", role, "yes", "behaviour", 0.7, None)])
            for ip, role in ((PLC, "plc"), (HMI, "hmi_scada"),
                             (ATTACKER, "engineering_workstation"))
        ]  # fmt: skip
        convs = [
            ConversationRecord("tcp", client, PLC, 502, -1, "modbus", 1, len(ops), len(ops),
                               100 * len(ops), 100 * len(ops), ops[0].ts_ns, ops[-1].ts_ns,
                               {"READ_HOLDING_REGISTERS": len(ops)})
            for client, ops in ((HMI, hmi), (ATTACKER, rogue))
        ]  # fmt: skip
        st.finish_capture(
            cid, status="complete", packets=2 * (len(hmi) + 2), first_ts=T0,
            last_ts=T0 + END * NS, error=None, stats={}, assets=assets, conversations=convs,
            problems=[], problem_counts={},
        )  # fmt: skip
        detect_capture(st, cid)


def write_historian(path: Path) -> None:
    h = SQLiteHistorian(path)
    h.write(plant_samples())
    h.flush()
    h.close()


def plant_samples() -> list[TagSample]:
    """Ten minutes of the line, one sample per tag and second (cyclic polling)."""
    samples = []
    good = scrap = 0
    kwh = 100.0
    for s in range(END):
        t = T0 + s * NS + NS // 4
        running = s < STOP_AT + 1
        good += 1 if running and s % 2 == 0 else 0
        scrap += 1 if running and s % 50 == 0 else 0
        power = 3.2 if running else 0.1
        kwh += (power + 1.0) / 3600
        sp = 25.0 if s < WRITE_AT + 1 else 40.0

        def tag(name: str, value: float | int | bool, unit: str = "", t: int = t) -> TagSample:
            return TagSample(f"{LINE}/{name}", value, Quality.GOOD, t, unit=unit)

        samples += [
            tag("conveyor/speed_setpoint", sp, "m/min"),
            tag("conveyor/actual_speed", sp if running else 0.0, "m/min"),
            tag("conveyor/state", 1 if running else 0),
            tag("conveyor/running", running),
            tag("conveyor/run_command", s < STOP_AT + 1),
            tag("conveyor/motor_power", power, "kW"),
            tag("conveyor/motor_current", 6.1 if running else 0.0, "A"),
            tag("conveyor/good_count", good, "parts"),
            tag("conveyor/scrap_count", scrap, "parts"),
            tag("meter-1/total_kwh", round(kwh, 5), "kWh"),
            tag("meter-1/total_power", 1000.0 * (power + 1.0), "W"),
            tag("meter-2/total_kwh", 50.0 + s / 3600, "kWh"),
            tag("meter-2/total_power", 1000.0, "W"),
        ]
    return samples


def make_plant(tmp: Path) -> Plant:
    db, hist = tmp / "conduit.db", tmp / "gateway.db"
    write_store(db)
    write_historian(hist)
    raw = plant_gateway(production=True)
    raw["sinks"] = {"historian": {"path": str(hist)}}
    cfg = tmp / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Plant(db, hist, cfg)
