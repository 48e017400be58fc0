"""The S7comm, EtherNet/IP and DNP3 bulk lanes against the per-packet path, on generated
traffic.

The bulk lanes decode a transaction from a template the per-packet decoder made from an
earlier one of the same shape, filling in the fields that vary (references, sequence
numbers, values). These tests generate conversations where those fields take random
values, shapes repeat (so templates are used) and oddities interrupt them (pipelined
requests, merged and split segments, errors, functions the lanes leave alone), and
hold both paths to the same stored records, with large and tiny read blocks.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.store import Store, views
from tests.bulkcap import Conn, compare, write
from tests.protocols import dnp3_helpers as dh
from tests.protocols import enip_helpers as eh
from tests.protocols import s7_helpers as sh

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _run(tmp_path: Path, conns: list[Conn], order: list[int]) -> list[int]:
    cap = tmp_path / "gen.pcap"
    write(cap, conns, order)
    return compare(tmp_path, cap)


# --- S7comm ----------------------------------------------------------------------------
# (transport size in the item, data transport size, bytes of data per element, elements)
S7_ITEMS = (
    (0x02, 0x04, 1, 10),  # BYTE x10
    (0x02, 0x04, 1, 3),  # BYTE x3 (odd: a fill byte follows unless last)
    (0x04, 0x04, 2, 2),  # WORD x2
    (0x08, 0x07, 4, 1),  # REAL
    (0x01, 0x03, 1, 1),  # BIT
)


def _s7_read(
    ref: int, items: list[tuple[int, int, int]], values: list[bytes], rcs: list[int]
) -> tuple[bytes, bytes]:
    param = sh.var_param(
        0x04,
        [
            sh.any_item(0x84, db, start, size=S7_ITEMS[k][0], count=S7_ITEMS[k][3])
            for k, db, start in items
        ],
    )
    data = b""
    for n, ((k, _, _), value, rc) in enumerate(zip(items, values, rcs, strict=True)):
        last = n == len(items) - 1
        if rc == 0xFF:
            data += sh.data_item(value, size=S7_ITEMS[k][1], last=last)
        else:
            data += bytes([rc, 0, 0, 0])
    return sh.job(ref, param), sh.ack_data(ref, bytes([0x04, len(items)]), data)


@st.composite
def s7_conn(draw: st.DrawFn, port: int) -> Conn:
    packets: list[tuple[int, bytes]] = [
        (0, sh.cr(src_ref=draw(st.integers(0, 0xFFFF)))),
        (1, sh.cc()),
        (0, sh.job(0xFFFF, sh.setup_param())),
        (1, sh.ack_data(0xFFFF, sh.setup_param(240))),
    ]
    ref = draw(st.integers(0, 0xFFFF))
    shapes = draw(
        st.lists(
            st.lists(
                st.tuples(st.integers(0, len(S7_ITEMS) - 1), st.integers(1, 3), st.integers(0, 2)),
                min_size=1,
                max_size=3,
            ),
            min_size=1,
            max_size=3,
        )
    )
    for _ in range(draw(st.integers(4, 14))):
        ref = (ref + draw(st.integers(1, 3))) & 0xFFFF
        kind = draw(
            st.sampled_from(
                ["read"] * 5
                + ["write", "write_fail", "error", "szl", "szl_parts", "empty"]
                + ["pipe", "split", "merged"]
            )
        )
        if kind in ("read", "pipe", "merged"):
            items = draw(st.sampled_from(shapes))
            values = [
                draw(
                    st.binary(
                        min_size=S7_ITEMS[k][2] * S7_ITEMS[k][3],
                        max_size=S7_ITEMS[k][2] * S7_ITEMS[k][3],
                    )
                )
                for k, _, _ in items
            ]
            rcs = [draw(st.sampled_from([0xFF, 0xFF, 0xFF, 0x0A])) for _ in items]
            job, ack = _s7_read(ref, items, values, rcs)
            if kind == "read":
                packets += [(0, job), (1, ack)]
            else:
                ref2 = (ref + 7) & 0xFFFF
                job2, ack2 = _s7_read(ref2, items, values, rcs)
                if kind == "pipe":
                    packets += [(0, job), (0, job2), (1, ack), (1, ack2)]
                else:
                    packets += [(0, job + job2), (1, ack + ack2)]
        elif kind in ("write", "write_fail"):
            value = draw(st.binary(min_size=2, max_size=2))
            param = sh.var_param(0x05, [sh.any_item(0x83, 0, 4, count=2)])
            rc = 0xFF if kind == "write" else 0x0A
            packets += [
                (0, sh.job(ref, param, sh.data_item(value))),
                (1, sh.ack_data(ref, b"\x05\x01", bytes([rc]))),
            ]
        elif kind == "error":
            param = sh.var_param(0x04, [sh.any_item(0x84, 99, 0)])
            packets += [(0, sh.job(ref, param)), (1, sh.ack(ref, error=0x8104))]
        elif kind == "szl":
            body = sh.szl_body(0x11, 0, sh.szl_0011_records())
            packets += [
                (0, sh.userdata(ref, 4, 1, body=b"\x00\x11\x00\x00")),
                (1, sh.userdata(ref, 4, 1, type_=8, body=body, last=0)),
            ]
        elif kind == "szl_parts":
            # An answer in fragments: request, fragment, follow-up, ..., last fragment, all
            # with the PLC's sequence number; sometimes more rounds than a transaction
            # holds (the per-packet path joins those).
            body = sh.szl_body(0x11, 0, sh.szl_0011_records() * draw(st.integers(1, 3)))
            seq = draw(st.integers(1, 255))
            rounds = draw(st.integers(2, 5))
            size = -(-len(body) // rounds)
            parts = [body[k : k + size] for k in range(0, len(body), size)]
            packets.append((0, sh.userdata(ref, 4, 1, body=b"\x00\x11\x00\x00")))
            for k, part in enumerate(parts):
                last = int(k < len(parts) - 1)
                packets.append((1, sh.userdata(ref, 4, 1, type_=8, seq=seq, body=part, last=last)))
                if last:
                    ref = (ref + 1) & 0xFFFF
                    packets.append((0, sh.userdata(ref, 4, 1, seq=seq, last=0)))
        elif kind == "empty":  # a DT of nothing, with or without EOT
            packets.append((0, sh.dt(b"", eot=draw(st.booleans()))))
        else:  # split: a job over two segments
            job, ack = _s7_read(ref, [(0, 1, 0)], [bytes(10)], [0xFF])
            packets += [(0, job[:9]), (0, job[9:]), (1, ack)]
    return Conn(port, packets, client_port=40000 + port % 1000)


def _plus(
    opcode: int, function: int, seq: int, payload: bytes, *, digest: bytes | None = None
) -> bytes:
    """An S7comm-plus PDU (WSP): version 3 with an integrity part when ``digest`` is
    given; requests carry a session id and transport flags."""
    data = bytes([opcode, 0, 0]) + struct.pack(">HHH", function, 0, seq)
    if opcode == 0x31:
        data += struct.pack(">IB", 0x70000000 + seq % 7, 0x34)
    elif opcode != 0x33:
        data += b"\x34"
    data += payload
    version = 2
    if digest is not None:
        data, version = bytes([len(digest)]) + digest + data, 3
    return sh.dt(bytes([0x72, version]) + struct.pack(">H", len(data)) + data + b"\x72\x02\0\0")


@st.composite
def plus_conn(draw: st.DrawFn) -> Conn:
    packets: list[tuple[int, bytes]] = [
        (0, sh.cr(src_ref=draw(st.integers(0, 0xFFFF)))),
        (1, sh.cc()),
    ]
    seq = draw(st.integers(0, 0xFFFF))
    integrity = draw(st.booleans())
    functions = [0x054C, 0x0542, 0x04F2, 0x04BB]
    for _ in range(draw(st.integers(4, 16))):
        seq = (seq + 1) & 0xFFFF
        kind = draw(
            st.sampled_from(["get"] * 4 + ["notify", "keepalive", "fragment", "other", "pipe"])
        )
        digest = draw(st.binary(min_size=32, max_size=32)) if integrity else None
        function = draw(st.sampled_from(functions))
        payload = draw(st.binary(min_size=0, max_size=40))
        if kind == "get":
            packets += [
                (0, _plus(0x31, function, seq, payload, digest=digest)),
                (1, _plus(0x32, function, seq, payload[::-1], digest=digest)),
            ]
        elif kind == "pipe":
            seq2 = (seq + 1) & 0xFFFF
            packets += [
                (0, _plus(0x31, function, seq, payload) + _plus(0x31, function, seq2, b"")),
                (1, _plus(0x32, function, seq, b"\x01")),
                (1, _plus(0x32, function, seq2, b"\x02")),
            ]
            seq = seq2
        elif kind == "notify":
            packets.append((1, _plus(0x33, 0, 0, payload, digest=digest)))
        elif kind == "keepalive":
            packets.append((draw(st.integers(0, 1)), sh.dt(b"\x72\xff\x00\x00")))
        elif kind == "fragment":  # a PDU in two TSDUs: the first has no trailer
            whole = _plus(0x31, function, seq, payload + bytes(30))[7:]
            packets += [(0, sh.dt(whole[:20])), (0, sh.dt(whole[20:]))]
            packets.append((1, _plus(0x32, function, seq, b"")))
        else:  # an answer with another function: the session holds it
            packets += [
                (0, _plus(0x31, function, seq, payload)),
                (1, _plus(0x32, 0x04B1, seq, b"")),
            ]
    return Conn(102, packets)


@SETTINGS
@given(st.lists(plus_conn(), min_size=1, max_size=3), st.lists(st.integers(0, 2), max_size=60))
def test_s7comm_plus_in_the_s7_lane(tmp_path_factory, conns: list[Conn], order: list[int]) -> None:
    for k, c in enumerate(conns):
        c.client_port += k
    _run(tmp_path_factory.mktemp("s7plus"), conns, [k % len(conns) for k in order])


def test_s7comm_plus_polling_stays_in_the_lane(tmp_path: Path) -> None:
    """An HMI polling an S7-1200 over S7comm-plus (with integrity parts that change every
    message, payloads that vary): all of it in the lane, both protocols listed."""
    packets: list[tuple[int, bytes]] = [(0, sh.cr()), (1, sh.cc())]
    packets += [
        (0, sh.job(1, sh.setup_param())),
        (1, sh.ack_data(1, sh.setup_param(240))),
    ]
    for seq in range(1, 120):
        digest = bytes([seq % 256]) * 32
        packets += [
            (0, _plus(0x31, 0x054C, seq, bytes([seq % 7]) * (seq % 5), digest=digest)),
            (1, _plus(0x32, 0x054C, seq, bytes([seq % 11]) * 9, digest=digest)),
        ]
        if seq % 10 == 0:
            packets.append((1, _plus(0x33, 0, 0, bytes(12), digest=digest)))
    cap = tmp_path / "plus.pcap"
    write(cap, [Conn(102, packets)], [])
    assert min(compare(tmp_path, cap)) >= len(packets) - 10
    with Store(tmp_path / "fast0.db") as store:
        protocols = {c["protocol"]: c["connections"] for c in views.conversations(store)}
    assert protocols == {"s7comm": 1, "s7comm-plus": 0}


@SETTINGS
@given(st.lists(s7_conn(102), min_size=1, max_size=3), st.lists(st.integers(0, 2), max_size=60))
def test_s7_lane(tmp_path_factory, conns: list[Conn], order: list[int]) -> None:
    for k, c in enumerate(conns):
        c.client_port += k
    _run(tmp_path_factory.mktemp("s7"), conns, [k % len(conns) for k in order])


# --- EtherNet/IP + CIP -----------------------------------------------------------------
ENIP_TAGS = ("Speed", "Tank_Level", "Pump1.Run")
DINT = 0xC4


def _enip_cip(draw: st.DrawFn, kind: str) -> tuple[bytes, bytes]:
    """One CIP request and its reply of a given kind, with random values."""
    tag = draw(st.sampled_from(ENIP_TAGS))
    if kind == "read_tag":
        value = draw(st.binary(min_size=4, max_size=4))
        status = draw(st.sampled_from([0, 0, 0, 4]))
        data = struct.pack("<H", DINT) + value if status == 0 else b""
        return eh.request(0x4C, eh.symbol(tag), b"\x01\x00"), eh.reply(0x4C, status, data)
    if kind == "write_tag":
        value = draw(st.sampled_from([b"\x01\x00\x00\x00", b"\x00\x00\x00\x00"]))
        req = eh.request(0x4D, eh.symbol(tag), struct.pack("<HH", DINT, 1) + value)
        return req, eh.reply(0x4D)
    if kind == "gas":
        cls = draw(st.sampled_from([0x8E, 0x01]))
        attr = draw(st.sampled_from([1, 7]))
        value = draw(st.binary(min_size=2, max_size=2))
        if cls == 1:  # identity: vendor id or product name, which the decoder reads
            value = draw(st.sampled_from([b"\x01\x00", b"\x2f\x00"]))
            if attr == 7:
                value = draw(st.sampled_from([b"\x04PLC1", b"\x04PLC2"]))
        return eh.request(0x0E, eh.path(cls, 1, attr)), eh.reply(0x0E, 0, value)
    if kind == "error":
        return eh.request(0x0E, eh.path(0x8E, 1, 9)), eh.reply(0x0E, 0x05, b"", (0x0001,))
    parts, replies = [], []
    for _ in range(draw(st.integers(1, 3))):
        req, rep = _enip_cip(draw, draw(st.sampled_from(["read_tag", "gas"])))
        parts.append(req)
        replies.append(rep)
    return (
        eh.request(0x0A, eh.path(0x02, 1), eh.multiple(parts)),
        eh.reply(0x0A, 0, eh.multiple(replies)),
    )


@st.composite
def enip_conn(draw: st.DrawFn) -> Conn:
    session = draw(st.integers(1, 2**32 - 1))
    reg = eh.encap(0x65, b"\x01\x00\x00\x00", session=0)
    packets: list[tuple[int, bytes]] = [(0, reg), (1, eh.encap(0x65, reg[24:], session=session))]
    ot, to = draw(st.integers(1, 2**31)), draw(st.integers(1, 2**31))
    connected = draw(st.booleans())
    if connected:
        fo, rep = eh.forward_open(to=to), eh.forward_open_reply(ot=ot, to=to)
        packets += [(0, eh.rr(fo, session=session)), (1, eh.rr(rep, session=session))]
    seq = draw(st.integers(0, 0xFFFF))
    kinds = ["read_tag"] * 4 + ["write_tag", "gas", "error", "msp", "msp", "pipe", "merged"]
    for _ in range(draw(st.integers(4, 14))):
        kind = draw(st.sampled_from(kinds))
        n = 2 if kind in ("pipe", "merged") else 1
        pairs = [_enip_cip(draw, "read_tag" if n == 2 else kind) for _ in range(n)]
        reqs, reps = [], []
        for req, rep in pairs:
            seq = (seq + 1) & 0xFFFF
            if connected and draw(st.integers(0, 3)):
                reqs.append(eh.unit(ot, seq, req, session=session))
                reps.append(eh.unit(to, seq, rep, session=session))
            else:
                ctx = draw(st.binary(min_size=8, max_size=8))
                reqs.append(eh.rr(req, session=session, context=ctx))
                reps.append(eh.rr(rep, session=session, context=ctx))
        if kind == "merged":
            packets += [(0, b"".join(reqs)), (1, b"".join(reps))]
        else:
            packets += [(0, r) for r in reqs] + [(1, r) for r in reps]
    return Conn(44818, packets)


def test_enip_connection_opened_with_a_legacy_command_is_decoded(tmp_path: Path) -> None:
    """Engineering software opens with a pre-release command code: the connection is
    EtherNet/IP all the same (nothing of it lost), the odd messages reported, on both
    paths."""
    session = 0x1234
    reg = eh.encap(0x65, b"\x01\x00\x00\x00", session=0)
    packets = [
        (0, eh.encap(0x0001, bytes(6), session=0)),
        (1, eh.encap(0x0001, bytes(2), session=0)),
        (0, reg),
        (1, eh.encap(0x65, reg[24:], session=session)),
    ]
    for k in range(30):
        req, rep = eh.request(0x0E, eh.path(0x01, 1, 7)), eh.reply(0x0E, data=bytes([k, 0]))
        packets += [(0, eh.rr(req, session=session)), (1, eh.rr(rep, session=session))]
    cap = tmp_path / "legacy.pcap"
    write(cap, [Conn(44818, packets)], [])
    compare(tmp_path, cap)
    with Store(tmp_path / "slow.db") as store:
        functions = Counter(o["function"] for o in views.operations(store))
        assert functions == {"Register Session": 1, "Get Attributes Single": 30}
        assert [(p["layer"], p["count"]) for p in views.problem_summary(store)] == [("enip", 2)]
        assert "unknown command 0x0001" in views.problem_summary(store)[0]["reason"]


def test_enip_replies_whose_request_was_never_seen_stay_in_the_lane(tmp_path: Path) -> None:
    """A capture that starts inside a connection: its first messages are replies to
    requests sent before it (connected ones whose ids no Forward Open told). Each is an
    orphan operation, as the decoder makes it, and the lane keeps the connection."""
    session = 0x2222
    reg = eh.encap(0x65, b"\x01\x00\x00\x00", session=0)
    first = Conn(44818, [(0, reg), (1, eh.encap(0x65, reg[24:], session=session))])
    for _ in range(10):
        req, rep = eh.request(0x0E, eh.path(0x01, 1, 7)), eh.reply(0x0E, data=b"\x01\x00")
        first.packets += [(0, eh.rr(req, session=session)), (1, eh.rr(rep, session=session))]
    packets: list[tuple[int, bytes]] = []
    for k in range(40):  # replies on a connection opened before the capture, then polls
        tag = eh.reply(0x4C, data=b"\xc4\x00" + bytes([k, 0, 0, 0]))
        packets.append((1, eh.unit(0x5001, 100 + k, tag, session=session)))
    for _ in range(20):
        req, rep = eh.request(0x0E, eh.path(0x01, 1, 7)), eh.reply(0x0E, data=b"\x01\x00")
        packets += [(0, eh.rr(req, session=session)), (1, eh.rr(rep, session=session))]
    late = Conn(44818, packets, client_port=40100)
    cap = tmp_path / "orphans.pcap"
    write(cap, [first, late], [0] * 22 + [1] * 80, late=True, midstream=frozenset({1}))
    assert min(compare(tmp_path, cap)) >= 80  # (the per-packet path took 63 before)
    with Store(tmp_path / "fast0.db") as store:
        orphans = [o for o in views.operations(store) if o["detail"].get("orphan_reply")]
        assert len(orphans) == 40


def test_modbus_responses_whose_request_was_never_seen_stay_in_the_lane(tmp_path: Path) -> None:
    """Connections the capture starts inside: the first message of each is a response
    to a request sent before it, and the last an exception nobody asked for. Each
    orphan is the decoder's orphan operation, and the lane keeps the connection: no
    hand-over for its state."""

    def adu(tid: int, pdu: bytes) -> bytes:
        return struct.pack(">HHHB", tid, 0, len(pdu) + 1, 0xFF) + pdu

    conns = []
    for c in range(12):
        orphan = adu(0x7CFE, bytes([4, 6]) + bytes([0, c, 0, 1, 0, 2]))
        packets: list[tuple[int, bytes]] = [(1, orphan)]
        for tid in range(1, 26):
            packets += [
                (0, adu(tid, bytes([3, 0, tid, 0, 2]))),
                (1, adu(tid, bytes([3, 4, 0, c, 0, tid]))),
            ]
        packets.append((1, adu(0x0101, bytes([0x84, 2]))))  # an exception nobody asked for
        conns.append(Conn(502, packets, client_port=41000 + c))
    order = [k for k in range(12) for _ in conns[k].packets]
    cap = tmp_path / "modbus_orphans.pcap"
    write(cap, conns, order, midstream=frozenset(range(12)))
    total = sum(len(c.packets) for c in conns)
    assert min(compare(tmp_path, cap)) >= total - 2 * 3  # the first connection teaches
    with Store(tmp_path / "fast0.db") as store:
        ops = views.operations(store)
        orphans = [o for o in ops if o["request_frame"] is None]
        assert len(orphans) == 2 * 12
    stats = sqlite3.connect(tmp_path / "fast0.db").execute("SELECT stats FROM captures")
    got = json.loads(stats.fetchone()[0])
    assert "protocol_state" not in got.get("handovers", {}).get("modbus", {})
    # The orphans' registers differ per connection: they are a list hole, so one template
    # serves them all (with the read and the stray exception: three).
    assert got["templates"]["modbus"] == 3


@SETTINGS
@given(st.lists(enip_conn(), min_size=1, max_size=3), st.lists(st.integers(0, 2), max_size=60))
def test_enip_lane(tmp_path_factory, conns: list[Conn], order: list[int]) -> None:
    for k, c in enumerate(conns):
        c.client_port += k
    _run(tmp_path_factory.mktemp("enip"), conns, [k % len(conns) for k in order])


# --- DNP3 ------------------------------------------------------------------------------
DNP3_KINDS = ("g1v2", "g30v1", "g32v1", "g20v1", "g1v1")


def _dnp3_objects(draw: st.DrawFn, layout: list[tuple[str, int]]) -> bytes:
    """Response objects of ``layout`` ((kind, count) pairs) with random values, and
    random point indexes for events."""
    out = b""
    for kind, n in layout:
        if kind == "g1v2":
            out += b"\x01\x02\x00\x00" + bytes([n - 1]) + draw(st.binary(min_size=n, max_size=n))
        elif kind == "g1v1":
            out += b"\x01\x01\x00\x00\x0f" + draw(st.binary(min_size=2, max_size=2))
        elif kind in ("g30v1", "g20v1"):
            group = 0x1E if kind == "g30v1" else 0x14
            values = draw(st.binary(min_size=5 * n, max_size=5 * n))
            out += bytes([group, 1, 0, 0, n - 1]) + values
        else:
            out += b"\x20\x01\x17" + bytes([min(n, 3)])
            for _ in range(min(n, 3)):
                index = draw(st.sampled_from([3, 5, 9]))
                out += bytes([index]) + draw(st.binary(min_size=5, max_size=5))
    return out


@st.composite
def dnp3_conn(draw: st.DrawFn) -> Conn:
    packets: list[tuple[int, bytes]] = []
    seq = draw(st.integers(0, 15))
    tseq = [draw(st.integers(0, 63)), draw(st.integers(0, 63))]
    kinds = ["read"] * 5 + ["read_con", "read_con", "unsol", "operate", "no_ack", "lost_confirm"]
    layouts = draw(
        st.lists(
            st.lists(
                st.tuples(st.sampled_from(DNP3_KINDS), st.sampled_from([1, 4, 16, 60])),
                max_size=3,
            ),
            min_size=1,
            max_size=2,
        )
    )

    def frames(d: int, frag: bytes) -> bytes:
        segs = dh.segments(frag, first_seq=tseq[d])
        tseq[d] = (tseq[d] + len(segs)) & 0x3F
        control, dst, src = (0xC4, 10, 1) if d == 0 else (0x44, 1, 10)
        return b"".join(dh.link_frame(s, dst=dst, src=src, control=control) for s in segs)

    for _ in range(draw(st.integers(4, 14))):
        seq = (seq + 1) & 0x0F
        kind = draw(st.sampled_from(kinds))
        iin = draw(st.sampled_from([0, 0, 0, 0x0002]))
        if kind.startswith("read") or kind == "lost_confirm":
            con = 0x20 if kind != "read" else 0
            objects = _dnp3_objects(draw, draw(st.sampled_from(layouts)))
            packets += [
                (0, frames(0, bytes([0xC0 | seq, 1]) + b"\x3c\x02\x06\x3c\x01\x06")),
                (1, frames(1, bytes([0xC0 | con | seq, 0x81]) + iin.to_bytes(2, "big") + objects)),
            ]
            if kind == "read_con":
                packets.append((0, frames(0, bytes([0xC0 | seq, 0]))))
        elif kind == "unsol":
            objects = _dnp3_objects(draw, draw(st.sampled_from(layouts)))
            packets.append((1, frames(1, bytes([0xF0 | seq, 0x82, 0, 0]) + objects)))
            packets.append((0, frames(0, bytes([0xD0 | seq, 0]))))
        elif kind == "operate":
            crob = b"\x0c\x01\x28\x01\x00\x08\x00" + b"\x41\x01" + struct.pack("<II", 500, 0)
            status = draw(st.sampled_from([b"\x00", b"\x04"]))
            for fc in (3, 4):
                packets += [
                    (0, frames(0, bytes([0xC0 | seq, fc]) + crob + b"\x00")),
                    (1, frames(1, bytes([0xC0 | seq, 0x81, 0, 0]) + crob + status)),
                ]
                seq = (seq + 1) & 0x0F
        else:
            crob = b"\x0c\x01\x28\x01\x00\x02\x00" + b"\x03\x01" + struct.pack("<II", 100, 0)
            packets.append((0, frames(0, bytes([0xC0 | seq, 6]) + crob + b"\x00")))
    return Conn(20000, packets)


@SETTINGS
@given(st.lists(dnp3_conn(), min_size=1, max_size=3), st.lists(st.integers(0, 2), max_size=60))
def test_dnp3_lane(tmp_path_factory, conns: list[Conn], order: list[int]) -> None:
    for k, c in enumerate(conns):
        c.client_port += k
    _run(tmp_path_factory.mktemp("dnp3"), conns, [k % len(conns) for k in order])


def test_s7_lane_keeps_set_up_userdata_and_fragmented_answers(tmp_path: Path) -> None:
    """Connection set-up, Read SZL answered whole and in fragments (with follow-ups),
    empty DTs: all of it stays in the lane (an HMI polling a CPU's diagnostics)."""
    packets: list[tuple[int, bytes]] = [
        (0, sh.cr(src_ref=0x0F)),
        (1, sh.cc()),
        (0, sh.job(0xFFFF, sh.setup_param())),
        (1, sh.ack_data(0xFFFF, sh.setup_param(240))),
    ]
    body = sh.szl_body(0x11, 0, sh.szl_0011_records() * 2)
    for ref in range(1, 120, 4):
        seq = ref % 200 + 1
        packets += [
            (0, sh.dt(b"", eot=False)),
            (0, sh.userdata(ref, 4, 1, body=b"\x00\x11\x00\x00")),
            (1, sh.userdata(ref, 4, 1, type_=8, seq=seq, body=body[:40], last=1)),
            (0, sh.userdata(ref + 1, 4, 1, seq=seq, last=0)),
            (1, sh.userdata(ref + 1, 4, 1, type_=8, seq=seq, body=body[40:], last=0)),
            (0, sh.userdata(ref + 2, 4, 1, body=b"\x00\x11\x00\x00")),
            (1, sh.userdata(ref + 2, 4, 1, type_=8, seq=seq, body=body, last=0)),
        ]
    cap = tmp_path / "szl.pcap"
    write(cap, [Conn(102, packets)], [])
    total = len(packets) + 6  # with the handshake and the closing FINs
    assert min(compare(tmp_path, cap)) >= 0.9 * total


def _truncate(path: Path, frames: set[int], keep: int) -> None:
    """Cut the listed frames (1-based) to ``keep`` bytes, as a short snap length does
    (the original length stays in the record)."""
    data = bytearray(path.read_bytes())
    out, pos, frame = bytearray(data[:24]), 24, 0
    while pos < len(data):
        ts_s, ts_us, incl, orig = struct.unpack_from("<IIII", data, pos)
        body = data[pos + 16 : pos + 16 + incl]
        frame += 1
        if frame in frames:
            body = body[:keep]
        out += struct.pack("<IIII", ts_s, ts_us, len(body), orig) + body
        pos += 16 + incl
    path.write_bytes(bytes(out))


@pytest.mark.parametrize("protocol", ["modbus", "s7comm"])
def test_packets_cut_short_go_to_the_engine_in_their_order(tmp_path: Path, protocol: str) -> None:
    """A snap length that cuts some packets of a connection the kernel holds: the
    connection goes back to the per-packet path before each, which sees them in order
    (the bulk path gives what the per-packet path gives)."""
    packets: list[tuple[int, bytes]] = []
    for ref in range(1, 60):
        if protocol == "modbus":
            job = struct.pack(">HHHBBHH", ref, 0, 6, 1, 3, 0, 2)
            ack = struct.pack(">HHHBBB", ref, 0, 7, 1, 3, 4) + bytes([ref] * 4)
        else:
            job, ack = _s7_read(ref, [(0, 1, 0)], [bytes([ref] * 10)], [0xFF])
        packets += [(0, job), (1, ack)]
    cap = tmp_path / "cut.pcap"
    write(cap, [Conn(502 if protocol == "modbus" else 102, packets)], [])
    _truncate(cap, {40, 41, 90}, 60)  # Ethernet, IPv4, TCP and a few bytes
    compare(tmp_path, cap)


@pytest.mark.parametrize("protocol", ["modbus", "s7comm"])
def test_a_repeated_syn_is_one_connection(tmp_path: Path, protocol: str) -> None:
    """A SYN sent again (its SYN-ACK lost) opens no second connection, on either path
    (the per-packet one alone, and the bulk one, which opens both connections)."""
    packets: list[tuple[int, bytes]] = []
    for ref in range(1, 20):
        if protocol == "modbus":
            job = struct.pack(">HHHBBHH", ref, 0, 6, 1, 3, 0, 2)
            ack = struct.pack(">HHHBBB", ref, 0, 7, 1, 3, 4) + bytes([ref] * 4)
        else:
            job, ack = _s7_read(ref, [(0, 1, 0)], [bytes([ref] * 10)], [0xFF])
        packets += [(0, job), (1, ack)]
    cap = tmp_path / "syn.pcap"
    port = 502 if protocol == "modbus" else 102
    conns = [Conn(port, list(packets)), Conn(port, list(packets), client_port=40001)]
    n = len(packets)
    write(cap, conns, [0] * n + [1] * n, syn_again=True, late=True)
    assert min(compare(tmp_path, cap)) >= n + 7  # the second connection, all of it
    for db in ("slow.db", "fast0.db"):
        with Store(tmp_path / db) as store:
            assert [c["connections"] for c in views.conversations(store)] == [2]
    stats = sqlite3.connect(tmp_path / "fast0.db").execute("SELECT stats FROM captures")
    assert json.loads(stats.fetchone()[0])["connections_opened_bulk"] == {protocol: 2}


@pytest.mark.parametrize("protocol", ["modbus", "s7comm"])
def test_silence_past_the_idle_limit_splits_the_connection(tmp_path: Path, protocol: str) -> None:
    """After an hour of silence the engine starts a new connection: so must the bulk path."""
    packets: list[tuple[int, bytes]] = []
    for ref in range(1, 40):
        if protocol == "modbus":
            job = struct.pack(">HHHBBHH", ref, 0, 6, 1, 3, 0, 2)
            ack = struct.pack(">HHHBBB", ref, 0, 7, 1, 3, 4) + bytes([ref] * 4)
        else:
            job, ack = _s7_read(ref, [(0, 1, 0)], [bytes([ref] * 10)], [0xFF])
        packets += [(0, job), (1, ack)]
    cap = tmp_path / "pause.pcap"
    write(cap, [Conn(502 if protocol == "modbus" else 102, packets)], [], pause_at=40)
    assert min(compare(tmp_path, cap)) > 10


def test_identity_claims_on_a_one_host_capture_are_templated(tmp_path: Path) -> None:
    """Client and server on one address (a capture on one host): the ends of an identity
    claim are learned from a decoder that sees them apart, so the lane keeps the
    transactions that make claims (Read SZL) instead of leaving them all to the
    per-packet path."""
    body = sh.szl_body(0x11, 0, sh.szl_0011_records())
    packets: list[tuple[int, bytes]] = [(0, sh.cr()), (1, sh.cc())]
    for ref in range(1, 60):
        packets += [
            (0, sh.userdata(ref, 4, 1, body=b"\\x00\\x11\\x00\\x00")),
            (1, sh.userdata(ref, 4, 1, type_=8, seq=3, body=body, last=0)),
        ]
    cap = tmp_path / "onehost.pcap"
    write(cap, [Conn(102, packets, client="10.9.0.1", server="10.9.0.1")], [])
    assert min(compare(tmp_path, cap)) >= len(packets) - 10
    with Store(tmp_path / "fast0.db") as store:
        assert {a["vendor"] for a in views.assets(store)} == {"Siemens"}


def test_s7_connection_set_up_stays_in_the_lane_and_mms_goes_to_the_engine(
    tmp_path: Path,
) -> None:
    """An HMI with many short connections (CR, CC, set-up, one read each) and an MMS
    client on the same port 102: the kernel follows the ISO-on-TCP set-up undecided and
    decides on the first DT, as the engine does. The S7 connections stay in the lane;
    the MMS ones go to the engine with the CR and CC the kernel held; the records are
    the engine's either way."""
    from tests.protocols import iec61850_helpers as mh

    read = sh.var_param(0x04, [sh.any_item(0x84, 1, 0)])
    conns = [
        Conn(
            102,
            [
                (0, sh.cr()),
                (1, sh.cc()),
                (0, sh.job(1, sh.setup_param())),
                (1, sh.ack_data(1, sh.setup_param(240))),
                (0, sh.job(2, read)),
                (1, sh.ack_data(2, b"\x04\x01", sh.data_item(b"\x00\x07"))),
            ],
            client_port=41000 + k,
        )
        for k in range(40)
    ]
    mms_request = mh.session_connect(mh.cp_type(mh.aarq(mh.initiate_request())))
    mms_answer = mh.session_connect(mh.cp_type(mh.aare(mh.initiate_response())), si=14)
    conns += [
        Conn(
            102,
            [(0, sh.cr()), (1, sh.cc()), (0, sh.dt(mms_request)), (1, sh.dt(mms_answer))],
            client="10.1.0.9",
            server="10.2.0.9",
            client_port=42000 + k,
        )
        for k in range(3)
    ]
    cap = tmp_path / "iso.pcap"
    write(cap, conns, [k for k, c in enumerate(conns) for _ in c.packets])
    s7_packets = 40 * (6 + 3 + 2)  # data, handshake and FINs of the S7 connections
    assert min(compare(tmp_path, cap)) >= 0.9 * s7_packets
    with Store(tmp_path / "fast0.db") as store:
        protocols = {c["protocol"]: c["connections"] for c in views.conversations(store)}
    assert protocols == {"s7comm": 40, "mms": 3}


def test_a_client_port_that_is_another_lanes_server_port(tmp_path: Path) -> None:
    """Modbus clients whose ephemeral ports happen to be EtherNet/IP's (44818) and
    DNP3's (20000): the packets' server side is 502, so the Modbus kernel takes them;
    the other lanes neither load nor run, and the records are the per-packet path's."""
    from otconduit.analysis.fastpath.lane import Lane

    conns = []
    for k, client_port in enumerate((44818, 20000)):
        packets: list[tuple[int, bytes]] = []
        for ref in range(1, 80):
            job = struct.pack(">HHHBBHH", ref, 0, 6, 1, 3, 10 * k, 2)
            ack = struct.pack(">HHHBBB", ref, 0, 7, 1, 3, 4) + bytes([ref] * 4)
            packets += [(0, job), (1, ack)]
        conns.append(Conn(502, packets, client_port=client_port))
    cap = tmp_path / "ports.pcap"
    write(cap, conns, [k % 2 for k in range(2 * 158)])
    ran: set[str] = set()
    original = Lane.begin_block

    def begin_block(self: Lane, n: int) -> Any:
        ran.add(self.protocol)
        return original(self, n)

    Lane.begin_block = begin_block  # type: ignore[method-assign]
    try:
        taken = compare(tmp_path, cap)
    finally:
        Lane.begin_block = original  # type: ignore[method-assign]
    assert min(taken) >= 2 * 158
    assert ran == {"modbus"}


def test_modbus_connections_ending_on_an_unanswered_request(tmp_path: Path) -> None:
    """Short Modbus connections (a poller that reconnects), each ending on a request
    its server never answered: the lane writes that request's "no response" operation
    from a flush template, as the decoder's end makes it, instead of ending each
    connection in the engine; the records are the per-packet path's."""
    conns = []
    for k in range(40):
        packets = []
        for tid in range(5):
            t = 100 * k + tid
            packets.append((0, struct.pack(">HHHBBHH", t, 0, 6, 1, 3, 10 + tid, 2)))
            packets.append((1, struct.pack(">HHHBBBHH", t, 0, 7, 1, 3, 4, t & 0xFFFF, 7)))
        packets.append((0, struct.pack(">HHHBBHH", 100 * k + 9, 0, 6, 1, 4, 7 * k, 3)))
        conns.append(Conn(502, packets, client_port=41000 + k))
    order = [k for k in range(40) for _ in range(11)]
    taken = _run(tmp_path, conns, order)
    assert min(taken) > 0.9 * 40 * 11
    for k in range(len(taken)):
        row = sqlite3.connect(tmp_path / f"fast{k}.db").execute("SELECT stats FROM captures")
        handovers = json.loads(row.fetchone()[0]).get("handovers", {}).get("modbus", {})
        assert "held_at_end" not in handovers, handovers
    with Store(tmp_path / "fast0.db") as store:
        statuses = Counter(o["status"] for o in views.operations(store))
    assert statuses["no_response"] == 40
