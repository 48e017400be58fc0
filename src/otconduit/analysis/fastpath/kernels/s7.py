"""Bulk-path kernel for S7comm (numba, cached on disk): Read Var / Write Var jobs.

The common case of an S7 connection once it is set up: the client sends Read Variable
or Write Variable jobs, one or several in flight (told apart by PDU reference), and the
PLC answers each with an Ack-Data. A message is one TPKT packet holding one COTP DT TPDU
with EOT (a whole S7 PDU), however the segments cut or join them; anything else — COTP
connection set-up, userdata (SZL, clock), other jobs, jobs from the PLC, PDUs in several
TPDUs — turns the connection over to the per-packet path at that message.

Field layouts: RFC 1006 §6 (TPKT), ISO 8073 §13.7 (COTP DT), and for S7comm the
Wireshark dissector's documentation as in :mod:`otconduit.protocols.s7.pdu`: header
(§ ``s7comm_decode_header``), S7ANY items (``s7comm_decode_param_item``), data items
(``s7comm_decode_response_read_data``).

Shape and holes (see ``kernels.shapes``): the PDU reference is integer
hole 0; each data item's bytes (written by a Write Var job, read back by a Read Var
answer) is a list hole, request items first. Everything else, TPKT/COTP headers included
(but the TPDU number and credit, which no decoder output depends on), is shape.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
    put_list,
    room,
    settle,
)
from otconduit.analysis.fastpath.kernels.slots import (
    C_NLH,
    C_NLV,
    C_NX,
    F_DECIDED,
    F_QN,
    K_TPKT,
    LARGE,
    MAX_MSGS,
    MSG,
    NEED,
    Q_DIR,
    Q_FIELDS,
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
from otconduit.analysis.fastpath.kernels.wire import u16

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
        length = u16(raw, q + 2)
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
    """Shape of a Read/Write Var job and its answer (messages ``qm[:qn]`` in ``raw``, a
    slot's row)
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
        ref = u16(raw, q + 4)
        if m == 0:
            xrow[X_INT] = ref
        elif ref != xrow[X_INT]:
            return -1
        norm[base + q + 4] = 0
        norm[base + q + 5] = 0
        plen = u16(raw, q + 6)
        dlen = u16(raw, q + 8)
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


@njit(cache=True, nogil=True, inline="always")
def _s7_pdu(raw, s, off, n):
    """Whether the TPKT packet ``raw[s, off:off+n]`` is one COTP DT with EOT carrying an
    S7 PDU header."""
    if n < TPKT_COTP + 12:
        return False
    if raw[s, off + 4] != 2 or raw[s, off + 5] & 0xF0 != 0xF0 or raw[s, off + 6] & 0x80 == 0:
        return False
    return raw[s, off + TPKT_COTP] == 0x32


@njit(cache=True, nogil=True, inline="always")
def s7_verdict(buf, p, end):
    """Whether a new connection's first data starts like ISO-on-TCP as the engine's
    identification says (``protocols.s7.detect``): a TPKT header and a CR, CC, DT or DR."""
    if end - p < 6 or buf[p] != 3 or buf[p + 1] != 0:
        return False
    if ((np.int64(buf[p + 2]) << 8) | buf[p + 3]) < 7:
        return False
    code = buf[p + 5] & 0xF0
    return code == 0xE0 or code == 0xD0 or code == 0xF0 or code == 0x80


@njit(cache=True, nogil=True)
def s7_pass(b, sl, sh, out, lo, hi):
    """One pass over packets ``lo..hi-1`` (see ``kernels.modbus.modbus_pass``)."""
    buf, ts, first_frame, ok, src, dst, sport, dport, vlan, seq, flags = block_arrays(b)[:11]
    poff, plen, iplen, smac, dmac, done = block_arrays(b)[11:]
    tk1, tk2, tv, ports, st, qm, raw, carry, init, born_ports, known_ports, freelist, ctl = (
        slot_arrays(sl)
    )
    th, tinfo, tnorm, norm = shape_arrays(sh)
    xo, lh, lv, cnt, slowed, miss, mb, born = out_arrays(out)
    tq = np.zeros((MAX_MSGS, Q_FIELDS), np.int64)
    ks = np.zeros(MAX_MSGS, np.int64)
    for i in range(lo, hi):
        if done[i] or ok[i] == 0 or not listed(ports, sport[i], dport[i]):
            continue
        if not space(xo, lh, lv, cnt, plen[i]):
            return i  # the lane drains its output and calls again from here
        s, d, why, p, end = take(
            src[i], dst[i], sport[i], dport[i], vlan[i], seq[i], flags[i], poff[i], plen[i],
            smac[i], dmac[i], ts[i], tk1, tk2, tv, st, init, born_ports, known_ports,
            freelist, ctl, born, cnt,
        )  # fmt: skip
        if s < 0:
            if s == -3:
                return i  # no room to hold the flow for the engine: the lane makes some
            continue
        if why == WHY_NONE and st[s, F_DECIDED] == 0 and end > p:
            if s7_verdict(buf, p, end):
                st[s, F_DECIDED] = 1
            else:
                why = WHY_UNDECIDED  # the engine identifies it from here
        if why != WHY_NONE:
            make_slow(st, s, why, slowed, cnt)
            continue
        frame = first_frame + i
        t = ts[i]
        compact(st, qm, raw, s)
        start = p
        while True:
            status, at, n, rest, p = next_message(
                K_TPKT, buf, p, end, carry, raw, st, s, d, frame, t
            )
            if status == NEED:
                break
            why = WHY_LARGE if status == LARGE else (WHY_FRAMING if status != MSG else WHY_FULL)
            if status == MSG:
                why = WHY_KIND
                if _s7_pdu(raw, s, at, n):
                    ref = (np.int64(raw[s, at + TPKT_COTP + 4]) << 8) | raw[s, at + TPKT_COTP + 5]
                    rosctr = raw[s, at + TPKT_COTP + 1]
                    if d == 0 and rosctr == 1:
                        if find(st, qm, s, 0, ref, 0) >= 0:
                            why = WHY_STATE
                        elif keep_at(st, qm, s, at, n, frame, t, 0, ref, 0):
                            why = WHY_NONE
                        else:
                            why = WHY_FULL
                    elif d == 1 and (rosctr == 2 or rosctr == 3):
                        k = find(st, qm, s, 0, ref, 0)
                        size = qm[s, k, Q_LEN] + n  # items take 4 bytes or more
                        if k < 0:
                            why = WHY_STATE
                        elif not room(xo, lh, lv, cnt, size // 4 + 2, size) or not keep_at(
                            st, qm, s, at, n, frame, t, 1, ref, 0
                        ):
                            why = WHY_FULL
                        else:
                            ks[0] = k
                            ks[1] = st[s, F_QN] - 1
                            pick(qm, s, ks, 2, tq)
                            nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                            j = cnt[C_NX]
                            size = s7_shape(raw[s], tq, 2, st[s], norm, xo[j], lh, lv, cnt)
                            why = settle(
                                st, qm, raw, s, i, tq, ks, 2, size, th, tinfo, tnorm, norm,
                                xo, cnt, nlh, nlv, miss, mb,
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


__all__ = ["s7_pass", "s7_shape"]
