"""Transaction shapes and their templates, on the compiled side.

A finished transaction is reduced to its *shape*: its messages' bytes with the fields
that vary from one transaction to the next (transaction ids, references, addresses,
values) taken out, and those fields as *holes* (integers in ``xo[j, X_INT:]``, lists in
``lh``/``lv``). The shape finds a template the per-packet decoder made from an earlier
transaction of the same shape (:mod:`otconduit.analysis.fastpath.templates`); the
transaction's operations are the template's with the holes filled in. A shape with no
template is recorded as a *miss* for the lane to learn from, and the connection goes
back to the per-packet path at that transaction.

Index: ``th[h] = (hash, entry)``, open addressing; ``tinfo[entry] = (offset of the
shape in tnorm, length, template, bit of its operations' protocol)``. Hash: FNV-1a over
the shape, eight bytes at a time (collisions are checked byte for byte).
"""

from __future__ import annotations

import numpy as np

from otconduit.analysis.fastpath.kernels.slots import (
    C_NLH,
    C_NLV,
    C_NMB,
    C_NMISS,
    C_NX,
    F_BUF,
    F_NTX,
    F_RID,
    F_SEEN,
    F_TC,
    MAX_MSGS,
    Q_DIR,
    Q_FRAME,
    Q_LEN,
    Q_OFF,
    Q_TS,
    WHY_NEW,
    WHY_NONE,
    WHY_REFUSED,
    drop,
)
from otconduit.jit import njit
from otconduit.store.detail_holes import N_FRAMES, N_INTS

# -- transaction rows: xo[j, X_*] -------------------------------------------------------
X_RID = 0  # registration id of the connection
X_TMPL = 1  # template
X_F = 2  # frame and time of message k at X_F + 2k, X_F + 2k + 1 (k < MAX_MSGS)
X_LH = X_F + 2 * MAX_MSGS  # first row of lh holding this transaction's list holes
X_LN = X_LH + 1  # how many list holes
X_INT = X_LN + 1  # N_INTS integer holes
X_FIELDS = X_INT + N_INTS
assert N_FRAMES == MAX_MSGS

T_REFUSED = -2  # tinfo template of a shape the per-packet path must always take

# -- miss rows: miss[r] = (slot, packet, messages, then per message (offset in mb,
# length, frame, ts, direction)) ----------------------------------------------------------
M_MSG = 3
M_FIELDS = M_MSG + 5 * MAX_MSGS

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True, inline="always")
def fnv(norm, n):
    """FNV-1a over the shape taken eight bytes at a time (a multiply per word, not per
    byte: the shape of every transaction is hashed)."""
    h = _FNV_OFFSET
    k = 0
    while k + 8 <= n:
        w = np.uint64(0)
        for b in range(8):
            w |= np.uint64(norm[k + b]) << np.uint64(8 * b)
        h = (h ^ w) * _FNV_PRIME
        k += 8
    while k < n:
        h = (h ^ np.uint64(norm[k])) * _FNV_PRIME
        k += 1
    h ^= h >> np.uint64(32)
    return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))


@njit(cache=True, nogil=True, inline="always")
def _same(tnorm, off, norm, n):
    for k in range(n):  # noqa: SIM110 (a plain loop compiles to a tight compare in numba)
        if tnorm[off + k] != norm[k]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def template_find(th, tinfo, tnorm, norm, n, h):
    """Shape entry of ``norm[:n]`` (hash ``h``), or -1."""
    mask = len(th) - 1
    at = h & mask
    while True:
        e = th[at, 1]
        if e == -1:
            return -1
        if th[at, 0] == h and tinfo[e, 1] == n and _same(tnorm, tinfo[e, 0], norm, n):
            return e
        at = (at + 1) & mask


@njit(cache=True, nogil=True, inline="always")
def template_of(st, s, th, tinfo, tnorm, norm, n):
    """Template of the shape ``norm[:n]`` of a transaction on slot ``s``: its id,
    T_REFUSED, or -1. The slot's last shape is tried first (a poller repeats itself),
    then the hash index."""
    e = st[s, F_TC] - 1
    if e >= 0 and tinfo[e, 1] == n and _same(tnorm, tinfo[e, 0], norm, n):
        st[s, F_SEEN] |= tinfo[e, 3]
        return tinfo[e, 2]
    e = template_find(th, tinfo, tnorm, norm, n, fnv(norm, n))
    if e < 0:
        return -1
    st[s, F_TC] = e + 1
    st[s, F_SEEN] |= tinfo[e, 3]
    return tinfo[e, 2]


@njit(cache=True, nogil=True)
def template_insert(th, h, t):
    """Index template entry ``t`` under hash ``h`` (the caller keeps th under half full)."""
    mask = len(th) - 1
    at = h & mask
    while th[at, 1] != -1:
        at = (at + 1) & mask
    th[at, 0] = h
    th[at, 1] = t


@njit(cache=True, nogil=True, inline="always")
def room(xo, lh, lv, cnt, lists, values):
    """Whether one more transaction with ``lists`` list holes and ``values`` values fits."""
    return cnt[C_NX] < len(xo) and cnt[C_NLH] + lists <= len(lh) and cnt[C_NLV] + values <= len(lv)


@njit(cache=True, nogil=True, inline="always")
def put_list(lh, lv, cnt, src, p, n, width, little):
    """Append a list hole of ``n`` unsigned integers of ``width`` bytes read from
    ``src[p:]`` (big-endian unless ``little``)."""
    row = cnt[C_NLH]
    base = cnt[C_NLV]
    lh[row, 0] = base
    lh[row, 1] = n
    for k in range(n):
        v = np.int64(0)
        q = p + k * width
        for b in range(width):
            if little:
                v |= np.int64(src[q + b]) << (8 * b)
            else:
                v = (v << 8) | np.int64(src[q + b])
        lv[base + k] = v
    cnt[C_NLH] = row + 1
    cnt[C_NLV] = base + n


@njit(cache=True, nogil=True, inline="always")
def put_bits(lh, lv, cnt, src, p, n):
    """Append a list hole of ``n`` bits read from ``src[p:]``, least significant bit of
    the first byte first (Modbus coils, MB §6.1)."""
    row = cnt[C_NLH]
    base = cnt[C_NLV]
    lh[row, 0] = base
    lh[row, 1] = n
    for k in range(n):
        lv[base + k] = (src[p + (k >> 3)] >> (k & 7)) & 1
    cnt[C_NLH] = row + 1
    cnt[C_NLV] = base + n


@njit(cache=True, nogil=True, inline="always")
def settle(
    st, qm, raw, s, i, tq, ks, nk, size, th, tinfo, tnorm, norm, xo, cnt, nlh, nlv, miss, mb
):
    """After the kernel shaped the transaction ``tq[:nk]`` of slot ``s`` (kept messages
    ``ks[:nk]``, the last one from packet ``i``; ``size`` bytes of shape in ``norm``, -1
    when it is not one the lane takes): write it from its template and forget its
    messages (WHY_NONE); or undo its holes and forget only its last message, which the
    hand-over replays, noting a miss (with the messages, for the lane to learn from)
    when a template could be made (WHY_NEW, else WHY_REFUSED)."""
    t = -1
    if size > 0:
        t = template_of(st, s, th, tinfo, tnorm, norm, size)
    if t >= 0:
        j = cnt[C_NX]
        xo[j, X_RID] = st[s, F_RID]
        xo[j, X_TMPL] = t
        for k in range(MAX_MSGS):
            m = min(k, nk - 1)
            xo[j, X_F + 2 * k] = tq[m, Q_FRAME]
            xo[j, X_F + 2 * k + 1] = tq[m, Q_TS]
        cnt[C_NX] = j + 1
        st[s, F_NTX] += 1
        for k in range(nk - 1, -1, -1):  # ks ascend: drop from the back
            drop(st, qm, s, ks[k])
        return WHY_NONE
    cnt[C_NLH] = nlh
    cnt[C_NLV] = nlv
    drop(st, qm, s, ks[nk - 1])
    if size <= 0 or t == T_REFUSED:
        return WHY_REFUSED
    note_miss(st, raw, s, i, tq, nk, cnt, miss, mb)
    return WHY_NEW


@njit(cache=True, nogil=True, inline="always")
def note_miss(st, raw, s, i, tq, nk, cnt, miss, mb):
    """Note the messages ``tq[:nk]`` of slot ``s`` (the last from packet ``i``) as a miss,
    copied out for the lane to learn their template from; False when the miss output
    has no room left (nothing is noted)."""
    need = 0
    for k in range(nk):
        need += tq[k, Q_LEN]
    r = cnt[C_NMISS]
    if r >= len(miss) or cnt[C_NMB] + need > len(mb):
        return False
    miss[r, 0] = s
    miss[r, 1] = i
    miss[r, 2] = nk
    row = st[s, F_BUF]
    for k in range(nk):
        at = cnt[C_NMB]
        off = tq[k, Q_OFF]
        n = tq[k, Q_LEN]
        for b in range(n):
            mb[at + b] = raw[row, off + b]
        cnt[C_NMB] = at + n
        miss[r, M_MSG + 5 * k] = at
        miss[r, M_MSG + 5 * k + 1] = n
        miss[r, M_MSG + 5 * k + 2] = tq[k, Q_FRAME]
        miss[r, M_MSG + 5 * k + 3] = tq[k, Q_TS]
        miss[r, M_MSG + 5 * k + 4] = tq[k, Q_DIR]
    cnt[C_NMISS] = r + 1
    return True


__all__ = [
    "M_FIELDS",
    "T_REFUSED",
    "X_FIELDS",
    "fnv",
    "note_miss",
    "put_bits",
    "put_list",
    "room",
    "settle",
    "template_insert",
]
