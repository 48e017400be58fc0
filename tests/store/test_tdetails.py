"""Templated details: stored as template + holes, read back as the JSON they stand for."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.model import OpClass, Operation, OpStatus
from otconduit.store import detail_holes as K
from otconduit.store.opchunks import (
    NULL,
    LazyDetails,
    OpBatch,
    RawDetails,
    concat,
    from_operations,
    pack,
    ragged_from_arrays,
    unpack,
)
from otconduit.store.tdetails import TemplatedDetails, Templates

# Two template operations, written the way the lane store writes them:
#   0: {"a":<int 0>,"l":<list 0>,"f":<frame 1>}
#   1: {"svc":"Read Tag","ctx":<hex 1>,"n":<int 3>}
_PIECES = [
    [('{"a":', K.H_INT, 0), (',"l":', K.H_LIST, 0), (',"f":', K.H_FRAME, 1), ("}", K.H_END, 0)],
    [('{"svc":"Read Tag","ctx":', K.H_HEX, 1), (',"n":', K.H_INT, 3), ("}", K.H_END, 0)],
]


def _templates(owner: int = 7, upto: int = 2) -> Templates:
    seg_at, sg, text = [], [], b""
    for pieces in _PIECES[:upto]:
        seg_at.append((len(sg), len(pieces)))
        for t, kind, idx in pieces:
            sg.append((len(text), len(t), kind, idx))
            text += t.encode()
    return Templates(
        np.array(seg_at, np.int64), np.array(sg, np.int64), np.frombuffer(text, np.uint8), owner
    )


def _expected(op: int, ints: list[int], frames: list[int], lists: list[list[int]]) -> dict:
    if op == 0:
        return {"a": ints[0], "l": lists[0], "f": frames[1]}
    return {"svc": "Read Tag", "ctx": bytes(lists[1]).hex(), "n": ints[3]}


op_strategy = st.tuples(
    st.integers(0, 1),
    st.lists(st.integers(-(2**40), 2**40), min_size=K.N_INTS, max_size=K.N_INTS),
    st.lists(st.integers(0, 2**31), min_size=K.N_FRAMES, max_size=K.N_FRAMES),
    st.lists(st.lists(st.integers(0, 255), max_size=6), min_size=2, max_size=3),
)


def _details(items: list[Any], templates: Templates) -> TemplatedDetails:
    ops = np.array([i[0] for i in items] or [], np.int64)
    ints = np.array([i[1] for i in items], np.int64).reshape(-1, K.N_INTS)
    frames = np.zeros((len(items), K.N_FRAMES), np.int64)  # unused frame holes: 0
    for j, i in enumerate(items):
        frames[j, : len(i[2])] = i[2]
    ln = np.array([len(i[3]) for i in items], np.int64)
    holes = [h for i in items for h in i[3]]
    h_len = np.array([len(h) for h in holes], np.int64)
    vals = np.array([v for h in holes for v in h], np.int64)
    return TemplatedDetails(templates, ops, ints, frames, ln, h_len, vals)


def _batch(n: int, details: Any, detail_index: list[int]) -> OpBatch:
    ints = {c: np.full(n, NULL, np.int64) for c in ("ts", "src_port", "function_code")}
    ints["ts"] = np.arange(n, dtype=np.int64) + 1000
    base = from_operations([])
    ints = {c: ints.get(c, np.full(n, NULL, np.int64)) for c in base.ints}
    empty = ragged_from_arrays(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.ones(n))
    return OpBatch(
        ints=ints,
        names=[],
        exceptions=[],
        ragged={"values": empty, "response_values": empty},
        detail_index=np.array(detail_index, np.int64),
        details=details,
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(op_strategy, max_size=12), st.booleans())
def test_round_trip_renders_the_json_each_template_stands_for(items: list[Any], lazy: bool) -> None:
    want = [_expected(*i) for i in items]
    det = _details(items, _templates())
    assert json.loads(b"[" + det.render() + b"]") == want
    back = unpack(pack(_batch(len(items), det, list(range(len(items))))), lazy_details=lazy)
    assert list(back.details) == want and len(back.details) == len(items)


@settings(max_examples=100, deadline=None)
@given(st.lists(op_strategy, min_size=1, max_size=12), st.data())
def test_split_parts_render_their_own_operations(items: list[Any], data: Any) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=3)))
    bounds = [0, *cuts, len(items)]
    parts = _details(items, _templates()).split(bounds)
    for (lo, hi), part in zip(pairwise(bounds), parts, strict=True):
        got = json.loads(b"[" + part.render() + b"]")
        assert got == [_expected(*i) for i in items[lo:hi]]


def test_snapshots_of_one_store_stay_templated_when_joined() -> None:
    a_items = [(0, [1] * 8, [10, 11, 12], [[1, 2], [3]])]
    b_items = [(1, [0, 0, 0, 42, 0, 0, 0, 0], [20, 21, 22], [[], [0xAB, 0x01]])]
    a = _batch(1, _details(a_items, _templates(upto=1)), [0])  # older snapshot: 1 template
    b = _batch(1, _details(b_items, _templates(upto=2)), [0])
    joined = concat([a, b])
    assert isinstance(joined.details, TemplatedDetails)
    back = unpack(pack(joined))
    assert list(back.details) == [
        {"a": 1, "l": [1, 2], "f": 11},
        {"svc": "Read Tag", "ctx": "ab01", "n": 42},
    ]
    assert back.detail_index.tolist() == [0, 1]


def test_joined_with_written_out_details_they_are_rendered() -> None:
    ops = [
        Operation(
            ts_ns=5, protocol="enip", src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2",
            dst_port=44818, operation=OpClass.SESSION, function="Register Session",
            function_code=0x65, status=OpStatus.OK, detail={"session_handle": 4096},
        )
    ]  # fmt: skip
    slow = from_operations(ops)
    fast = _batch(2, _details([(0, [9] * 8, [1, 2, 3], [[7], []])], _templates()), [1])
    joined = concat([slow, fast])
    assert isinstance(joined.details, RawDetails)
    back = unpack(pack(joined))
    assert list(back.details) == [{"session_handle": 4096}, {"a": 9, "l": [7], "f": 2}]
    assert back.detail_index.tolist() == [0, 2]


def test_other_stores_are_never_mixed() -> None:
    a = _details([(0, [1] * 8, [1, 2, 3], [[1], []])], _templates(owner=1))
    b = _details([(0, [2] * 8, [1, 2, 3], [[2], []])], _templates(owner=2))
    assert TemplatedDetails.merge([a, b]) is None
    joined = concat([_batch(1, a, [0]), _batch(1, b, [0])])
    assert [d["a"] for d in unpack(pack(joined)).details] == [1, 2]


def test_lazy_details_render_one_at_a_time_and_probe_keys_without_rendering() -> None:
    items = [(0, [123456789] * 8, [1, 2, 3], [[7], []]), (1, [4] * 8, [5, 6, 7], [[], [0xAB]])]
    items += [(0, [k] * 8, [k, k, k], [[k % 256], []]) for k in range(20)]
    back = unpack(pack(_batch(len(items), _details(items, _templates()), list(range(22)))),
                  lazy_details=True)  # fmt: skip
    lazy = back.details
    assert isinstance(lazy, LazyDetails)
    probe = lazy.probe_text
    assert probe is not None and b'"svc"' in probe and b'"a"' in probe
    assert b"123456789" not in probe  # hole values are not in the keys' text
    assert lazy.one(1) == {"svc": "Read Tag", "ctx": "ab", "n": 4}
    assert lazy.one(0) == {"a": 123456789, "l": [7], "f": 2}
    assert [lazy.one(k) for k in range(22)] == [_expected(*i) for i in items]  # past a few: all
    assert list(lazy) == [_expected(*i) for i in items]


def test_a_stored_detail_alone_renders_as_in_the_whole_chunk() -> None:
    """Reading one templated detail of a stored chunk (its holes alone) gives what
    rendering them all gives for it."""
    items = [
        (k % 2, [k, 2 * k, 0, 3 * k, 0, 0, 0, 0], [k + 1, k + 2], [[k, 1], [0xAB, k]])
        for k in range(100)
    ]
    fast = _batch(100, _details(items, _templates()), list(range(100)))
    whole = list(unpack(pack(fast)).details)
    stored = unpack(pack(fast), lazy_details=True).details
    assert [stored.one(k) for k in (0, 1, 37, 99)] == [whole[k] for k in (0, 1, 37, 99)]


def test_merge_pads_parts_that_use_fewer_holes() -> None:
    """A part made when the templates used fewer hole columns is widened with zeros
    (holes no template of it reads), and every detail renders as before the merge."""
    t = _templates()
    wide = _details([(1, [0, 0, 0, 42, 0, 0, 0, 0], [1, 2, 3], [[], [0xAB]])], t)
    full = _details([(0, [5] * 8, [1, 2, 3], [[6], []])], t)
    narrow = TemplatedDetails(
        t, full.op, full.ints[:, :1], full.frames[:, :2], full.ln, full.h_len, full.vals
    )
    merged = TemplatedDetails.merge([narrow, wide, narrow])
    assert merged is not None
    assert merged.ints.shape == (3, K.N_INTS) and merged.frames.shape == (3, K.N_FRAMES)
    assert merged.ints[0].tolist() == [5] + [0] * (K.N_INTS - 1)
    expected = [{"a": 5, "l": [6], "f": 2}, {"svc": "Read Tag", "ctx": "ab", "n": 42}]
    assert json.loads(b"[" + merged.render() + b"]") == [*expected, expected[0]]


def test_a_reader_of_columns_alone_never_parses_the_templates() -> None:
    """The templates are the bulk of a templated chunk's header (tens of kB on a busy
    conversation): detection's scan reads columns and parses them only for the details
    it renders."""
    items = [(k % 2, [k] * 8, [k, k, k], [[k % 256], [0xAB]]) for k in range(30)]
    blob = pack(_batch(len(items), _details(items, _templates()), list(range(30))))
    back = unpack(blob, lazy_details=True)
    lazy = back.details
    assert isinstance(lazy, LazyDetails)
    stored = lazy._templated
    assert stored is not None and stored._templates is None
    assert len(back.ints["ts"]) == 30 and len(stored) == 30  # columns, which template each
    assert stored._templates is None
    assert lazy.one(3) == _expected(*items[3])
    assert stored._templates is not None
    assert list(back.details) == list(unpack(blob).details)


def test_stored_templates_parsed_once_per_text_and_read_only() -> None:
    import json

    from otconduit.store import opchunks

    head = {"text": "ab{c}", "seg_at": [[0, 1]], "sg": [[0, 2, 0, 0]]}
    text = json.dumps(head).encode()
    first = opchunks.stored_templates(text)
    again = opchunks.stored_templates(bytes(bytearray(text)))  # equal text, new object
    assert again is first
    assert first.seg_at.tolist() == [[0, 1]] and first.sg.tolist() == [[0, 2, 0, 0]]
    assert first.text.tobytes() == b"ab{c}"
    with pytest.raises(ValueError):
        first.sg[0, 0] = 1  # shared between chunks: never changed in place
    other = opchunks.stored_templates(json.dumps({**head, "text": "xy"}).encode())
    assert other is not first and other.text.tobytes() == b"xy"
