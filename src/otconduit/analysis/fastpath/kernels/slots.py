"""The stage every lane shares: a connection's TCP state, its message framing, and the
messages it keeps for a hand-over.

A lane holds the connections the per-packet engine registered with it in *slots*. Per
slot, one int64 row of ``st`` (columns ``F_*``) and:

- ``qm``/``raw``: the messages in flight (requests waiting for their answer, a response
  waiting for its confirm), kept whole in arrival order with the keys that pair them;
- ``carry``: per direction, the start of a message the last segment did not finish.

:func:`take` admits a packet as the engine's reassembler would take it: the next bytes
in sequence; a retransmission or keep-alive (data already delivered) is counted and
carries nothing new; a segment that overlaps delivered data is trimmed to its new part.
Anything else the engine owns (SYN, RST, data after a hole, an idle gap past the
engine's limit, a MAC change) turns the slot slow before the packet is touched.

:func:`next_message` frames the delivered bytes into whole messages: several in one
segment, one split over segments (its start waits in ``carry``). A message the lane
cannot take ends the fast run *at that message*: the packet's counters are committed,
and the hand-over replays, in order, the kept messages, both carries and the rest of the
packet (``F_PEND*``) into the connection's own decoder, which then stands exactly where
it would have stood had it seen every byte itself.
"""

from __future__ import annotations

import numpy as np

from otconduit.analysis.fastpath.kernels.flowtable import (
    flow_keys,
    table_delete,
    table_get,
    table_insert,
)
from otconduit.analysis.fastpath.kernels.wire import u16, u16le
from otconduit.jit import njit

# -- slot row: st[slot, F_*] -----------------------------------------------------------
F_FAST = 0  # 1 while the kernel owns the slot
F_NEXT = 1  # + d: next sequence number client->server (0), server->client (1)
F_PK = 3  # + d: packets taken per direction since the engine last absorbed them
F_BY = 5  # + d: IP bytes taken per direction
F_LAST = 7  # last timestamp taken
F_SMAC = 8  # + d: source MAC + 1 per direction (0: not seen yet)
F_DMAC = 10  # + d: destination MAC + 1 per direction
F_FIN = 12  # bit d: FIN seen from direction d
F_FIN_TS = 13
F_RID = 14  # registration id: which connection the slot holds
F_NTX = 15  # transactions finished since the last absorb
F_STATE = 16  # protocol state (0: idle)
F_KEY = 17  # protocol key of the transaction in flight
F_QN = 18  # messages kept in raw[slot] (arrival order)
F_QUSED = 19  # bytes of raw[slot] in use (kept messages, and dropped ones not compacted)
F_TC = 20  # the shape entry this slot used last (+1; 0: none)
F_CARRY = 22  # + d: bytes of an unfinished message waiting in carry[slot, d]
F_CFRAME = 24  # + d: frame that last added to the carry
F_CTS = 26  # + d: its time
F_RETX = 28  # + d: retransmitted segments (data already delivered), since the last absorb
F_PEND = 30  # packet whose rest the hand-over must replay (-1: none)
F_PEND_P = 31  # where in the block buffer that rest starts
F_PEND_D = 32  # its direction
F_WHY = 33  # why the slot was handed back (WHY_*)
# A connection the kernel opened itself (its first packet was the lane's to take): it has
# no object in the engine until it is handed back (see lane.Lane.materialize).
F_BORN = 34  # 1 while the kernel owns a connection the engine has not seen
F_DECIDED = 35  # 1 once its protocol is identified (the first data said so)
F_SYN = 36  # 1 when a SYN or SYN-ACK oriented it
F_KNOWN = 37  # bit d: F_NEXT + d is known (a SYN, or data, set it)
F_FINS = 38  # bit d: FIN from direction d, 3 after an RST (never cleared)
F_CLOSED_TS = 39  # when F_FINS became 3
F_FIRST = 40  # its first packet's time
F_TPK = 41  # + d: packets in all
F_TBY = 43  # + d: IP bytes in all
F_TTX = 45  # transactions in all
F_CIP = 46  # client address, server address (IPv4 as integers), ports, VLAN
F_SIP = 47
F_CPORT = 48
F_SPORT = 49
F_VLAN = 50
F_BUF = 51  # its row of raw and carry (0: none yet; taken with its first data)
F_SEEN = 52  # bit p: an operation of the lane's protocol p was written (Lane.protocols)
F_P = 56  # 56..143: protocol-specific
N_FIELDS = 144

# -- kept messages: qm[slot, k, Q_*] ---------------------------------------------------
Q_OFF = 0
Q_LEN = 1
Q_FRAME = 2
Q_TS = 3
Q_DIR = 4
Q_KEY = 5  # what the answer must carry (transaction id, PDU reference, ...)
Q_KEY2 = 6
Q_FIELDS = 7
MAX_KEPT = 16  # messages in flight per slot; more hand the connection back
RAW_BYTES = 8192  # per slot, for kept messages
RAW_EXTRA = 512  # per slot after RAW_BYTES, for protocol state (DNP3 transport segments)
CARRY = 4096  # per slot and direction: the longest message a split may leave pending
MAX_MSGS = 8  # messages of one transaction

# A connection silent this long is folded by the engine and re-opened (engine.IDLE_NS).
IDLE_NS = 3600 * 1_000_000_000
# A finished connection's last ACKs arrive within this (engine.LINGER_NS).
LINGER_NS = 2_000_000_000

# -- why a slot went back to the per-packet path (F_WHY; lane.WHY_NAMES) ---------------
WHY_NONE = 0
WHY_SYN = 1  # SYN or RST: the engine owns connection state changes
WHY_IDLE = 2  # silent past the engine's idle limit: it re-opens the connection
WHY_MAC = 3  # a MAC address changed
WHY_AHEAD = 4  # data after a hole (lost or reordered segment): the reassembler waits
WHY_FRAMING = 5  # bytes that do not frame as a message of the protocol
WHY_LARGE = 6  # a message longer than the carry
WHY_STATE = 7  # a message the lane's protocol state does not carry (pairing, sequence)
WHY_FULL = 8  # too many messages in flight, or the block's output is full
WHY_NEW = 9  # a transaction shape without a template yet (the lane learns it)
WHY_REFUSED = 10  # a shape the per-packet decoder always decodes itself
WHY_KIND = 11  # a message kind the lane leaves to the decoder (set-up, errors, ...)
WHY_UNDECIDED = 12  # a new connection whose first data the lane cannot identify alone
WHY_LINGER = 13  # a packet after a closed connection's linger: the engine folds it
N_WHY = 14

# -- message framing kinds (pdu_need) ---------------------------------------------------
K_MODBUS = 1  # MBAP header: length at bytes 4-5 (IG §3.1.3)
K_TPKT = 2  # RFC 1006 TPKT: version 3, length at bytes 2-3
K_ENIP = 3  # EtherNet/IP encapsulation: 24-byte header, length at bytes 2-3 (LE)
K_DNP3 = 4  # DNP3 link frames up to the one whose transport header says FIN

# -- next_message() status ---------------------------------------------------------------
MSG = 1
NEED = 0
BAD = -1
LARGE = -2
FULL = -3

# -- counters: cnt[] ---------------------------------------------------------------------
C_NX = 0  # transactions written to xo
C_NLH = 1  # list holes written to lh
C_NLV = 2  # values written to lv
C_NSL = 3  # slots turned slow (listed in slowed)
C_NMISS = 4  # shapes without a template (listed in miss, their messages in mb)
C_NMB = 5  # bytes used in mb
C_NBORN = 6  # connections the kernel opened (listed in born)
C_NPROB = 7  # decode problems reported (rows of probs: PR_*)
N_COUNTERS = 8
# -- decode problems a pass reports: probs[r, PR_*] -------------------------------------
PR_RID = 0  # registration id of the connection
PR_FRAME = 1  # the frame the problem is reported at
PR_KIND = 2  # which problem (the lane words it)
PR_N = 3  # how many octets
PR_FIELDS = 4

# -- ctl[]: what the lane lends a pass for opening connections --------------------------
CTL_FREE = 0  # free slots left in freelist (popped from the end)
CTL_RID = 1  # the next registration id
CTL_ROOM = 2  # flow-table positions the pass may still fill
CTL_USED = 3  # fresh flow-table positions it filled
CTL_BFREE = 4  # free buffer rows left in bufs (popped from the end)
CTL_BCAP = 5  # 1: the lane has no more to lend (at its cap): data needing one goes slow
N_CTL = 6


@njit(cache=True, nogil=True, inline="always")
def listed(ports, sport, dport):
    """Whether a packet's ports include one of the lane's server ports (``ports[0]`` -2:
    too many to list, any packet may be the lane's). Checked first, so that other
    protocols' packets are passed over without a table lookup."""
    found = ports[0] == -2
    for k in range(len(ports)):  # a loop, not any(): numba compiles no generators
        found |= ports[k] == sport
        found |= ports[k] == dport
    return found


@njit(cache=True, nogil=True, inline="always")
def space(xo, lh, lv, cnt, plen):
    """Whether the output has room for whatever a packet with ``plen`` payload bytes can
    finish (a transaction per 8 bytes, and what the carries held; a value per bit of
    it). When not, the pass stops before the packet and the lane drains its output."""
    most = plen + 2 * CARRY
    return (
        cnt[C_NX] + most // 8 + 2 <= len(xo)
        and cnt[C_NLH] + most // 4 + 4 <= len(lh)
        and cnt[C_NLV] + 8 * most <= len(lv)
    )


@njit(cache=True, nogil=True, inline="always")
def make_slow(st, s, why, slowed, cnt):
    """Give slot ``s`` back to the per-packet path (listed once per pass in ``slowed``)."""
    if st[s, F_FAST] == 0:
        return
    st[s, F_FAST] = 0
    st[s, F_WHY] = why
    slowed[cnt[C_NSL]] = s
    cnt[C_NSL] += 1


@njit(cache=True, nogil=True, inline="always")
def engine_packet(src, dst, sport, dport, vlan, tk1, tk2, tv, st, born_ports, ctl, slowed, cnt):
    """A packet the lane cannot take (``ok`` 2) of a flow it may hold: the engine must
    see it in its connection's order, so a fast slot goes back first, and a flow no slot
    holds on the protocol's port is held for the engine (as :func:`birth` does for flows
    it declines). False when there is no table room to do so (the pass stops)."""
    s, _ = lookup(src, dst, sport, dport, vlan, tk1, tk2, tv, st)
    if s >= 0:
        make_slow(st, s, WHY_FRAMING, slowed, cnt)
    elif s == -2 and (_among(born_ports, sport) or _among(born_ports, dport)):
        if ctl[CTL_ROOM] < 2:
            return False
        _engine_owns(src, dst, sport, dport, vlan, tk1, tk2, tv, ctl)
    return True


@njit(cache=True, nogil=True, inline="always")
def _among(ports, port):
    found = False
    for k in range(len(ports)):
        found |= ports[k] == port
    return found


@njit(cache=True, nogil=True, inline="always")
def _engine_owns(src, dst, sport, dport, vlan, tk1, tk2, tv, ctl):
    """Hold a flow the kernel declined to open for the engine (slot 0, never fast), so
    that none of its later packets in this pass opens it after all: the engine takes
    them, in order, and then holds the flow itself (``Lane.track``)."""
    k1, k2 = flow_keys(src, dst, sport, dport, vlan)
    ctl[CTL_USED] += table_insert(tk1, tk2, tv, k1, k2, 0)
    k1, k2 = flow_keys(dst, src, dport, sport, vlan)
    ctl[CTL_USED] += table_insert(tk1, tk2, tv, k1, k2, 1)
    ctl[CTL_ROOM] -= 2


@njit(cache=True, nogil=True, inline="always")
def birth(
    src, dst, sport, dport, vlan, flags, plen, t, tk1, tk2, tv, st, init, born_ports,
    known_ports, freelist, ctl, born, cnt,
):  # fmt: skip
    """Open a connection for a packet no slot holds, when the lane can follow it from
    here as the engine would: a SYN to one of the protocol's own ports, a SYN-ACK from
    one, or (a capture that starts mid-connection) a packet whose one well-known
    industrial port is the protocol's, which the engine takes for the server
    (``ports.server_side``). Returns (slot, direction); slot -1 when the engine takes
    it (a flow on the protocol's port is then held for the engine), -3 when there is
    no room to say so (the pass stops before the packet)."""
    if not (_among(born_ports, sport) or _among(born_ports, dport)):
        return -1, 0
    if ctl[CTL_ROOM] < 2:
        return -3, 0
    hs = flags & 0x17  # FIN, SYN, RST, ACK
    ok = True
    if hs == 0x02:
        ok = _among(born_ports, dport) and plen == 0
        client, cport, server, sport_ = src, sport, dst, dport
    elif hs == 0x12:
        ok = _among(born_ports, sport) and plen == 0
        client, cport, server, sport_ = dst, dport, src, sport
    elif flags & 0x02:
        ok = False  # SYN with FIN or RST: the engine's to judge
        client, cport, server, sport_ = src, sport, dst, dport
    else:
        a_known = _among(known_ports, sport)
        b_known = _among(known_ports, dport)
        client, cport, server, sport_ = src, sport, dst, dport
        if a_known == b_known:
            ok = False
        elif b_known:
            ok = _among(born_ports, dport)
        else:
            ok = _among(born_ports, sport)
            client, cport, server, sport_ = dst, dport, src, sport
    if not ok or ctl[CTL_FREE] <= 0 or (ctl[CTL_BCAP] and ctl[CTL_BFREE] <= 0):
        # (no buffer row left to lend either: the engine takes new connections whole)
        _engine_owns(src, dst, sport, dport, vlan, tk1, tk2, tv, ctl)
        return -1, 0
    ctl[CTL_FREE] -= 1
    s = freelist[ctl[CTL_FREE]]
    ctl[CTL_ROOM] -= 2
    for f in range(len(init)):
        st[s, f] = init[f]
    st[s, F_FAST] = 1
    st[s, F_BORN] = 1
    st[s, F_SYN] = 1 if flags & 0x02 else 0
    st[s, F_PEND] = -1
    st[s, F_FIRST] = t
    st[s, F_LAST] = t
    st[s, F_CIP] = client
    st[s, F_SIP] = server
    st[s, F_CPORT] = cport
    st[s, F_SPORT] = sport_
    st[s, F_VLAN] = vlan
    st[s, F_RID] = ctl[CTL_RID]
    ctl[CTL_RID] += 1
    k1, k2 = flow_keys(client, server, cport, sport_, vlan)
    ctl[CTL_USED] += table_insert(tk1, tk2, tv, k1, k2, 2 * s)
    k1, k2 = flow_keys(server, client, sport_, cport, vlan)
    ctl[CTL_USED] += table_insert(tk1, tk2, tv, k1, k2, 2 * s + 1)
    born[cnt[C_NBORN]] = s
    cnt[C_NBORN] += 1
    return s, 0 if src == client and sport == cport else 1


@njit(cache=True, nogil=True, inline="always")
def admit(s, d, seq, flags, poff, plen, smac, dmac, t, st):
    """``(why, p, end)`` for a packet of fast slot ``s`` direction ``d``: its new payload
    is ``buf[p:end]`` (``p == end``: nothing new, e.g. a retransmission); ``why`` set
    when the slot must go slow before the packet is touched (the engine must see it).
    Takes scalars, not the column arrays: every array a hot helper touches costs
    reference counting per packet."""
    if st[s, F_FINS] == 3 and t - st[s, F_CLOSED_TS] > LINGER_NS:
        return WHY_LINGER, 0, 0
    if t - st[s, F_LAST] > IDLE_NS:
        return WHY_IDLE, 0, 0
    if flags & 0x02:
        # A SYN the kernel can follow: the one that opened the slot, or the SYN-ACK of
        # a connection it opened. Any other (a retransmitted SYN folds a connection in
        # the engine, data on a SYN, SYN with RST) is the engine's.
        if st[s, F_BORN] == 0 or plen > 0 or flags & 0x05:
            return WHY_SYN, 0, 0
        syn_ack = flags & 0x10 != 0
        if syn_ack != (d == 1):
            return WHY_SYN, 0, 0
        if d == 0 and st[s, F_TPK] + st[s, F_TPK + 1] > 0:
            # Only the opening SYN sent again stays (TcpConnection.repeats_syn): same
            # sequence number, nothing said or closed since.
            again = st[s, F_KNOWN] & 1 and st[s, F_NEXT] == (seq + 1) & 0xFFFFFFFF
            if not again or st[s, F_DECIDED] != 0 or st[s, F_FINS] != 0:
                return WHY_SYN, 0, 0
        if not st[s, F_KNOWN] & (1 << d):
            st[s, F_NEXT + d] = (seq + 1) & 0xFFFFFFFF  # SYN takes one (RFC 9293 §3.4)
            st[s, F_KNOWN] |= 1 << d
    if flags & 0x04 and plen > 0:
        return WHY_SYN, 0, 0
    if st[s, F_SMAC + d] == 0:
        st[s, F_SMAC + d] = smac
        st[s, F_DMAC + d] = dmac
    elif st[s, F_SMAC + d] != smac or st[s, F_DMAC + d] != dmac:
        return WHY_MAC, 0, 0
    p = poff
    end = poff + plen
    if plen > 0:
        if not st[s, F_KNOWN] & (1 << d):
            st[s, F_NEXT + d] = seq  # the reassembler's start mid-connection
            st[s, F_KNOWN] |= 1 << d
        # RFC 9293 §3.4 sequence comparison, as capture.tcp.seq_diff
        diff = (seq - st[s, F_NEXT + d]) & 0xFFFFFFFF
        if diff >= 0x80000000:
            diff -= 0x100000000
        if diff > 0:
            return WHY_AHEAD, 0, 0
        if diff < 0:
            if diff + plen <= 0:
                st[s, F_RETX + d] += 1  # nothing new: TcpReassembler.retransmitted
                p = end
            else:
                p -= diff  # partly new: the reassembler keeps only the new part
    return WHY_NONE, p, end


@njit(cache=True, nogil=True, inline="always")
def take(
    src, dst, sport, dport, vlan, seq, flags, poff, plen, smac, dmac, t, tk1, tk2, tv, st,
    init, born_ports, known_ports, freelist, bufs, ctl, born, cnt,
):  # fmt: skip
    """``(slot, direction, why, p, end)`` for a packet with these header fields: the
    fast slot that holds (or now opens) its connection; -1 when the engine takes the
    packet, -3 when the pass must stop before it (see :func:`birth`; or no buffer row
    is left to lend); ``why`` and the new payload ``p..end`` as :func:`admit` says. A
    slot takes a buffer row with its first data (a connection that never says anything,
    a scan's SYN, costs its slot row alone)."""
    if ctl[CTL_BFREE] <= 0 and ctl[CTL_BCAP] == 0:
        return -3, 0, WHY_NONE, 0, 0
    s, d = lookup(src, dst, sport, dport, vlan, tk1, tk2, tv, st)
    if s == -2:
        s, d = birth(
            src, dst, sport, dport, vlan, flags, plen, t, tk1, tk2, tv, st, init, born_ports,
            known_ports, freelist, ctl, born, cnt,
        )  # fmt: skip
    if s < 0:
        return s, 0, WHY_NONE, 0, 0
    why, p, end = admit(s, d, seq, flags, poff, plen, smac, dmac, t, st)
    if end > p and st[s, F_BUF] == 0:
        if ctl[CTL_BFREE] <= 0:
            return s, d, WHY_FULL, 0, 0  # every buffer row is in use: the engine takes it
        ctl[CTL_BFREE] -= 1
        st[s, F_BUF] = bufs[ctl[CTL_BFREE]]
    return s, d, why, p, end


@njit(cache=True, nogil=True, inline="always")
def lookup(src, dst, sport, dport, vlan, tk1, tk2, tv, st):
    """(slot, direction) of a packet's connection when the kernel holds it fast, else
    (-1, 0) for one the engine owns, or (-2, 0) for one no slot holds."""
    k1, k2 = flow_keys(src, dst, sport, dport, vlan)
    sv = table_get(tk1, tk2, tv, k1, k2)
    if sv < 0:
        return -2, 0
    s = sv >> 1
    if st[s, F_FAST] == 0:
        return -1, 0
    return s, sv & 1


@njit(cache=True, nogil=True, inline="always")
def commit(st, s, d, p, end, flags, iplen, t):
    """A packet was taken with new payload ``p..end``: advance the sequence number,
    count it, note a FIN or RST (the caller marks it done)."""
    if end > p:
        st[s, F_NEXT + d] = (st[s, F_NEXT + d] + (end - p)) & 0xFFFFFFFF
    fin = 3 if flags & 0x04 else (1 << d if flags & 0x01 else 0)
    if fin:
        st[s, F_FIN] |= fin
        st[s, F_FIN_TS] = t
        if st[s, F_FINS] != 3 and st[s, F_FINS] | fin == 3:
            st[s, F_CLOSED_TS] = t
        st[s, F_FINS] |= fin
    st[s, F_PK + d] += 1
    st[s, F_BY + d] += iplen
    st[s, F_TPK + d] += 1
    st[s, F_TBY + d] += iplen
    if t > st[s, F_LAST]:
        st[s, F_LAST] = t


@njit(cache=True, nogil=True, inline="always")
def pend(st, s, d, i, rest):
    """Note that the hand-over must replay packet ``i`` from ``rest`` on."""
    st[s, F_PEND] = i
    st[s, F_PEND_P] = rest
    st[s, F_PEND_D] = d


@njit(cache=True, nogil=True)
def pdu_need(kind, a, off, avail):
    """How many bytes the message starting at ``a[off]`` needs in all, judged from the
    ``avail`` bytes there (more than ``avail``: it continues in a later segment); -1 when
    those bytes cannot start a message of this framing."""
    if kind == K_MODBUS:
        if avail < 6:
            return 6
        if a[off + 2] != 0 or a[off + 3] != 0:
            return -1
        n = u16(a, off + 4)
        if n < 2 or n > 255:
            return -1
        return 6 + n
    if kind == K_TPKT:
        if avail < 4:
            return 4
        if a[off] != 3 or a[off + 1] != 0:
            return -1
        n = u16(a, off + 2)
        return n if n >= 7 else -1
    if kind == K_ENIP:
        if avail < 24:
            return 24
        return 24 + u16le(a, off + 2)
    # K_DNP3: link frames (IEEE 1815 §9.2.4) up to the one with the transport FIN bit; a
    # frame without user data is a message of its own.
    q = 0
    while True:
        if avail - q < 3:
            return q + 10
        if a[off + q] != 0x05 or a[off + q + 1] != 0x64 or a[off + q + 2] < 5:
            return -1
        user = np.int64(a[off + q + 2]) - 5
        total = 10 + user + 2 * ((user + 15) // 16)
        if user == 0:
            return total if q == 0 else q  # ends the fragment before it (unfinished)
        if avail - q < total:
            return q + total
        if a[off + q + 10] & 0x80:
            return q + total
        q += total
        if q > CARRY:
            return q + 1


@njit(cache=True, nogil=True, inline="always")
def next_message(kind, buf, p, end, carry, raw, st, s, d, frame, t):
    """The next whole message of slot ``s`` direction ``d`` from its carry and the
    packet bytes ``buf[p:end]``, copied to ``raw[b, at:at+n]`` (after the kept
    messages): ``(status, at, n, rest, p)``.

    MSG: a message (the caller keeps it there with :func:`keep_at`, or not: the bytes
    after F_QUSED are scratch). NEED: the bytes left wait in the carry. BAD/LARGE: they do
    not frame; FULL: no room in raw. ``rest`` is where the bytes of the packet that a
    hand-over would replay after the carry begin; ``p`` where framing continues."""
    b = st[s, F_BUF]
    at = st[s, F_QUSED]
    cl = st[s, F_CARRY + d]
    if cl > 0:
        while True:
            need = pdu_need(kind, carry[b, d], 0, cl)
            if need < 0:
                return BAD, 0, 0, p, p
            if need > CARRY:
                return LARGE, 0, 0, p, p
            if cl >= need:
                break
            more = min(need - cl, end - p)
            if more <= 0:
                return NEED, 0, 0, end, end
            for k in range(more):
                carry[b, d, cl + k] = buf[p + k]
            cl += more
            p += more
            st[s, F_CARRY + d] = cl
            st[s, F_CFRAME + d] = frame
            st[s, F_CTS + d] = t
        if at + cl > RAW_BYTES:
            return FULL, 0, 0, p, p
        for k in range(cl):
            raw[b, at + k] = carry[b, d, k]
        return MSG, at, cl, p, p
    if p >= end:
        return NEED, 0, 0, p, p
    avail = end - p
    need = pdu_need(kind, buf, p, avail)
    if need < 0:
        return BAD, 0, 0, p, p
    if need <= avail:
        if at + need > RAW_BYTES:
            return FULL, 0, 0, p, p
        for k in range(need):
            raw[b, at + k] = buf[p + k]
        return MSG, at, need, p, p + need
    if need > CARRY:
        return LARGE, 0, 0, p, p
    for k in range(avail):
        carry[b, d, k] = buf[p + k]
    st[s, F_CARRY + d] = avail
    st[s, F_CFRAME + d] = frame
    st[s, F_CTS + d] = t
    return NEED, 0, 0, end, end


@njit(cache=True, nogil=True, inline="always")
def consumed(st, s, d):
    """The message :func:`next_message` returned was taken: its carry is empty now."""
    st[s, F_CARRY + d] = 0


@njit(cache=True, nogil=True, inline="always")
def keep_at(st, qm, s, at, n, frame, t, d, key, key2):
    """Keep the message at ``raw[s, at:at+n]`` (just framed there), in flight, for
    pairing and for a hand-over; False when there is no room for one more."""
    k = st[s, F_QN]
    if k >= MAX_KEPT:
        return False
    qm[s, k, Q_OFF] = at
    qm[s, k, Q_LEN] = n
    qm[s, k, Q_FRAME] = frame
    qm[s, k, Q_TS] = t
    qm[s, k, Q_DIR] = d
    qm[s, k, Q_KEY] = key
    qm[s, k, Q_KEY2] = key2
    st[s, F_QN] = k + 1
    st[s, F_QUSED] = at + n
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
    """Move the kept messages to the front of the slot's buffer row once dropped ones
    fill half of it (between packets only)."""
    if st[s, F_QUSED] <= RAW_BYTES // 2:
        return
    r = st[s, F_BUF]
    pos = 0
    for k in range(st[s, F_QN]):
        off = qm[s, k, Q_OFF]
        n = qm[s, k, Q_LEN]
        if off != pos:
            for b in range(n):
                raw[r, pos + b] = raw[r, off + b]
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
def forget(st, slots, tk1, tk2, tv):
    """Take the connections of ``slots`` (their rows still filled in) out of the table."""
    for s in slots:
        c, v = st[s, F_CIP], st[s, F_VLAN]
        sv, cp, sp = st[s, F_SIP], st[s, F_CPORT], st[s, F_SPORT]
        k1, k2 = flow_keys(c, sv, cp, sp, v)
        table_delete(tk1, tk2, tv, k1, k2)
        k1, k2 = flow_keys(sv, c, sp, cp, v)
        table_delete(tk1, tk2, tv, k1, k2)


@njit(cache=True, nogil=True, inline="always")
def pick(qm, s, ks, nk, out):
    """The kept messages ``ks[:nk]`` of slot ``s`` as the rows of one transaction."""
    for j in range(nk):
        for f in range(Q_FIELDS):
            out[j, f] = qm[s, ks[j], f]


__all__ = [
    "CARRY",
    "N_FIELDS",
    "admit",
    "birth",
    "commit",
    "compact",
    "consumed",
    "drop",
    "engine_packet",
    "find",
    "forget",
    "keep_at",
    "lookup",
    "make_slow",
    "next_message",
    "pdu_need",
    "pend",
    "pick",
    "space",
    "take",
]
