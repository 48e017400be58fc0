"""Writes in process terms, on operations shaped as ``conduit operations`` prints them.

Expected values are worked out here from the Modbus and S7 encodings (struct), not taken
from the annotator's output."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from otconduit.gateway.config import parse_gateway
from otconduit.gateway.historian.sqlite import SQLiteHistorian
from otconduit.gateway.model import Quality, TagSample
from otconduit.process import ProcessAnnotator, TagMap
from otconduit.process.history import HistorianLookup

PLC, S7PLC = "10.0.0.10", "10.0.0.20"
CONFIG = f"""
version: 1
enterprise: acme
site: plant1
devices:
- name: conveyor-plc
  protocol: modbus
  host: {PLC}
  unit: 1
  tags:
  - {{path: packaging/line1/conveyor/speed_setpoint, address: "hr:0", type: uint16,
      scale: {{factor: 0.1}}, unit: m/min}}
  - {{path: packaging/line1/conveyor/mode, address: "hr:2", type: uint16,
      kind: state, states: {{0: MANUAL, 1: AUTO}}}}
  - {{path: packaging/line1/conveyor/good_count, address: "hr:18", type: uint32, unit: parts,
      word_order: little}}
  - {{path: packaging/line1/conveyor/flow, address: "hr:30", type: float32, unit: m3/h}}
  - {{path: packaging/line1/conveyor/alarm_bit, address: "hr:40", type: bool, bit: 3}}
  - {{path: packaging/line1/conveyor/run_command, address: "co:0", type: bool}}
  - {{path: packaging/line1/conveyor/temp_sp, address: "40051", type: int16, unit: degC,
      scale: {{factor: 0.5}}}}
- name: press-plc
  protocol: s7
  host: {S7PLC}
  tags:
  - {{path: forming/line2/press/force_sp, address: DB5.DBD4, type: float32, unit: kN}}
  - {{path: forming/line2/press/strokes, address: DB5.DBW8, type: int16}}
  - {{path: forming/line2/press/enable, address: M10.2, type: bool}}
  - {{path: forming/line2/press/lamp, address: Q0.1, type: bool}}
sinks: {{historian: null}}
"""
T0 = "2026-11-25T08:00:00.000000Z"


def _tm() -> TagMap:
    return TagMap.from_config(parse_gateway(CONFIG))


def op(fc: int, address: int | None, values: Any = None, *, status: str = "ok",
       unit: int = 1, dst: str = PLC, ts: str = T0, **detail: Any) -> dict[str, Any]:  # fmt: skip
    return {"ts": ts, "protocol": "modbus", "src_ip": "10.0.9.9", "dst_ip": dst,
            "dst_port": 502, "unit": unit, "function_code": fc, "address": address,
            "values": values, "status": status, "detail": detail,
            "capture": "x.pcap", "frame": 1}  # fmt: skip


def s7(fc: int, items: list[dict[str, Any]], status: str = "ok") -> dict[str, Any]:
    return {"ts": T0, "protocol": "s7comm", "src_ip": "10.0.9.9", "dst_ip": S7PLC,
            "dst_port": 102, "function_code": fc, "status": status,
            "detail": {"items": items}, "values": None}  # fmt: skip


def test_single_register_with_scale_and_the_value_read_before() -> None:
    ann = ProcessAnnotator(_tm())
    assert ann.feed(op(3, 0, None, response_values=[250, 0, 1])) == []
    [e] = ann.feed(op(6, 0, [400]))
    assert e["path"] == "acme/plant1/packaging/line1/conveyor/speed_setpoint"
    assert e["value"] == 40.0 and e["unit"] == "m/min" and e["previous"] == 25.0
    assert e["previous_from"] == "operations"
    assert e["text"] == "conveyor/speed_setpoint := 40.0 m/min (was 25.0)"


def test_unseen_previous_and_state_names() -> None:
    ann = ProcessAnnotator(_tm())
    [e] = ann.feed(op(6, 2, [1]))
    assert e["previous"] is None and e["text"] == "conveyor/mode := AUTO (1)"
    [e] = ann.feed(op(6, 2, [0]))
    assert e["text"] == "conveyor/mode := MANUAL (0) (was AUTO (1))"


def test_multi_register_values_in_the_tags_word_order() -> None:
    ann = ProcessAnnotator(_tm())
    # uint32 70000 with the low word first (word_order little)
    low, high = 70000 & 0xFFFF, 70000 >> 16
    [e] = ann.feed(op(16, 18, [low, high]))
    assert e["value"] == 70000
    hi_w, lo_w = struct.unpack(">HH", struct.pack(">f", 12.5))
    # A write covering the float and the register after it: one tag, big word order.
    [f] = ann.feed(op(16, 30, [hi_w, lo_w, 7]))
    assert f["value"] == 12.5 and f["text"] == "conveyor/flow := 12.50 m3/h"
    # Half of the counter written: the other half from what was seen before.
    [g] = ann.feed(op(6, 18, [70001 & 0xFFFF]))
    assert g["value"] == 70001 and g["previous"] == 70000


def test_half_written_value_never_seen_is_unknown() -> None:
    [e] = ProcessAnnotator(_tm()).feed(op(6, 19, [1]))
    assert e["value"] is None and e["text"] == "conveyor/good_count := ?"


def test_coils_mask_write_and_read_write_multiple() -> None:
    ann = ProcessAnnotator(_tm())
    ann.feed(op(1, 0, None, response_values=[1, 0]))
    [e] = ann.feed(op(5, 0, [0]))
    assert e["value"] is False and e["previous"] is True
    assert e["text"] == "conveyor/run_command := off (was on)"
    # FC 22 on hr:40, bit 3 of which is a bool tag: set bit 3, keep the rest.
    ann.feed(op(3, 40, None, response_values=[0b0001]))
    [m] = ann.feed(op(22, 40, [0xFFFF & ~0b1000, 0b1000]))
    assert m["value"] is True and m["previous"] is False
    # FC 23: write hr:0 then read it back.
    [w] = ann.feed(op(23, 0, [300], read_address=0, response_values=[300, 0, 1]))
    assert w["value"] == 30.0


def test_refused_writes_other_devices_units_and_classic_references() -> None:
    ann = ProcessAnnotator(_tm())
    assert ann.feed(op(6, 0, [400], status="exception")) == []
    assert ann.feed(op(6, 0, [400], unit=2)) == []  # another unit behind the same address
    assert ann.feed(op(6, 0, [400], dst="10.0.0.99")) == []
    assert ann.feed(op(6, 1, [400])) == []  # no tag there
    [e] = ann.feed(op(6, 50, [0xFFF6]))  # 40051 is hr:50; int16 -10 * 0.5
    assert e["value"] == -5.0 and e["text"] == "conveyor/temp_sp := -5.0 degC"


def test_s7_db_words_and_bits() -> None:
    ann = ProcessAnnotator(_tm())
    data = list(struct.pack(">f", 250.0) + struct.pack(">h", -3))
    write = s7(5, [{"area": "DB", "db": 5, "start": 4, "bit": 0, "length": 6,
                    "transport_size": "BYTE", "values": data, "return_code": 0xFF}])  # fmt: skip
    got = {e["path"].rsplit("/", 1)[1]: e for e in ann.feed(write)}
    assert got["force_sp"]["value"] == 250.0 and got["force_sp"]["unit"] == "kN"
    assert got["strokes"]["value"] == -3
    bit = s7(5, [{"area": "M", "db": 0, "start": 10, "bit": 2, "length": 1,
                  "transport_size": "BIT", "values": [1], "return_code": 0xFF}])  # fmt: skip
    [e] = ann.feed(bit)
    assert e["path"].endswith("press/enable") and e["value"] is True
    other_bit = s7(5, [{"area": "M", "db": 0, "start": 10, "bit": 5, "length": 1,
                        "transport_size": "BIT", "values": [1], "return_code": 0xFF}])  # fmt: skip
    assert ann.feed(other_bit) == []
    refused = s7(5, [{"area": "Q", "db": 0, "start": 0, "bit": 1, "length": 1,
                      "transport_size": "BIT", "values": [1], "return_code": 0x0A}])  # fmt: skip
    assert ann.feed(refused) == []


def test_previous_from_the_historian(tmp_path: Path) -> None:
    hist = tmp_path / "gateway.db"
    h = SQLiteHistorian(hist)
    path = "acme/plant1/packaging/line1/conveyor/speed_setpoint"
    t_write = 1_795_593_600 * 10**9  # 2026-11-25T08:00:00Z
    h.write([TagSample(path, 25.0, Quality.GOOD, t_write - 3 * 10**9, unit="m/min"),
             TagSample(path, 24.0, Quality.BAD, t_write - 10**9, unit="m/min"),
             TagSample(path, 40.0, Quality.GOOD, t_write + 10**9, unit="m/min")])  # fmt: skip
    h.flush()
    h.close()
    with HistorianLookup(hist) as lookup:
        ann = ProcessAnnotator(_tm(), lookup)
        ann.feed(op(3, 0, None, response_values=[300]))  # the operations say 30.0 ...
        [e] = ann.feed(op(6, 0, [400]))
    assert e["previous"] == 25.0 and e["previous_from"] == "historian"  # ... the historian wins


def test_unreadable_historian_falls_back(tmp_path: Path) -> None:
    lookup = HistorianLookup(tmp_path / "missing.db")
    ann = ProcessAnnotator(_tm(), lookup)
    ann.feed(op(3, 0, None, response_values=[300]))
    [e] = ann.feed(op(6, 0, [400]))
    assert e["previous"] == 30.0 and e["previous_from"] == "operations"
    assert not lookup.available


@pytest.mark.parametrize("text", ["2026-11-25T08:00:00.000001Z", "2026-11-25T08:00:00Z"])
def test_operation_times(text: str) -> None:
    from otconduit.process.annotate import op_ts_ns

    base = 1_795_593_600 * 10**9
    assert op_ts_ns(text) in (base, base + 1000)


def test_one_line_for_tables_and_one_of_each_for_alerts() -> None:
    from otconduit.process.annotate import distinct, process_text

    ann = ProcessAnnotator(_tm())
    ann.feed(op(1, 0, None, response_values=[1]))
    a = ann.feed(op(5, 0, [1]))  # rewritten with the value it had
    b = ann.feed(op(6, 0, [400]))
    assert (
        process_text(a + b)
        == "conveyor/run_command := on (was on); conveyor/speed_setpoint := 40.0 m/min"
    )
    many = [{**a[0]}] * 3 + b
    assert process_text(many) == "conveyor/speed_setpoint := 40.0 m/min; 3 more unchanged"
    assert distinct(many) == [a[0], b[0]]
