"""Bulk-path kernel for DNP3 over TCP (numba, cached on disk): polls and their answers.

The common case of a DNP3 connection: a master sends one request at a time (a read of
class data, a control, ...), the outstation answers it in a single-fragment response,
and the master confirms the response when it asks for it (CON); outstations may also
send unsolicited responses, which the master confirms (or not: the next unsolicited
response releases the earlier one unconfirmed), and answers may match no request
(orphans). A message is the link frames (with valid CRCs) of one whole application
fragment, however the segments cut or join them; link frames without user data are
taken as they come. Octets that start no link frame (no 05 64) are skipped up to the
next 05 64 and reported as one run when the next frame comes, as the link framer does.
Up to two associations a direction (an outstation sending unsolicited responses to one
master and answering another). Anything else (multi-fragment responses, CRC errors,
headers with a problem, a third association, two transactions awaiting confirms at
once, secondary frames with data) goes to the per-packet path at that message.

Field layouts: IEEE 1815-2012 §9.2.4 (link frame and CRC), §8.2.1 (transport header),
§4.2.2 (application header, object headers with prefix and range codes) and Annex A
(object sizes, from :mod:`otconduit.protocols.dnp3.objects`).

Shape and holes (see ``kernels.shapes``): per message the link
headers (length, control, addresses; not the CRCs) and the transport FIR/FIN bits, then
the reassembled fragment; the application sequence number of message k is integer
hole k (k < 7), and the shape says, per message, which message first carried its
number (the session pairs messages by it: what pairs with what is part of the shape;
a number first carried after the seventh message is not taken). In responses the
octets of the objects the decoder only steps over (measured values, flags,
timestamps) are left out.
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
    T_REFUSED,
    X_INT,
    X_LH,
    X_LN,
    note_miss,
    room,
    settle,
    template_of,
)
from otconduit.analysis.fastpath.kernels.slots import (
    BAD,
    C_NLH,
    C_NLV,
    C_NPROB,
    C_NX,
    F_BUF,
    F_CARRY,
    F_DECIDED,
    F_P,
    F_QN,
    F_RID,
    K_DNP3,
    LARGE,
    MAX_MSGS,
    MSG,
    NEED,
    PR_FRAME,
    PR_KIND,
    PR_N,
    PR_RID,
    Q_DIR,
    Q_FIELDS,
    Q_KEY,
    Q_KEY2,
    Q_LEN,
    Q_OFF,
    RAW_BYTES,
    WHY_FRAMING,
    WHY_FULL,
    WHY_LARGE,
    WHY_NEW,
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
from otconduit.protocols.dnp3.objects import FIXED_SIZES, LENGTH_IS_VARIATION, PACKED_BITS

LANE_TAG = 0x44  # first shape byte: "D"
# Slot columns (F_P + k)
P_AWAIT = F_P  # a response awaiting its confirm: 0 none, 1 solicited, 2 unsolicited
P_SEQ = F_P + 1  # its application sequence number
P_MDIR = F_P + 2  # TCP direction the master sends in (-1: none yet)
P_ASSOC = F_P + 3  # + d: link source << 16 | destination used in direction d (-1: none yet)
P_LLEN = F_P + 5  # + d: length of the last transport segment taken in direction d
P_LSEQ = F_P + 7  # + d: its sequence number
P_LUSE = F_P + 9  # + d: when direction d last delivered a segment (for the LRU order)
P_USE = F_P + 11  # counter for P_LUSE
P_ASSOC1 = F_P + 12  # + d: a second association in direction d (-1: none yet)
P_META1 = F_P + 14  # + d: its last segment: length | sequence << 8 | use << 16
P_SEG = F_P + 16  # + SEG_COLS (2 a + d): last segment of association a (0, 1), if short
SEG_COLS = 10
SHORT_SEG = 8 * SEG_COLS  # longer ones (first association only) stay in the buffer row
SEG_AT = RAW_BYTES  # raw[slot, SEG_AT + 256 d:]: the last transport segment of direction d
# Octets that start no link frame (no 05 64), skipped as the link framer skips them and
# reported (PROB_NO_HEADER) when the next frame that way comes; the octets themselves
# are kept (JUNK_MAX at most, in the slot row) for a hand-over to replay.
P_SKIP = F_P + 56  # + d: octets skipped in direction d and not reported yet
P_SKIPF = F_P + 58  # + d: the frame of the last of them
P_SKIPT = F_P + 60  # + d: its time
P_JUNK = F_P + 62  # + JUNK_COLS d: the octets
JUNK_COLS = 8
JUNK_MAX = 8 * JUNK_COLS
PROB_NO_HEADER = 1
SEQ_HOLES = 7  # integer holes 0..6: the sequence numbers of the first seven messages
AWAITED = 0x7FFFFFFF  # Q_KEY2 of a kept response that awaits its confirm
NO_RESPONSE_FUNCTIONS = (6, 8, 10, 12, 33)  # 1815 §4.2.2.5 (session.NO_RESPONSE_FUNCTIONS)
DECODED_GROUPS = (12, 41, 50, 52)  # objects whose values app.py decodes (app._DECODERS)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    sizes = np.zeros(256 * 256, np.int64)
    for (g, v), size in FIXED_SIZES.items():
        sizes[g * 256 + v] = size
    for g in LENGTH_IS_VARIATION:
        for v in range(1, 256):
            sizes[g * 256 + v] = v
    bits = np.zeros(256 * 256, np.int64)
    for (g, v), b in PACKED_BITS.items():
        bits[g * 256 + v] = b
    return sizes, bits


SIZES, BITS = _tables()


def _crc_table() -> np.ndarray:
    table = np.zeros(256, np.int64)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
        table[byte] = crc
    return table


CRC_TABLE = _crc_table()


@njit(cache=True, nogil=True)
def _crc_ok(b, p, n):
    """Whether the CRC after ``b[p:p+n]`` is right (1815 §9.2.4, sent low octet first)."""
    crc = 0
    for k in range(n):
        crc = (crc >> 8) ^ CRC_TABLE[(crc ^ b[p + k]) & 0xFF]
    crc ^= 0xFFFF
    return (np.int64(b[p + n]) | (np.int64(b[p + n + 1]) << 8)) == crc


@njit(cache=True, nogil=True)
def link_frame(b, p, end, check):
    """Wire length of the link frame at ``p``, or -1; with ``check``, only when its
    header and every block CRC are right."""
    if end - p < 10 or b[p] != 0x05 or b[p + 1] != 0x64 or b[p + 2] < 5:
        return -1
    if check and not _crc_ok(b, p, 8):
        return -1
    user = b[p + 2] - 5
    total = 10 + user + 2 * ((user + 15) // 16)
    if p + total > end:
        return -1
    if not check:
        return total
    at = p + 10
    while at < p + total:
        n = min(16, p + total - 2 - at)
        if not _crc_ok(b, at, n):
            return -1
        at += n + 2
    return total


@njit(cache=True, nogil=True)
def fragment(b, p, end, frag, check):
    """The application fragment carried by the link frames from ``p``: (wire length up
    to its FIN frame, fragment length, link source, destination, offset of the last
    frame), or wire length -1 when the frames there do not start one whole
    fragment of one association."""
    n = 0
    at = p
    first = True
    src = dst = -1
    tseq = 0
    while at < end:
        size = link_frame(b, at, end, check)
        if size < 0:
            return -1, 0, 0, 0, 0
        user = b[at + 2] - 5
        if user == 0:
            return -1, 0, 0, 0, 0  # a frame without user data: not part of a fragment
        c = b[at + 3]
        if c & 0x40 == 0 or (c & 0x0F != 3 and c & 0x0F != 4):
            return -1, 0, 0, 0, 0  # user data in a secondary frame, or not user data
        fd = np.int64(b[at + 4]) | (np.int64(b[at + 5]) << 8)
        fs = np.int64(b[at + 6]) | (np.int64(b[at + 7]) << 8)
        th = b[at + 10]
        if first:
            if th & 0x40 == 0:
                return -1, 0, 0, 0, 0  # no FIR
            src, dst = fs, fd
        elif th & 0x40 or (th & 0x3F) != ((tseq + 1) & 0x3F) or fs != src or fd != dst:
            return -1, 0, 0, 0, 0
        tseq = th & 0x3F
        # user data without the CRCs, minus the transport octet
        k = at + 11
        left = user - 1
        block_left = 15
        while left > 0:
            take = min(left, block_left)
            frag[n : n + take] = b[k : k + take]
            n += take
            k += take + 2
            left -= take
            block_left = 16
        first = False
        if th & 0x80:
            return at + size - p, n, src, dst, at
        at += size
    return -1, 0, 0, 0, 0


@njit(cache=True, nogil=True)
def _uint(f, p, w):
    v = 0
    for k in range(w):
        v |= np.int64(f[p + k]) << (8 * k)
    return v


@njit(cache=True, nogil=True)
def _response_objects(f, n, norm, base):
    """Leave out of the shape the object octets of a response that app.parse_fragment
    steps over without keeping; stop (keeping the rest) wherever it would not simply
    step over them."""
    pos = 4
    while pos < n:
        if n - pos < 3:
            return
        g, v, q = f[pos], f[pos + 1], f[pos + 2]
        pos += 3
        prefix = (q >> 4) & 7
        rc = q & 0x0F
        if q & 0x80 or prefix == 7:
            return
        count = -1
        if rc <= 5:
            w = 1 if rc == 0 or rc == 3 else (2 if rc == 1 or rc == 4 else 4)
            if n - pos < 2 * w:
                return
            start = _uint(f, pos, w)
            stop = _uint(f, pos + w, w)
            if stop < start:
                return
            count = stop - start + 1
            pos += 2 * w
        elif rc == 7 or rc == 8 or rc == 9 or rc == 0xB:
            w = 1 if rc == 7 or rc == 0xB else (2 if rc == 8 else 4)
            if n - pos < w:
                return
            count = _uint(f, pos, w)
            pos += w
        elif rc != 6:
            return
        if count <= 0:
            continue  # all points (no objects follow in a response? they do not), or none
        iw = 0 if prefix == 0 else (1 if prefix == 1 else (2 if prefix == 2 else 4))
        if prefix >= 4:
            return  # size-prefixed objects: the sizes are structure
        if g == 60:
            if iw:
                if n - pos < count * iw:
                    return
                pos += count * iw
            continue
        if g == 0:
            return  # device attributes carry their own lengths and are decoded
        bits = BITS[g * 256 + v]
        if bits and iw == 0:
            need = (count * bits + 7) // 8
            if n - pos < need:
                return
            for k in range(pos, pos + need):
                norm[base + k] = 0
            pos += need
            continue
        size = (bits + 7) // 8 if bits else SIZES[g * 256 + v]
        if size == 0:
            return
        per = iw + size
        if n - pos < count * per:
            return
        keep_data = False
        for dg in DECODED_GROUPS:
            if g == dg:
                keep_data = True
        if not keep_data and iw == 0:
            norm[base + pos : base + pos + count * per] = 0
        elif not keep_data:
            for m in range(count):
                at = base + pos + m * per + iw
                norm[at : at + size] = 0
        pos += count * per


@njit(cache=True, nogil=True)
def dnp3_shape(raw, qm, qn, st_row, norm, xrow, lh, lv, cnt):
    """Shape of the ``qn`` messages of one transaction (``qm`` rows into ``raw``), their
    sequence numbers into ``xrow``. Returns the shape length, or -1."""
    frag = norm[4 * RAW_BYTES :]  # scratch: the shape itself stays below
    norm[0] = LANE_TAG
    norm[1] = qn
    pos = 2
    for m in range(qn):
        off = qm[m, Q_OFF]
        end = off + qm[m, Q_LEN]
        norm[pos] = qm[m, Q_DIR]
        seq_at = pos + 1  # which earlier message first had this one's sequence number
        pos += 2
        size, n, _src, _dst, _last = fragment(raw, off, end, frag, False)
        if size != end - off or n < 2:
            return -1
        at = off
        while at < end:  # link headers and transport bits of every frame
            total = link_frame(raw, at, end, False)
            norm[pos : pos + 6] = raw[at + 2 : at + 8]
            norm[pos + 6] = raw[at + 10] & 0xC0 if raw[at + 2] > 5 else 0
            pos += 7
            at += total
        norm[pos] = n >> 8
        norm[pos + 1] = n & 0xFF
        pos += 2
        norm[pos : pos + n] = frag[:n]
        seq = frag[0] & 0x0F
        first = m
        for k in range(min(m, SEQ_HOLES)):
            if xrow[X_INT + k] == seq:
                first = k
                break
        if first >= SEQ_HOLES:
            return -1
        if m < SEQ_HOLES:
            xrow[X_INT + m] = seq
        norm[seq_at] = first
        norm[pos] &= 0xF0
        if frag[1] >= 0x81:
            if n < 4:
                return -1
            _response_objects(frag, n, norm, pos)
        pos += n
    xrow[X_LH] = cnt[C_NLH]
    xrow[X_LN] = 0
    return pos


@njit(cache=True, nogil=True, inline="always")
def _settle(st, qm, raw, rw, s, i, tq, ks, nk, th, tinfo, tnorm, norm, xo, lh, lv, cnt, miss, mb):
    """The kept messages ``ks[:nk]`` of slot ``s`` (ascending) are one transaction:
    shape it and write it."""
    pick(qm, s, ks, nk, tq)
    nlh, nlv = cnt[C_NLH], cnt[C_NLV]
    j = cnt[C_NX]
    size = dnp3_shape(rw, tq, nk, st[s], norm, xo[j], lh, lv, cnt)
    return settle(
        st, qm, raw, s, i, tq, ks, nk, size, th, tinfo, tnorm, norm, xo, cnt, nlh, nlv, miss, mb
    )


@njit(cache=True, nogil=True)
def _release(st, qm, raw, rw, s, i, r, tq, ks, th, tinfo, tnorm, norm, xo, lh, lv, cnt, miss, mb):
    """The kept unsolicited response ``r`` awaiting its confirm, which the next one
    releases unconfirmed (``session._release``): written from the template of the same
    message held when its connection ends (the *flush* shape: ``confirmed`` false).
    Without that template yet, it stays kept (the hand-over replays it) and is noted as a
    miss for the lane to learn it as a flush (``Dnp3Lane.learns_as_flush``): WHY_NEW."""
    if r < 0:
        return WHY_STATE
    ks[0] = r
    pick(qm, s, ks, 1, tq)
    nlh, nlv = cnt[C_NLH], cnt[C_NLV]
    j = cnt[C_NX]
    size = dnp3_shape(rw, tq, 1, st[s], norm, xo[j], lh, lv, cnt)
    if size <= 0:
        cnt[C_NLH], cnt[C_NLV] = nlh, nlv
        return WHY_STATE
    norm[0] |= 0x80  # lane.shape(..., flush=True)
    t = template_of(st, s, th, tinfo, tnorm, norm, size)
    if t >= 0:
        return settle(
            st, qm, raw, s, i, tq, ks, 1, size, th, tinfo, tnorm, norm, xo, cnt, nlh, nlv,
            miss, mb,
        )  # fmt: skip
    cnt[C_NLH], cnt[C_NLV] = nlh, nlv
    if t == T_REFUSED or not note_miss(st, raw, s, i, tq, 1, cnt, miss, mb):
        return WHY_STATE
    return WHY_NEW


@njit(cache=True, nogil=True, inline="always")
def _awaited(st, qm, s, mdir):
    """The kept response awaiting a confirm (from the outstation's side), or -1."""
    for k in range(st[s, F_QN]):
        if qm[s, k, Q_DIR] != mdir and qm[s, k, Q_KEY2] == AWAITED:
            return k
    return -1


@njit(cache=True, nogil=True, inline="always")
def dnp3_verdict(buf, p, end):
    """Whether a new connection's first data starts with a DNP3 link header whose CRC
    is right (``protocols.dnp3.detect``)."""
    if end - p < 10 or buf[p] != 0x05 or buf[p + 1] != 0x64 or buf[p + 2] < 5:
        return False
    return _crc_ok(buf, p, 8)


@njit(cache=True, nogil=True, inline="always")
def _junk_end(buf, p, end):
    """Where the octets from ``p`` that start no link frame end, as the link framer
    skips them: at the next 05 64 of the packet, or its end; -1 when the framer would
    not simply skip them (a header with a problem of its own, or a last 05 that may
    start one with the next segment's octets)."""
    if buf[p] == 0x05 and (end - p < 2 or buf[p + 1] == 0x64):
        return -1
    for q in range(p + 1, end - 1):
        if buf[q] == 0x05 and buf[q + 1] == 0x64:
            return q
    if buf[end - 1] == 0x05:
        return -1
    return end


@njit(cache=True, nogil=True, inline="always")
def _skip(st, s, d, buf, p, q, frame, t):
    """Add ``buf[p:q]`` to direction ``d``'s skipped run; False when it would not fit."""
    run = st[s, P_SKIP + d]
    if run + q - p > JUNK_MAX:
        return False
    col = P_JUNK + JUNK_COLS * d
    if run == 0:
        for c in range(JUNK_COLS):
            st[s, col + c] = 0
    for k in range(q - p):
        at = run + k
        st[s, col + (at >> 3)] |= np.int64(buf[p + k]) << (8 * (at & 7))
    st[s, P_SKIP + d] = run + q - p
    st[s, P_SKIPF + d] = frame
    st[s, P_SKIPT + d] = t
    return True


@njit(cache=True, nogil=True, inline="always")
def _report(st, s, d, probs, cnt):
    """A frame came after direction ``d``'s skipped run: report the run."""
    r = cnt[C_NPROB]
    probs[r, PR_RID] = st[s, F_RID]
    probs[r, PR_FRAME] = st[s, P_SKIPF + d]
    probs[r, PR_KIND] = PROB_NO_HEADER
    probs[r, PR_N] = st[s, P_SKIP + d]
    cnt[C_NPROB] = r + 1
    st[s, P_SKIP + d] = 0


@njit(cache=True, nogil=True)
def dnp3_pass(b, sl, sh, out, lo, hi):
    """One pass over packets ``lo..hi-1`` (see ``kernels.modbus.modbus_pass``). A
    message is one fragment, or one link frame without user data."""
    buf, ts, first_frame, ok, src, dst, sport, dport, vlan, seq, flags = block_arrays(b)[:11]
    poff, plen, iplen, smac, dmac, done = block_arrays(b)[11:]
    tk1, tk2, tv, ports, st, qm, raw, carry, init, born_ports, known_ports, freelist, bufs, ctl = (
        slot_arrays(sl)
    )
    th, tinfo, tnorm, norm = shape_arrays(sh)
    xo, lh, lv, cnt, slowed, miss, mb, born, probs = out_arrays(out)
    tq = np.zeros((MAX_MSGS, Q_FIELDS), np.int64)
    ks = np.zeros(MAX_MSGS, np.int64)
    frag = np.empty(RAW_BYTES, np.uint8)
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
            if dnp3_verdict(buf, p, end):
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
                K_DNP3, buf, p, end, carry, raw, st, s, d, frame, t
            )
            if status == NEED:
                break
            if status == BAD and st[s, F_CARRY + d] == 0:  # octets that start no frame
                q = _junk_end(buf, p, end)
                if q > p and _skip(st, s, d, buf, p, q, frame, t):
                    p = q
                    continue
            why = WHY_LARGE if status == LARGE else (WHY_FRAMING if status != MSG else WHY_FULL)
            if status == MSG and (st[s, P_SKIP + d] == 0 or cnt[C_NPROB] < len(probs)):
                why = _message(
                    st, qm, raw, rw, s, d, i, at, n, frame, t, tq, ks, th, tinfo, tnorm, norm,
                    xo, lh, lv, cnt, miss, mb, frag,
                )  # fmt: skip
                if why == WHY_NONE:
                    consumed(st, s, d)
                    if st[s, P_SKIP + d]:
                        _report(st, s, d, probs, cnt)
                    continue
            pend(st, s, d, i, rest)
            make_slow(st, s, why, slowed, cnt)
            break
        commit(st, s, d, start, end, flags[i], iplen[i], t)
        done[i] = 1
    return hi


@njit(cache=True, nogil=True, inline="always")
def _message(
    st, qm, raw, rw, s, d, i, at, n, frame, t, tq, ks, th, tinfo, tnorm, norm, xo, lh, lv, cnt,
    miss, mb, frag,
):  # fmt: skip
    """Take the fragment (or link frame without user data) framed at ``rw[at:at+n]``;
    WHY_NONE, or why the connection goes back to the per-packet path.

    As the session pairs them (``protocols.dnp3.session``): requests wait, several at
    once, keyed by (master, outstation, sequence); a response takes the first with its
    keys (or is an orphan); a response or an unsolicited response asking for a confirm
    waits for it, and the next unsolicited response between the same pair releases an
    unsolicited one unconfirmed (:func:`_release`). What would release a solicited
    response unconfirmed, or leave two awaiting confirms, goes back."""
    end = at + n
    if rw[at + 2] == 5:  # a link frame without user data: counted, nothing more
        return WHY_NONE if link_frame(rw, at, end, True) == n else WHY_FRAMING
    size, fn, lsrc, ldst, last = fragment(rw, at, end, frag, True)
    if size != n or fn < 2:
        return WHY_FRAMING
    assoc = (lsrc << 16) | ldst
    ai = 0  # which of the direction's two associations
    if st[s, P_ASSOC + d] == -1:
        st[s, P_ASSOC + d] = assoc
    elif st[s, P_ASSOC + d] != assoc:
        ai = 1
        if st[s, P_ASSOC1 + d] == -1:
            st[s, P_ASSOC1 + d] = assoc
        elif st[s, P_ASSOC1 + d] != assoc:
            return WHY_STATE
    user = np.int64(rw[last + 2]) - 5
    if ai == 1 and user > SHORT_SEG:
        return WHY_STATE  # the second association's last segment must fit the slot row
    fc = frag[1]
    aseq = frag[0] & 0x0F
    mdir = st[s, P_MDIR]
    master = d if fc < 0x81 else 1 - d  # the side a request or confirm comes from
    if mdir == -1:
        mdir = st[s, P_MDIR] = master
    if master != mdir:
        return WHY_STATE
    pair = assoc if fc < 0x81 else (ldst << 16) | lsrc
    awaiting = st[s, P_AWAIT]
    why = WHY_NONE
    if not room(xo, lh, lv, cnt, 1, 1):
        return WHY_FULL
    if fc == 0:  # a confirm
        uns = 2 if frag[0] & 0x10 else 1
        r = _awaited(st, qm, s, mdir) if awaiting != 0 else -1
        if r >= 0 and qm[s, r, Q_KEY] != pair:
            return WHY_STATE  # awaited between another pair of addresses
        if r >= 0 and awaiting == uns and aseq == st[s, P_SEQ]:
            if not keep_at(st, qm, s, at, n, frame, t, d, pair, 0):
                return WHY_FULL
            nk = 0
            if uns == 1:  # the request the response answered was kept before it
                for k in range(r):
                    mine = qm[s, k, Q_DIR] == mdir and qm[s, k, Q_KEY] == pair
                    if mine and qm[s, k, Q_KEY2] == aseq and nk == 0:
                        ks[0] = k
                        nk = 1
                if nk == 0:
                    return WHY_STATE
            ks[nk] = r
            ks[nk + 1] = st[s, F_QN] - 1
            st[s, P_AWAIT] = 0
            why = _settle(
                st, qm, raw, rw, s, i, tq, ks, nk + 2, th, tinfo, tnorm, norm, xo, lh, lv, cnt,
                miss, mb,
            )  # fmt: skip
        elif awaiting != 0 and awaiting != uns:
            return WHY_STATE  # a confirm the session would match against something else
        # else: a confirm of nothing in flight changes nothing but counters
    elif fc < 0x81:  # a request
        if awaiting == 1:
            return WHY_STATE  # it would release the response unconfirmed
        if not keep_at(st, qm, s, at, n, frame, t, d, pair, aseq):
            return WHY_FULL
        for code in NO_RESPONSE_FUNCTIONS:
            if fc == code:  # answered by nothing: done at once
                ks[0] = st[s, F_QN] - 1
                why = _settle(
                    st, qm, raw, rw, s, i, tq, ks, 1, th, tinfo, tnorm, norm, xo, lh, lv,
                    cnt, miss, mb,
                )  # fmt: skip
    elif fc == 0x81:  # a solicited response, in one fragment
        if awaiting == 1 or frag[0] & 0xC0 != 0xC0:
            return WHY_STATE
        if awaiting == 2 and frag[0] & 0x20:
            return WHY_STATE  # two would await confirms: the kernel carries one
        k = find(st, qm, s, mdir, pair, aseq)
        if k < 0:  # answers nothing kept: an orphan, a transaction of its own
            if frag[0] & 0x20:
                return WHY_STATE
            if not keep_at(st, qm, s, at, n, frame, t, d, pair, AWAITED):
                return WHY_FULL
            ks[0] = st[s, F_QN] - 1
            why = _settle(
                st, qm, raw, rw, s, i, tq, ks, 1, th, tinfo, tnorm, norm, xo, lh, lv, cnt,
                miss, mb,
            )  # fmt: skip
        elif not keep_at(st, qm, s, at, n, frame, t, d, pair, AWAITED):
            return WHY_FULL
        elif frag[0] & 0x20:  # CON: the transaction waits for the confirm
            st[s, P_AWAIT] = 1
            st[s, P_SEQ] = aseq
        else:
            ks[0] = k
            ks[1] = st[s, F_QN] - 1
            why = _settle(
                st, qm, raw, rw, s, i, tq, ks, 2, th, tinfo, tnorm, norm, xo, lh, lv, cnt,
                miss, mb,
            )  # fmt: skip
    elif fc == 0x82:  # unsolicited
        if awaiting == 1 and frag[0] & 0x20:
            return WHY_STATE  # two would await confirms: the kernel carries one
        if awaiting == 2:  # it releases the earlier one unconfirmed
            r = _awaited(st, qm, s, mdir)
            if r < 0 or qm[s, r, Q_KEY] != pair:
                return WHY_STATE  # (another pair's would wait on beside it)
            if not room(xo, lh, lv, cnt, 2, 2):
                return WHY_FULL
            why = _release(
                st, qm, raw, rw, s, i, r, tq, ks, th, tinfo, tnorm, norm, xo, lh, lv, cnt,
                miss, mb,
            )  # fmt: skip
            if why != WHY_NONE:
                return why
            st[s, P_AWAIT] = 0
        if not keep_at(st, qm, s, at, n, frame, t, d, pair, AWAITED):
            return WHY_FULL
        if frag[0] & 0x20:
            st[s, P_AWAIT] = 2
            st[s, P_SEQ] = aseq
        else:
            ks[0] = st[s, F_QN] - 1
            why = _settle(
                st, qm, raw, rw, s, i, tq, ks, 1, th, tinfo, tnorm, norm, xo, lh, lv, cnt,
                miss, mb,
            )  # fmt: skip
    else:
        return WHY_STATE
    if why == WHY_NONE:
        # what the transport reassembler keeps of the last segment (its user data)
        # (short ones in the slot row, so that an idle connection gives its buffer back)
        k = last + 10
        seg = SEG_AT + 256 * d
        short = user <= SHORT_SEG
        col = P_SEG + SEG_COLS * (2 * ai + d)
        if short:
            for c in range((user + 7) >> 3):
                st[s, col + c] = 0
        m = 0
        left = user
        block_left = 16
        while left > 0:
            take_n = min(left, block_left)
            for q in range(take_n):
                if short:
                    at_q = m + q
                    st[s, col + (at_q >> 3)] |= np.int64(rw[k + q]) << (8 * (at_q & 7))
                else:
                    rw[seg + m + q] = rw[k + q]
            m += take_n
            k += take_n + 2
            left -= take_n
        st[s, P_USE] += 1
        if ai == 0:
            st[s, P_LLEN + d] = user
            st[s, P_LSEQ + d] = rw[last + 10] & 0x3F
            st[s, P_LUSE + d] = st[s, P_USE]
        else:
            st[s, P_META1 + d] = user | (np.int64(rw[last + 10] & 0x3F) << 8) | (st[s, P_USE] << 16)
    return why


__all__ = ["dnp3_pass", "dnp3_shape", "fragment", "link_frame"]
