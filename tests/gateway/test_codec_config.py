"""Tag decoding (checked against pymodbus's own converter), read planning, and the
gateway config's validation (read-only by construction, errors that name the line)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient

from otconduit.gateway.codec import changed, decode_registers, engineering
from otconduit.gateway.config import Device, Tag, parse_gateway
from otconduit.gateway.planner import plan
from otconduit.yamlconf import ConfigError

DT = ModbusTcpClient.DATATYPE
PEER = {
    "int16": DT.INT16, "uint16": DT.UINT16, "int32": DT.INT32, "uint32": DT.UINT32,
    "int64": DT.INT64, "uint64": DT.UINT64, "float32": DT.FLOAT32, "float64": DT.FLOAT64,
}  # fmt: skip
WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
         "float32": 2, "float64": 4}  # fmt: skip


@pytest.mark.parametrize("dtype", sorted(PEER))
@pytest.mark.parametrize("word_order", ["big", "little"])
@given(data=st.data())
def test_decode_matches_pymodbus(dtype: str, word_order: str, data: st.DataObject) -> None:
    words = data.draw(
        st.lists(st.integers(0, 0xFFFF), min_size=WIDTH[dtype], max_size=WIDTH[dtype])
    )
    tag = Tag(path="t", address="hr:0", type=dtype, word_order=word_order)  # type: ignore[arg-type]
    ours = decode_registers(words, tag)
    peer = ModbusTcpClient.convert_from_registers(words, PEER[dtype], word_order=word_order)  # type: ignore[arg-type]
    if isinstance(peer, float) and peer != peer:
        assert ours != ours  # both NaN
    else:
        assert ours == peer


def test_byte_swap_bits_strings_and_scaling() -> None:
    t = Tag(path="t", address="hr:0", type="float32", byte_order="little")
    raw = struct.pack(">f", 12.5)
    swapped = [raw[1] << 8 | raw[0], raw[3] << 8 | raw[2]]
    assert decode_registers(swapped, t) == 12.5
    bit = Tag(path="b", address="hr:0", type="bool", bit=3)
    assert decode_registers([0b1000], bit) is True and decode_registers([0b0111], bit) is False
    s = Tag(path="s", address="hr:0", type="string", length=6)
    assert decode_registers([0x4142, 0x4300, 0x5858], s) == "ABC"
    lin = Tag.model_validate(
        {"path": "p", "address": "ir:0", "scale": {"raw": [0, 4095], "eng": [0, 10], "clamp": True}}
    )
    assert engineering(4095, lin) == pytest.approx(10.0)
    assert engineering(5000, lin) == 10.0  # clamped
    fo = Tag.model_validate(
        {"path": "p", "address": "ir:0", "scale": {"factor": 0.1, "offset": -5}}
    )
    assert engineering(300, fo) == pytest.approx(25.0)
    assert not changed(25.0, 25.05, 0.1) and changed(25.0, 25.2, 0.1)
    assert changed(None, 1.0, 5) and changed(True, False, 0) and not changed("a", "a", 0)


def _dev(tags: list[dict[str, object]], **kw: object) -> Device:
    return Device.model_validate(
        {"name": "d", "protocol": "modbus", "host": "h", "tags": tags, **kw}
    )


def test_planner_merges_across_small_gaps_and_respects_limits() -> None:
    tags = [{"path": f"t{i}", "address": f"hr:{a}"} for i, a in enumerate([0, 1, 2, 10, 30, 200])]
    tags.append({"path": "f", "address": "hr:3", "type": "float32"})
    tags.append({"path": "c", "address": "co:5", "type": "bool"})
    d = _dev(tags, max_gap=8, max_registers=125)
    reads = plan(d, d.tags)
    spans = sorted((r.table, r.start, r.count) for r in reads)
    # 0-4 and 10 merge (gap 5); 30 is 19 away: new read; 200 far away; the coil alone.
    assert spans == [("coil", 5, 1), ("holding", 0, 11), ("holding", 30, 1), ("holding", 200, 1)]
    small = _dev(tags, max_gap=8, max_registers=4)
    assert all(r.count <= 4 for r in plan(small, small.tags))
    singles = plan(d, d.tags, frozenset({"t0", "t1"}))
    assert sum(1 for r in singles if r.table == "holding") == 5


def test_config_is_read_only_and_errors_name_the_line() -> None:
    ok = """
version: 1
enterprise: acme
site: plant1
devices:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {path: area/line/cell/speed, address: "40001", type: uint16}
"""
    cfg = parse_gateway(ok, "gw.yaml")
    assert cfg.devices[0].tags[0].modbus_address(True) == ("holding", 0)
    bad_table = ok.replace('"40001"', '"wr:5"')
    with pytest.raises(ConfigError, match=r"gw.yaml:\d+: .*table 'wr' is not readable"):
        parse_gateway(bad_table, "gw.yaml")
    bad_field = ok.replace("type: uint16", "type: uint16, write: true")
    with pytest.raises(ConfigError, match=r"gw.yaml:10: .*unknown field 'write'"):
        parse_gateway(bad_field, "gw.yaml")
    bad_proto = ok.replace("protocol: modbus", "protocol: modbus-write")
    with pytest.raises(ConfigError, match=r"gw.yaml:7: "):
        parse_gateway(bad_proto, "gw.yaml")
    sp = ok + "sinks:\n  mqtt:\n    sparkplug: {enabled: true, group_id: a/b}\n"
    with pytest.raises(ConfigError, match="may not contain '/'"):
        parse_gateway(sp, "gw.yaml")
