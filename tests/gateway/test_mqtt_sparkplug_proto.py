"""The hand-written Sparkplug B encoder against an independent decoder (protoc-compiled
schema from the specification's field numbers), and the command decoder against
payloads built by that schema, plus fuzzing: only Payload or Malformed come out."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.gateway.sinks.sparkplug_proto import (
    DataType,
    Malformed,
    Metric,
    Payload,
    Property,
    UnrepresentableValue,
    alias_head,
    check_value,
    count_metrics,
    data_metric,
    decode_payload,
    encode_payload,
    encode_payload_framed,
    framed_metric,
)
from tests.gateway.mqttbroker import compile_sparkplug_schema


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return compile_sparkplug_schema(tmp_path_factory.mktemp("spb"))


def parse(pb: Any, data: bytes) -> Any:
    p = pb.Payload()
    p.ParseFromString(data)
    return p


def signed(n: int, bits: int) -> int:
    return n - (1 << bits) if n >= 1 << (bits - 1) else n


CASES = [
    (DataType.INT8, -5, "int_value", lambda v: signed(v, 32)),
    (DataType.INT16, -32768, "int_value", lambda v: signed(v, 32)),
    (DataType.INT16, 1234, "int_value", lambda v: signed(v, 32)),
    (DataType.INT32, -2_000_000_000, "int_value", lambda v: signed(v, 32)),
    (DataType.INT64, -(2**63), "long_value", lambda v: signed(v, 64)),
    (DataType.UINT16, 65535, "int_value", int),
    (DataType.UINT32, 4_000_000_000, "int_value", int),
    (DataType.UINT64, 2**64 - 1, "long_value", int),
    (DataType.FLOAT, 21.5, "float_value", float),
    (DataType.DOUBLE, -1.25e-300, "double_value", float),
    (DataType.BOOLEAN, True, "boolean_value", bool),
    (DataType.BOOLEAN, False, "boolean_value", bool),
    (DataType.STRING, "Pümpe 3 ✓", "string_value", str),
]


@pytest.mark.parametrize(("dt", "value", "field", "back"), CASES)
def test_every_scalar_type_decodes_with_the_standard_schema(
    pb: Any, dt: DataType, value: Any, field: str, back: Any
) -> None:
    data = encode_payload(
        timestamp=1_700_000_000_123,
        seq=7,
        metrics=[
            Metric(
                name="area/line/cell/tag",
                alias=42,
                timestamp=1_700_000_000_100,
                datatype=dt,
                is_historical=True,
                value=value,
                properties=(Property(key="engUnit", type=DataType.STRING, value="degC"),),
            )
        ],
    )
    p = parse(pb, data)
    assert p.timestamp == 1_700_000_000_123 and p.seq == 7 and p.HasField("seq")
    (m,) = p.metrics
    assert m.name == "area/line/cell/tag" and m.alias == 42
    assert m.timestamp == 1_700_000_000_100
    assert m.datatype == int(dt) == getattr(pb, dt.name.title().replace("Uint", "UInt"))
    assert m.is_historical and not m.is_null
    assert m.WhichOneof("value") == field
    assert back(getattr(m, field)) == value
    assert list(m.properties.keys) == ["engUnit"]
    (pv,) = m.properties.values
    assert pv.type == 12 and pv.string_value == "degC"


def test_null_data_metric_and_quality_property(pb: Any) -> None:
    data = encode_payload(
        timestamp=5,
        seq=255,
        metrics=[
            Metric(
                alias=3,
                timestamp=4,
                value=None,
                properties=(Property(key="Quality", type=DataType.INT32, value=500),),
            )
        ],
    )
    (m,) = parse(pb, data).metrics
    assert m.is_null and m.WhichOneof("value") is None
    assert not m.HasField("name") and not m.HasField("datatype") and m.alias == 3
    assert not m.HasField("is_historical")
    assert list(m.properties.keys) == ["Quality"]
    assert m.properties.values[0].type == 3 and m.properties.values[0].int_value == 500


def test_ndeath_has_no_seq(pb: Any) -> None:
    data = encode_payload(
        timestamp=9,
        seq=None,
        metrics=[Metric(name="bdSeq", timestamp=9, datatype=DataType.UINT64, value=3)],
    )
    p = parse(pb, data)
    assert not p.HasField("seq")
    assert p.metrics[0].name == "bdSeq" and p.metrics[0].long_value == 3


@pytest.mark.parametrize(
    ("dt", "value"),
    [
        (DataType.INT16, 1.5),
        (DataType.INT16, 40000),
        (DataType.UINT16, -1),
        (DataType.INT32, "x"),
        (DataType.FLOAT, "x"),
        (DataType.FLOAT, 1e300),
        (DataType.BOOLEAN, "yes"),
        (DataType.UINT64, math.nan),
    ],
)
def test_unrepresentable_values_are_refused(dt: DataType, value: Any) -> None:
    with pytest.raises(UnrepresentableValue):
        check_value(dt, value)


def test_integral_float_fits_an_integer_type(pb: Any) -> None:
    check_value(DataType.INT32, 12.0)
    data = encode_payload(
        timestamp=1, seq=0, metrics=[Metric(alias=1, datatype=DataType.INT32, value=-12.0)]
    )
    assert signed(parse(pb, data).metrics[0].int_value, 32) == -12


def test_decoder_reads_commands_built_by_the_standard_schema(pb: Any) -> None:
    p = pb.Payload()
    p.timestamp = 1234
    m = p.metrics.add()
    m.name = "Node Control/Rebirth"
    m.datatype = pb.Boolean
    m.boolean_value = True
    m2 = p.metrics.add()
    m2.alias = 17
    m2.datatype = pb.Int16
    m2.int_value = (-300) & 0xFFFFFFFF
    m3 = p.metrics.add()
    m3.alias = 18
    m3.datatype = pb.Double
    m3.double_value = 2.5
    m3.properties.keys.append("k")  # an unread field in between
    m3.properties.values.add().int_value = 1
    m4 = p.metrics.add()
    m4.alias = 19
    m4.datatype = pb.Float
    m4.float_value = 0.5
    m4.is_historical = True
    out = decode_payload(p.SerializeToString())
    assert isinstance(out, Payload)
    assert out.timestamp == 1234 and out.seq is None
    assert [x.name for x in out.metrics] == ["Node Control/Rebirth", None, None, None]
    assert [x.value for x in out.metrics] == [True, -300, 2.5, 0.5]
    assert out.metrics[1].datatype is DataType.INT16 and out.metrics[3].is_historical


def test_encoder_output_decodes_back() -> None:
    metrics = [
        Metric(name="a", alias=2, timestamp=3, datatype=DataType.INT64, value=-7),
        Metric(alias=4, timestamp=5, datatype=DataType.STRING, value="s"),
        Metric(alias=5, timestamp=6, datatype=DataType.DOUBLE, value=None),
    ]
    out = decode_payload(encode_payload(timestamp=1, seq=2, metrics=metrics))
    assert isinstance(out, Payload)
    assert [(m.alias, m.value) for m in out.metrics] == [(2, -7), (4, "s"), (5, None)]


def test_truncations_are_malformed_never_exceptions() -> None:
    data = encode_payload(
        timestamp=1_700_000_000_000,
        seq=1,
        metrics=[Metric(name="Node Control/Rebirth", alias=1, datatype=DataType.BOOLEAN, value=1)],
    )
    for cut in range(1, len(data)):
        out = decode_payload(data[:cut])
        assert isinstance(out, Payload | Malformed)
    bad = decode_payload(b"\x12\x05\x0a\x10abc")  # metric whose name runs past it
    assert isinstance(bad, Malformed) and bad.offset == 2
    assert isinstance(decode_payload(b"\x0f"), Malformed)  # wire type 7
    assert isinstance(decode_payload(b"\x08" + b"\xff" * 11), Malformed)  # endless varint


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_only_documented_outcomes(data: bytes) -> None:
    assert isinstance(decode_payload(data), Payload | Malformed)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**64 - 1),
            st.one_of(
                st.integers(-(2**31), 2**31 - 1).map(lambda v: (DataType.INT32, v)),
                st.integers(0, 2**64 - 1).map(lambda v: (DataType.UINT64, v)),
                st.floats(allow_nan=False).map(lambda v: (DataType.DOUBLE, v)),
                st.booleans().map(lambda v: (DataType.BOOLEAN, v)),
                st.text(max_size=20).map(lambda v: (DataType.STRING, v)),
            ),
        ),
        max_size=10,
    )
)
def test_fuzz_roundtrip(items: list[tuple[int, tuple[DataType, Any]]]) -> None:
    metrics = [Metric(alias=a, timestamp=1, datatype=dt, value=v) for a, (dt, v) in items]
    out = decode_payload(encode_payload(timestamp=1, seq=0, metrics=metrics))
    assert isinstance(out, Payload)
    assert [(m.alias, m.value) for m in out.metrics] == [(a, v) for a, (_dt, v) in items]


def test_float_is_32_bit_on_the_wire() -> None:
    data = encode_payload(
        timestamp=1, seq=0, metrics=[Metric(alias=1, datatype=DataType.FLOAT, value=0.1)]
    )
    assert struct.pack("<f", 0.1) in data


@pytest.mark.parametrize(("dt", "value", "field", "back"), CASES)
def test_fast_data_metrics_decode_with_the_standard_schema(
    pb: Any, dt: DataType, value: Any, field: str, back: Any
) -> None:
    entry = data_metric(alias_head(7), 1_700_000_000_123, dt, value, True)
    if entry is None:  # the general path carries it (strings, conversions)
        entry = framed_metric(
            Metric(alias=7, timestamp=1_700_000_000_123, datatype=dt, send_datatype=False,
                   is_historical=True, value=value)
        )  # fmt: skip
    p = parse(pb, encode_payload_framed(timestamp=5, metrics=[entry, entry], seq=9))
    assert p.seq == 9 and p.timestamp == 5 and len(p.metrics) == 2
    m = p.metrics[0]
    assert m.alias == 7 and m.timestamp == 1_700_000_000_123 and m.is_historical
    assert m.WhichOneof("value") == field and back(getattr(m, field)) == value


@settings(max_examples=500, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(0, 2**50),
    st.sampled_from(list(DataType)),
    st.one_of(
        st.integers(-(2**64), 2**64),
        st.floats(),
        st.booleans(),
        st.text(max_size=5),
        st.none(),
    ),
    st.booleans(),
)
def test_fast_data_metric_is_byte_for_byte_the_general_encoding(
    alias: int, ts: int, dt: DataType, value: Any, hist: bool
) -> None:
    fast = data_metric(alias_head(alias), ts, dt, value, hist)
    if fast is None:
        return
    check_value(dt, value)  # the fast path takes only values the datatype carries
    general = framed_metric(
        Metric(alias=alias, timestamp=ts, datatype=dt, send_datatype=False,
               is_historical=hist, value=value)
    )  # fmt: skip
    assert fast == general


def test_count_metrics_reads_the_top_level_only() -> None:
    entry = data_metric(alias_head(3), 1, DataType.UINT16, 7, False)
    assert entry is not None
    payload = encode_payload_framed(timestamp=5, metrics=[entry] * 3, seq=1)
    assert count_metrics(payload) == 3
    assert isinstance(count_metrics(payload[:-3]), Malformed)
