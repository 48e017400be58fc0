"""Compiled pieces shared by the transaction lanes of the bulk path (numba, cached on disk).

A *transaction lane* (S7comm, EtherNet/IP, DNP3; see :mod:`otconduit.analysis.lanes`)
decodes the common case of one protocol with a per-protocol pass kernel
(``kernels_s7``, ``kernels_enip``, ``kernels_dnp3``) built from the pieces here:

- per-slot TCP state in one int64 row of ``st`` (columns ``F_*``): the next sequence
  number each way, packet and byte counters, MAC addresses, FINs, the registration id;
  :func:`admit` decides whether a packet may be taken, :func:`commit` accounts for it;
- the raw bytes of the messages in flight (requests waiting for their answer), kept per
  slot (``raw``, ``qm``) with the keys that pair them, so that a hand-over can replay
  them into the per-packet decoder, which then continues exactly as if it had seen
  them itself; a packet carrying several messages is taken whole or not at all
  (:func:`save`/:func:`restore`);
- templates: a finished transaction is reduced to its *shape* (its bytes with the
  fields that vary from one transaction to the next zeroed: references, sequence
  numbers, values) and those varying fields (*holes*). The shape finds a template made
  by the per-packet decoder from an earlier transaction of the same shape; its
  operations are the template's, with the holes filled in (:func:`render_details`
  writes the detail JSON). A shape without a template hands the connection back.

Hash: FNV-1a over the shape bytes (collisions are checked byte for byte).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from otconduit.analysis.kernels import flow_keys, table_get
from otconduit.store.opchunks import NULL

# -- slot state: columns of st[slot] ---------------------------------------------------
F_FAST = 0  # 1 while the kernel owns the slot
F_NEXT = 1  # 1, 2: next sequence number client->server, server->client
F_PK = 3  # 3, 4: packets taken per direction (since the engine last absorbed them)
F_BY = 5  # 5, 6: IP bytes taken per direction
F_LAST = 7  # last timestamp taken
F_SMAC = 8  # 8, 9: source MAC + 1 per direction (0: not seen yet)
F_DMAC = 10  # 10, 11: destination MAC + 1 per direction
F_FIN = 12  # bit d: FIN seen from direction d
F_FIN_TS = 13
F_RID = 14  # registration id: which connection the slot holds
F_NTX = 15  # transactions finished in bulk since the last absorb
F_STATE = 16  # 0 idle, 1 request in flight, 2 response awaiting a confirm (DNP3)
F_KEY = 17  # what the answer must carry to match (PDU reference, sequence, ...)
F_QN = 18  # messages kept in raw[slot] (in arrival order) for a hand-over replay
F_QUSED = 19  # bytes of raw[slot] in use (kept messages, and dropped ones not yet compacted)
F_TC = 20  # the shape entry this slot used last (+1; 0: none)
F_P = 22  # 22..63: protocol-specific
N_FIELDS = 64

# -- kept messages: qm[slot, k] ----------------------------------------------------------
Q_OFF = 0
Q_LEN = 1
Q_FRAME = 2
Q_TS = 3
Q_DIR = 4
Q_KEY = 5  # what the answer must carry (PDU reference, sequence count, ...)
Q_KEY2 = 6
Q_FIELDS = 7
MAX_KEPT = 8  # messages in flight per slot; more go to the per-packet path
RAW_BYTES = 8192  # per slot, for kept messages
RAW_EXTRA = 512  # per slot after RAW_BYTES, for protocol state (DNP3 transport segments)
MAX_MSGS = 3  # messages of one transaction

# A connection silent this long is folded by the engine and re-opened (engine.IDLE_NS):
# such a packet goes to the per-packet path.
IDLE_NS = 3600 * 1_000_000_000

# -- admit() verdicts -------------------------------------------------------------------
SKIP = 0
SLOW = 1
TAKE = 2

# -- transaction output rows: xo[j] ---------------------------------------------------
X_RID = 0
X_TMPL = 1
X_F = 2  # 2..7: frame and time of message k at X_F + 2k, X_F + 2k + 1 (k < 3)
X_LH = 8  # first row of lh holding this transaction's list holes
X_LN = 9  # how many list holes
X_INT = 10  # 10..17: integer holes
N_INTS = 8
X_FIELDS = X_INT + N_INTS

# -- counters: cnt[] ---------------------------------------------------------------------
C_NX = 0  # transactions written to xo
C_NLH = 1  # list holes written to lh
C_NLV = 2  # values written to lv
C_NSL = 3  # slots turned slow (listed in slowed)
C_NMISS = 4  # shapes without a template (listed in miss, their messages in mb)
C_NMB = 5  # bytes used in mb
N_COUNTERS = 6

# -- miss rows: miss[r] = (slot, packet, messages, then per message (offset in mb,
# length, frame, ts, direction)) ----------------------------------------------------------
M_MSG = 3
M_FIELDS = M_MSG + 5 * MAX_MSGS

# -- template index: th[h] = (hash, template) -------------------------------------------
T_REFUSED = -2  # a shape the per-packet path must always take (no template possible)

# -- detail segments: sg[k] = (text offset, text length, hole kind, hole index) ----------
H_END = 0  # text only (the last segment of a detail)
H_INT = 1  # integer hole, written in decimal
H_LIST = 2  # list hole, written as a JSON list of integers
H_HEX = 3  # list hole of bytes, written as a JSON string of hex digits
H_FRAME = 4  # the frame number of message ``index`` of the transaction

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


@njit(cache=True, nogil=True, inline="always")
def listed(ports, sport, dport):
    """Whether a packet's ports include one of the lane's server ports (``ports[0]`` -2:
    too many to list, any packet may be the lane's). Checked before :func:`admit`, so
    that other protocols' packets are passed over without a table lookup."""
    found = ports[0] == -2
    for k in range(len(ports)):  # a loop, not any(): numba compiles no generators
        found |= ports[k] == sport
        found |= ports[k] == dport
    return found


@njit(cache=True, nogil=True, inline="always")
def admit(src, dst, sport, dport, vlan, seq, flags, plen, smac, dmac, ts, tk1, tk2, tv, st):
    """(slot, direction, verdict) of a packet not yet taken, given its header fields:
    SKIP (not ours), SLOW (ours, but the per-packet path must take it and the rest of
    the connection) or TAKE. Takes scalars, not the column arrays: an inlined function
    with a score of array arguments costs ~80 ns a packet in reference counting."""
    k1, k2 = flow_keys(src, dst, sport, dport, vlan)
    sv = table_get(tk1, tk2, tv, k1, k2)
    if sv < 0:
        return -1, 0, SKIP
    s = sv >> 1
    d = sv & 1
    if st[s, F_FAST] == 0:
        return -1, 0, SKIP
    if flags & 0x06:  # SYN, RST: the per-packet path owns connection state changes
        return s, d, SLOW
    if ts - st[s, F_LAST] > IDLE_NS:
        return s, d, SLOW
    if st[s, F_SMAC + d] == 0:
        st[s, F_SMAC + d] = smac
        st[s, F_DMAC + d] = dmac
    elif st[s, F_SMAC + d] != smac or st[s, F_DMAC + d] != dmac:
        return s, d, SLOW
    if plen > 0 and seq != st[s, F_NEXT + d]:
        return s, d, SLOW
    return s, d, TAKE


@njit(cache=True, nogil=True, inline="always")
def make_slow(st, s, slowed, cnt):
    st[s, F_FAST] = 0
    slowed[cnt[C_NSL]] = s
    cnt[C_NSL] += 1


@njit(cache=True, nogil=True, inline="always")
def commit(i, s, d, st, ts, flags, plen, iplen, done):
    """Packet ``i`` was taken: advance the sequence number, count it, note a FIN."""
    if plen[i] > 0:
        st[s, F_NEXT + d] = (st[s, F_NEXT + d] + plen[i]) & 0xFFFFFFFF
    if flags[i] & 0x01:
        st[s, F_FIN] |= 1 << d
        st[s, F_FIN_TS] = ts[i]
    st[s, F_PK + d] += 1
    st[s, F_BY + d] += iplen[i]
    if ts[i] > st[s, F_LAST]:
        st[s, F_LAST] = ts[i]
    done[i] = 1


@njit(cache=True, nogil=True, inline="always")
def keep(st, qm, raw, s, buf, p, n, frame, t, d, key, key2):
    """Keep ``buf[p:p+n]``, a message in flight, for pairing and for a hand-over; False
    when it does not fit (the caller then hands the connection back)."""
    k = st[s, F_QN]
    used = st[s, F_QUSED]
    if k >= MAX_KEPT or used + n > RAW_BYTES:
        return False
    raw[s, used : used + n] = buf[p : p + n]
    qm[s, k, Q_OFF] = used
    qm[s, k, Q_LEN] = n
    qm[s, k, Q_FRAME] = frame
    qm[s, k, Q_TS] = t
    qm[s, k, Q_DIR] = d
    qm[s, k, Q_KEY] = key
    qm[s, k, Q_KEY2] = key2
    st[s, F_QN] = k + 1
    st[s, F_QUSED] = used + n
    return True


@njit(cache=True, nogil=True, inline="always")
def drop(st, qm, s, k):
    """Forget kept message ``k`` (its bytes stay until the slot is compacted)."""
    n = st[s, F_QN]
    for j in range(k, n - 1):
        for f in range(Q_FIELDS):
            qm[s, j, f] = qm[s, j + 1, f]
    st[s, F_QN] = n - 1
    if n == 1:
        st[s, F_QUSED] = 0


@njit(cache=True, nogil=True, inline="always")
def compact(st, qm, raw, s):
    """Move the kept messages to the front of raw[s] once dropped ones fill half of it
    (only between packets, so that :func:`restore` never meets moved bytes)."""
    if st[s, F_QUSED] <= RAW_BYTES // 2:
        return
    pos = 0
    for k in range(st[s, F_QN]):
        off = qm[s, k, Q_OFF]
        n = qm[s, k, Q_LEN]
        if off != pos:
            for b in range(n):
                raw[s, pos + b] = raw[s, off + b]
            qm[s, k, Q_OFF] = pos
        pos += n
    st[s, F_QUSED] = pos


@njit(cache=True, nogil=True, inline="always")
def find(st, qm, s, d, key, key2):
    """First kept message from direction ``d`` with these keys, or -1."""
    for k in range(st[s, F_QN]):
        if qm[s, k, Q_DIR] == d and qm[s, k, Q_KEY] == key and qm[s, k, Q_KEY2] == key2:
            return k
    return -1


@njit(cache=True, nogil=True)
def save(st, qm, cnt, s, sv_st, sv_qm, sv_cnt):
    """Remember slot ``s`` before a packet of several messages."""
    sv_st[:] = st[s, :]
    sv_qm[:, :] = qm[s, :, :]
    sv_cnt[:] = cnt[:]


@njit(cache=True, nogil=True)
def restore(st, qm, cnt, s, sv_st, sv_qm, sv_cnt):
    """Undo a packet taken in part: slot state and output (misses and slow slots stay)."""
    st[s, :] = sv_st[:]
    qm[s, :, :] = sv_qm[:, :]
    cnt[C_NX] = sv_cnt[C_NX]
    cnt[C_NLH] = sv_cnt[C_NLH]
    cnt[C_NLV] = sv_cnt[C_NLV]


@njit(cache=True, nogil=True, inline="always")
def pick(qm, s, ks, nk, out):
    """The kept messages ``ks[:nk]`` of slot ``s`` as the rows of one transaction."""
    for j in range(nk):
        for f in range(Q_FIELDS):
            out[j, f] = qm[s, ks[j], f]


@njit(cache=True, nogil=True, inline="always")
def settle(
    st, qm, raw, s, i, tq, ks, nk, size, th, tinfo, tnorm, norm, xo, cnt, nlh, nlv, mb, miss
):
    """After the kernel shaped the transaction ``tq[:nk]`` of slot ``s`` (kept messages
    ``ks[:nk]``, the last one from packet ``i``; ``size`` bytes of shape, -1 when it is
    not one for this lane): write it from its template and forget its messages; or undo
    its holes and forget only its last message, noting a miss (with the messages, for
    the lane to learn from) when a template could be made. True when it was written."""
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
        return True
    cnt[C_NLH] = nlh
    cnt[C_NLV] = nlv
    drop(st, qm, s, ks[nk - 1])
    need = 0
    for k in range(nk):
        need += tq[k, Q_LEN]
    r = cnt[C_NMISS]
    if size > 0 and t != T_REFUSED and r < len(miss) and cnt[C_NMB] + need <= len(mb):
        miss[r, 0] = s
        miss[r, 1] = i
        miss[r, 2] = nk
        for k in range(nk):
            at = cnt[C_NMB]
            off = tq[k, Q_OFF]
            n = tq[k, Q_LEN]
            mb[at : at + n] = raw[s, off : off + n]
            cnt[C_NMB] = at + n
            miss[r, M_MSG + 5 * k] = at
            miss[r, M_MSG + 5 * k + 1] = n
            miss[r, M_MSG + 5 * k + 2] = tq[k, Q_FRAME]
            miss[r, M_MSG + 5 * k + 3] = tq[k, Q_TS]
            miss[r, M_MSG + 5 * k + 4] = tq[k, Q_DIR]
        cnt[C_NMISS] = r + 1
    return False


@njit(cache=True, nogil=True)
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
        return tinfo[e, 2]
    e = template_find(th, tinfo, tnorm, norm, n, fnv(norm, n))
    if e < 0:
        return -1
    st[s, F_TC] = e + 1
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
def render_details(rows, to_seg, has_detail, sg, text, xo, lh, lv, out, offs):
    """Write the detail JSON of each operation ``j`` (transaction ``rows[j, 0]``,
    template operation ``rows[j, 1]``) followed by a comma; operations without detail
    write nothing. ``offs[j]..offs[j+1]`` is what operation j wrote. Returns the bytes
    written, or -1 when ``out`` is too small (nothing is then valid)."""
    pos = 0
    cap = len(out)
    for j in range(len(rows)):
        x = rows[j, 0]
        o = rows[j, 1]
        offs[j] = pos
        if has_detail[o] == 0:
            continue
        for k in range(to_seg[o, 0], to_seg[o, 0] + to_seg[o, 1]):
            toff = sg[k, 0]
            tlen = sg[k, 1]
            kind = sg[k, 2]
            idx = sg[k, 3]
            need = tlen + 24
            if kind >= H_LIST and kind <= H_HEX:
                need += 21 * lh[xo[x, X_LH] + idx, 1] + 2
            if pos + need > cap:
                return -1
            out[pos : pos + tlen] = text[toff : toff + tlen]
            pos += tlen
            if kind == H_INT:
                pos = _put_int(out, pos, xo[x, X_INT + idx])
            elif kind == H_FRAME:
                pos = _put_int(out, pos, xo[x, X_F + 2 * idx])
            elif kind == H_LIST:
                row = xo[x, X_LH] + idx
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
                row = xo[x, X_LH] + idx
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
    offs[len(rows)] = pos
    return pos


@njit(cache=True, nogil=True)
def expand_columns(
    x_of, o_of, rid, xo, rid_port, role, rq_src, rs_src, tid_kind, tid, latency,
    fcode, unit, address, quantity, status, exc_code, opclass, function, exception, out,
):  # fmt: skip
    """The stored integer columns (``out`` rows, in ``opchunks.INT_COLUMNS`` order) of
    operations ``o_of`` (template operations) of transactions ``x_of`` on registrations
    ``rid``: one pass instead of a score of numpy gathers."""
    for j in range(len(x_of)):
        x = x_of[j]
        o = o_of[j]
        r = rid[j]
        from_server = role[o] == 1
        same = rid_port[r, 2]
        out[0, j] = xo[x, X_F + 1]
        out[1, j] = rid_port[r, 1] if from_server and same == 1 else rid_port[r, 0]
        out[2, j] = fcode[o]
        out[3, j] = unit[o]
        out[4, j] = address[o]
        out[5, j] = quantity[o]
        out[6, j] = status[o]
        out[7, j] = exc_code[o]
        rq = rq_src[o]
        rs = rs_src[o]
        rq_at = X_F + 2 * max(rq, 0)
        rs_at = X_F + 2 * max(rs, 0)
        out[8, j] = xo[x, rs_at + 1] - xo[x, rq_at + 1] if latency[o] == 1 else NULL
        out[9, j] = xo[x, rq_at] if rq >= 0 else NULL
        out[10, j] = xo[x, rs_at] if rs >= 0 else NULL
        kind = tid_kind[o]
        if kind == 2:
            out[11, j] = xo[x, X_INT + tid[o]]
        elif kind == 1:
            out[11, j] = tid[o]
        else:
            out[11, j] = NULL
        out[12, j] = opclass[o]
        out[13, j] = function[o]
        out[14, j] = exception[o]
        out[15, j] = 1 if from_server and same == 0 else 0


@njit(cache=True, nogil=True)
def gather_holes(x, xo, lh, lv, ints, frames, ln):
    """Copy the holes of transactions ``x`` (rows of ``xo``) out of the block: integer
    and frame holes into ``ints``/``frames``, list-hole counts into ``ln``; returns the
    list holes' lengths and their values, flat (see ``store.tdetails``)."""
    nh = 0
    nv = 0
    for j in range(len(x)):
        r = x[j]
        for k in range(N_INTS):
            ints[j, k] = xo[r, X_INT + k]
        for k in range(MAX_MSGS):
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


@njit(cache=True, nogil=True)
def gather_lists(src_kind, src_idx, static_off, static_len, static_pool, xrow, xo, lh, lv, out):
    """Ragged ``values`` column: per operation j either none (``src_kind`` 0), a static
    list (1: ``static_pool[static_off[j]:][:static_len[j]]``) or list hole ``src_idx[j]``
    of transaction ``xrow[j]`` (2). Returns (offsets, nulls, flat length) in ``out``."""
    n = len(src_kind)
    offsets = np.zeros(n + 1, np.int64)
    nulls = np.zeros(n, np.int64)
    pos = 0
    for j in range(n):
        kind = src_kind[j]
        if kind == 0:
            nulls[j] = 1
        elif kind == 1:
            for m in range(static_len[j]):
                out[pos] = static_pool[static_off[j] + m]
                pos += 1
        else:
            row = xo[xrow[j], X_LH] + src_idx[j]
            base = lh[row, 0]
            for m in range(lh[row, 1]):
                out[pos] = lv[base + m]
                pos += 1
        offsets[j + 1] = pos
    return offsets, nulls, pos
