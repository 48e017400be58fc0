"""The per-function summary's grouping of a chunk's operations."""

from __future__ import annotations

import numpy as np
import pytest

from otconduit.store.views import _distinct_functions


def _reference(fc: np.ndarray, fn: np.ndarray, oc: np.ndarray) -> dict[tuple[int, int, int], int]:
    counts: dict[tuple[int, int, int], int] = {}
    for row in zip(fc.tolist(), fn.tolist(), oc.tolist(), strict=True):
        counts[row] = counts.get(row, 0) + 1
    return counts


@pytest.mark.parametrize(
    ("codes", "n"),
    [
        ((0, 256), 5000),  # Modbus-like function codes
        ((-1, 3), 300),  # "no code" as -1
        ((0, 1 << 32), 2000),  # codes as wide as a 32-bit node or service id
        ((-(1 << 40), 1 << 40), 500),  # too wide to pack: the row-wise fallback
    ],
)
def test_groups_equal_a_plain_count_of_rows(codes: tuple[int, int], n: int) -> None:
    rng = np.random.default_rng(7)
    fc = rng.integers(codes[0], codes[1], n, dtype=np.int64)
    fc = fc[rng.integers(0, 12, n)]  # a handful of distinct codes, as real chunks have
    fn = rng.integers(0, 40, n).astype(np.int32)
    oc = rng.integers(0, 9, n).astype(np.int8)
    rows, inv = _distinct_functions(fc, fn, oc)
    assert len(set(rows)) == len(rows)
    got = {rows[j]: int(c) for j, c in enumerate(np.bincount(inv, minlength=len(rows)))}
    assert got == _reference(fc, fn, oc)
    # every operation points at its own row
    for i in rng.integers(0, n, 50).tolist():
        assert rows[inv[i]] == (int(fc[i]), int(fn[i]), int(oc[i]))


def test_an_empty_chunk_has_no_functions() -> None:
    rows, inv = _distinct_functions(
        np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8)
    )
    assert rows == [] and len(inv) == 0
