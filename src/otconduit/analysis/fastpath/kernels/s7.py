"""Bulk-path kernel for S7comm (numba, cached on disk): the requests of a set-up
connection and their answers.

A message is one TPKT packet holding one COTP TPDU, however the segments cut or join
them. The lane takes COTP connection set-up (CR answered by CC), jobs of any function
from either side answered by Ack / Ack-Data (several in flight, told apart by PDU
reference and direction), userdata requests answered whole, and a userdata answer in
fragments with its follow-up requests when nothing else is in flight (a long SZL list).
Empty DTs are nothing. Anything else — a DT without EOT carrying data (a TSDU in several
TPDUs), a disconnect, S7comm-plus, a PDU the session holds for a request not seen —
turns the connection over to the per-packet path at that message.

Field layouts: RFC 1006 §6 (TPKT), ISO 8073 §13 (COTP CR/CC/DT), and for S7comm the
Wireshark dissector's documentation as in :mod:`otconduit.protocols.s7.pdu`: header
(§ ``s7comm_decode_header``), S7ANY items (``s7comm_decode_param_item``), data items
(``s7comm_decode_response_read_data``), the userdata parameter
(``s7comm_decode_ud``).

Shape and holes (see ``kernels.shapes`` and :func:`s7_shape`): PDU references, a
userdata answer's sequence number, a connection request's source reference, and each
data item's bytes. Everything else, TPKT/COTP headers included (but the TPDU number and
credit and the references no operation reports), is shape.
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
    F_P,
    F_QN,
    F_QUSED,
    K_TPKT,
    LARGE,
    MAX_MSGS,
    MSG,
    NEED,
    Q_DIR,
    Q_FIELDS,
    Q_KEY2,
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
from otconduit.analysis.fastpath.kernels.wire import u16, u32
from otconduit.jit import njit
from otconduit.store.detail_holes import N_INTS

LANE_TAG = 0x53  # first shape byte: "S"
PLUS = 0x72  # S7comm-plus protocol id (``plus.PROTOCOL_ID``), and its messages' shape tag
OP_REQUEST = 0x31  # S7comm-plus opcodes (``plus.OPCODES``)
OP_RESPONSE = 0x32
OP_NOTIFY = 0x33
OP_RESPONSE2 = 0x02
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


@njit(cache=True, nogil=True, inline="always")
def ref_hole(m):
    """The integer hole of message ``m``'s PDU reference: a transaction is requests
    and their answers in turn (a fragmented answer: request, fragment, follow-up, ...)."""
    r = m // 2
    return 0 if r == 0 else 2 + r


@njit(cache=True, nogil=True)
def s7_shape(raw, qm, qn, st_row, norm, xrow, lh, lv, cnt):
    """Shape of a transaction (messages ``qm[:qn]`` in ``raw``, a slot's row: a request
    and its answer, a request alone, or a fragmented userdata answer's chain) into
    ``norm``, holes into ``xrow`` and the list holes. Returns the shape length, or -1
    when this is not a transaction the lane takes. Holes: the PDU references (integer
    0 for the first request and its answer, 3, 4, ... for the follow-ups of a chain:
    ``ref_hole``), the userdata answer's sequence number (1: the same in every
    fragment and follow-up), a connection request's source reference (2), and the data
    of each Read/Write Var item (a list hole per item, request items first)."""
    if qn < 1 or qn > MAX_MSGS or (qn > 2 and qn % 2):
        return -1
    for k in range(N_INTS):
        xrow[X_INT + k] = 0
    norm[0] = LANE_TAG
    pos = 1
    first_list = cnt[C_NLH]
    func0 = -1  # the job function of the request
    seq_seen = False
    for m in range(qn):
        off = qm[m, Q_OFF]
        n = qm[m, Q_LEN]
        norm[pos] = m | (qm[m, Q_DIR] << 1)
        norm[pos + 1] = (n >> 8) & 0xFF
        norm[pos + 2] = n & 0xFF
        pos += 3
        base = pos - off  # norm[base + x] is the shape byte of raw[x]
        norm[pos : pos + n] = raw[off : off + n]
        end = off + n
        code = raw[off + 5] & 0xF0
        norm[base + off + 5] &= 0xF0  # COTP credit
        if code == 0xE0 or code == 0xD0:  # CR, CC (ISO 8073 §13.3, §13.4)
            if n < 11 or m > 1:
                return -1
            if code == 0xE0 and m == 0:
                xrow[X_INT + 2] = u16(raw, off + 8)  # its source reference is reported
            for k in range(6, 10):
                norm[base + off + k] = 0  # references: no operation reports the others
            pos += n
            continue
        if code == 0xF0 and n > TPKT_COTP and raw[off + TPKT_COTP] == PLUS:
            # S7comm-plus: what the session reports of it (plus.parse_plus, _plus_fields)
            # and nothing of its payload, which is not decoded (nor its length).
            if qn > 2:
                return -1
            q = off + TPKT_COTP
            at = _plus_opcode(raw, q, end)
            if at < 0:
                return -1
            opcode = raw[at]
            pos -= 2  # over the length: a descriptor instead of the bytes
            norm[pos] = PLUS
            norm[pos + 1] = raw[q + 1]  # version
            norm[pos + 2] = opcode
            pos += 3
            if opcode != OP_NOTIFY:
                norm[pos] = raw[at + 3]  # function
                norm[pos + 1] = raw[at + 4]
                pos += 2
                seq = u16(raw, at + 7)
                if m == 0:
                    xrow[X_INT] = seq
                elif seq != xrow[X_INT]:
                    return -1
                if opcode == OP_REQUEST:
                    session = at + 14 <= q + 4 + u16(raw, q + 2)
                    norm[pos] = 1 if session else 0
                    pos += 1
                    if session:
                        xrow[X_INT + 1] = u32(raw, at + 9)
            continue
        if code != 0xF0 or n < TPKT_COTP + 10 or raw[off + TPKT_COTP] != 0x32:
            return -1
        norm[base + off + 6] &= 0x80  # TPDU number
        q = off + TPKT_COTP
        rosctr = raw[q + 1]
        hsize = 12 if rosctr == 2 or rosctr == 3 else 10
        if end - q < hsize:
            return -1
        ref = u16(raw, q + 4)
        h = ref_hole(m)
        if m % 2 == 0:
            xrow[X_INT + h] = ref
        elif ref != xrow[X_INT + h]:
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
        if rosctr == 7:
            if plen >= 8 and (m % 2 == 1 or m >= 2):
                # an answer's sequence number is reported; a chain repeats it throughout
                if seq_seen and raw[pq + 7] != xrow[X_INT + 1]:
                    return -1
                xrow[X_INT + 1] = raw[pq + 7]
                seq_seen = True
                norm[base + pq + 7] = 0
        elif qn > 2:
            return -1  # a chain is userdata only
        elif rosctr == 1 and m == 0 and plen >= 1:
            func0 = raw[pq]
            if func0 == 4 or func0 == 5:
                if plen < 2:
                    return -1
                count = raw[pq + 1]
                r = pq + 2
                for _ in range(count):
                    if r + 2 > pend or raw[r] != 0x12 or raw[r + 1] == 0:
                        return -1
                    r += 2 + raw[r + 1]
                    if r > pend:
                        return -1
                if func0 == 5 and _data_items(raw, norm, dq, dend, base, count, lh, lv, cnt) < 0:
                    return -1
        elif m == 1 and (func0 == 4 or func0 == 5) and plen > 0:
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


# Message kinds (_kind)
M_OTHER = 0  # the decoder's: DR, a TSDU in several TPDUs, S7comm-plus, short PDUs, ...
M_CONNECT = 1  # COTP CR
M_CONFIRM = 2  # COTP CC
M_EMPTY = 3  # a DT with EOT and no data: nothing happens
M_JOB = 4
M_ACK = 5  # ACK or ACK-Data
M_UD_REQUEST = 6
M_UD_RESPONSE = 7  # a userdata response that is whole, or the last fragment of one
M_UD_MORE = 8  # a userdata response fragment that more follow
M_UD_FOLLOW = 9  # a userdata request for the next fragment of an answer
M_PLUS_REQUEST = 10  # S7comm-plus, whole (its trailer in this TSDU)
M_PLUS_RESPONSE = 11
M_PLUS_NOTIFY = 12
# pairing keys (Q_KEY2) of kept messages
KEY_JOB = 0
KEY_USERDATA = 1
KEY_CONNECT = 2
KEY_FRAGMENT = 3  # a response fragment (kept only as part of its chain)
KEY_PLUS = 4  # an S7comm-plus request, by sequence number
KEY_CONFIRM = 5  # a CC answering the kept CR before the first data said S7 (held)

# what a new connection's first data says (s7_verdict)
V_OTHER = 0  # not S7comm: the engine identifies it
V_S7 = 1  # a COTP DT whose data is S7comm or S7comm-plus
V_SETUP = 2  # a COTP CR or CC: the set-up MMS shares, undecided until the first DT

# A userdata answer in fragments (a long SZL list): request, fragment, follow-up request,
# ..., last fragment. The session joins the fragments (``S7Session._szl_response``);
# the lane takes the whole chain as one transaction when nothing else is in flight.
P_CHAIN = F_P  # 0: no chain; else 1 + the answer's sequence number
P_CWAIT = F_P + 1  # what the chain waits for: 1 a follow-up request, 2 its answer
P_CDIR = F_P + 2  # the direction the chain's requests go in


@njit(cache=True, nogil=True, inline="always")
def _kind(rw, at, n):
    """What the TPKT packet ``rw[at:at+n]`` is, as the session sees it."""
    if n < 7:
        return M_OTHER
    code = rw[at + 5] & 0xF0
    if code == 0xE0:
        return M_CONNECT if n >= 11 else M_OTHER
    if code == 0xD0:
        return M_CONFIRM if n >= 11 else M_OTHER
    if code != 0xF0 or rw[at + 4] != 2:
        return M_OTHER  # not a class 0 DT
    if n == 7:
        # No data, with or without EOT: the stream starts (or ends) a TSDU of nothing,
        # which nothing reports (its offset would only be reported in a Malformed).
        return M_EMPTY
    if rw[at + 6] & 0x80 == 0:
        return M_OTHER  # a TSDU that continues
    q = at + TPKT_COTP
    if rw[q] == PLUS:
        return _plus_kind(rw, q, at + n)
    if n < TPKT_COTP + 12 or rw[q] != 0x32:
        return M_OTHER
    rosctr = rw[q + 1]
    if rosctr == 1:
        return M_JOB
    if rosctr == 2 or rosctr == 3:
        return M_ACK
    if rosctr != 7 or n < TPKT_COTP + 18:
        return M_OTHER
    pq = q + 10
    plen = (np.int64(rw[q + 6]) << 8) | rw[q + 7]
    if plen < 8 or rw[pq] != 0 or rw[pq + 1] != 1 or rw[pq + 2] != 0x12:
        return M_OTHER
    kind = rw[pq + 5] >> 4
    if kind == 4 or kind == 7:  # request types (functions.UD_REQUEST_TYPES)
        if plen >= 12 and rw[pq + 7] != 0:
            return M_UD_FOLLOW  # pdu.UserdataParam.follow_up
        return M_UD_REQUEST
    if kind == 8 or kind == 0xB:  # response types
        if plen >= 12 and rw[pq + 9] != 0:
            return M_UD_MORE
        return M_UD_RESPONSE
    return M_OTHER


@njit(cache=True, nogil=True, inline="always")
def _plus_opcode(rw, q, end):
    """Where the opcode of the S7comm-plus PDU at ``rw[q:end]`` (a whole TSDU) is, when
    the session reads it as one whole PDU with an opcode (``plus.parse_plus``: a known
    data version, its data within the TSDU, a trailer after it, a clean integrity part,
    a known opcode, function and sequence number within the data); else -1."""
    if end - q < 4:
        return -1
    version = rw[q + 1]
    if version != 1 and version != 2 and version != 3:
        return -1
    data_end = q + 4 + u16(rw, q + 2)
    if data_end + 4 > end or rw[data_end] != PLUS:
        return -1  # no trailer: a fragment, continued in the next TSDU
    at = q + 4
    if version == 3:
        if data_end - at < 1 or 1 + rw[at] > data_end - at:
            return -1
        at += 1 + rw[at]
    if at >= data_end:
        return -1
    opcode = rw[at]
    if opcode == OP_NOTIFY:
        return at
    if opcode != OP_REQUEST and opcode != OP_RESPONSE and opcode != OP_RESPONSE2:
        return -1
    if at + 9 > data_end:
        return -1
    return at


@njit(cache=True, nogil=True, inline="always")
def _plus_kind(rw, q, end):
    """What the S7comm-plus TSDU at ``rw[q:end]`` is: a keep-alive (nothing), a whole
    request, response or notification, or M_OTHER (the decoder's to read)."""
    if end - q >= 4 and rw[q + 1] == 0xFF:
        return M_EMPTY  # keep-alive
    if end - q >= 4 and rw[q + 1] == 0xFE:
        return M_EMPTY if q + 4 + u16(rw, q + 2) <= end else M_OTHER  # extended keep-alive
    at = _plus_opcode(rw, q, end)
    if at < 0:
        return M_OTHER
    opcode = rw[at]
    if opcode == OP_NOTIFY:
        return M_PLUS_NOTIFY
    return M_PLUS_REQUEST if opcode == OP_REQUEST else M_PLUS_RESPONSE


@njit(cache=True, nogil=True, inline="always")
def _ud_seq(rw, at):
    """The sequence number of the userdata PDU framed at ``rw[at:]``."""
    return np.int64(rw[at + TPKT_COTP + 10 + 7])


@njit(cache=True, nogil=True, inline="always")
def _chain_step(rw, st, qm, s, d, at, n, frame, t, kind, ref, seq):
    """A message while a fragmented answer with sequence number ``seq`` is under way:
    the next follow-up request, or the next fragment answering it, is kept (the last
    fragment only when the transaction has room for it: the caller completes the
    chain); anything else goes to the per-packet path (``WHY_STATE``)."""
    wait = st[s, P_CWAIT]
    qn = st[s, F_QN]
    if kind == M_UD_FOLLOW and wait == 1 and d == st[s, P_CDIR]:
        if _ud_seq(rw, at) != seq:
            return WHY_STATE
        if qn + 2 > MAX_MSGS:
            return WHY_FULL  # no room for its answer: the per-packet path joins them
        if not keep_at(st, qm, s, at, n, frame, t, d, ref, KEY_USERDATA):
            return WHY_FULL
        st[s, P_CWAIT] = 2
        return WHY_NONE
    if (kind in (M_UD_MORE, M_UD_RESPONSE)) and wait == 2 and d != st[s, P_CDIR]:
        if _ud_seq(rw, at) != seq or find(st, qm, s, 1 - d, ref, KEY_USERDATA) != qn - 1:
            return WHY_STATE
        if kind == M_UD_RESPONSE:
            return WHY_NONE  # the caller keeps it and completes the chain
        if qn + 3 > MAX_MSGS:
            return WHY_FULL
        if not keep_at(st, qm, s, at, n, frame, t, d, ref, KEY_FRAGMENT):
            return WHY_FULL
        st[s, P_CWAIT] = 1
        return WHY_NONE
    return WHY_STATE


@njit(cache=True, nogil=True, inline="always")
def s7_verdict(buf, p, end):
    """What a new connection's data at ``buf[p:end]`` says, as the engine's identification
    does (``protocols.s7.detect.verdict``): a TPKT header and a COTP DT whose data starts
    with an S7 protocol id (0x32, 0x72) is S7 (V_S7); a CR or CC is the ISO-on-TCP set-up
    that MMS shares, which the kernel follows undecided (V_SETUP) until the first DT;
    anything else is the engine's to identify (V_OTHER)."""
    if end - p < 8 or buf[p] != 3 or buf[p + 1] != 0:
        return V_OTHER
    length = (np.int64(buf[p + 2]) << 8) | buf[p + 3]
    code = buf[p + 5] & 0xF0
    if length < 7:
        return V_OTHER
    if code == 0xE0 or code == 0xD0:
        return V_SETUP if length >= 11 else V_OTHER
    if code != 0xF0:
        return V_OTHER
    start = p + 5 + np.int64(buf[p + 4])
    if start >= min(p + length, end):
        return V_OTHER
    return V_S7 if buf[start] == 0x32 or buf[start] == 0x72 else V_OTHER


@njit(cache=True, nogil=True, inline="always")
def _setup_done(
    st, qm, raw, s, i, tq, ks, th, tinfo, tnorm, norm, xo, lh, lv, cnt, miss, mb
):  # fmt: skip
    """The first data said S7 on a connection whose CR and CC the kernel held undecided:
    write their transaction now (WHY_NONE). When no template fits yet, the CC is kept
    again (``settle`` forgets the last message, which it expects in the packet at hand)
    and the whole set-up goes to the hand-over, the miss noted for the lane to learn."""
    if st[s, F_QN] != 2 or qm[s, 1, Q_KEY2] != KEY_CONFIRM or qm[s, 0, Q_KEY2] != KEY_CONNECT:
        return WHY_NONE  # a CR alone waits for its CC as on any decided connection
    size = qm[s, 0, Q_LEN] + qm[s, 1, Q_LEN]
    if not room(xo, lh, lv, cnt, size // 4 + 2, size):
        return WHY_FULL
    ks[0] = 0
    ks[1] = 1
    pick(qm, s, ks, 2, tq)
    nlh, nlv = cnt[C_NLH], cnt[C_NLV]
    j = cnt[C_NX]
    size = s7_shape(raw[st[s, F_BUF]], tq, 2, st[s], norm, xo[j], lh, lv, cnt)
    why = settle(
        st, qm, raw, s, i, tq, ks, 2, size, th, tinfo, tnorm, norm, xo, cnt, nlh, nlv, miss, mb
    )  # fmt: skip
    if why != WHY_NONE:
        for f in range(Q_FIELDS):
            qm[s, 1, f] = tq[1, f]
        st[s, F_QN] = 2
        st[s, F_QUSED] = max(st[s, F_QUSED], tq[1, Q_OFF] + tq[1, Q_LEN])
    return why


@njit(cache=True, nogil=True)
def s7_pass(b, sl, sh, out, lo, hi):
    """One pass over packets ``lo..hi-1`` (see ``kernels.modbus.modbus_pass``)."""
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
            verdict = s7_verdict(buf, p, end)
            if verdict == V_S7:
                st[s, F_DECIDED] = 1
                why = _setup_done(
                    st, qm, raw, s, i, tq, ks, th, tinfo, tnorm, norm, xo, lh, lv, cnt, miss,
                    mb,
                )  # fmt: skip
            elif verdict == V_OTHER:
                why = WHY_UNDECIDED  # the engine identifies it from here (and what is held)
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
                K_TPKT, buf, p, end, carry, raw, st, s, d, frame, t
            )
            if status == NEED:
                break
            why = WHY_LARGE if status == LARGE else (WHY_FRAMING if status != MSG else WHY_FULL)
            if status == MSG:
                kind = _kind(rw, at, n)
                ref = (np.int64(rw[at + TPKT_COTP + 4]) << 8) | rw[at + TPKT_COTP + 5]
                key2 = KEY_JOB if kind in (M_JOB, M_ACK) else KEY_USERDATA
                why = WHY_KIND
                k = -1  # the kept request this message answers: the transaction is complete
                chain = st[s, P_CHAIN]
                if kind == M_EMPTY:
                    why = WHY_NONE
                elif chain != 0:
                    why = _chain_step(rw, st, qm, s, d, at, n, frame, t, kind, ref, chain - 1)
                    if why == WHY_NONE and kind == M_UD_RESPONSE:
                        k = 0
                elif kind in (M_CONNECT, M_JOB, M_UD_REQUEST):
                    # the session keeps one CR per direction, one request per reference
                    if kind == M_CONNECT:
                        ref, key2 = -1, KEY_CONNECT
                    if find(st, qm, s, d, ref, key2) >= 0:
                        why = WHY_STATE
                    elif keep_at(st, qm, s, at, n, frame, t, d, ref, key2):
                        why = WHY_NONE
                    else:
                        why = WHY_FULL
                elif kind == M_CONFIRM:
                    k = find(st, qm, s, 1 - d, -1, KEY_CONNECT)
                    why = WHY_NONE if k >= 0 else WHY_STATE
                    if k >= 0 and st[s, F_DECIDED] == 0:
                        # MMS or S7: held with its CR until the first DT says which
                        k = -1
                        if not keep_at(st, qm, s, at, n, frame, t, d, -1, KEY_CONFIRM):
                            why = WHY_FULL
                elif kind in (M_ACK, M_UD_RESPONSE):
                    k = find(st, qm, s, 1 - d, ref, key2)
                    why = WHY_NONE if k >= 0 else WHY_STATE  # held until its request comes
                elif kind == M_PLUS_REQUEST:
                    pseq = u16(rw, _plus_opcode(rw, at + TPKT_COTP, at + n) + 7)
                    if find(st, qm, s, d, pseq, KEY_PLUS) >= 0:
                        why = WHY_STATE  # the sequence number reused before an answer
                    elif keep_at(st, qm, s, at, n, frame, t, d, pseq, KEY_PLUS):
                        why = WHY_NONE
                    else:
                        why = WHY_FULL
                elif kind == M_PLUS_RESPONSE:
                    op_at = _plus_opcode(rw, at + TPKT_COTP, at + n)
                    k = find(st, qm, s, 1 - d, u16(rw, op_at + 7), KEY_PLUS)
                    why = WHY_STATE  # held until its request comes, or not its answer
                    if k >= 0:
                        rq = qm[s, k, Q_OFF]
                        rq_at = _plus_opcode(rw, rq + TPKT_COTP, rq + qm[s, k, Q_LEN])
                        if u16(rw, rq_at + 3) == u16(rw, op_at + 3):
                            why = WHY_NONE
                        else:
                            k = -1
                elif kind == M_PLUS_NOTIFY:
                    # pushed by the PLC, answered by nothing: a transaction of its own
                    why = WHY_FULL
                    if room(xo, lh, lv, cnt, 1, 8) and keep_at(
                        st, qm, s, at, n, frame, t, d, -1, KEY_PLUS
                    ):
                        ks[0] = st[s, F_QN] - 1
                        pick(qm, s, ks, 1, tq)
                        nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                        j = cnt[C_NX]
                        size = s7_shape(rw, tq, 1, st[s], norm, xo[j], lh, lv, cnt)
                        why = settle(
                            st, qm, raw, s, i, tq, ks, 1, size, th, tinfo, tnorm, norm,
                            xo, cnt, nlh, nlv, miss, mb,
                        )  # fmt: skip
                elif kind == M_UD_MORE:
                    # the first fragment: a chain starts when its request is all in flight
                    why = WHY_STATE
                    if st[s, F_QN] == 1 and find(st, qm, s, 1 - d, ref, KEY_USERDATA) == 0:
                        if keep_at(st, qm, s, at, n, frame, t, d, ref, KEY_FRAGMENT):
                            st[s, P_CHAIN] = 1 + _ud_seq(rw, at)
                            st[s, P_CWAIT] = 1
                            st[s, P_CDIR] = 1 - d
                            why = WHY_NONE
                        else:
                            why = WHY_FULL
                if k >= 0 and why == WHY_NONE:
                    nk = st[s, F_QN] + 1 if chain != 0 else 2
                    size = n
                    for j in range(st[s, F_QN]):
                        size += qm[s, j, Q_LEN]  # an item takes 4 bytes or more
                    if not room(xo, lh, lv, cnt, size // 4 + 2, size) or not keep_at(
                        st, qm, s, at, n, frame, t, d, ref, key2
                    ):
                        why = WHY_FULL
                    else:
                        if chain != 0:
                            for j in range(nk):
                                ks[j] = j
                        else:
                            ks[0] = k
                            ks[1] = st[s, F_QN] - 1
                        pick(qm, s, ks, nk, tq)
                        nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                        j = cnt[C_NX]
                        size = s7_shape(rw, tq, nk, st[s], norm, xo[j], lh, lv, cnt)
                        why = settle(
                            st, qm, raw, s, i, tq, ks, nk, size, th, tinfo, tnorm, norm,
                            xo, cnt, nlh, nlv, miss, mb,
                        )  # fmt: skip
                        if why == WHY_NONE:
                            st[s, P_CHAIN] = 0
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
