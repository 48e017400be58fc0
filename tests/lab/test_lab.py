"""Checks that the lab fixtures say what their manifests claim.

tshark is the referee: if it sees a different set of requests than the manifest lists,
the fixture (not the monitor) is wrong.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import dpkt
import pytest

from otconduit.lab.modbus_exercise import run_exercise
from otconduit.lab.sniffer import LoopbackCapture, capture_unavailable_reason, read_pcap

DATA = Path(__file__).resolve().parent.parent / "data"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark binary not installed")

Key = tuple[str, int, str, int]


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def _tshark_modbus(
    pcap: Path, port: int
) -> list[tuple[str, int, int, int, int | None, int | None]]:
    """(dir, tid, unit, fc, sub, exception) for every Modbus PDU tshark decodes."""
    assert TSHARK is not None
    cmd = [TSHARK, "-r", str(pcap), "-Y", "modbus", "-T", "fields", "-E", "separator=|"]
    if port != 502:
        # Not "-d ...,mbtcp": only the port preference lets tshark tell queries from responses.
        cmd += ["-o", f"mbtcp.tcp.port:{port}"]
    for f in (
        "tcp.dstport",
        "mbtcp.trans_id",
        "mbtcp.unit_id",
        "modbus.func_code",
        "modbus.diagnostic_code",
        "modbus.mei",
        "modbus.exception_code",
    ):
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        dport, tid, unit, fc, diag, mei, exc = line.split("|")
        direction = "req" if int(dport) == port else "rsp"
        sub = diag or mei
        rows.append(
            (
                direction,
                int(tid),
                int(unit),
                int(fc),
                int(sub) if sub and direction == "req" else None,
                int(exc) if exc else None,
            )
        )
    return rows


def _expected(
    requests: list[dict[str, Any]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    req = [("req", r["tid"], r["unit"], r["fc"], r["sub"], None) for r in requests]
    rsp = [("rsp", r["tid"], r["unit"], r["fc"], None, r["exception_code"]) for r in requests]
    return req, rsp


def _check_against_manifest(pcap: Path, port: int, requests: list[dict[str, Any]]) -> None:
    rows = _tshark_modbus(pcap, port)
    req, rsp = _expected(requests)
    assert [r for r in rows if r[0] == "req"] == req
    assert [r for r in rows if r[0] == "rsp"] == rsp


# -- fixture files ----------------------------------------------------------------------------


def test_fixture_index_matches_files() -> None:
    index = _load("manifest.json")
    assert {"modbus_all_functions.pcap", "modbus_nonstandard.pcap"} <= set(index)
    for name, entry in index.items():
        path = DATA / name
        assert path.stat().st_size == entry["bytes"] < 200_000, name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        assert sum(1 for _ in read_pcap(path)) == entry["packets"] > 0, name
        assert (DATA / entry["manifest"]).exists()


def test_all_functions_manifest_covers_every_code() -> None:
    manifest = _load("modbus_all_functions.json")
    fcs = {r["fc"] for r in manifest["requests"]}
    assert fcs >= {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43}
    diag = {r["sub"] for r in manifest["requests"] if r["fc"] == 8}
    assert diag >= {0, 1, 2, 4, 10, *range(11, 19)}
    mei = {
        r["extra"]["read_code"] for r in manifest["requests"] if r["fc"] == 43 and r["sub"] == 14
    }
    assert mei >= {1, 2, 3, 4}
    excs = {r["exception_code"] for r in manifest["requests"] if r["status"] == "exception"}
    assert excs >= {1, 2, 3}
    assert len({r["unit"] for r in manifest["requests"]}) >= 4
    assert manifest["requests"][-1]["sub"] == 4  # listen-only is last


@pytest.mark.tshark
@needs_tshark
def test_tshark_sees_manifest_all_functions() -> None:
    manifest = _load("modbus_all_functions.json")
    _check_against_manifest(
        DATA / "modbus_all_functions.pcap", manifest["server"]["port"], manifest["requests"]
    )


@pytest.mark.tshark
@needs_tshark
@pytest.mark.parametrize("kind", ["clean", "vlan", "qinq"])
def test_tshark_sees_manifest_in_lossless_variants(kind: str) -> None:
    manifest = _load("modbus_all_functions.json")
    _check_against_manifest(
        DATA / f"modbus_{kind}.pcap", manifest["server"]["port"], manifest["requests"]
    )


@pytest.mark.tshark
@needs_tshark
def test_tshark_sees_manifest_nonstandard() -> None:
    manifest = _load("modbus_nonstandard.json")
    modbus = [f for f in manifest["flows"] if f["modbus"]]
    other = [f for f in manifest["flows"] if not f["modbus"]]
    assert len(modbus) == 1 and len(other) >= 2
    pcap = DATA / "modbus_nonstandard.pcap"
    _check_against_manifest(pcap, modbus[0]["server"]["port"], modbus[0]["requests"])
    # Nothing on port 502 is Modbus in this capture: tshark must not decode any of it.
    assert _tshark_modbus(pcap, 502) == []
    streams = _streams(pcap)
    for flow in other:
        chost, cport = flow["client"].rsplit(":", 1)
        key = (chost, int(cport), flow["server"]["host"], flow["server"]["port"])
        assert len(streams[key][0]) == flow["c2s_bytes"]
        assert len(streams[key[2:] + key[:2]][0]) == flow["s2c_bytes"]


# -- TCP variants -----------------------------------------------------------------------------


def _segments(pcap: Path) -> list[tuple[Key, int, bytes]]:
    """(src, sport, dst, dport), seq, payload of every TCP data segment (VLAN tags skipped)."""
    segs = []
    for _ts, frame in read_pcap(pcap):
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP) and ip.data.data:
            tcp = ip.data
            key = (socket.inet_ntoa(ip.src), tcp.sport, socket.inet_ntoa(ip.dst), tcp.dport)
            segs.append((key, tcp.seq, bytes(tcp.data)))
    return segs


def _concat(pcap: Path) -> dict[Key, bytes]:
    """Payloads per direction in capture order, ignoring sequence numbers."""
    out: dict[Key, bytes] = defaultdict(bytes)
    for key, _seq, data in _segments(pcap):
        out[key] += data
    return dict(out)


def _streams(pcap: Path) -> dict[Key, tuple[bytes, list[int], int]]:
    """Reassemble by sequence number: (bytes, gap sizes, duplicate/overlap segments)."""
    per: dict[Key, list[tuple[int, bytes]]] = defaultdict(list)
    for key, seq, data in _segments(pcap):
        per[key].append((seq, data))
    out = {}
    for key, segs in per.items():
        ref = segs[0][0]
        base = ref + min(((s - ref + 2**31) & 0xFFFFFFFF) - 2**31 for s, _d in segs)
        ordered = sorted(((s - base) & 0xFFFFFFFF, d) for s, d in segs)
        buf, gaps, dups, pos = b"", [], 0, 0
        for off, data in ordered:
            if off > pos:
                gaps.append(off - pos)
                pos = off
            if off + len(data) <= pos:
                dups += 1
                continue
            buf += data[pos - off :]
            pos = off + len(data)
        out[key] = (buf, gaps, dups)
    return out


def _out_of_order(pcap: Path) -> int:
    """Segments whose seq is below the highest seq already seen in their direction."""
    top: dict[Key, int] = {}
    count = 0
    for key, seq, data in _segments(pcap):
        end = seq + len(data)
        if key in top and end <= top[key]:
            count += 1
        top[key] = max(top.get(key, 0), end)
    return count


@pytest.fixture(scope="module")
def variants() -> dict[str, Any]:
    return dict(_load("modbus_variants.json"))


@pytest.fixture(scope="module")
def original() -> dict[Key, bytes]:
    base = DATA / "modbus_all_functions.pcap"
    streams = _streams(base)
    assert all(not gaps and not dups for _b, gaps, dups in streams.values())
    return _concat(base)


@pytest.mark.parametrize("kind", ["clean", "split", "coalesce", "vlan", "qinq"])
def test_variant_preserves_stream_in_capture_order(kind: str, original: dict[Key, bytes]) -> None:
    assert _concat(DATA / f"modbus_{kind}.pcap") == original


def test_split_uses_tiny_segments(variants: dict[str, Any]) -> None:
    sizes = {len(d) for _k, _s, d in _segments(DATA / "modbus_split.pcap")}
    assert sizes <= {1, 2, 3}
    assert variants["split"]["data_segments_out"] == len(_segments(DATA / "modbus_split.pcap"))


def test_coalesce_merges_pdus(variants: dict[str, Any]) -> None:
    base = len(_segments(DATA / "modbus_all_functions.pcap"))
    merged = _segments(DATA / "modbus_coalesce.pcap")
    info = variants["coalesce"]
    assert len(merged) == base - info["merged_segments"] + 2 * info["groups"]
    assert max(len(d) for _k, _s, d in merged) >= 36  # three 12-byte requests at least


def test_retransmit_and_reorder_reassemble(
    variants: dict[str, Any], original: dict[Key, bytes]
) -> None:
    retrans = _streams(DATA / "modbus_retransmit.pcap")
    assert {k: v[0] for k, v in retrans.items()} == original
    assert sum(v[2] for v in retrans.values()) == variants["retransmit"]["duplicated"] > 0
    reorder = DATA / "modbus_reorder.pcap"
    assert {k: v[0] for k, v in _streams(reorder).items()} == original
    assert _out_of_order(reorder) == variants["reorder"]["swapped_pairs"] > 0


def test_gap_loses_exactly_reported_bytes(
    variants: dict[str, Any], original: dict[Key, bytes]
) -> None:
    info = variants["gap"]
    streams = _streams(DATA / "modbus_gap.pcap")
    client, server = info["removed"]["conn"].split("->")
    chost, cport = client.rsplit(":", 1)
    shost, sport = server.rsplit(":", 1)
    key = (chost, int(cport), shost, int(sport))
    for k, (data, gaps, _dups) in streams.items():
        if k == key:
            assert gaps == [info["lost_bytes"]]
            assert len(original[k]) - len(data) == info["lost_bytes"] > 0
            assert info["lost_pdus"] == 1
        else:
            assert data == original[k] and not gaps


def test_midstream_drops_reported_prefix(
    variants: dict[str, Any], original: dict[Key, bytes]
) -> None:
    info = variants["midstream"]
    got = _concat(DATA / "modbus_midstream.pcap")
    first = next(iter(read_pcap(DATA / "modbus_midstream.pcap")))
    assert first[0] == info["first_packet_ts_us"]
    lost = 0
    for k, data in original.items():
        assert data.endswith(got.get(k, b""))
        lost += len(data) - len(got.get(k, b""))
    assert lost == info["dropped_c2s_bytes"] + info["dropped_s2c_bytes"] > 0


def test_variant_timestamps_monotonic() -> None:
    for kind in _load("modbus_variants.json"):
        stamps = [ts for ts, _f in read_pcap(DATA / f"modbus_{kind}.pcap")]
        assert stamps == sorted(stamps), kind


# -- live capture -----------------------------------------------------------------------------

_LIVE_SKIP = capture_unavailable_reason()


@pytest.mark.tshark
@needs_tshark
@pytest.mark.skipif(_LIVE_SKIP is not None, reason=f"live capture: {_LIVE_SKIP}")
def test_live_exercise_is_captured(tmp_path: Path) -> None:
    pcap = tmp_path / "live.pcap"
    manifest = run_exercise(pcap, "127.0.9.10", 5020)
    assert manifest["capture"]["packets"] > 2 * len(manifest["requests"])
    _check_against_manifest(pcap, 5020, manifest["requests"])


@pytest.mark.skipif(_LIVE_SKIP is not None, reason=f"live capture: {_LIVE_SKIP}")
def test_afpacket_backend_has_no_duplicates(tmp_path: Path) -> None:
    host, port = "127.0.9.20", 7020
    srv = socket.create_server((host, port))

    def echo() -> None:
        conn, _ = srv.accept()
        with conn:
            for _ in range(3):
                conn.sendall(conn.recv(64).upper())

    pcap = tmp_path / "af.pcap"
    with LoopbackCapture(pcap, {host}, {port}, backend="afpacket") as cap:
        th = threading.Thread(target=echo)
        th.start()
        with socket.create_connection((host, port)) as cli:
            for word in (b"alpha", b"beta", b"gamma"):
                cli.sendall(word)
                assert cli.recv(64) == word.upper()
        th.join()
    srv.close()
    assert cap.backend == "afpacket"
    segs = _segments(pcap)
    assert [d for _k, _s, d in segs] == [b"alpha", b"ALPHA", b"beta", b"BETA", b"gamma", b"GAMMA"]
    assert cap.packets == sum(1 for _ in read_pcap(pcap))


# -- benchmark capture ------------------------------------------------------------------------


def _bench_module(name: str) -> Any:
    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.mark.tshark
@needs_tshark
def test_bench_capture_is_clean_modbus(tmp_path: Path) -> None:
    make_capture = _bench_module("make_capture")
    dpkt_decoder = _bench_module("dpkt_decoder")
    pcap = tmp_path / "small.pcap"
    make_capture.make_capture(pcap, 20_000)
    assert sum(1 for _ in read_pcap(pcap)) == 20_000
    assert TSHARK is not None

    def count(expr: str) -> int:
        out = subprocess.run(
            [TSHARK, "-r", str(pcap), "-Y", expr], capture_output=True, text=True, check=True
        ).stdout
        return len(out.splitlines())

    assert count("tcp.analysis.flags || _ws.malformed || (tcp.len > 0 && !mbtcp)") == 0
    pdus = count("mbtcp")
    result = dpkt_decoder.decode(pcap)
    assert result["adus"] == pdus > 18_000
    assert result["operations"] == pdus // 2
    assert set(result["by_function"]) == {1, 3, 6, 16}
