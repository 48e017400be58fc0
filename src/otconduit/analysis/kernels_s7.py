"""Bulk-path kernel for S7comm (numba, cached on disk): Read Var / Write Var jobs.

The common case of an S7 connection once it is set up: the client sends one job at a
time, Read Variable or Write Variable, and the PLC answers it with an Ack-Data. Each TCP
segment must be exactly one TPKT packet holding one COTP DT TPDU with EOT (a whole S7
PDU); anything else — COTP connection set-up, userdata (SZL, clock), other jobs, jobs
from the PLC, pipelined requests, split or merged TPKTs — turns the connection over to
the per-packet path with its open request.

Field layouts: RFC 1006 §6 (TPKT), ISO 8073 §13.7 (COTP DT), and for S7comm the
Wireshark dissector's documentation as in :mod:`otconduit.protocols.s7.pdu`: header
(§ ``s7comm_decode_header``), S7ANY items (``s7comm_decode_param_item``), data items
(``s7comm_decode_response_read_data``).

Shape and holes (see :mod:`otconduit.analysis.kernels_tx`): the PDU reference is integer
hole 0; each data item's bytes (written by a Write Var job, read back by a Read Var
answer) is a list hole, request items first. Everything else, TPKT/COTP headers included
(but the TPDU number and credit, which no decoder output depends on), is shape.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from otconduit.analysis.kernels import _u16
from otconduit.analysis.kernels_tx import (
    C_NLH,
    C_NLV,
    C_NX,
    F_QN,
    MAX_MSGS,
    Q_DIR,
    Q_FIELDS,
    Q_LEN,
    Q_OFF,
    RAW_BYTES,
    SLOW,
    TAKE,
    X_INT,
    X_LH,
    X_LN,
    admit,
    commit,
    compact,
    find,
    keep,
    listed,
    make_slow,
    pick,
    put_list,
    restore,
    room,
    save,
    settle,
)

LANE_TAG = 0x53  # first shape byte: "S"
TPKT_COTP = 7  # TPKT header (4) + COTP DT (LI, code, EOT/NR)


@njit(cache=True, nogil=True)
def _data_items(raw, norm, q, end, base, count, lh, lv, cnt):
    """Data items at ``raw[q:end]`` as pdu._data_items reads them: each item's data is a
    list hole. Returns the position after them, or -1 when the parser would fail."""
    for k in range(count):
        if q + 4 > end:
            return -1
        rc = raw[q]
        ts = raw[q + 1]
        length = _u16(raw, q + 2)
        nbytes = (length + 7) // 8 if ts == 3 or ts == 4 or ts == 5 else length
        if rc != 0xFF and rc != 0x00:
            nbytes = 0
        q += 4
        if q + nbytes > end:
            return -1
        put_list(lh, lv, cnt, raw, q, nbytes, 1, False)
        for b in range(nbytes):
            norm[base + q + b] = 0
        q += nbytes
        if nbytes % 2 and k < count - 1 and q < end:
            q += 1  # fill byte: kept in the shape
    return q


@njit(cache=True, nogil=True)
def s7_shape(raw, qm, qn, st_row, norm, xrow, lh, lv, cnt):
    """Shape of a Read/Write Var job and its answer (messages ``qm[:qn]`` in ``raw``)
    into ``norm``; PDU reference into ``xrow``, item data as list holes. Returns the
    shape length, or -1 when this is not a transaction the bulk path decodes."""
    if qn != 2 or qm[0, Q_DIR] != 0 or qm[1, Q_DIR] != 1:
        return -1
    norm[0] = LANE_TAG
    pos = 1
    first_list = cnt[C_NLH]
    for m in range(2):
        off = qm[m, Q_OFF]
        n = qm[m, Q_LEN]
        norm[pos] = m
        norm[pos + 1] = (n >> 8) & 0xFF
        norm[pos + 2] = n & 0xFF
        pos += 3
        base = pos - off  # norm[base + x] is the shape byte of raw[x]
        norm[pos : pos + n] = raw[off : off + n]
        norm[base + off + 5] &= 0xF0  # COTP credit
        norm[base + off + 6] &= 0x80  # TPDU number
        q = off + TPKT_COTP
        end = off + n
        hsize = 10 if m == 0 else 12
        if end - q < hsize or raw[q] != 0x32:
            return -1
        rosctr = raw[q + 1]
        if m == 0 and rosctr != 1:
            return -1
        if m == 1 and rosctr != 2 and rosctr != 3:
            return -1
        ref = _u16(raw, q + 4)
        if m == 0:
            xrow[X_INT] = ref
        elif ref != xrow[X_INT]:
            return -1
        norm[base + q + 4] = 0
        norm[base + q + 5] = 0
        plen = _u16(raw, q + 6)
        dlen = _u16(raw, q + 8)
        pq = q + hsize
        pend = pq + plen
        dq = pend
        dend = dq + dlen
        if dend > end:
            return -1
        if m == 0:
            if plen < 2:
                return -1
            func = raw[pq]
            if func != 4 and func != 5:
                return -1
            count = raw[pq + 1]
            r = pq + 2
            for _ in range(count):
                if r + 2 > pend or raw[r] != 0x12 or raw[r + 1] == 0:
                    return -1
                r += 2 + raw[r + 1]
                if r > pend:
                    return -1
            if func == 5 and _data_items(raw, norm, dq, dend, base, count, lh, lv, cnt) < 0:
                return -1
        elif plen > 0:
            func = raw[pq]
            if func == 4:
                if plen < 2:
                    return -1
                if _data_items(raw, norm, dq, dend, base, raw[pq + 1], lh, lv, cnt) < 0:
                    return -1
            elif func == 5 and (plen < 2 or dq + raw[pq + 1] > dend):
                return -1
        pos += n
    xrow[X_LH] = first_list
    xrow[X_LN] = cnt[C_NLH] - first_list
    return pos


@njit(cache=True, nogil=True)
def _tpkt(buf, p, end):
    """Length of the TPKT packet at ``p`` if it is one COTP DT with EOT carrying an S7
    PDU header, else -1."""
    if end - p < TPKT_COTP + 12 or buf[p] != 3 or buf[p + 1] != 0:
        return -1
    n = _u16(buf, p + 2)
    if n < TPKT_COTP + 10 or p + n > end:
        return -1
    if buf[p + 4] != 2 or buf[p + 5] & 0xF0 != 0xF0 or buf[p + 6] & 0x80 == 0:
        return -1
    return n if buf[p + TPKT_COTP] == 0x32 else -1


@njit(cache=True, nogil=True)
def s7_pass(
    buf,
    ts,
    first_frame,
    ok,
    src,
    dst,
    sport,
    dport,
    vlan,
    seq,
    flags,
    poff,
    plen,
    iplen,
    smac,
    dmac,
    tk1,
    tk2,
    tv,
    ports,
    st,
    qm,
    raw,
    th,
    tinfo,
    tnorm,
    norm,
    xo,
    lh,
    lv,
    cnt,
    slowed,
    miss,
    mb,
    done,
    lo,
    hi,
):
    """One pass over packets ``lo..hi-1`` not yet ``done``: takes those of fast S7
    slots, writes finished transactions to ``xo`` (with ``lh``/``lv``), lists slots
    turned slow in ``slowed`` and shapes without a template in ``miss`` (messages in
    ``mb``). A packet is taken whole or handed back whole."""
    tq = np.zeros((MAX_MSGS, Q_FIELDS), np.int64)
    ks = np.zeros(MAX_MSGS, np.int64)
    sv_st = np.zeros(st.shape[1], np.int64)
    sv_qm = np.zeros((qm.shape[1], qm.shape[2]), np.int64)
    sv_cnt = np.zeros(len(cnt), np.int64)
    for i in range(lo, hi):
        if done[i] or ok[i] == 0 or not listed(ports, sport[i], dport[i]):
            continue  # taken already, unreadable, or another protocol's
        s, d, verdict = admit(
            src[i], dst[i], sport[i], dport[i], vlan[i], seq[i], flags[i], plen[i],
            smac[i], dmac[i], ts[i], tk1, tk2, tv, st,
        )  # fmt: skip
        if verdict != TAKE:
            if verdict == SLOW:
                make_slow(st, s, slowed, cnt)
            continue
        p = poff[i]
        end = p + plen[i]
        frame = first_frame + i
        compact(st, qm, raw, s)
        good = True
        saved = False
        while p < end:
            n = _tpkt(buf, p, end)
            if n < 0:
                good = False
                break
            if not saved and p + n < end:
                save(st, qm, cnt, s, sv_st, sv_qm, sv_cnt)
                saved = True
            ref = _u16(buf, p + TPKT_COTP + 4)
            rosctr = buf[p + TPKT_COTP + 1]
            if d == 0:
                good = (
                    rosctr == 1
                    and find(st, qm, s, 0, ref, 0) < 0
                    and keep(st, qm, raw, s, buf, p, n, frame, ts[i], 0, ref, 0)
                )
            else:
                k = find(st, qm, s, 0, ref, 0)
                good = (
                    (rosctr == 2 or rosctr == 3)
                    and k >= 0
                    and room(xo, lh, lv, cnt, 512, RAW_BYTES)
                    and keep(st, qm, raw, s, buf, p, n, frame, ts[i], 1, ref, 0)
                )
                if good:
                    ks[0] = k
                    ks[1] = st[s, F_QN] - 1
                    pick(qm, s, ks, 2, tq)
                    nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                    size = s7_shape(raw[s], tq, 2, st[s], norm, xo[cnt[C_NX]], lh, lv, cnt)
                    good = settle(
                        st,
                        qm,
                        raw,
                        s,
                        i,
                        tq,
                        ks,
                        2,
                        size,
                        th,
                        tinfo,
                        tnorm,
                        norm,
                        xo,
                        cnt,
                        nlh,
                        nlv,
                        mb,
                        miss,
                    )
            if not good:
                break
            p += n
        if not good:
            if saved:
                restore(st, qm, cnt, s, sv_st, sv_qm, sv_cnt)
            make_slow(st, s, slowed, cnt)
            continue
        commit(i, s, d, st, ts, flags, plen, iplen, done)


__all__ = ["s7_pass", "s7_shape"]
