"""Link, IPv4 and TCP headers of a whole block of packets, into columns.

Link layers: Ethernet with up to four VLAN tags, Linux cooked v1/v2, raw IP, BSD and
OpenBSD loopback. Anything else, and anything the per-packet decoder would judge
differently (fragments, snap-length cuts, bad header lengths), is left to the per-packet
path (``ok = 0``). Field layouts: IEEE 802.3/802.1Q, RFC 791 (IPv4), RFC 9293 (TCP).
"""

from __future__ import annotations

import numpy as np

from otconduit.analysis.fastpath.kernels.wire import mac48, u16, u32
from otconduit.jit import njit


@njit(cache=True, nogil=True)
def parse_headers(offsets, caplens, linktypes, b):
    """Fill the header columns of block ``b``; ``b.ok[i] = 1`` where a lane may take
    packet i, 2 where it may not but its flow (addresses, ports, VLAN) is known: an
    IPv4 TCP packet cut short by the snap length, or with lengths that do not add up,
    which the per-packet path must see in its connection's order. MAC columns hold
    ``mac + 1`` (0: the link layer has no MAC addresses)."""
    buf = b.buf
    ok, src, dst, sport, dport, vlan = b.ok, b.src, b.dst, b.sport, b.dport, b.vlan
    seq, ack, flags, poff, plen, iplen = b.seq, b.ack, b.flags, b.poff, b.plen, b.iplen
    smac, dmac = b.smac, b.dmac
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
            dm = mac48(buf, p) + 1
            sm = mac48(buf, p + 6) + 1
            et = u16(buf, p + 12)
            p += 14
            tags = 0
            while et == 0x8100 or et == 0x88A8 or et == 0x9100:
                if end - p < 4 or tags == 4:
                    et = -1
                    break
                v = u16(buf, p) & 0xFFF
                et = u16(buf, p + 2)
                p += 4
                tags += 1
            if et != 0x0800:
                continue
        elif lt == 113:  # Linux cooked v1: protocol at bytes 14-15
            if end - p < 16 or u16(buf, p + 14) != 0x0800:
                continue
            p += 16
        elif lt == 276:  # Linux cooked v2: protocol at bytes 0-1
            if end - p < 20 or u16(buf, p) != 0x0800:
                continue
            p += 20
        elif lt == 101 or lt == 228 or lt == 12 or lt == 14:  # raw IP
            pass
        elif lt == 0:  # BSD loopback, AF in host byte order
            if end - p < 4:
                continue
            af_le = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
            af_be = u32(buf, p)
            if af_le != 2 and af_be != 2:
                continue
            if af_le == 2 and (buf[p + 2] != 0 or buf[p + 3] != 0):
                continue
            p += 4
        elif lt == 108:  # OpenBSD loopback, network byte order
            if end - p < 4 or u32(buf, p) != 2:
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
        tot = u16(buf, p + 2)
        if u16(buf, p + 6) & 0x3FFF or buf[p + 9] != 6:
            continue  # a fragment (ports in the first alone), or not TCP
        t = p + ihl
        if t + 20 > end:
            continue
        doff = np.int64(buf[t + 12] >> 4) * 4
        if tot < ihl + 20 or p + tot > end or doff < 20 or t + doff > p + tot:
            # truncated by the snap length, or bogus: the per-packet path's, in order
            src[i] = u32(buf, p + 12)
            dst[i] = u32(buf, p + 16)
            sport[i] = u16(buf, t)
            dport[i] = u16(buf, t + 2)
            vlan[i] = v
            ok[i] = 2
            continue
        src[i] = u32(buf, p + 12)
        dst[i] = u32(buf, p + 16)
        sport[i] = u16(buf, t)
        dport[i] = u16(buf, t + 2)
        seq[i] = u32(buf, t + 4)
        ack[i] = u32(buf, t + 8)
        flags[i] = buf[t + 13]
        poff[i] = t + doff
        plen[i] = p + tot - (t + doff)
        iplen[i] = tot
        vlan[i] = v
        smac[i] = sm
        dmac[i] = dm
        ok[i] = 1
