"""Diode wire format, sample batches, Reed-Solomon code and key files (no I/O)."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import struct
from collections import deque
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otconduit.gateway.diode import batch, fec, wire
from otconduit.gateway.diode.keys import KeyFileError, generate_key, load_key
from otconduit.gateway.model import Quality, TagSample

KEY = bytes.fromhex("3f1c6bb58c4638deaea10ed69c3aee2758bd8638c11b6dbe31c0697c2c953ad0")
OTHER = bytes.fromhex("f675ea49d5208cb5fe246ff75624b989c8c0398f0cc01679a3f2181395c3d830")
AUTH = wire.Authenticator(KEY)
SESSION = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def _data(payload: bytes = b"\x01hello", auth: wire.Authenticator = AUTH, **kw: int) -> bytes:
    args = {"counter": 5, "time_ms": 1_700_000_000_000, "seq": 41, "index": 1} | kw
    return wire.build_data(auth, session=SESSION, payload=payload, **args)


def _all_kinds(auth: wire.Authenticator = AUTH) -> list[bytes]:
    return [
        _data(auth=auth),
        wire.build_parity(
            auth,
            session=SESSION,
            counter=6,
            time_ms=1,
            group=40,
            count=8,
            parities=2,
            index=1,
            block=b"\x00\x05parity",
        ),
        wire.build_heartbeat(
            auth,
            session=SESSION,
            counter=7,
            time_ms=2,
            next_seq=48,
            open=3,
            interval_ms=1000,
            dropped=4,
            sent=7,
        ),
    ]


# -- wire -------------------------------------------------------------------------------


def test_round_trip_every_kind() -> None:
    d, p, h = (wire.parse(x, AUTH) for x in _all_kinds())
    assert isinstance(d, wire.Data)
    assert (d.seq, d.index, d.group, d.payload) == (41, 1, 40, b"\x01hello")
    assert d.header == wire.Header(
        kind=wire.Kind.DATA, session=SESSION, counter=5, time_ms=1_700_000_000_000
    )
    assert isinstance(p, wire.Parity)
    assert (p.group, p.count, p.parities, p.index, p.block) == (40, 8, 2, 1, b"\x00\x05parity")
    assert isinstance(h, wire.Heartbeat)
    assert (h.next_seq, h.open, h.interval_ms, h.dropped, h.sent) == (48, 3, 1000, 4, 7)
    assert len(_all_kinds()[2]) == wire.HEARTBEAT_LEN


def test_layout_is_as_documented() -> None:
    raw = _data()
    assert raw[:2] == b"\xcd\x1d" and raw[2] == 1 and raw[3] == wire.Kind.DATA
    assert raw[4:12] == SESSION
    assert struct.unpack(">QQQB", raw[12:37]) == (5, 1_700_000_000_000, 41, 1)
    assert raw[37:-16] == b"\x01hello"
    assert len(raw) == wire.DATA_HEADER_LEN + 6 + wire.MAC_LEN


@pytest.mark.parametrize("which", [0, 1, 2])
def test_every_single_byte_change_is_refused(which: int) -> None:
    raw = _all_kinds()[which]
    for pos in range(len(raw)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(raw)
            bad[pos] ^= flip
            res = wire.parse(bytes(bad), AUTH)
            assert isinstance(res, wire.Invalid), (pos, flip)
            # The MAC catches everything it covers; magic/version fail before it.
            assert res.category == ("malformed" if pos < 3 else "forged")


def test_truncated_and_extended_datagrams_are_refused() -> None:
    for raw in _all_kinds():
        for n in range(len(raw)):
            assert isinstance(wire.parse(raw[:n], AUTH), wire.Invalid)
        assert wire.parse(raw + b"\x00", AUTH) == wire.Invalid(
            category="forged", reason="MAC does not verify", size=len(raw) + 1
        )


def test_wrong_key_is_forged_and_rotation_accepts_old_and_new() -> None:
    other = wire.Authenticator(OTHER)
    for raw in _all_kinds():
        res = wire.parse(raw, other)
        assert isinstance(res, wire.Invalid) and res.category == "forged"
    both = wire.Authenticator(OTHER, KEY)  # sends with the new, accepts either
    assert all(isinstance(wire.parse(r, both), wire.Data | wire.Parity | wire.Heartbeat)
               for r in _all_kinds())  # fmt: skip


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        wire.Authenticator(b"short")


# Made by the wire format as it was before encryption existed (same key and fields as
# _all_kinds): unsealed datagrams must stay byte for byte the same.
GOLDEN = [
    "cd1d0101010203040506070800000000000000050000018bcfe568000000000000000029010168656c6c6f"
    "646a1872673388f821e658c1bc487524",
    "cd1d010201020304050607080000000000000006000000000000000100000000000000280802010005706172"
    "697479f373c9c67ebfaf754cf98a60f3b92cd6",
    "cd1d0103010203040506070800000000000000070000000000000002000000000000003003000003e8000000"
    "000000000400000000000000077b89ebadb5c78bd9482e7a9b0e365ad1",
]


def test_unsealed_datagrams_are_unchanged_on_the_wire() -> None:
    assert [d.hex() for d in _all_kinds()] == GOLDEN
    for raw in GOLDEN:
        res = wire.parse(bytes.fromhex(raw), AUTH)
        assert not isinstance(res, wire.Invalid) and not res.header.sealed


def test_sealed_round_trip_every_kind_and_tampering() -> None:
    sealed = _all_kinds(wire.Authenticator(KEY, encrypt=True))
    clear = [wire.parse(d, AUTH) for d in _all_kinds()]
    for raw, plain in zip(sealed, clear, strict=True):
        assert raw[3] & wire.SEALED
        got = wire.parse(raw, AUTH)  # any receiver with the key opens it
        assert not isinstance(got, wire.Invalid) and not isinstance(plain, wire.Invalid)
        assert got.header.sealed
        assert replace(got, header=replace(got.header, sealed=False)) == plain
        for pos in range(len(raw)):
            bad = bytearray(raw)
            bad[pos] ^= 0x01
            res = wire.parse(bytes(bad), AUTH)
            assert isinstance(res, wire.Invalid), pos
    assert len(sealed[2]) == wire.HEARTBEAT_LEN + 16  # the AEAD tag
    rotating = wire.Authenticator(OTHER, KEY)  # opens with whichever key made the mac
    assert all(not isinstance(wire.parse(r, rotating), wire.Invalid) for r in sealed)
    assert b"hello" not in sealed[0] and b"parity" not in sealed[1]


def test_authenticated_but_invalid_geometry_is_malformed() -> None:
    raw = wire.build_parity(
        AUTH, session=SESSION, counter=1, time_ms=1, group=0, count=8, parities=2, index=2,
        block=b"x",
    )  # fmt: skip
    res = wire.parse(raw, AUTH)
    assert isinstance(res, wire.Invalid) and res.category == "malformed"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_only_invalid(data: bytes) -> None:
    res = wire.parse(data, AUTH)
    assert isinstance(res, wire.Invalid)
    res = wire.parse(b"\xcd\x1d\x01" + data, AUTH)
    assert isinstance(res, wire.Invalid)


def test_frame_unframe() -> None:
    block = wire.frame(b"abc", 10)
    assert len(block) == 10 and wire.unframe(block) == b"abc"
    assert wire.unframe(b"\x00") is None and wire.unframe(b"\x00\x09abc") is None
    with pytest.raises(ValueError):
        wire.frame(b"abcdefghi", 10)


# -- batches ----------------------------------------------------------------------------

SAMPLES = [
    TagSample(path="acme/s1/area/line/cell/temp", value=21.5, quality=Quality.GOOD,
              recv_ts_ns=1_700_000_000_123_456_789, unit="°C", seq=1),
    TagSample(path="acme/s1/area/line/cell/run", value=True, quality=Quality.GOOD,
              recv_ts_ns=2, seq=2, source_ts_ns=-5),
    TagSample(path="acme/s1/area/line/cell/stop", value=False, quality=Quality.GOOD,
              recv_ts_ns=3, seq=3),
    TagSample(path="acme/s1/area/line/cell/count", value=-(2**63), quality=Quality.GOOD,
              recv_ts_ns=4, seq=4),
    TagSample(path="acme/s1/area/line/cell/u64", value=2**64 - 1, quality=Quality.GOOD,
              recv_ts_ns=5, seq=5, historical=True),
    TagSample(path="acme/s1/area/line/cell/name", value="Prüfstand ✓", quality=Quality.GOOD,
              recv_ts_ns=6, seq=6),
    TagSample(path="acme/s1/area/line/cell/dead", value=None, quality=Quality.STALE,
              recv_ts_ns=7, seq=2**64 - 1, reason="device unreachable"),
    TagSample(path="x", value="", quality=Quality.BAD, recv_ts_ns=-1, seq=0, reason="exc 2"),
]  # fmt: skip


@pytest.mark.parametrize("compress", [True, False])
def test_batch_round_trip(compress: bool) -> None:
    assert batch.decode(batch.encode(SAMPLES, compress=compress)) == SAMPLES


def test_batch_compression_pays_on_shared_paths() -> None:
    many = [
        TagSample(path=f"acme/site1/area2/line3/cell4/tag{i % 40}", value=float(i),
                  quality=Quality.GOOD, recv_ts_ns=1_700_000_000_000_000_000 + i, seq=i)
        for i in range(200)
    ]  # fmt: skip
    plain, packed = batch.encode(many, compress=False), batch.encode(many)
    assert packed[0] == batch.ZLIB and len(packed) < len(plain) / 2


sample_st = st.builds(
    TagSample,
    path=st.text(min_size=1, max_size=60),
    value=st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False), st.text(max_size=80),
    ),
    quality=st.sampled_from(list(Quality)),
    recv_ts_ns=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    unit=st.text(max_size=10),
    source_ts_ns=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    reason=st.text(max_size=30),
    historical=st.booleans(),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
)  # fmt: skip


def _wire_text(s: str) -> str:
    return s.encode("utf-8", "replace").decode()


@settings(max_examples=100, deadline=None)
@given(st.lists(sample_st, max_size=20))
def test_batch_round_trip_any_samples(samples: list[TagSample]) -> None:
    back = batch.decode(batch.encode(samples))
    assert len(back) == len(samples)
    for a, b in zip(samples, back, strict=True):
        assert b.path == _wire_text(a.path) and b.unit == _wire_text(a.unit)
        assert (b.value == a.value) or (isinstance(a.value, str) and b.value == _wire_text(a.value))
        assert (b.quality, b.recv_ts_ns, b.source_ts_ns, b.historical, b.seq) == (
            a.quality, a.recv_ts_ns, a.source_ts_ns, a.historical, a.seq,
        )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([batch.PLAIN, batch.ZLIB, 7]))
def test_batch_fuzz_only_batch_error(data: bytes, fmt: int) -> None:
    with contextlib.suppress(batch.BatchError):
        batch.decode(bytes((fmt,)) + data)


def test_batch_every_truncation_is_batch_error() -> None:
    raw = batch.encode(SAMPLES, compress=False)
    for n in range(1, len(raw)):
        try:
            out = batch.decode(raw[:n])
        except batch.BatchError:
            continue
        assert out == SAMPLES[: len(out)]  # a cut exactly between records


def test_packer_fills_within_budget_keeps_order_and_marks_oversized() -> None:
    rng = random.Random(7)
    queue: deque[TagSample] = deque(
        TagSample(path=f"acme/s/a/l/c/t{rng.randrange(500)}", value=rng.random(),
                  quality=Quality.GOOD, recv_ts_ns=i, seq=i)
        for i in range(5000)
    )  # fmt: skip
    queue.insert(100, TagSample(path="acme/big", value="x" * 5000, quality=Quality.GOOD,
                                recv_ts_ns=0, seq=10**9))  # fmt: skip
    packer = batch.Packer(wire.max_payload(1400))
    out: list[TagSample] = []
    sizes = []
    while queue:
        payload = packer.take(queue)
        sizes.append(len(payload))
        assert len(payload) <= packer.budget
        out += batch.decode(payload)
    assert len(out) == 5001 and packer.oversized == 1
    big = next(s for s in out if s.seq == 10**9)
    assert big.quality is Quality.BAD and big.value is None and "too large" in big.reason
    assert [s.seq for s in out if s.seq != 10**9] == list(range(5000))
    assert sum(sizes[:-1]) / len(sizes[:-1]) > 0.85 * packer.budget  # datagrams are full


# -- Reed-Solomon -----------------------------------------------------------------------


def test_gf_inverse_and_cauchy_coefficients() -> None:
    for a in range(1, 256):
        assert fec.gf_mul(a, fec.gf_inv(a)) == 1
    assert all(fec.coefficient(j, i) for j in range(8) for i in range(64))


@pytest.mark.parametrize(("k", "m"), [(1, 1), (4, 2), (5, 3), (8, 2)])
def test_rs_recovers_every_erasure_pattern_up_to_m(k: int, m: int) -> None:
    rng = random.Random(k * 100 + m)
    data = [bytes(rng.randrange(256) for _ in range(33)) for _ in range(k)]
    blocks = dict(enumerate(data + fec.encode(data, m)))
    for lost_n in range(m + 1):
        for lost in itertools.combinations(range(k + m), lost_n):
            got = fec.decode(k, m, {i: b for i, b in blocks.items() if i not in lost})
            assert got == {i: data[i] for i in lost if i < k}
    with pytest.raises(fec.FecError, match="needed"):
        fec.decode(k, m, {i: b for i, b in blocks.items() if i > m})


def test_rs_short_group_uses_the_same_code() -> None:
    data = [os.urandom(20) for _ in range(3)]
    parity = fec.encode(data, 4)
    got = fec.decode(3, 4, {3: parity[0], 5: parity[2], 6: parity[3]})
    assert got == dict(enumerate(data))


def test_rs_rejects_bad_geometry() -> None:
    with pytest.raises(fec.FecError):
        fec.encode([b"a", b"bc"], 1)
    with pytest.raises(fec.FecError):
        fec.encode([], 1)
    with pytest.raises(fec.FecError):
        fec.decode(2, 1, {5: b"x"})


# -- key files --------------------------------------------------------------------------


def test_keygen_and_load(tmp_path: Path) -> None:
    p = generate_key(tmp_path / "diode.key")
    assert p.stat().st_mode & 0o777 == 0o600
    assert len(load_key(p)) == 32
    with pytest.raises(KeyFileError, match="exists"):
        generate_key(p)
    generate_key(p, overwrite=True)


def test_key_file_checks(tmp_path: Path) -> None:
    raw = tmp_path / "raw.key"
    raw.write_bytes(os.urandom(24))
    raw.chmod(0o600)
    assert len(load_key(raw)) == 24
    loose = tmp_path / "loose.key"
    loose.write_text("00" * 32)
    loose.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(loose)
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    short.chmod(0o600)
    with pytest.raises(KeyFileError, match="at least 16"):
        load_key(short)
    with pytest.raises(KeyFileError, match="No such file"):
        load_key(tmp_path / "missing.key")
