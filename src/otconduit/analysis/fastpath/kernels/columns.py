"""Finished transactions into stored operation columns, in one compiled pass each.

``tab`` is the template store's operation table (``templates.OpTable``): one row per
template operation, its constant fields, and for the fields that can come from a hole
(``*_kind`` 2) which hole.
"""

from __future__ import annotations

import numpy as np

from otconduit.analysis.fastpath.kernels.shapes import X_F, X_INT, X_LH, X_LN
from otconduit.analysis.fastpath.kernels.slots import MAX_MSGS
from otconduit.jit import njit
from otconduit.store.detail_holes import N_INTS
from otconduit.store.opchunks import NULL

KIND_NONE = 0
KIND_CONST = 1
KIND_HOLE = 2


@njit(cache=True, nogil=True, inline="always")
def _field(kind, value, xo, x):
    if kind == KIND_HOLE:
        return xo[x, X_INT + value]
    if kind == KIND_CONST:
        return value
    return NULL


@njit(cache=True, nogil=True)
def expand_columns(x_of, o_of, rid, xo, rid_port, tab, out):
    """The stored integer columns (``out`` rows, in ``opchunks.INT_COLUMNS`` order) of
    operations ``o_of`` (template operations) of transactions ``x_of`` on registrations
    ``rid``."""
    for j in range(len(x_of)):
        x = x_of[j]
        o = o_of[j]
        r = rid[j]
        from_server = tab.role[o] == 1
        same = rid_port[r, 2]
        out[0, j] = xo[x, X_F + 2 * tab.ts_message[o] + 1]
        out[1, j] = rid_port[r, 1] if from_server and same == 1 else rid_port[r, 0]
        out[2, j] = tab.function_code[o]
        out[3, j] = _field(tab.unit_kind[o], tab.unit[o], xo, x)
        out[4, j] = _field(tab.address_kind[o], tab.address[o], xo, x)
        out[5, j] = _field(tab.quantity_kind[o], tab.quantity[o], xo, x)
        out[6, j] = tab.status[o]
        out[7, j] = tab.exception_code[o]
        rq = tab.request_frame[o]
        rs = tab.response_frame[o]
        rq_at = X_F + 2 * max(rq, 0)
        rs_at = X_F + 2 * max(rs, 0)
        out[8, j] = xo[x, rs_at + 1] - xo[x, rq_at + 1] if tab.latency[o] == 1 else NULL
        out[9, j] = xo[x, rq_at] if rq >= 0 else NULL
        out[10, j] = xo[x, rs_at] if rs >= 0 else NULL
        out[11, j] = _field(tab.tid_kind[o], tab.tid[o], xo, x)
        out[12, j] = tab.operation[o]
        out[13, j] = tab.function[o]
        out[14, j] = tab.exception[o]
        out[15, j] = 1 if from_server and same == 0 else 0


@njit(cache=True, nogil=True)
def gather_lists(kind, index, static_off, static_len, static_pool, x_of, xo, lh, lv):
    """A ragged column: per operation j none (``kind`` 0), a static list (1:
    ``static_pool[static_off[j]:][:static_len[j]]``) or list hole ``index[j]`` of
    transaction ``x_of[j]`` (2). Returns (offsets, nulls, flat values)."""
    n = len(kind)
    offsets = np.zeros(n + 1, np.int64)
    nulls = np.zeros(n, np.int64)
    pos = 0
    for j in range(n):
        k = kind[j]
        if k == KIND_NONE:
            nulls[j] = 1
        elif k == KIND_CONST:
            pos += static_len[j]
        else:
            pos += lh[xo[x_of[j], X_LH] + index[j], 1]
        offsets[j + 1] = pos
    out = np.empty(pos, np.int64)
    for j in range(n):
        k = kind[j]
        at = offsets[j]
        if k == KIND_CONST:
            base = static_off[j]
            for m in range(static_len[j]):
                out[at + m] = static_pool[base + m]
        elif k == KIND_HOLE:
            row = xo[x_of[j], X_LH] + index[j]
            base = lh[row, 0]
            for m in range(lh[row, 1]):
                out[at + m] = lv[base + m]
    return offsets, nulls, out


@njit(cache=True, nogil=True)
def gather_holes(x, xo, lh, lv, ints, frames, ln):
    """Copy the holes of transactions ``x`` (rows of ``xo``) out of the block: integer
    and frame holes into ``ints``/``frames`` (as many as their widths: the holes the
    templates use), list-hole counts into ``ln``; returns the list holes' lengths and
    their values, flat (see ``store.tdetails``)."""
    nh = 0
    nv = 0
    for j in range(len(x)):
        r = x[j]
        for k in range(min(ints.shape[1], N_INTS)):
            ints[j, k] = xo[r, X_INT + k]
        for k in range(min(frames.shape[1], MAX_MSGS)):
            frames[j, k] = xo[r, X_F + 2 * k]
        c = xo[r, X_LN]
        ln[j] = c
        for m in range(c):
            nv += lh[xo[r, X_LH] + m, 1]
        nh += c
    h_len = np.empty(nh, np.int64)
    vals = np.empty(nv, np.int64)
    h = 0
    v = 0
    for j in range(len(x)):
        r = x[j]
        for m in range(ln[j]):
            row = xo[r, X_LH] + m
            size = lh[row, 1]
            base = lh[row, 0]
            h_len[h] = size
            h += 1
            for q in range(size):
                vals[v] = lv[base + q]
                v += 1
    return h_len, vals
