"""Fuzzing with one invariant each: only the documented outcomes come out.

decode_frame returns a Packet or a DecodeProblem for any input; the reader raises nothing but
CaptureError, and only when opening; iteration always ends and its blocks are consistent.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otconduit.capture import pcapwriter as pw
from otconduit.capture.decode import DecodeProblem, decode_frame
from otconduit.capture.packet import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Packet,
)
from otconduit.capture.reader import CaptureError, open_capture

from .conftest import T0, ipv6_ext_tcp, raw_ipv4_udp, sample_frames

LINKTYPES = [
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_NULL,
    LINKTYPE_LOOP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    12,
    999,
]
SEEDS = [(LINKTYPE_ETHERNET, f) for f in sample_frames()] + [
    (LINKTYPE_RAW, raw_ipv4_udp(3)),
    (LINKTYPE_RAW, ipv6_ext_tcp()),
    (LINKTYPE_NULL, b"\x02\0\0\0" + raw_ipv4_udp(1)),
]


def _check_decodes(data: bytes, linktype: int) -> None:
    out = decode_frame(data, linktype, 1, T0, len(data))
    assert isinstance(out, Packet | DecodeProblem)
    if isinstance(out, DecodeProblem):
        assert not out.reason.startswith("internal error"), out
    else:
        assert out.caplen == len(data) and len(out.payload) <= len(data)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid frame with a few bytes changed, and maybe cut short or extended."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=200), linktype=st.sampled_from(LINKTYPES))
def test_decode_random_bytes_never_raises(data: bytes, linktype: int) -> None:
    _check_decodes(data, linktype)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(SEEDS).flatmap(lambda s: st.tuples(st.just(s[0]), mutated(s[1]))))
def test_decode_mutated_frames_never_raises(case: tuple[int, bytes]) -> None:
    linktype, data = case
    _check_decodes(data, linktype)


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    d = tmp_path_factory.mktemp("seeds")
    packets = [(T0 + i * 1000, f) for i, f in enumerate(sample_frames())]
    pw.write_pcap(d / "a.pcap", packets, nanosecond=True, big_endian=True)
    pw.write_pcapng(
        d / "b.pcapng",
        [(ts, f, i % 2) for i, (ts, f) in enumerate(packets)],
        [pw.Interface(), pw.Interface(tsresol=9)],
    )
    files = [(d / "a.pcap").read_bytes(), (d / "b.pcapng").read_bytes()]
    return [*files, gzip.compress(files[0])]


def _check_reads(path: Path, content: bytes, block_size: int) -> None:
    path.write_bytes(content)
    try:
        reader = open_capture(path, block_size)
    except CaptureError:
        return
    frames = 0
    with reader:
        for block in reader:
            assert block.first_frame == frames + 1
            n = len(block)
            assert n > 0
            assert len(block.caplens) == len(block.ts_ns) == len(block.linktypes) == n
            assert (block.offsets >= 0).all()
            assert (block.offsets + block.caplens <= len(block.buf)).all()
            frames += n
    assert reader.report.packets == frames


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300), st.sampled_from([64, 4096]))
def test_reader_random_files(tmp_path: Path, content: bytes, block_size: int) -> None:
    _check_reads(tmp_path / "f", content, block_size)
    for magic in (b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"):  # behind a valid magic too
        _check_reads(tmp_path / "f", magic + content, block_size)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), block_size=st.sampled_from([64, 333, 1 << 20]))
def test_reader_mutated_files(
    tmp_path: Path, seed_files: list[bytes], data: st.DataObject, block_size: int
) -> None:
    seed = bytearray(data.draw(st.sampled_from(seed_files)))
    for _ in range(data.draw(st.integers(1, 8))):
        seed[data.draw(st.integers(0, len(seed) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(seed)))
    _check_reads(tmp_path / "f", bytes(seed[:cut]), block_size)
