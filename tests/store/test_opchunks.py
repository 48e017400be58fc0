"""Operation chunks must give back exactly the operations that went in."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.model import OpClass, Operation, OpStatus
from otconduit.store import opchunks
from otconduit.store.opchunks import (
    DETAIL_INDEX_INLINE,
    INT_COLUMNS,
    NULL,
    concat,
    from_operations,
    pack,
    ragged_lists,
    unpack,
)

small = st.integers(min_value=0, max_value=65535)
opt_small = st.none() | small
big = st.integers(min_value=-(2**62), max_value=2**62)

ops_strategy = st.lists(
    st.builds(
        Operation,
        ts_ns=big,
        protocol=st.just("modbus"),
        src_ip=st.just("10.0.0.1"),
        src_port=small,
        dst_ip=st.just("10.0.0.2"),
        dst_port=st.just(502),
        operation=st.sampled_from(list(OpClass)),
        function=st.sampled_from(["READ_COILS", "WRITE_SINGLE_REGISTER", "DIAGNOSTICS"]),
        function_code=st.integers(0, 255),
        unit=opt_small,
        address=opt_small,
        quantity=opt_small,
        values=st.none() | st.lists(small, max_size=5).map(tuple),
        status=st.sampled_from(list(OpStatus)),
        exception=st.none() | st.sampled_from(["ILLEGAL_FUNCTION", "ILLEGAL_DATA_ADDRESS"]),
        exception_code=st.none() | st.integers(1, 11),
        latency_ns=st.none() | big,
        request_frame=st.none() | st.integers(1, 2**40),
        response_frame=st.none() | st.integers(1, 2**40),
        transaction_id=opt_small,
        detail=st.fixed_dictionaries(
            {},
            optional={
                "response_values": st.lists(small, max_size=4),
                "subfunction": st.text(max_size=8),
            },
        ),
    ),
    min_size=1,
    max_size=40,
)


def _rows(batch_blob: bytes) -> list[tuple[object, ...]]:
    b = unpack(batch_blob)
    n = len(b)
    vals = ragged_lists(b.ragged["values"], n)
    rvals = ragged_lists(b.ragged["response_values"], n)
    details = dict(zip(b.detail_index.tolist(), b.details, strict=True))
    out = []
    for i in range(n):
        ints = {c: int(b.ints[c][i]) for c in INT_COLUMNS}
        ints = {c: (None if v == NULL else v) for c, v in ints.items()}
        fn = b.names[ints.pop("function")]  # type: ignore[index]
        exc_i = ints.pop("exception")
        exc = None if exc_i is None else b.exceptions[exc_i]
        out.append((tuple(sorted(ints.items())), fn, exc, vals[i], rvals[i], details.get(i, {})))
    return out


def _expected(op: Operation) -> tuple[object, ...]:
    from otconduit.store.opchunks import OP_CLASS_CODE, STATUS_CODE

    ints = {
        "ts": op.ts_ns,
        "src_port": op.src_port,
        "function_code": op.function_code,
        "unit": op.unit,
        "address": op.address,
        "quantity": op.quantity,
        "status": STATUS_CODE[op.status],
        "exception_code": op.exception_code,
        "latency_ns": op.latency_ns,
        "request_frame": op.request_frame,
        "response_frame": op.response_frame,
        "tid": op.transaction_id,
        "op_class": OP_CLASS_CODE[op.operation],
        "reversed": 0,
    }
    detail = dict(op.detail)
    rv = detail.pop("response_values", None)
    return (
        tuple(sorted(ints.items())),
        op.function,
        op.exception,
        None if op.values is None else list(op.values),
        rv,
        detail,
    )


@settings(max_examples=150, deadline=None)
@given(ops_strategy)
def test_round_trip(ops: list[Operation]) -> None:
    assert _rows(pack(from_operations(ops))) == [_expected(o) for o in ops]


@settings(max_examples=60, deadline=None)
@given(ops_strategy, ops_strategy)
def test_concat_keeps_order_and_names(a: list[Operation], b: list[Operation]) -> None:
    joined = concat([from_operations(a), from_operations(b)])
    assert _rows(pack(joined)) == [_expected(o) for o in a + b]


def test_packing_is_compact() -> None:
    ops = [
        Operation(
            ts_ns=1_700_000_000_000_000_000 + i * 1000,
            protocol="modbus",
            src_ip="10.0.0.1",
            src_port=40000,
            dst_ip="10.0.0.2",
            dst_port=502,
            operation=OpClass.READ,
            function="READ_HOLDING_REGISTERS",
            function_code=3,
            unit=1,
            address=i % 100,
            quantity=10,
            request_frame=2 * i + 1,
            response_frame=2 * i + 2,
            transaction_id=i % 65536,
            latency_ns=1000,
        )
        for i in range(10_000)
    ]
    blob = pack(from_operations(ops))
    # 15 int columns; a row-per-operation table needs ~280 bytes per operation here.
    assert len(blob) < 30 * len(ops)
    assert np.all(unpack(blob).ints["address"] == np.arange(10_000) % 100)


@pytest.mark.parametrize("every", [1, 2, 7])
@pytest.mark.parametrize("lazy", [False, True])
def test_many_details_round_trip(every: int, lazy: bool) -> None:
    """Details on every operation, on half, on a few (past the inline limit): each
    comes back on its own operation, parsed at once or lazily."""
    n = 3 * DETAIL_INDEX_INLINE
    ops = [
        Operation(
            ts_ns=i, protocol="modbus", src_ip="10.0.0.1", src_port=40000, dst_ip="10.0.0.2",
            dst_port=502, operation=OpClass.READ, function="READ_COILS", function_code=1,
            detail={"k": i} if i % every == 0 else {},
        )
        for i in range(n)
    ]  # fmt: skip
    b = unpack(pack(from_operations(ops)), lazy_details=lazy)
    assert b.detail_index.tolist() == list(range(0, n, every))
    assert [d["k"] for d in b.details] == list(range(0, n, every))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.just(NULL), big), max_size=50)
    | st.lists(st.integers(0, 2**40), max_size=50).map(sorted)
    | st.lists(st.just(7), max_size=5)
)
def test_columns_round_trip_in_every_encoding(values: list[int]) -> None:
    """Plain, constant, all-NULL and delta-coded columns give back what went in."""
    from otconduit.store.opchunks import _pack_int, _unpack_int

    col = np.array(values, np.int64)
    meta, raw = _pack_int(col)
    assert _unpack_int(meta, raw, len(col)).tolist() == values


def test_growing_columns_are_delta_coded() -> None:
    from otconduit.store.opchunks import _pack_int

    rng = np.random.default_rng(3)
    ts = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(0, 60_000, 1000))
    meta, raw = _pack_int(ts)
    assert meta["kind"] == "delta" and len(raw) == 999 * 2  # not 8 bytes a value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.just(NULL), big), min_size=1, max_size=30), st.data())
def test_one_value_is_read_without_the_column(values: list[int], data: st.DataObject) -> None:
    """A stored chunk's columns decode on first use, and one value alone reads the same
    as the whole column would."""
    ops = [
        Operation(
            ts_ns=0, protocol="modbus", src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2",
            dst_port=502, operation=OpClass.READ, function="READ_COILS", function_code=1,
            address=None if v == NULL else v,
        )
        for v in values
    ]  # fmt: skip
    b = unpack(pack(from_operations(ops)))
    i = data.draw(st.integers(0, len(values) - 1))
    assert b.ints.at("address", i) == values[i]  # type: ignore[attr-defined]
    assert b.ints["address"].tolist() == values


def _polling(n: int) -> list[Operation]:
    """What a poller writes: the same few reads again and again, values changing."""
    return [
        Operation(
            ts_ns=1_700_000_000_000_000_000 + i * 1_000_000,
            protocol="modbus",
            src_ip="10.0.0.1",
            src_port=40000,
            dst_ip="10.0.0.2",
            dst_port=502,
            operation=OpClass.READ,
            function="READ_HOLDING_REGISTERS",
            function_code=3,
            unit=1,
            address=(i % 4) * 100,
            quantity=10,
            request_frame=2 * i + 1,
            response_frame=2 * i + 2,
            transaction_id=i % 65536,
            latency_ns=900_000 + (i % 3) * 1000,
            detail={"response_values": [i % 7, 1200, 0, 0, 55, 0, 0, 0, 1, i % 2]},
        )
        for i in range(n)
    ]


def test_polling_chunks_are_deflated_and_read_back() -> None:
    ops = _polling(5_000)
    batch = from_operations(ops)
    blob = pack(batch)
    plain = opchunks._pack_plain(batch)
    assert blob[:4] == b"OPZ2" and plain[:4] == b"OPC1"
    assert len(blob) * 5 < len(plain)  # repetition is what polling is made of
    assert _rows(blob) == [_expected(o) for o in ops]
    # chunks written before deflating existed read as they did, and those deflated whole
    assert _rows(plain) == [_expected(o) for o in ops]
    whole = b"OPZ1" + zlib.compress(plain, 1)
    assert _rows(whole) == [_expected(o) for o in ops]


def test_a_reader_expands_only_the_columns_it_reads() -> None:
    """Each column is compressed apart: reading two columns expands two."""
    blob = pack(from_operations(_polling(5_000)))
    batch = unpack(blob, lazy_details=True)
    calls: list[int] = []
    real = opchunks._expand

    def counting(data: bytes, size: int) -> bytes:
        calls.append(len(data))
        return real(data, size)

    opchunks._expand = counting  # type: ignore[assignment]
    try:
        ts = batch.ints["ts"]
        addr = batch.ints["address"]
    finally:
        opchunks._expand = real
    assert ts.tolist() == [o.ts_ns for o in _polling(5_000)]
    assert sorted(set(addr.tolist())) == [0, 100, 200, 300]
    assert len(calls) <= 2  # (a column too small to deflate is read as it is)


def test_a_chunk_deflate_does_not_shrink_stays_plain() -> None:
    ops = _polling(1)
    blob = pack(from_operations(ops))
    assert len(blob) <= len(opchunks._pack_plain(from_operations(ops))) + 8
    assert _rows(blob) == [_expected(o) for o in ops]


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_a_damaged_deflated_chunk_is_one_error(cut: float) -> None:
    blob = pack(from_operations(_polling(2_000)))
    with pytest.raises(ValueError, match="damaged operation chunk"):
        batch = unpack(blob[: int(len(blob) * cut)])
        dict(batch.ints.items())
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="damaged operation chunk"):
        batch = unpack(bytes(flipped))
        dict(batch.ints.items())
