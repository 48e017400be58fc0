"""Bulk-path kernel for EtherNet/IP + CIP (numba, cached on disk): explicit messaging.

The common case of an EtherNet/IP connection once its session (and, for connected
messaging, its class 3 connection) is set up: the client sends CIP requests in
SendRRData (unconnected) or SendUnitData (connected) messages, several in flight when it
pipelines, and the target answers each. A message is one encapsulation message with
status 0 and the common packet format of its command (null address + unconnected data
item, or connected address + connected data item), however the segments cut or join
them; a connected reply must come on a connection whose O->T / T->O pairing the
per-packet decoder has already learned. Unconnected Send is taken when what it routes is
an ordinary request (not a Forward Open/Close). Everything else (session set-up, Forward
Open/Close, list commands, errors) goes to the per-packet path at that message.

Field layouts: ODVA Vol 2 §2-3.1 (encapsulation header), §2-4.7/§2-4.8 (SendRRData,
SendUnitData), §2-6 (common packet format); Vol 1 §2-4.1/§2-4.2 (Message Router request
and reply), §A-4.10 (Multiple Service Packet), §C-1.4 (padded EPATH segments).

Shape and holes (see ``kernels.shapes``): the request's session
handle (integer hole 0), sender context (list hole 0, written as hex), connection id
(1) and sequence count (2), the reply's connection id (3). The reply's session and
context are not read by the decoder (the one open request is what it answers), nor is
the data of a reply to a request whose answer it does not decode (everything but
Identity object reads): those bytes are left out of the shape.
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
    K_ENIP,
    LARGE,
    MAX_MSGS,
    MSG,
    NEED,
    Q_DIR,
    Q_FIELDS,
    Q_KEY,
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
from otconduit.analysis.fastpath.kernels.wire import u16le, u32le
from otconduit.jit import njit
from otconduit.protocols.enip.encap import COMMAND_NAMES, STATUS_NAMES
from otconduit.store.detail_holes import N_INTS

LANE_TAG = 0x45  # first shape byte: "E"
ORPHAN = 0x40  # second shape byte of a reply alone (a transaction's is its first message's index)
RR = 0x6F  # SendRRData
UNIT = 0x70  # SendUnitData
# Slot columns (F_P + k)
MAX_PAIRS = 16
MAX_CONNS = 2
P_PAIRS = F_P  # how many T->O -> O->T pairings follow (at most MAX_PAIRS)
P_PAIR = F_P + 1  # (T->O id, O->T id) at P_PAIR + 2k
P_CONNS = P_PAIR + 2 * MAX_PAIRS  # how many Forward Open connections follow
P_CONN = P_CONNS + 1  # (O->T id, connection serial, O->T RPI) at P_CONN + 3k
P_EXPORTED = P_CONN + 3 * MAX_CONNS  # how many of the pairings came from the decoder
UNKNOWN = -2  # path_class: a path this kernel does not read
# Encapsulation commands and statuses with a name (Vol 2 §2-3.2, §2-3.3)
COMMANDS = tuple(sorted(COMMAND_NAMES))
STATUSES = tuple(sorted(STATUS_NAMES))
MAX_PARTS = 64  # Multiple Service Packet entries the kernel pairs up


@njit(cache=True, nogil=True)
def carrier(b, p, n):
    """Offset of the CIP message in the encapsulation message ``b[p:p+n]``, or -1 when
    it is not a well-formed SendRRData/SendUnitData with status 0 in the usual form."""
    if n < 41:
        return -1
    cmd = u16le(b, p)
    if u16le(b, p + 2) != n - 24 or u32le(b, p + 8) != 0 or u32le(b, p + 20) != 0:
        return -1
    if u16le(b, p + 30) != 2:
        return -1
    if cmd == RR:
        if u16le(b, p + 32) != 0 or u16le(b, p + 34) != 0:
            return -1
        if u16le(b, p + 36) != 0xB2 or u16le(b, p + 38) != n - 40:
            return -1
        return 40
    if cmd == UNIT:
        if n < 47 or u16le(b, p + 32) != 0xA1 or u16le(b, p + 34) != 4:
            return -1
        if u16le(b, p + 40) != 0xB1 or u16le(b, p + 42) != n - 44:
            return -1
        return 46
    return -1


@njit(cache=True, nogil=True)
def path_class(raw, p, end):
    """The class a padded request path names last (epath._summarise's class_id), -1 for
    none, UNKNOWN for segments other than 8/16/32-bit logical ones and ANSI symbols."""
    cls = -1
    while p < end:
        seg = raw[p]
        if seg == 0x91:
            if p + 2 > end:
                return UNKNOWN
            size = raw[p + 1]
            p += 2 + size + (size & 1)
            continue
        if seg >> 5 != 1:
            return UNKNOWN
        ltype = (seg >> 2) & 7
        fmt = seg & 3
        if ltype >= 5 or fmt == 3:
            return UNKNOWN
        width = 1 if fmt == 0 else (3 if fmt == 1 else 5)
        if p + 1 + width > end:
            return UNKNOWN
        if fmt == 0:
            v = np.int64(raw[p + 1])
        elif fmt == 1:
            v = u16le(raw, p + 2)
        else:
            v = u32le(raw, p + 2)
        if ltype == 0:
            cls = v
        p += 1 + width
    return cls if p == end else UNKNOWN


@njit(cache=True, nogil=True)
def _routed(raw, d, rq_end):
    """Bounds of the request an Unconnected Send routes (Vol 1 §3-5.5.4: priority/tick,
    timeout ticks, message size, message, pad, route path; its request data starts at
    ``d``), or (-1, -1) when the lane must not take it: what it routes sets up or tears
    down a connection, is a Multiple Service Packet, or cannot be read."""
    if rq_end - d < 4:
        return -1, -1
    size = u16le(raw, d + 2)
    emb = d + 4
    if size < 2 or emb + size > rq_end:
        return -1, -1
    inner_path = emb + 2 + 2 * raw[emb + 1]
    if inner_path > emb + size:
        return -1, -1
    inner_cls = path_class(raw, emb + 2, inner_path)
    if inner_cls == 6 or inner_cls == UNKNOWN or raw[emb] & 0x7F == 0x0A:
        return -1, -1
    return emb, emb + size


@njit(cache=True, nogil=True)
def _leaf(raw, norm, base, rq, rq_end, rs, rs_end):
    """One request and its reply. Returns -1 when the lane must not take it (a request
    the decoder keeps state for, or one it reports as malformed), else 0 after leaving
    reply data it does not decode out of the shape. An Unconnected Send is judged by
    the request it routes; a reply from the Connection Manager itself (a routing error)
    stays whole in the shape."""
    if rq_end - rq < 2 or rs_end - rs < 4:
        return -1
    service = raw[rq] & 0x7F
    path_end = rq + 2 + 2 * raw[rq + 1]
    if path_end > rq_end:
        return -1
    cls = path_class(raw, rq + 2, path_end)
    if service == 0x52 and cls == 6:
        rq, rq_end = _routed(raw, path_end, rq_end)
        if rq < 0:
            return -1
        if raw[rs] & 0x7F == 0x52:
            return 0
        service = raw[rq] & 0x7F
        path_end = rq + 2 + 2 * raw[rq + 1]
        cls = path_class(raw, rq + 2, path_end)
    wrapper = service == 0x0A or service == 0x52 or service == 0x54 or service == 0x5B
    if (cls == 6 or cls == UNKNOWN) and (wrapper or service == 0x4E):
        return -1  # Forward Open/Close: connection state
    data = rs + 4 + 2 * raw[rs + 3]
    if data > rs_end:
        return -1
    identity = service == 0x01 or service == 0x03 or service == 0x0E
    if not (identity and (cls == 1 or cls == UNKNOWN)):
        for k in range(data, rs_end):
            norm[base + k] = 0
    return 0


@njit(cache=True, nogil=True)
def _parts(raw, d, end):
    """How many parts the Multiple Service Packet body at ``raw[d:end]`` splits into
    (cip.split_multiple), or -1 when it does not split cleanly."""
    if end - d < 2:
        return -1
    count = u16le(raw, d)
    if count == 0 or count > MAX_PARTS or 2 + 2 * count > end - d:
        return -1
    for k in range(count):
        start, stop = _part(raw, d, end, count, k)
        if not (d + 2 + 2 * count <= start < stop <= end):
            return -1
    return count


@njit(cache=True, nogil=True)
def _part(raw, d, end, count, k):
    """Bounds of part ``k`` of the Multiple Service Packet body at ``raw[d:end]``."""
    start = d + u16le(raw, d + 2 + 2 * k)
    stop = d + u16le(raw, d + 4 + 2 * k) if k + 1 < count else end
    return start, stop


@njit(cache=True, nogil=True)
def _tree(raw, norm, base, rq, rq_end, rs, rs_end):
    """A request (plain, or a Multiple Service Packet of plain requests) and its reply."""
    if rq_end - rq < 2:
        return -1
    if raw[rq] & 0x7F != 0x0A:
        return _leaf(raw, norm, base, rq, rq_end, rs, rs_end)
    path_end = rq + 2 + 2 * raw[rq + 1]
    if path_end > rq_end or rs_end - rs < 4:
        return -1
    count = _parts(raw, path_end, rq_end)
    if count < 0:
        return -1
    for k in range(count):
        start, _ = _part(raw, path_end, rq_end, count, k)
        if raw[start] & 0x7F == 0x0A:
            return -1  # a packet inside a packet: per-packet
    data = rs + 4 + 2 * raw[rs + 3]
    if data > rs_end:
        return -1
    if raw[rs] & 0x7F != 0x0A or data == rs_end:
        return 0  # no parts to pair: the reply as a whole is the shape
    if _parts(raw, data, rs_end) != count:
        return 0
    for k in range(count):
        q0, q1 = _part(raw, path_end, rq_end, count, k)
        r0, r1 = _part(raw, data, rs_end, count, k)
        if _leaf(raw, norm, base, q0, q1, r0, r1) < 0:
            return -1
    return 0


@njit(cache=True, nogil=True)
def _orphan_shape(raw, qm, norm, xrow, lh, lv, cnt):
    """Shape of a reply whose request was never seen (the decoder's orphan operation:
    the reply's service and statuses, not its data, which is left out of the shape)."""
    off = qm[0, Q_OFF]
    n = qm[0, Q_LEN]
    cip = carrier(raw, off, n)
    if cip < 0 or n < cip + 4:
        return -1
    head = cip + 4 + 2 * raw[off + cip + 3]  # service, reserved, status, extended size
    if head > n:
        return -1
    first_list = cnt[C_NLH]
    norm[0] = LANE_TAG
    norm[1] = ORPHAN
    norm[2] = (n >> 8) & 0xFF
    norm[3] = n & 0xFF
    pos = 4
    base = pos - off
    norm[pos : pos + head] = raw[off : off + head]
    for k in range(4, 8):
        norm[base + off + k] = 0  # session handle
    for k in range(12, 20):
        norm[base + off + k] = 0  # sender context
    xrow[X_INT] = u32le(raw, off + 4)
    put_list(lh, lv, cnt, raw, off + 12, 8, 1, False)
    if cip == 46:
        for k in range(36, 40):
            norm[base + off + k] = 0  # connection id
        norm[base + off + 44] = 0  # sequence count
        norm[base + off + 45] = 0
        xrow[X_INT + 2] = u16le(raw, off + 44)
        xrow[X_INT + 3] = u32le(raw, off + 36)
    xrow[X_LH] = first_list
    xrow[X_LN] = cnt[C_NLH] - first_list
    return pos + head


@njit(cache=True, nogil=True)
def enip_shape(raw, qm, qn, st_row, norm, xrow, lh, lv, cnt):
    """Shape of one CIP request and its reply (messages ``qm[:2]`` in ``raw``), or of a
    reply alone whose request was never seen; holes into ``xrow`` and ``out``'s list
    holes. Returns the shape length, or -1."""
    for k in range(N_INTS):
        xrow[X_INT + k] = 0
    if qn == 1 and qm[0, Q_DIR] == 1:
        return _orphan_shape(raw, qm, norm, xrow, lh, lv, cnt)
    if qn != 2 or qm[0, Q_DIR] != 0 or qm[1, Q_DIR] != 1:
        return -1
    norm[0] = LANE_TAG
    pos = 1
    first_list = cnt[C_NLH]
    cip0 = cip1 = 0
    for m in range(2):
        off = qm[m, Q_OFF]
        n = qm[m, Q_LEN]
        cip = carrier(raw, off, n)
        if cip < 0:
            return -1
        if m == 0:
            cip0 = off + cip
        else:
            cip1 = off + cip
        norm[pos] = m
        norm[pos + 1] = (n >> 8) & 0xFF
        norm[pos + 2] = n & 0xFF
        pos += 3
        base = pos - off
        norm[pos : pos + n] = raw[off : off + n]
        for k in range(4, 8):
            norm[base + off + k] = 0  # session handle
        for k in range(12, 20):
            norm[base + off + k] = 0  # sender context
        unit = cip == 46
        if unit:
            for k in range(36, 40):
                norm[base + off + k] = 0  # connection id
            norm[base + off + 44] = 0  # sequence count
            norm[base + off + 45] = 0
        if m == 0:
            xrow[X_INT] = u32le(raw, off + 4)
            put_list(lh, lv, cnt, raw, off + 12, 8, 1, False)
            xrow[X_INT + 1] = u32le(raw, off + 36) if unit else 0
            xrow[X_INT + 2] = u16le(raw, off + 44) if unit else 0
        else:
            xrow[X_INT + 3] = u32le(raw, off + 36) if unit else 0
        pos += n
    end0 = qm[0, Q_OFF] + qm[0, Q_LEN]
    end1 = qm[1, Q_OFF] + qm[1, Q_LEN]
    base1 = 1 + 3 + qm[0, Q_LEN] + 3 - qm[1, Q_OFF]
    if raw[cip0] & 0x80 or not raw[cip1] & 0x80:
        return -1
    if _tree(raw, norm, base1, cip0, end0, cip1, end1) < 0:
        return -1
    # What the decoder knows of the request's connection (Forward Open seen) is shape too.
    known = -1
    if cip0 - qm[0, Q_OFF] == 46:
        for k in range(min(st_row[P_CONNS], MAX_CONNS)):
            if st_row[P_CONN + 3 * k] == xrow[X_INT + 1]:
                known = k
    norm[pos] = known + 1
    pos += 1
    if known >= 0:
        for v in (st_row[P_CONN + 3 * known + 1], st_row[P_CONN + 3 * known + 2]):
            for b in range(8):
                norm[pos + b] = (v >> (8 * b)) & 0xFF
            pos += 8
    xrow[X_LH] = first_list
    xrow[X_LN] = cnt[C_NLH] - first_list
    return pos


@njit(cache=True, nogil=True)
def _request_for(st, qm, rw, s, p, cip):
    """The kept request the reply at ``rw[p:]`` (the slot's row of raw) answers, as the
    decoder pairs them (``decoder._pop_connected``, ``_pop_rr``), or -1.

    Connected: by O->T connection and sequence count, the O->T id from the T->O id's
    pairing; a T->O id not paired yet pairs with the oldest open request with the
    reply's sequence count whose O->T id is not paired (a connection opened before the
    capture), and the pairing is kept in the slot for the decoder to learn at the
    hand-over. Unconnected: the first request with the reply's sender context, else the
    oldest."""
    if cip == 46:
        to_id = u32le(rw, p + 36)
        seq = u16le(rw, p + 44)
        pairs = min(st[s, P_PAIRS], MAX_PAIRS)
        for k in range(pairs):
            if st[s, P_PAIR + 2 * k] == to_id:
                return find(st, qm, s, 0, seq, st[s, P_PAIR + 2 * k + 1])
        if pairs >= MAX_PAIRS:
            return -1
        for k in range(st[s, F_QN]):
            if qm[s, k, Q_DIR] != 0 or qm[s, k, Q_KEY] != seq:
                continue
            ot = qm[s, k, Q_KEY2]
            paired = False
            for j in range(pairs):
                paired |= st[s, P_PAIR + 2 * j + 1] == ot
            if not paired:
                st[s, P_PAIR + 2 * pairs] = to_id
                st[s, P_PAIR + 2 * pairs + 1] = ot
                st[s, P_PAIRS] = pairs + 1
                return k
        return -1
    oldest = -1
    for k in range(st[s, F_QN]):
        if qm[s, k, Q_DIR] != 0 or qm[s, k, Q_KEY] != -1:
            continue
        if oldest < 0:
            oldest = k
        off = qm[s, k, Q_OFF]
        same = True
        for b in range(12, 20):
            if rw[off + b] != rw[p + b]:
                same = False
        if same:
            return k
    return oldest


@njit(cache=True, nogil=True, inline="always")
def _orphan(st, qm, s, cip):
    """A reply :func:`_request_for` found no request for is one the decoder finds none
    for either (``decoder._cip_reply``: an orphan operation, nothing learned) — unless the
    slot's pairing list is full (the decoder may know a pairing the slot does not)."""
    if cip == 46:
        return st[s, P_PAIRS] < MAX_PAIRS
    open_rr = 0  # an unconnected request open: the decoder takes the oldest
    for k in range(st[s, F_QN]):
        open_rr += qm[s, k, Q_DIR] == 0 and qm[s, k, Q_KEY] == -1
    return open_rr == 0


@njit(cache=True, nogil=True, inline="always")
def enip_verdict(buf, p, end):
    """Whether a new connection's first data on port 44818 starts with an encapsulation
    header the engine's identification accepts on its own (``protocols.enip.detect``,
    ``encap.header_problem``, ``encap.tolerable_unknown``)."""
    if end - p < 24 or u32le(buf, p + 20) != 0:
        return False
    cmd = u16le(buf, p)
    length = u16le(buf, p + 2)
    status = u32le(buf, p + 8)
    known = False
    for c in COMMANDS:
        known |= cmd == c
    if not known:
        return cmd < 0x100 and status == 0  # framed by its length, reported as odd
    ok = False
    for c in STATUSES:
        ok |= status == c
    if not ok:
        return False
    if status == 0:
        if cmd == 0x65 and length != 4:
            return False
        if cmd == 0x66 and length != 0:
            return False
        if (cmd == RR or cmd == UNIT) and length < 8:  # noqa: SIM109 (numba: no tuple `in`)
            return False
    return True


@njit(cache=True, nogil=True)
def enip_pass(b, sl, sh, out, lo, hi):
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
            if enip_verdict(buf, p, end):
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
                K_ENIP, buf, p, end, carry, raw, st, s, d, frame, t
            )
            if status == NEED:
                break
            why = WHY_LARGE if status == LARGE else (WHY_FRAMING if status != MSG else WHY_FULL)
            if status == MSG:
                why = WHY_KIND
                cip = carrier(rw, at, n)
                reply = cip >= 0 and rw[at + cip] & 0x80 != 0
                if cip < 0:
                    pass
                elif d == 0 and not reply:
                    key = u16le(rw, at + 44) if cip == 46 else -1
                    key2 = u32le(rw, at + 36) if cip == 46 else -1
                    why = WHY_FULL
                    if keep_at(st, qm, s, at, n, frame, t, 0, key, key2):
                        why = WHY_NONE
                elif d == 1 and reply:
                    k = _request_for(st, qm, rw, s, at, cip)
                    if k < 0 and _orphan(st, qm, s, cip):
                        # No request for it, and the decoder would find none either: the
                        # orphan reply is a transaction of its own.
                        why = WHY_FULL
                        if room(xo, lh, lv, cnt, 2, 16) and keep_at(
                            st, qm, s, at, n, frame, t, 1, -2, -2
                        ):
                            ks[0] = st[s, F_QN] - 1
                            pick(qm, s, ks, 1, tq)
                            nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                            j = cnt[C_NX]
                            size = enip_shape(rw, tq, 1, st[s], norm, xo[j], lh, lv, cnt)
                            why = settle(
                                st, qm, raw, s, i, tq, ks, 1, size, th, tinfo, tnorm, norm,
                                xo, cnt, nlh, nlv, miss, mb,
                            )  # fmt: skip
                    elif k < 0 or rw[qm[s, k, Q_OFF]] != rw[at]:  # answered by the same command
                        why = WHY_STATE
                    elif not room(xo, lh, lv, cnt, 4, 64) or not keep_at(
                        st, qm, s, at, n, frame, t, 1, -2, -2
                    ):
                        why = WHY_FULL
                    else:
                        ks[0] = k
                        ks[1] = st[s, F_QN] - 1
                        pick(qm, s, ks, 2, tq)
                        nlh, nlv = cnt[C_NLH], cnt[C_NLV]
                        j = cnt[C_NX]
                        size = enip_shape(rw, tq, 2, st[s], norm, xo[j], lh, lv, cnt)
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


__all__ = ["enip_pass", "enip_shape", "path_class"]
