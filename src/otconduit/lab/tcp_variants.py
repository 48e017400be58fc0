"""Derive TCP corner-case captures from a recorded one.

Real networks split, merge, duplicate, reorder and lose segments, and monitors start
listening in the middle of connections. Reproducing that live on loopback is unreliable, so
we rewrite a clean capture instead, keeping sequence numbers consistent and checksums valid,
and report exactly what was changed so tests can predict the monitor's output.
"""

from __future__ import annotations

import itertools
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dpkt

from otconduit.lab.sniffer import PcapWriter, read_pcap

KINDS = (
    "clean",
    "split",
    "coalesce",
    "retransmit",
    "reorder",
    "gap",
    "midstream",
    "vlan",
    "qinq",
)
_PSH = dpkt.tcp.TH_PUSH
_MASK32 = 0xFFFFFFFF

Endpoint = tuple[str, int]
ConnKey = tuple[Endpoint, Endpoint]  # (client, server)


@dataclass
class _Pkt:
    """One captured frame; TCP fields are filled in for Ethernet/IPv4/TCP frames."""

    ts: int
    frame: bytes
    eth: dpkt.ethernet.Ethernet | None = None
    conn: ConnKey | None = None
    c2s: bool = True
    seq: int = 0
    ack: int = 0
    flags: int = 0
    payload: bytes = b""

    @property
    def is_data(self) -> bool:
        return self.conn is not None and bool(self.payload)

    @property
    def is_pure_ack(self) -> bool:
        return self.conn is not None and not self.payload and self.flags == dpkt.tcp.TH_ACK


def _endpoint_str(ep: Endpoint) -> str:
    return f"{ep[0]}:{ep[1]}"


def conn_label(conn: ConnKey) -> str:
    return f"{_endpoint_str(conn[0])}->{_endpoint_str(conn[1])}"


def _load(path: str | Path) -> list[_Pkt]:
    """Parse a pcap and orient every TCP packet as client->server or back.

    The client is the sender of the first bare SYN; without a handshake in the capture the
    lower port is taken to be the server.
    """
    pkts: list[_Pkt] = []
    clients: dict[frozenset[Endpoint], Endpoint] = {}
    for ts, frame in read_pcap(path):
        pkt = _Pkt(ts, frame)
        pkts.append(pkt)
        eth = dpkt.ethernet.Ethernet(frame)
        ip = eth.data
        if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        src = (dpkt.utils.inet_to_str(ip.src), tcp.sport)
        dst = (dpkt.utils.inet_to_str(ip.dst), tcp.dport)
        pair = frozenset((src, dst))
        if pair not in clients:
            bare_syn = tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK
            if bare_syn:
                clients[pair] = src
            else:
                clients[pair] = src if src[1] > dst[1] else dst
        client = clients[pair]
        server = dst if client == src else src
        pkt.eth = eth
        pkt.conn = (client, server)
        pkt.c2s = src == client
        pkt.seq, pkt.ack, pkt.flags = tcp.seq, tcp.ack, tcp.flags
        pkt.payload = bytes(tcp.data)
    return pkts


def _build(
    pkt: _Pkt,
    *,
    seq: int | None = None,
    ack: int | None = None,
    flags: int | None = None,
    payload: bytes | None = None,
) -> bytes:
    """Re-serialise a TCP packet with changed fields and fresh IPv4/TCP checksums."""
    if pkt.eth is None:
        return pkt.frame
    eth = dpkt.ethernet.Ethernet(pkt.frame)
    ip = eth.data
    tcp = ip.data
    tcp.seq = pkt.seq if seq is None else seq & _MASK32
    tcp.ack = pkt.ack if ack is None else ack & _MASK32
    tcp.flags = pkt.flags if flags is None else flags
    tcp.data = pkt.payload if payload is None else payload
    tcp.sum = 0
    ip.sum = 0
    ip.len = ip.__hdr_len__ + len(ip.opts) + len(tcp)
    return bytes(eth)


def _write(path: str | Path, out: list[tuple[int, bytes]]) -> int:
    """Write frames, nudging timestamps so they strictly increase (by >= 1 us)."""
    last = -1
    with PcapWriter(path) as writer:
        for ts, frame in out:
            ts = max(ts, last + 1)
            writer.write(ts, frame)
            last = ts
    return len(out)


def _adus(payload: bytes) -> list[tuple[int, int, int]]:
    """Best-effort MBAP walk: (tid, unit, fc) of each complete ADU in ``payload``."""
    found = []
    pos = 0
    while pos + 8 <= len(payload):
        tid, proto, length, unit = struct.unpack(">HHHB", payload[pos : pos + 7])
        if proto != 0 or length < 2 or pos + 6 + length > len(payload):
            break
        found.append((tid, unit, payload[pos + 7]))
        pos += 6 + length
    return found


# -- variants ------------------------------------------------------------------------------


def _clean(pkts: list[_Pkt]) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    return [(p.ts, _build(p)) for p in pkts], {}


def _split(pkts: list[_Pkt], rng: random.Random) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    out = []
    n_in = n_out = 0
    for p in pkts:
        if not p.is_data:
            out.append((p.ts, _build(p)))
            continue
        n_in += 1
        off = 0
        while off < len(p.payload):
            size = min(rng.randint(1, 3), len(p.payload) - off)
            last = off + size == len(p.payload)
            flags = p.flags if last else p.flags & ~_PSH
            piece = p.payload[off : off + size]
            out.append((p.ts, _build(p, seq=p.seq + off, flags=flags, payload=piece)))
            off += size
            n_out += 1
    return out, {"data_segments_in": n_in, "data_segments_out": n_out, "piece_sizes": [1, 3]}


def _exchanges(idx: list[int], pkts: list[_Pkt]) -> list[tuple[list[int], list[int]]]:
    """Group a connection's data segments into (client run, server run) exchanges."""
    result: list[tuple[list[int], list[int]]] = []
    for i in idx:
        if not result or (pkts[i].c2s and result[-1][1]):
            result.append(([], []))
        (result[-1][0] if pkts[i].c2s else result[-1][1]).append(i)
    return result


def _contiguous(idx: list[int], pkts: list[_Pkt]) -> bool:
    return all(
        (pkts[a].seq + len(pkts[a].payload)) & _MASK32 == pkts[b].seq
        for a, b in itertools.pairwise(idx)
    )


def _coalesce(pkts: list[_Pkt], per_segment: int) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """Merge ``per_segment`` consecutive exchanges: N requests in one segment, N responses
    in the next (as a pipelining client would produce)."""
    replace: dict[int, bytes] = {}
    drop: set[int] = set()
    groups = merged_pdus = 0
    by_conn: dict[ConnKey, list[int]] = {}
    for i, p in enumerate(pkts):
        if p.is_data and p.conn is not None:
            by_conn.setdefault(p.conn, []).append(i)
    for conn, idx in by_conn.items():
        exch = _exchanges(idx, pkts)
        for g in range(0, len(exch), per_segment):
            group = exch[g : g + per_segment]
            if len(group) < 2:
                continue
            cli = [i for c, _ in group for i in c]
            srv = [i for _, s in group for i in s]
            if not (_contiguous(cli, pkts) and _contiguous(srv, pkts)):
                continue
            groups += 1
            merged_pdus += len(cli) + len(srv)
            first, last = cli[0], (srv[-1] if srv else cli[-1])
            for i in range(first, last + 1):
                if pkts[i].conn == conn and (pkts[i].is_data or pkts[i].is_pure_ack):
                    drop.add(i)
            c0 = pkts[cli[0]]
            replace[cli[0]] = _build(c0, payload=b"".join(pkts[i].payload for i in cli))
            drop.discard(cli[0])
            if srv:
                s0, sl = pkts[srv[0]], pkts[srv[-1]]
                payload = b"".join(pkts[i].payload for i in srv)
                replace[srv[-1]] = _build(s0, ack=sl.ack, flags=sl.flags, payload=payload)
                drop.discard(srv[-1])
    out = [(p.ts, replace.get(i) or _build(p)) for i, p in enumerate(pkts) if i not in drop]
    info = {
        "groups": groups,
        "exchanges_per_group": per_segment,
        "merged_segments": merged_pdus,
        "dropped_packets": len(drop),
    }
    return out, info


def _retransmit(pkts: list[_Pkt], every: int) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """Duplicate every ``every``-th data segment after the peer's next data segment."""
    pending: dict[int, list[_Pkt]] = {}
    out: list[tuple[int, bytes]] = []
    n_data = dup = dup_bytes = 0
    copies: list[dict[str, Any]] = []
    for i, p in enumerate(pkts):
        out.append((p.ts, _build(p)))
        for orig in pending.pop(i, []):
            out.append((p.ts, _build(orig)))
        if not p.is_data:
            continue
        n_data += 1
        if n_data % every:
            continue
        later = next(
            (j for j in range(i + 1, len(pkts)) if pkts[j].conn == p.conn and pkts[j].is_data),
            min(i + 1, len(pkts) - 1),
        )
        if later == i:
            out.append((p.ts, _build(p)))
        else:
            pending.setdefault(later, []).append(p)
        dup += 1
        dup_bytes += len(p.payload)
        assert p.conn is not None
        copies.append(
            {"conn": conn_label(p.conn), "c2s": p.c2s, "seq": p.seq, "len": len(p.payload)}
        )
    info = {"every": every, "duplicated": dup, "duplicate_bytes": dup_bytes, "copies": copies}
    return out, info


def _reorder(pkts: list[_Pkt]) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """Split every other data segment in two halves and send the second half first."""
    out = []
    n_data = swapped = 0
    for p in pkts:
        if not p.is_data:
            out.append((p.ts, _build(p)))
            continue
        n_data += 1
        if n_data % 2 or len(p.payload) < 2:
            out.append((p.ts, _build(p)))
            continue
        half = len(p.payload) // 2
        first = _build(p, flags=p.flags & ~_PSH, payload=p.payload[:half])
        second = _build(p, seq=p.seq + half, payload=p.payload[half:])
        out += [(p.ts, second), (p.ts, first)]
        swapped += 1
    return out, {"swapped_pairs": swapped, "data_segments_in": n_data}


def _gap(pkts: list[_Pkt]) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """Drop the middle client->server data segment of the busiest connection."""
    by_conn: dict[ConnKey, list[int]] = {}
    for i, p in enumerate(pkts):
        if p.is_data and p.c2s and p.conn is not None:
            by_conn.setdefault(p.conn, []).append(i)
    if not by_conn:
        raise ValueError("no client data segments to remove")
    conn, idx = max(by_conn.items(), key=lambda kv: len(kv[1]))
    victim = idx[len(idx) // 2]
    p = pkts[victim]
    adus = _adus(p.payload)
    out = [(q.ts, _build(q)) for i, q in enumerate(pkts) if i != victim]
    info = {
        "removed": {
            "conn": conn_label(conn),
            "c2s": True,
            "seq": p.seq,
            "ts_us": p.ts,
            "packet_index": victim,
            "adus": [{"tid": t, "unit": u, "fc": f} for t, u, f in adus],
        },
        "lost_bytes": len(p.payload),
        "lost_pdus": len(adus),
    }
    return out, info


def _midstream(pkts: list[_Pkt], skip: int) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """Drop the first ``skip`` packets (handshake included), then up to the next response.

    The capture then opens with a server->client PDU whose request was never seen.
    """
    cut = min(skip, len(pkts))
    while cut < len(pkts) and not (pkts[cut].is_data and not pkts[cut].c2s):
        cut += 1
    if cut >= len(pkts):
        raise ValueError("capture too short for a midstream variant")
    dropped = pkts[:cut]
    info = {
        "dropped_packets": cut,
        "dropped_c2s_bytes": sum(len(p.payload) for p in dropped if p.c2s),
        "dropped_s2c_bytes": sum(len(p.payload) for p in dropped if not p.c2s),
        "first_packet_ts_us": pkts[cut].ts,
        "first_adus": [{"tid": t, "unit": u, "fc": f} for t, u, f in _adus(pkts[cut].payload)],
    }
    return [(p.ts, _build(p)) for p in pkts[cut:]], info


def _vlan(
    pkts: list[_Pkt], vids: tuple[int, ...]
) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """Insert 802.1Q tags after the MAC addresses; QinQ puts an 802.1ad tag outside."""
    tpids = [0x8100] if len(vids) == 1 else [0x88A8] + [0x8100] * (len(vids) - 1)
    tags = b"".join(
        struct.pack(">HH", tpid, vid & 0x0FFF) for tpid, vid in zip(tpids, vids, strict=True)
    )
    out = []
    for p in pkts:
        frame = _build(p)
        out.append((p.ts, frame[:12] + tags + frame[12:]))
    return out, {"vlan_ids": list(vids), "tpids": [f"0x{t:04x}" for t in tpids]}


def make_variant(
    src_pcap: str | Path,
    dst_pcap: str | Path,
    kind: str,
    *,
    seed: int = 0,
    coalesce: int = 3,
    retransmit_every: int = 5,
    midstream_skip: int = 12,
) -> dict[str, Any]:
    """Write the ``kind`` variant of ``src_pcap`` to ``dst_pcap`` and describe the change.

    Every TCP packet is re-serialised with valid IPv4/TCP checksums (loopback captures carry
    offloaded, invalid ones); ``clean`` does only that.
    """
    pkts = _load(src_pcap)
    rng = random.Random(seed)
    if kind == "clean":
        out, info = _clean(pkts)
    elif kind == "split":
        out, info = _split(pkts, rng)
    elif kind == "coalesce":
        out, info = _coalesce(pkts, coalesce)
    elif kind == "retransmit":
        out, info = _retransmit(pkts, retransmit_every)
    elif kind == "reorder":
        out, info = _reorder(pkts)
    elif kind == "gap":
        out, info = _gap(pkts)
    elif kind == "midstream":
        out, info = _midstream(pkts, midstream_skip)
    elif kind == "vlan":
        out, info = _vlan(pkts, (10,))
    elif kind == "qinq":
        out, info = _vlan(pkts, (100, 10))
    else:
        raise ValueError(f"unknown variant {kind!r}; expected one of {', '.join(KINDS)}")
    n_out = _write(dst_pcap, out)
    return {
        "kind": kind,
        "source": Path(src_pcap).name,
        "pcap": Path(dst_pcap).name,
        "packets_in": len(pkts),
        "packets_out": n_out,
        **info,
    }
