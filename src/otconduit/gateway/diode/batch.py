"""A batch of tag samples as one DATA payload, and the packer that fills datagrams.

Payload (this project's own layout, big-endian)::

    0  1  format   1 = records as they are, 2 = records zlib-compressed (RFC 1950)
    1  .  records  one after another until the end

    record
     0  2  path length, then the path (UTF-8)
     .  8  seq            (u64)
     .  8  recv_ts_ns     (i64)
     .  1  flags          bits 0-1 quality (0 good, 1 bad, 2 stale), bit 2 historical,
                          bit 3 source_ts present, bits 4-7 value type (below)
     .  8  source_ts_ns   (i64, only when bit 3)
     .  .  value          0 none; 1 false; 2 true; 3 i64; 4 f64;
                          5 text: u16 length + UTF-8; 6 integer beyond 64 bits: as text
     .  1  unit length, then the unit (UTF-8)
     .  2  reason length, then the reason (UTF-8)

Compression pays because consecutive samples share most of their ISA-95 path.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterable

from otconduit.gateway.model import Quality, TagSample

PLAIN, ZLIB = 1, 2
MIN_BUDGET = 256  # bytes of payload a datagram must hold
MAX_DECOMPRESSED = 1 << 20  # a 64 KiB datagram cannot honestly inflate beyond this

_Q = {Quality.GOOD: 0, Quality.BAD: 1, Quality.STALE: 2}
_Q_BACK = {v: k for k, v in _Q.items()}
_NONE, _FALSE, _TRUE, _INT, _FLOAT, _TEXT, _BIGINT = range(7)
_FIXED = struct.Struct(">QqB")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_TOO_LARGE = "value too large for one diode datagram"


class BatchError(ValueError):
    """A payload that does not decode (only a faulty sender produces one: payloads are
    authenticated before they are decoded)."""


def _text(s: str, limit: int) -> bytes:
    raw = s.encode("utf-8", "replace")
    if len(raw) > limit:
        raw = raw[:limit].decode("utf-8", "ignore").encode()
    return raw


def encode_record(s: TagSample) -> bytes:
    v = s.value
    if v is None:
        vtype, vbytes = _NONE, b""
    elif isinstance(v, bool):
        vtype, vbytes = (_TRUE if v else _FALSE), b""
    elif isinstance(v, int):
        if _I64_MIN <= v <= _I64_MAX:
            vtype, vbytes = _INT, _I64.pack(v)
        else:
            t = str(v).encode()
            vtype, vbytes = _BIGINT, _U16.pack(len(t)) + t
    elif isinstance(v, float):
        vtype, vbytes = _FLOAT, _F64.pack(v)
    else:
        t = str(v).encode("utf-8", "replace")
        if len(t) > 0xFFFF:
            raise ValueError(_TOO_LARGE)
        vtype, vbytes = _TEXT, _U16.pack(len(t)) + t
    flags = _Q[s.quality] | (4 if s.historical else 0) | (vtype << 4)
    ts = b""
    if s.source_ts_ns is not None:
        flags |= 8
        ts = _I64.pack(s.source_ts_ns)
    path = _text(s.path, 0xFFFF)
    unit = _text(s.unit, 0xFF)
    reason = _text(s.reason, 0xFFFF)
    return b"".join(
        (
            _U16.pack(len(path)), path, _FIXED.pack(s.seq, s.recv_ts_ns, flags), ts, vbytes,
            bytes((len(unit),)), unit, _U16.pack(len(reason)), reason,
        )
    )  # fmt: skip


def encode(samples: Iterable[TagSample], *, compress: bool = True) -> bytes:
    body = b"".join(encode_record(s) for s in samples)
    if compress:
        packed = zlib.compress(body, 6)
        if len(packed) < len(body):
            return bytes((ZLIB,)) + packed
    return bytes((PLAIN,)) + body


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_DECOMPRESSED)
    except zlib.error as exc:
        raise BatchError(f"zlib: {exc}") from None
    if d.unconsumed_tail or not d.eof:
        raise BatchError("compressed records truncated or too large")
    return out


def decode(payload: bytes) -> list[TagSample]:
    """Every sample of a payload; raises :class:`BatchError` if any part is wrong."""
    if not payload:
        raise BatchError("empty payload")
    fmt, body = payload[0], payload[1:]
    if fmt == ZLIB:
        body = _inflate(body)
    elif fmt != PLAIN:
        raise BatchError(f"unknown payload format {fmt}")
    out: list[TagSample] = []
    pos = 0
    try:
        while pos < len(body):
            sample, pos = _decode_record(body, pos)
            out.append(sample)
    except (struct.error, UnicodeDecodeError, KeyError) as exc:
        raise BatchError(f"record {len(out)} at byte {pos}: {exc}") from None
    return out


def _take(body: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(body):
        raise BatchError(f"record truncated at byte {pos}")
    return body[pos : pos + n], pos + n


def _decode_record(body: bytes, pos: int) -> tuple[TagSample, int]:
    (n,) = _U16.unpack_from(body, pos)
    path, pos = _take(body, pos + 2, n)
    seq, recv_ts, flags = _FIXED.unpack_from(body, pos)
    pos += _FIXED.size
    source_ts = None
    if flags & 8:
        (source_ts,) = _I64.unpack_from(body, pos)
        pos += 8
    vtype = flags >> 4
    value: float | int | bool | str | None
    if vtype == _NONE:
        value = None
    elif vtype in (_FALSE, _TRUE):
        value = vtype == _TRUE
    elif vtype == _INT:
        (value,) = _I64.unpack_from(body, pos)
        pos += 8
    elif vtype == _FLOAT:
        (value,) = _F64.unpack_from(body, pos)
        pos += 8
    elif vtype in (_TEXT, _BIGINT):
        (n,) = _U16.unpack_from(body, pos)
        raw, pos = _take(body, pos + 2, n)
        value = raw.decode()
        if vtype == _BIGINT:
            digits = value.lstrip("-")
            if not (digits.isascii() and digits.isdigit()):
                raise BatchError("integer value is not a number")
            value = int(value)
    else:
        raise BatchError(f"unknown value type {vtype}")
    if pos >= len(body):
        raise BatchError(f"record truncated at byte {pos}")
    unit, pos = _take(body, pos + 1, body[pos])
    (n,) = _U16.unpack_from(body, pos)
    reason, pos = _take(body, pos + 2, n)
    sample = TagSample(
        path=path.decode(), value=value, quality=_Q_BACK[flags & 3], recv_ts_ns=recv_ts,
        unit=unit.decode(), source_ts_ns=source_ts, reason=reason.decode(),
        historical=bool(flags & 4), seq=seq,
    )  # fmt: skip
    return sample, pos


class Packer:
    """Takes samples off a queue into payloads of at most ``budget`` bytes.

    It guesses how many records fit from the compression ratio seen so far, compresses,
    and gives back the tail if the guess was too generous. A sample that cannot fit
    alone (a huge text value) goes as a BAD sample saying so, so it never blocks the
    queue."""

    def __init__(self, budget: int, *, compress: bool = True) -> None:
        if budget < MIN_BUDGET:
            raise ValueError(f"payload budget below {MIN_BUDGET} bytes: raise the MTU")
        self.budget = budget
        self.compress = compress
        self.ratio = 0.5  # compressed / plain, running estimate
        self.oversized = 0

    def take(self, queue: deque[TagSample]) -> bytes:
        """One payload from the head of ``queue`` (which must not be empty)."""
        records: list[bytes] = []
        taken: list[TagSample] = []
        target = self.budget / (self.ratio if self.compress else 1.0)
        raw = 0
        while queue and (not records or raw < target):
            s = queue[0]
            try:
                rec = encode_record(s)
            except ValueError:
                rec = b""
            if not rec or len(rec) + 1 > self.budget:
                s = self._shrunk(s)
                rec = encode_record(s)
            if records and raw + len(rec) > target:
                break
            queue.popleft()
            records.append(rec)
            taken.append(s)
            raw += len(rec)
        while True:
            body = b"".join(records)
            payload = bytes((PLAIN,)) + body
            if self.compress:
                packed = zlib.compress(body, 6)
                if len(packed) < len(body):
                    payload = bytes((ZLIB,)) + packed
                self.ratio = 0.8 * self.ratio + 0.2 * max(0.05, len(packed) / max(1, len(body)))
            if len(payload) <= self.budget or len(records) == 1:
                return payload
            keep = max(1, min(len(records) - 1, int(len(records) * self.budget / len(payload))))
            for s in reversed(taken[keep:]):
                queue.appendleft(s)
            del records[keep:], taken[keep:]

    def _shrunk(self, s: TagSample) -> TagSample:
        self.oversized += 1
        return TagSample(
            path=s.path.encode()[:120].decode("utf-8", "ignore"), value=None,
            quality=Quality.BAD, recv_ts_ns=s.recv_ts_ns,
            unit=s.unit[:20], source_ts_ns=s.source_ts_ns, reason=_TOO_LARGE,
            historical=s.historical, seq=s.seq,
        )  # fmt: skip
