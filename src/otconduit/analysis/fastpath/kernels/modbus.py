"""Fast-path kernel for Modbus/TCP: any function code, pipelined and split ADUs.

Requests are kept until the answer with their transaction id and function code arrives
(several may be in flight: a poller often sends a burst of requests in one segment and
the server answers them in one or several); a request and its response are one
transaction. Pairing follows the per-packet session (``protocols.modbus.session``): the
first open request with the response's transaction id and function code. A response
with no such request (an orphan, or one answering a different code) goes to the
per-packet path, which reports it.

Shape and holes: the two ADUs with the transaction id and unit id (integer holes 0 and
1) taken out, and for the common function codes the data address (hole 2), the written
values (FC 6, 15, 16: list hole 0) and the values read back (FC 1-4: the next list
hole) when the message is well formed; integer holes 3 and 4 say whether those two
lists are there (they follow from the shape). Lengths, byte counts, quantities, coil values
(FC 5), exception codes and every byte of the other function codes stay in the shape,
so one template answers for a poll and the decoder still judges everything that can
make a message malformed. Field layouts: Modbus Messaging on TCP/IP Implementation
Guide §3.1.3 (MBAP), Modbus Application Protocol V1.1b3 §6.1-6.12 and §7.
"""

from __future__ import annotations

import numpy as np

from otconduit.analysis.fastpath.kernels.borrow import (
    block_arrays,
    out_arrays,
    shape_arrays,
    slot_arrays,
)
from otconduit.analysis.fastpath.kernels.shapes import (
    X_INT,
    X_LH,
    X_LN,
    put_bits,
    put_list,
    room,
    settle,
)
from otconduit.analysis.fastpath.kernels.slots import (
    C_NLH,
    C_NLV,
    C_NX,
    F_BUF,
    F_DECIDED,
    F_QN,
    K_MODBUS,
    LARGE,
    MAX_MSGS,
    MSG,
    NEED,
    Q_DIR,
    Q_FIELDS,
    Q_KEY,
    Q_LEN,
    Q_OFF,
    WHY_FRAMING,
    WHY_FULL,
    WHY_KIND,
    WHY_LARGE,
    WHY_NONE,
    WHY_STATE,
    WHY_UNDECIDED,
    commit,
    compact,
    consumed,
    engine_packet,
    find,
    keep_at,
    listed,
    make_slow,
    next_message,
    pend,
    pick,
    space,
    take,
)
from otconduit.jit import njit

LANE_TAG = 0x4D  # first shape byte: "M"
MAX_LIST_VALUES = 4000  # FC 1/2 read up to 2000 bits, FC 15 writes up to 1968


@njit(cache=True, nogil=True, inline="always")
def _seg(norm, pos, raw, off, a, b):
    """Copy ``raw[off+a:off+b]`` to ``norm[pos:]``; returns the new end."""
    for k in range(a, b):
        norm[pos] = raw[off + k]
        pos += 1
    return pos


@njit(cache=True, nogil=True, inline="always")
def _orphan_shape(raw, tq, norm, xrow, lh, lv, cnt):
    off = tq[0, Q_OFF]
    ln = tq[0, Q_LEN]
    if ln < 8:
        return -1
    for k in range(8):
        xrow[X_INT + k] = 0
    xrow[X_INT] = (np.int64(raw[off]) << 8) | raw[off + 1]
    xrow[X_INT + 1] = raw[off + 6]
    xrow[X_INT + 5] = 1
    first_list = cnt[C_NLH]
    norm[0] = LANE_TAG
    norm[1] = 2  # not a message index: a response alone
    norm[2] = ln
    pos = _seg(norm, 3, raw, off, 2, 6)  # protocol id, length
    fc = raw[off + 7]
    bc = np.int64(raw[off + 8]) if ln >= 9 else -1
    if (fc == 3 or fc == 4) and bc > 0 and bc % 2 == 0 and ln == 9 + bc:
        # registers read: the values the decoder reports without the request are a
        # list hole (a lossy mirror port's orphans share one template per length)
        put_list(lh, lv, cnt, raw, off + 9, bc // 2, 2, False)
        xrow[X_INT + 4] = 1
        pos = _seg(norm, pos, raw, off, 7, 9)  # function code, byte count
    else:
        pos = _seg(norm, pos, raw, off, 7, ln)  # the whole PDU
    xrow[X_LH] = first_list
    xrow[X_LN] = cnt[C_NLH] - first_list
    return pos


@njit(cache=True, nogil=True, inline="always")
def _tid_kept(st, qm, s, tid):
    """The first kept request with transaction id ``tid`` (whatever its function), or -1."""
    for k in range(st[s, F_QN]):
        if qm[s, k, Q_DIR] == 0 and qm[s, k, Q_KEY] == tid:
            return k
    return -1


@njit(cache=True, nogil=True, inline="always")
def modbus_shape(raw, tq, qn, st_row, norm, xrow, lh, lv, cnt):
    """Shape of a request and its response (``tq[:2]`` rows into ``raw``, a slot's
    row) into ``norm``, holes into ``xrow`` and the list holes. Returns the shape
    length, or -1.

    The shape is each ADU's length and its bytes outside the holes (which the bytes in
    the shape locate: function code, lengths, byte counts), so a read of 125 registers
    is hashed and compared in a dozen bytes, not in 260.

    A response alone (``qn`` 1: its request was never seen, as when a capture starts
    between the two) is an orphan: its shape is all its bytes but the transaction id
    and unit (holes 0 and 1), and hole 5 says so. A request alone is one its
    connection ended without an answer to (the lane's flush of what a slot held)."""
    if qn == 1 and tq[0, Q_DIR] == 1:
        return _orphan_shape(raw, tq, norm, xrow, lh, lv, cnt)
    if qn < 1 or qn > 2 or tq[0, Q_DIR] != 0 or (qn == 2 and tq[1, Q_DIR] != 1):
        return -1
    for k in range(8):
        xrow[X_INT + k] = 0
    first_list = cnt[C_NLH]
    norm[0] = LANE_TAG
    pos = 1
    q = tq[0, Q_OFF]
    n = tq[0, Q_LEN]
    fc = np.int64(raw[q + 7])
    qty = (np.int64(raw[q + 10]) << 8 | raw[q + 11]) if n >= 12 else -1
    common = fc <= 6 or fc == 15 or fc == 16
    # the request is as the decoder reads it well formed (MB §6.1-6.6, §6.11, §6.12)
    good = False
    if fc <= 4:
        good = n == 12 and qty >= 1 and qty <= (2000 if fc <= 2 else 125)
    elif fc == 15:
        bc = np.int64(raw[q + 12]) if n >= 13 else -1
        good = n == 13 + bc and bc == (qty + 7) // 8 and qty >= 1 and qty <= 1968
    elif fc == 16:
        bc = np.int64(raw[q + 12]) if n >= 13 else -1
        good = n == 13 + bc and bc == 2 * qty and qty >= 1 and qty <= 123
    for m in range(qn):
        off = tq[m, Q_OFF]
        ln = tq[m, Q_LEN]
        # holes after the MBAP header: [a1, b1) and [a2, b2) (b1 <= a2), offsets in the ADU
        a1 = b1 = a2 = b2 = ln
        if m == 0:
            xrow[X_INT] = (np.int64(raw[off]) << 8) | raw[off + 1]
            xrow[X_INT + 1] = raw[off + 6]
            if common and ln >= 10:
                xrow[X_INT + 2] = (np.int64(raw[off + 8]) << 8) | raw[off + 9]
                a1, b1 = 8, 10
            if fc == 6 and ln == 12:
                put_list(lh, lv, cnt, raw, off + 10, 1, 2, False)
                a2, b2 = 10, 12
                xrow[X_INT + 3] = 1
            elif fc == 15 and good:
                put_bits(lh, lv, cnt, raw, off + 13, qty)
                a2 = 13
                xrow[X_INT + 3] = 1
            elif fc == 16 and good:
                put_list(lh, lv, cnt, raw, off + 13, qty, 2, False)
                a2 = 13
                xrow[X_INT + 3] = 1
        else:
            rfc = np.int64(raw[off + 7])
            if rfc == fc and ln >= 9 and good and fc <= 4:
                bc = np.int64(raw[off + 8])
                if fc <= 2 and bc == (qty + 7) // 8 and ln == 9 + bc:
                    put_bits(lh, lv, cnt, raw, off + 9, qty)
                    a1 = 9
                    xrow[X_INT + 4] = 1
                elif fc >= 3 and bc == 2 * qty and ln == 9 + bc:
                    put_list(lh, lv, cnt, raw, off + 9, qty, 2, False)
                    a1 = 9
                    xrow[X_INT + 4] = 1
            elif rfc == fc and ln == 12 and (fc == 5 or fc == 6 or fc == 15 or fc == 16):
                a1, b1 = 8, 10  # the echoed address: not in the operation
                if fc == 6:
                    a2, b2 = 10, 12  # the echoed value: the request's counts
        norm[pos] = m
        norm[pos + 1] = ln
        pos = _seg(norm, pos + 2, raw, off, 2, 6)  # protocol id, length (not tid)
        pos = _seg(norm, pos, raw, off, 7, a1)  # (not the unit id)
        pos = _seg(norm, pos, raw, off, b1, a2)
        pos = _seg(norm, pos, raw, off, b2, ln)
    xrow[X_LH] = first_list
    xrow[X_LN] = cnt[C_NLH] - first_list
    return pos


@njit(cache=True, nogil=True, inline="always")
def modbus_verdict(buf, p, end):
    """Whether a new connection's first data on port 502 is Modbus/TCP as the engine's
    identification says at once (``protocols.modbus.detect.modbus_verdict``: on port 502
    one cleanly framed ADU is enough): whole ADUs with protocol id 0 and a legal length,
    nothing else."""
    count = 0
    while p < end:
        if end - p < 6 or buf[p + 2] != 0 or buf[p + 3] != 0:
            return False
        n = (np.int64(buf[p + 4]) << 8) | buf[p + 5]
        if n < 2 or n > 255 or p + 6 + n > end:
            return False
        p += 6 + n
        count += 1
    return count > 0


@njit(cache=True, nogil=True)
def modbus_pass(b, sl, sh, out, lo, hi):
    """One pass over packets ``lo..hi-1`` of block ``b`` not yet taken: takes those of
    the lane's fast slots (``sl``), writes finished transactions to ``out`` and lists the
    slots it gave back (``out.slowed``) and the shapes it had no template for.

    The bundles are unpacked once, here: a hot helper handed a bundle or a view pays
    reference counting on every array in it, per packet."""
    buf, ts, first_frame, ok, src, dst, sport, dport, vlan, seq, flags = block_arrays(b)[:11]
    poff, plen, iplen, smac, dmac, done = block_arrays(b)[11:]
    tk1, tk2, tv, ports, st, qm, raw, carry, init, born_ports, known_ports, freelist, bufs, ctl = (
        slot_arrays(sl)
    )
    th, tinfo, tnorm, norm = shape_arrays(sh)
    xo, lh, lv, cnt, slowed, miss, mb, born, _probs = out_arrays(out)
    tq = np.zeros((MAX_MSGS, Q_FIELDS), np.int64)
    ks = np.zeros(MAX_MSGS, np.int64)
    for i in range(lo, hi):
        if done[i] or ok[i] == 0 or not listed(ports, sport[i], dport[i]):
            continue
        if ok[i] == 2:  # not the lane's to take, but maybe its connection's
            if not engine_packet(
                src[i], dst[i], sport[i], dport[i], vlan[i], tk1, tk2, tv, st, born_ports,
                ctl, slowed, cnt,
            ):  # fmt: skip
                return i
            continue
        if not space(xo, lh, lv, cnt, plen[i]):
            return i  # the lane drains its output and calls again from here
        s, d, why, p, end = take(
            src[i], dst[i], sport[i], dport[i], vlan[i], seq[i], flags[i], poff[i], plen[i],
            smac[i], dmac[i], ts[i], tk1, tk2, tv, st, init, born_ports, known_ports,
            freelist, bufs, ctl, born, cnt,
        )  # fmt: skip
        if s < 0:
            if s == -3:
                return i  # no room to hold the flow for the engine: the lane makes some
            continue
        if why == WHY_NONE and st[s, F_DECIDED] == 0 and end > p:
            if modbus_verdict(buf, p, end):
                st[s, F_DECIDED] = 1
            else:
                why = WHY_UNDECIDED  # the engine identifies it from here
        if why != WHY_NONE:
            make_slow(st, s, why, slowed, cnt)
            continue
        frame = first_frame + i
        t = ts[i]
        compact(st, qm, raw, s)
        rw = raw[st[s, F_BUF]]
        start = p
        while True:
            status, at, n, rest, p = next_message(
                K_MODBUS, buf, p, end, carry, raw, st, s, d, frame, t
            )
            if status == NEED:
                break
            why = WHY_LARGE if status == LARGE else (WHY_FRAMING if status != MSG else WHY_FULL)
            if status == MSG:
                tid = (np.int64(rw[at]) << 8) | rw[at + 1]
                fc = np.int64(rw[at + 7])
                if d == 0:
                    if fc == 0 or fc & 0x80:
                        why = WHY_KIND  # not a request: the decoder reports it
                    elif keep_at(st, qm, s, at, n, frame, t, 0, tid, fc):
                        why = WHY_NONE
                else:
                    k = find(st, qm, s, 0, tid, fc & 0x7F)
                    if k < 0 and _tid_kept(st, qm, s, tid) >= 0:
                        why = WHY_STATE  # an answer to another function code
                    elif k < 0:  # an orphan: its request was never seen
                        if room(xo, lh, lv, cnt, 1, 128) and keep_at(
                            st, qm, s, at, n, frame, t, 1, -2, -2
                        ):
                            ks[0] = st[s, F_QN] - 1
                            pick(qm, s, ks, 1, tq)
                            nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                            j = cnt[C_NX]
                            size = modbus_shape(rw, tq, 1, st[s], norm, xo[j], lh, lv, cnt)
                            why = settle(
                                st, qm, raw, s, i, tq, ks, 1, size, th, tinfo, tnorm, norm,
                                xo, cnt, nlh, nlv, miss, mb,
                            )  # fmt: skip
                    elif room(xo, lh, lv, cnt, 2, MAX_LIST_VALUES) and keep_at(
                        st, qm, s, at, n, frame, t, 1, -2, -2
                    ):
                        ks[0] = k
                        ks[1] = st[s, F_QN] - 1
                        pick(qm, s, ks, 2, tq)
                        nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                        j = cnt[C_NX]
                        size = modbus_shape(rw, tq, 2, st[s], norm, xo[j], lh, lv, cnt)
                        why = settle(
                            st, qm, raw, s, i, tq, ks, 2, size, th, tinfo, tnorm, norm, xo,
                            cnt, nlh, nlv, miss, mb,
                        )  # fmt: skip
                if why == WHY_NONE:
                    consumed(st, s, d)
                    continue
            pend(st, s, d, i, rest)
            make_slow(st, s, why, slowed, cnt)
            break
        commit(st, s, d, start, end, flags[i], iplen[i], t)
        done[i] = 1
    return hi


__all__ = ["modbus_pass", "modbus_shape"]
