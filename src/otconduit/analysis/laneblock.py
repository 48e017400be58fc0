"""A lane's operations of one block, kept whole until their conversations are stored.

A block holds operations of many conversations (sorted by conversation). Building one
:class:`~otconduit.store.opchunks.OpBatch` per conversation per block costs a few dozen
numpy calls each, and a chunk of a busy capture gathers a conversation's operations from
many blocks: so a conversation only keeps ``(block, lo, hi)`` references, and
:func:`join` builds its batch once, when it is stored, from all its slices at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from otconduit.store.opchunks import INT_COLUMNS, OpBatch, ragged_from_arrays
from otconduit.store.tdetails import TemplatedDetails, prefix_sums


@dataclass(slots=True, eq=False)  # holds arrays: identity, not value, equality
class LaneBlock:
    """Operations ``0..n-1`` of one block: ``cols`` (the INT_COLUMNS rows), written
    values as ``v_off`` (n+1 offsets into ``flat``) with ``v_null``, the operations with
    a detail (``det``, and ``d_before``: how many come before each operation) and their
    templated ``details``."""

    cols: np.ndarray
    names: list[str]
    exceptions: list[str]
    v_off: np.ndarray
    flat: np.ndarray
    v_null: np.ndarray
    det: np.ndarray
    d_before: np.ndarray
    details: TemplatedDetails
    _hs: np.ndarray = field(init=False)  # list holes before each detailed operation
    _vs: np.ndarray = field(init=False)  # values before each list hole

    def __post_init__(self) -> None:
        self._hs = prefix_sums(self.details.ln)
        self._vs = prefix_sums(self.details.h_len)

    def details_of(self, lo: int, hi: int) -> TemplatedDetails:
        """Templated details of the detailed operations among ``lo..hi-1``."""
        a, b = int(self.d_before[lo]), int(self.d_before[hi])
        return self.details.part(a, b, self._hs, self._vs)


Slice = tuple[LaneBlock, int, int]


def join(slices: Sequence[Slice]) -> OpBatch:
    """One conversation's operations from its slices of one lane's blocks, in order.
    Name tables only grow, so the newest block's serve every slice."""
    n = sum(hi - lo for _, lo, hi in slices)
    newest = max((b for b, _, _ in slices), key=lambda b: len(b.names) + len(b.exceptions))
    ints = {
        c: np.concatenate([b.cols[k, lo:hi] for b, lo, hi in slices])
        for k, c in enumerate(INT_COLUMNS)
    }
    offs = [np.zeros(1, np.int64)]
    flats, nulls, dets = [], [], []
    shift = base = 0
    for b, lo, hi in slices:
        first = int(b.v_off[lo])
        offs.append(b.v_off[lo + 1 : hi + 1] - first + shift)
        flats.append(b.flat[first : int(b.v_off[hi])])
        shift += int(b.v_off[hi]) - first
        nulls.append(b.v_null[lo:hi])
        dets.append(b.det[int(b.d_before[lo]) : int(b.d_before[hi])] - lo + base)
        base += hi - lo
    no_lists = np.zeros(2 * n + 1, np.int64)  # no values read back: offsets 0, nulls 1
    no_lists[n + 1 :] = 1
    details = TemplatedDetails.merge([b.details_of(lo, hi) for b, lo, hi in slices])
    assert details is not None  # one lane's blocks: one template store
    return OpBatch(
        ints=ints,
        names=newest.names,
        exceptions=newest.exceptions,
        ragged={
            "values": ragged_from_arrays(
                np.concatenate(offs), np.concatenate(flats), np.concatenate(nulls)
            ),
            "response_values": (no_lists, np.zeros(0, np.int64)),
        },
        detail_index=np.concatenate(dets),
        details=details,
    )
