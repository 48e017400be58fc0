"""Compiled loops of the bulk path (numba, cached on disk).

Two passes over a block of packets:

1. :func:`parse_headers` — link layer (Ethernet with up to four VLAN tags, Linux cooked
   v1/v2, raw IP, BSD/OpenBSD loopback), IPv4, TCP. Anything else, and anything the
   per-packet decoder would judge differently (fragments, snap-length cuts, options it
   must look at), is left to the per-packet path (``ok = 0``).
2. :func:`modbus_pass` — for connections the Python engine registered as *fast*
   (Modbus/TCP, both directions in sync, nothing buffered), checks that each segment is
   the next in sequence and carries whole, well-formed ADUs of the common function codes
   (1-6, 15, 16), pairs requests with responses per connection, and writes operations
   into output columns. The first packet of a connection that does not fit turns that
   connection slow for the rest of the block, so its packets stay in order for the
   per-packet path.

Field layouts: IEEE 802.3/802.1Q, RFC 791 (IPv4), RFC 9293 (TCP), Modbus Messaging on
TCP/IP Implementation Guide §3.1.3 (MBAP), Modbus Application Protocol V1.1b3 §6.1-6.12.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Per-slot outstanding request table width: more requests in flight turns a slot slow.
MAX_OUTSTANDING = 4

STATUS_OK = 0
STATUS_EXCEPTION = 1
IDLE_NS = 3600 * 1_000_000_000  # engine.IDLE_NS: a connection silent this long is re-opened

_HASH_A = np.uint64(0x9E3779B97F4A7C15)
_HASH_B = np.uint64(0xC2B2AE3D27D4EB4F)


@njit(cache=True, nogil=True)
def _u16(buf, p):
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@njit(cache=True, nogil=True)
def _u32(buf, p):
    return (
        (np.int64(buf[p]) << 24)
        | (np.int64(buf[p + 1]) << 16)
        | (np.int64(buf[p + 2]) << 8)
        | np.int64(buf[p + 3])
    )


@njit(cache=True, nogil=True)
def _mac(buf, p):
    v = np.int64(0)
    for k in range(6):
        v = (v << 8) | np.int64(buf[p + k])
    return v


@njit(cache=True, nogil=True)
def parse_headers(
    buf,
    offsets,
    caplens,
    linktypes,
    ok,
    src,
    dst,
    sport,
    dport,
    vlan,
    seq,
    ack,
    flags,
    poff,
    plen,
    iplen,
    smac,
    dmac,
):
    """Fill per-packet header columns; ``ok[i] = 1`` where the bulk path may take packet i.

    MAC columns hold ``mac + 1`` (0: the link layer has no MAC addresses).
    """
    n = len(offsets)
    for i in range(n):
        ok[i] = 0
        off = offsets[i]
        end = off + caplens[i]
        lt = linktypes[i]
        p = off
        v = -1
        sm = np.int64(0)
        dm = np.int64(0)
        if lt == 1:  # Ethernet
            if end - p < 14:
                continue
            dm = _mac(buf, p) + 1
            sm = _mac(buf, p + 6) + 1
            et = _u16(buf, p + 12)
            p += 14
            tags = 0
            while et == 0x8100 or et == 0x88A8 or et == 0x9100:
                if end - p < 4 or tags == 4:
                    et = -1
                    break
                v = _u16(buf, p) & 0xFFF
                et = _u16(buf, p + 2)
                p += 4
                tags += 1
            if et != 0x0800:
                continue
        elif lt == 113:  # Linux cooked v1: protocol at bytes 14-15
            if end - p < 16 or _u16(buf, p + 14) != 0x0800:
                continue
            p += 16
        elif lt == 276:  # Linux cooked v2: protocol at bytes 0-1
            if end - p < 20 or _u16(buf, p) != 0x0800:
                continue
            p += 20
        elif lt == 101 or lt == 228 or lt == 12 or lt == 14:  # raw IP
            pass
        elif lt == 0:  # BSD loopback, AF in host byte order
            if end - p < 4:
                continue
            af_le = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
            af_be = _u32(buf, p)
            if af_le != 2 and af_be != 2:
                continue
            if af_le == 2 and (buf[p + 2] != 0 or buf[p + 3] != 0):
                continue
            p += 4
        elif lt == 108:  # OpenBSD loopback, network byte order
            if end - p < 4 or _u32(buf, p) != 2:
                continue
            p += 4
        else:
            continue
        # IPv4 (RFC 791 §3.1)
        if end - p < 20:
            continue
        vihl = buf[p]
        if vihl >> 4 != 4:
            continue
        ihl = np.int64(vihl & 15) * 4
        if ihl < 20:
            continue
        tot = _u16(buf, p + 2)
        if tot < ihl + 20 or p + tot > end:
            continue  # truncated by the snap length, or bogus: per-packet path
        if _u16(buf, p + 6) & 0x3FFF:
            continue  # fragment
        if buf[p + 9] != 6:
            continue
        t = p + ihl
        doff = np.int64(buf[t + 12] >> 4) * 4
        if doff < 20 or t + doff > p + tot:
            continue
        src[i] = _u32(buf, p + 12)
        dst[i] = _u32(buf, p + 16)
        sport[i] = _u16(buf, t)
        dport[i] = _u16(buf, t + 2)
        seq[i] = _u32(buf, t + 4)
        ack[i] = _u32(buf, t + 8)
        flags[i] = buf[t + 13]
        poff[i] = t + doff
        plen[i] = p + tot - (t + doff)
        iplen[i] = tot
        vlan[i] = v
        smac[i] = sm
        dmac[i] = dm
        ok[i] = 1


@njit(cache=True, nogil=True)
def _slot_hash(k1, k2, mask):
    h = (np.uint64(k1) * _HASH_A) ^ (np.uint64(k2) * _HASH_B)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@njit(cache=True, nogil=True)
def flow_keys(src, dst, sport, dport, vlan):
    k1 = (np.int64(src) << 32) | np.int64(dst)
    k2 = (np.int64(sport) << 48) | (np.int64(dport) << 32) | (np.int64(vlan) & 0xFFFFFFFF)
    return k1, k2


@njit(cache=True, nogil=True)
def _table_find(tk1, tk2, tv, k1, k2):
    """Position holding the key, or -1. Deleted entries (-2) are probed past."""
    mask = len(tv) - 1
    h = _slot_hash(k1, k2, mask)
    while True:
        v = tv[h]
        if v == -1:
            return -1
        if v >= 0 and tk1[h] == k1 and tk2[h] == k2:
            return h
        h = (h + 1) & mask


@njit(cache=True, nogil=True)
def table_insert(tk1, tk2, tv, k1, k2, value):
    """Insert or overwrite; returns 1 when a new position was used. The caller keeps
    live plus deleted entries below half the table."""
    h = _table_find(tk1, tk2, tv, k1, k2)
    if h >= 0:
        tv[h] = value
        return 0
    mask = len(tv) - 1
    h = _slot_hash(k1, k2, mask)
    while tv[h] >= 0:
        h = (h + 1) & mask
    fresh = 1 if tv[h] == -1 else 0
    tk1[h] = k1
    tk2[h] = k2
    tv[h] = value
    return fresh


@njit(cache=True, nogil=True)
def table_delete(tk1, tk2, tv, k1, k2):
    h = _table_find(tk1, tk2, tv, k1, k2)
    if h >= 0:
        tv[h] = -2


@njit(cache=True, nogil=True)
def table_get(tk1, tk2, tv, k1, k2):
    h = _table_find(tk1, tk2, tv, k1, k2)
    return -1 if h < 0 else tv[h]


@njit(cache=True, nogil=True)
def _request_ok(buf, q, n, fc):
    """Whether the request PDU at ``buf[q:q+n]`` is one the bulk path decodes exactly as
    the per-packet decoder would, with no spec violation (MB §6.1-6.6, §6.11, §6.12)."""
    if fc <= 6:
        if n != 5:
            return False
        qty = _u16(buf, q + 3)
        if fc <= 2:
            return 1 <= qty <= 2000
        if fc <= 4:
            return 1 <= qty <= 125
        if fc == 5:
            return qty == 0xFF00 or qty == 0
        return True
    if n < 6:
        return False
    qty = _u16(buf, q + 3)
    bc = np.int64(buf[q + 5])
    if fc == 15:
        return 1 <= qty <= 1968 and bc == (qty + 7) // 8 and n == 6 + bc
    return 1 <= qty <= 123 and bc == 2 * qty and n == 6 + bc  # fc 16


@njit(cache=True, nogil=True)
def modbus_pass(
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
    s_fast,
    s_next,
    s_pk,
    s_by,
    s_last,
    s_smac,
    s_dmac,
    s_conv,
    s_port,
    s_fin,
    s_fin_ts,
    o_used,
    o_tid,
    o_fc,
    o_unit,
    o_addr,
    o_qty,
    o_ts,
    o_frame,
    o_voff,
    o_vlen,
    pool,
    pool_used,
    done,
    op_conv,
    op_port,
    op_ts,
    op_fc,
    op_unit,
    op_addr,
    op_qty,
    op_status,
    op_exc,
    op_lat,
    op_rf,
    op_sf,
    op_tid,
    op_voff,
    op_vlen,
    op_roff,
    op_rlen,
    ov,
    orv,
    lo,
    hi,
    nops,
    nov,
    nor,
    slowed,
):
    """One sequential pass over the packets ``lo..hi-1`` not yet ``done`` (it marks those
    it takes), appending operations after ``nops``
    (and values after ``nov``/``nor``); returns the new (nops, nov, nor, pool_used), where
    it stopped (``hi``) and how many slot numbers it wrote to ``slowed``."""
    op_cap = len(op_ts)
    nsl = 0  # slots turned slow in this pass, listed in ``slowed`` for the hand-over
    for i in range(lo, hi):
        if done[i]:
            continue  # taken already, by the kernel or the per-packet engine
        if ok[i] == 0:
            continue
        k1, k2 = flow_keys(src[i], dst[i], sport[i], dport[i], vlan[i])
        sv = table_get(tk1, tk2, tv, k1, k2)
        if sv < 0:
            continue
        s = sv >> 1
        d = sv & 1
        if s_fast[s] == 0:
            continue
        f = flags[i]
        if f & 0x06 or ts[i] - s_last[s] > IDLE_NS:
            # SYN, RST, or silence past the engine's idle limit (it re-opens the
            # connection): the per-packet path owns connection state changes
            s_fast[s] = 0
            slowed[nsl] = s
            nsl += 1
            continue
        if s_smac[s, d] == 0:
            s_smac[s, d] = smac[i]
            s_dmac[s, d] = dmac[i]
        elif s_smac[s, d] != smac[i] or s_dmac[s, d] != dmac[i]:
            s_fast[s] = 0
            slowed[nsl] = s
            nsl += 1
            continue
        length = plen[i]
        frame = first_frame + i
        if length > 0:
            if seq[i] != s_next[s, d]:
                s_fast[s] = 0
                slowed[nsl] = s
                nsl += 1
                continue
            # One whole ADU that fills the segment exactly, decodable here (checked before
            # anything changes, so a refusal leaves the connection state untouched).
            p = poff[i]
            good = length >= 8
            if good:
                mlen = _u16(buf, p + 4)
                good = (
                    buf[p + 2] == 0 and buf[p + 3] == 0 and 2 <= mlen <= 254 and 6 + mlen == length
                )
            if good:
                fc = np.int64(buf[p + 7])
                q = p + 7
                m = mlen - 1
                tid = _u16(buf, p)
                if d == 0:
                    good = (1 <= fc <= 6 or fc == 15 or fc == 16) and _request_ok(buf, q, m, fc)
                    used = 0
                    for k in range(MAX_OUTSTANDING):
                        if o_used[s, k]:
                            used += 1
                            if o_tid[s, k] == tid:
                                good = False  # transaction id reused while in flight
                    if used >= MAX_OUTSTANDING or pool_used + 2000 > len(pool):
                        good = False
                else:
                    k_found = -1
                    for k in range(MAX_OUTSTANDING):
                        if o_used[s, k] and o_tid[s, k] == tid:
                            k_found = k
                    if k_found < 0:
                        good = False
                    else:
                        rfc = o_fc[s, k_found]
                        qty = o_qty[s, k_found]
                        if fc == (rfc | 0x80):
                            good = m == 2
                        elif fc != rfc:
                            good = False
                        elif rfc <= 2:
                            bc = np.int64(buf[q + 1])
                            good = m == 2 + bc and bc == (qty + 7) // 8
                        elif rfc <= 4:
                            bc = np.int64(buf[q + 1])
                            good = m == 2 + bc and bc == 2 * qty
                        elif m != 5:
                            good = False
                        elif rfc == 5:
                            val = _u16(buf, q + 3)
                            good = val == 0xFF00 or val == 0
                        elif rfc == 15:
                            good = 1 <= _u16(buf, q + 3) <= 1968
                        elif rfc == 16:
                            good = 1 <= _u16(buf, q + 3) <= 123
            if not good or nops >= op_cap or nov + 2000 > len(ov) or nor + 2000 > len(orv):
                s_fast[s] = 0
                slowed[nsl] = s
                nsl += 1
                continue
            # Accepted: apply.
            p = poff[i]
            tid = _u16(buf, p)
            unit = np.int64(buf[p + 6])
            fc = np.int64(buf[p + 7])
            q = p + 7
            if d == 0:
                k = 0
                while o_used[s, k]:
                    k += 1
                o_used[s, k] = 1
                o_tid[s, k] = tid
                o_fc[s, k] = fc
                o_unit[s, k] = unit
                o_addr[s, k] = _u16(buf, q + 1)
                o_ts[s, k] = ts[i]
                o_frame[s, k] = frame
                o_voff[s, k] = pool_used
                o_vlen[s, k] = -1  # reads write nothing
                if fc <= 4:
                    o_qty[s, k] = _u16(buf, q + 3)
                elif fc == 5:
                    o_qty[s, k] = 1
                    pool[pool_used] = 1 if _u16(buf, q + 3) == 0xFF00 else 0
                    o_vlen[s, k] = 1
                elif fc == 6:
                    o_qty[s, k] = 1
                    pool[pool_used] = _u16(buf, q + 3)
                    o_vlen[s, k] = 1
                elif fc == 15:
                    qty = _u16(buf, q + 3)
                    o_qty[s, k] = qty
                    for b in range(qty):
                        pool[pool_used + b] = (buf[q + 6 + (b >> 3)] >> (b & 7)) & 1
                    o_vlen[s, k] = qty
                else:
                    qty = _u16(buf, q + 3)
                    o_qty[s, k] = qty
                    for r in range(qty):
                        pool[pool_used + r] = _u16(buf, q + 6 + 2 * r)
                    o_vlen[s, k] = qty
                if o_vlen[s, k] > 0:
                    pool_used += o_vlen[s, k]
            else:
                k = 0
                while not (o_used[s, k] and o_tid[s, k] == tid):
                    k += 1
                o_used[s, k] = 0
                rfc = o_fc[s, k]
                j = nops
                op_conv[j] = s_conv[s]
                op_port[j] = s_port[s]
                op_ts[j] = o_ts[s, k]
                op_fc[j] = rfc
                op_unit[j] = o_unit[s, k]
                op_addr[j] = o_addr[s, k]
                op_qty[j] = o_qty[s, k]
                op_lat[j] = ts[i] - o_ts[s, k]
                op_rf[j] = o_frame[s, k]
                op_sf[j] = frame
                op_tid[j] = tid
                op_voff[j] = nov
                op_vlen[j] = o_vlen[s, k]
                if o_vlen[s, k] > 0:
                    for r in range(o_vlen[s, k]):
                        ov[nov + r] = pool[o_voff[s, k] + r]
                    nov += o_vlen[s, k]
                op_roff[j] = nor
                op_rlen[j] = -1
                if fc & 0x80:
                    op_status[j] = STATUS_EXCEPTION
                    op_exc[j] = buf[q + 1]
                else:
                    op_status[j] = STATUS_OK
                    op_exc[j] = -1
                    if rfc <= 2:
                        qty = o_qty[s, k]
                        for b in range(qty):
                            orv[nor + b] = (buf[q + 2 + (b >> 3)] >> (b & 7)) & 1
                        op_rlen[j] = qty
                        nor += qty
                    elif rfc <= 4:
                        qty = o_qty[s, k]
                        for r in range(qty):
                            orv[nor + r] = _u16(buf, q + 2 + 2 * r)
                        op_rlen[j] = qty
                        nor += qty
                nops += 1
            s_next[s, d] = (s_next[s, d] + length) & 0xFFFFFFFF
        if f & 0x01:  # FIN: noted for the engine (closed, and when both sides have said it)
            s_fin[s] |= 1 << d
            s_fin_ts[s] = ts[i]
        s_pk[s, d] += 1
        s_by[s, d] += iplen[i]
        if ts[i] > s_last[s]:
            s_last[s] = ts[i]
        done[i] = 1
    return nops, nov, nor, pool_used, hi, nsl
