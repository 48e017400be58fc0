"""Operation details kept as template + holes instead of JSON text.

The bulk paths know each operation's detail as a template (JSON text with holes, learned
once per transaction shape) plus the hole values of its transaction. Rendering that to
text for every operation costs more than decoding it, and the text is most of what is
stored (about 450 bytes per CIP operation). So the bulk path hands over, per operation
with a detail: its template operation, its integer and frame holes and its list holes;
a chunk stores those as packed columns with the templates it uses, and the JSON is
rendered only when someone reads the details (:class:`~otconduit.store.opchunks.LazyDetails`).

The text rendered here is byte for byte what the bulk path used to store: the same
compiled renderer writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from otconduit.store.detail_holes import H_END, H_HEX, H_LIST, N_FRAMES, N_INTS

__all__ = ["HOLE", "N_FRAMES", "N_INTS", "TemplatedDetails", "Templates", "prefix_sums"]

HOLE = -7_093_111_777_531  # stands for a hole's value in a template skeleton


def prefix_sums(counts: np.ndarray) -> np.ndarray:
    """Start of each run given run lengths (exclusive cumulative sum)."""
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


class Templates:
    """Detail templates: per template operation its segments (``seg_at``: first, count
    into ``sg``; ``sg`` rows: text offset, text length, hole kind, hole index) and the
    static text. Shared by reference: a lane's store only ever appends to them."""

    __slots__ = ("owner", "seg_at", "sg", "text")

    def __init__(self, seg_at: np.ndarray, sg: np.ndarray, text: np.ndarray, owner: int) -> None:
        self.seg_at = seg_at
        self.sg = sg
        self.text = text
        self.owner = owner  # id of the store they come from: only its own snapshots merge

    def skeleton(self, o: int) -> dict[str, Any] | None:
        """Template operation ``o``'s detail with every hole written as :data:`HOLE`
        (a list hole as ``[HOLE]``, a hex one as ``"HOLE"``): what all its operations
        share; None when it has no detail. Readers that look at a few keys learn here
        whether they are the same for every operation of the template."""
        first, count = (int(x) for x in self.seg_at[o])
        if count == 0:
            return None
        parts: list[str] = []
        for off, ln, kind, _ in self.sg[first : first + count].tolist():
            parts.append(self.text[off : off + ln].tobytes().decode())
            if kind == H_LIST:
                parts.append(f"[{HOLE}]")
            elif kind == H_HEX:
                parts.append(f'"{HOLE}"')
            elif kind != H_END:
                parts.append(str(HOLE))
        text = "".join(parts)
        return json.loads(text) if text else None

    def subset(self, used: np.ndarray) -> tuple[Templates, np.ndarray]:
        """Only the template operations ``used`` (sorted, unique), renumbered from 0;
        returns them and the old -> new index map (-1 where unused). Gathered with index
        arrays: a chunk of a busy lane uses hundreds of templates."""
        used = np.asarray(used, np.int64)
        remap = np.full(len(self.seg_at), -1, np.int64)
        remap[used] = np.arange(len(used))
        firsts = self.seg_at[used, 0].astype(np.int64)
        counts = self.seg_at[used, 1].astype(np.int64)
        seg_first = np.cumsum(counts) - counts
        seg_at = np.stack([seg_first, counts], 1) if len(used) else np.zeros((0, 2), np.int64)
        rows = np.repeat(firsts - seg_first, counts) + np.arange(int(counts.sum()))
        sg = self.sg[rows].astype(np.int64) if len(rows) else np.zeros((0, 4), np.int64)
        offs, lens = sg[:, 0], sg[:, 1]
        new_off = np.cumsum(lens) - lens
        at = np.repeat(offs - new_off, lens) + np.arange(int(lens.sum()))
        text = self.text[at] if len(at) else np.frombuffer(b" ", np.uint8)
        sg[:, 0] = new_off
        return Templates(seg_at, sg, np.ascontiguousarray(text, np.uint8), -1), remap


def _stack_padded(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of hole columns of several parts, the narrower ones padded with zeros (a
    part holds as many columns as its templates used then)."""
    width = max(p.shape[1] for p in parts)
    if all(p.shape[1] == width for p in parts):
        return np.concatenate(parts)
    out = np.zeros((sum(len(p) for p in parts), width), np.result_type(*parts))
    at = 0
    for p in parts:
        out[at : at + len(p), : p.shape[1]] = p
        at += len(p)
    return out


class TemplatedDetails(list[dict[str, Any]]):
    """Details of ``len(op)`` operations, not rendered yet. Per operation: ``op`` (its
    template operation in ``templates``), ``ints`` (n x up to 8 integer holes: as many
    as its templates use), ``frames``
    (n x 3 frame holes) and ``ln`` (how many list holes); list holes in order:
    ``h_len`` (their lengths) and ``vals`` (their values, flat).

    Like :class:`~otconduit.store.opchunks.RawDetails` this is write-side only:
    iterating raises; :meth:`render` gives the text."""

    def __init__(
        self,
        templates: Templates,
        op: np.ndarray,
        ints: np.ndarray,
        frames: np.ndarray,
        ln: np.ndarray,
        h_len: np.ndarray,
        vals: np.ndarray,
    ) -> None:
        super().__init__()
        self.templates = templates
        self.op = op
        self.ints = ints
        self.frames = frames
        self.ln = ln
        self.h_len = h_len
        self.vals = vals

    def __len__(self) -> int:
        return len(self.op)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        raise TypeError("templated details: render() or unpack() them to read them")

    def split(self, bounds: Sequence[int]) -> list[TemplatedDetails]:
        """Operations ``bounds[k]..bounds[k+1]-1`` for each k, each self-contained
        (with its own list holes)."""
        hs = prefix_sums(self.ln)
        vs = prefix_sums(self.h_len)
        return [self.part(lo, hi, hs, vs) for lo, hi in pairwise(bounds)]

    def part(self, lo: int, hi: int, hs: np.ndarray, vs: np.ndarray) -> TemplatedDetails:
        """Operations ``lo..hi-1``, given ``hs = prefix_sums(ln)`` and
        ``vs = prefix_sums(h_len)`` (computed once by callers that take many parts)."""
        h_lo, h_hi = int(hs[lo]), int(hs[hi])
        return TemplatedDetails(
            self.templates,
            self.op[lo:hi],
            self.ints[lo:hi],
            self.frames[lo:hi],
            self.ln[lo:hi],
            self.h_len[h_lo:h_hi],
            self.vals[int(vs[h_lo]) : int(vs[h_hi])],
        )

    def render(self) -> bytes:
        """The details as JSON objects joined by commas (the RawDetails text)."""
        n = len(self.op)
        if n == 0:
            return b""
        from otconduit.store.detail_render import render  # compiled: loaded when needed

        t = self.templates
        lh = np.stack([prefix_sums(self.h_len)[:-1], self.h_len], axis=1).astype(np.int64)
        has = np.ones(len(t.seg_at), np.int64)
        size = int(t.sg[:, 1].sum()) or 64  # the text of every template operation
        size = size * 2 + 32 * n + 24 * len(self.vals) + 256
        text, _ = render(
            self.op, t.seg_at, has, t.sg, t.text, self.ints, self.frames,
            prefix_sums(self.ln)[:-1], lh, self.vals, size,
        )  # fmt: skip
        return text[: max(len(text) - 1, 0)].tobytes()  # without the last comma

    @staticmethod
    def merge(parts: Sequence[TemplatedDetails]) -> TemplatedDetails | None:
        """One object for several of one store's snapshots (the newest holds every
        template the older ones use); None when they come from different stores."""
        owners = {p.templates.owner for p in parts}
        if len(owners) != 1 or -1 in owners:
            return None
        newest = max((p.templates for p in parts), key=lambda t: len(t.seg_at))
        return TemplatedDetails(
            newest,
            np.concatenate([p.op for p in parts]),
            _stack_padded([p.ints for p in parts]),
            _stack_padded([p.frames for p in parts]),
            np.concatenate([p.ln for p in parts]),
            np.concatenate([p.h_len for p in parts]),
            np.concatenate([p.vals for p in parts]),
        )
