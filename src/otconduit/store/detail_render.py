"""Compiled renderer of templated operation details (numba, cached on disk).

A templated detail is a template (JSON text cut into segments, each followed by a
*hole*) plus the hole values of one operation: integers, frame numbers and lists. The
store renders it when someone reads the detail; the fast path renders exemplars with it
to check a template before using it. Both get byte for byte what
``json.dumps(detail, separators=(",", ":"))`` writes.

Segments: ``sg[k] = (text offset, text length, hole kind, hole index)``; an operation's
segments are ``sg[seg_at[o, 0] : seg_at[o, 0] + seg_at[o, 1]]``.
"""

from __future__ import annotations

import numpy as np

from otconduit.jit import njit
from otconduit.store.detail_holes import H_FRAME, H_HEX, H_INT, H_LIST

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


@njit(cache=True, nogil=True)
def _put_int(out, pos, v):
    if v < 0:
        out[pos] = 45  # '-'
        pos += 1
        v = -v
    if v < 10:
        out[pos] = 48 + v
        return pos + 1
    if v < 100:
        out[pos] = 48 + v // 10
        out[pos + 1] = 48 + v % 10
        return pos + 2
    digits = 0
    w = v
    while w > 0:
        digits += 1
        w //= 10
    end = pos + digits
    at = end - 1
    while v > 0:
        out[at] = 48 + v % 10
        v //= 10
        at -= 1
    return end


@njit(cache=True, nogil=True)
def render_details(ops, seg_at, has_detail, sg, text, ints, frames, lfirst, lh, lv, out, offs):
    """Write the detail JSON of each operation ``j`` (template operation ``ops[j]``, hole
    values ``ints[j]``, ``frames[j]`` and list holes from row ``lfirst[j]`` of ``lh``:
    (offset in ``lv``, length)) followed by a comma; operations without a detail write
    nothing. ``offs[j]..offs[j+1]`` is what operation j wrote. Returns the bytes written,
    or -1 when ``out`` is too small (nothing is then valid)."""
    pos = 0
    cap = len(out)
    for j in range(len(ops)):
        o = ops[j]
        offs[j] = pos
        if has_detail[o] == 0:
            continue
        for k in range(seg_at[o, 0], seg_at[o, 0] + seg_at[o, 1]):
            toff = sg[k, 0]
            tlen = sg[k, 1]
            kind = sg[k, 2]
            idx = sg[k, 3]
            need = tlen + 24
            if kind >= H_LIST and kind <= H_HEX:
                need += 21 * lh[lfirst[j] + idx, 1] + 2
            if pos + need > cap:
                return -1
            out[pos : pos + tlen] = text[toff : toff + tlen]
            pos += tlen
            if kind == H_INT:
                pos = _put_int(out, pos, ints[j, idx])
            elif kind == H_FRAME:
                pos = _put_int(out, pos, frames[j, idx])
            elif kind == H_LIST:
                row = lfirst[j] + idx
                base = lh[row, 0]
                out[pos] = 91  # '['
                pos += 1
                for m in range(lh[row, 1]):
                    if m:
                        out[pos] = 44  # ','
                        pos += 1
                    pos = _put_int(out, pos, lv[base + m])
                out[pos] = 93  # ']'
                pos += 1
            elif kind == H_HEX:
                row = lfirst[j] + idx
                base = lh[row, 0]
                out[pos] = 34  # '"'
                pos += 1
                for m in range(lh[row, 1]):
                    v = lv[base + m]
                    out[pos] = _HEX[(v >> 4) & 15]
                    out[pos + 1] = _HEX[v & 15]
                    pos += 2
                out[pos] = 34
                pos += 1
        out[pos] = 44  # ','
        pos += 1
    offs[len(ops)] = pos
    return pos


def render(
    ops: np.ndarray,
    seg_at: np.ndarray,
    has_detail: np.ndarray,
    sg: np.ndarray,
    text: np.ndarray,
    ints: np.ndarray,
    frames: np.ndarray,
    lfirst: np.ndarray,
    lh: np.ndarray,
    lv: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`render_details` into a buffer of ``size`` bytes, grown until the text
    fits: (text, offsets)."""
    offs = np.zeros(len(ops) + 1, np.int64)
    if not len(lh):
        lh = np.zeros((1, 2), np.int64)
    if not len(lv):
        lv = np.zeros(1, np.int64)
    while True:
        out = np.empty(size, np.uint8)  # callers keep views of it: never reused
        n = render_details(
            ops, seg_at, has_detail, sg, text, ints, frames, lfirst, lh, lv, out, offs
        )
        if n >= 0:
            return out[:n], offs
        size *= 4
