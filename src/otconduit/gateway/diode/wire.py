"""Diode datagrams: layout, authentication and parsing. Sans-I/O: bytes in, bytes out.

Every datagram is one UDP payload, big-endian (the layout is this project's own; the
replay window follows RFC 4303 section 3.4.3, the MAC is HMAC-SHA256, RFC 2104, cut to
16 bytes as RFC 4868 section 2.6 does for IPsec)::

    common header, 28 bytes
     0  2  magic        0xCD 0x1D
     2  1  version      1
     3  1  kind         1 DATA, 2 PARITY, 3 HEARTBEAT; + 0x80 when sealed (below)
     4  8  session      random, drawn when the sender starts
    12  8  counter      per session, +1 for every datagram of any kind (replay window)
    20  8  time_ms      sender wall clock, ms since the Unix epoch

    DATA       28  8  seq        data sequence number, +1 per DATA datagram, from 0
               36  1  index      position in its FEC group (group = seq - index)
               37  .  payload    a batch of tag samples (see batch.py)
    PARITY     28  8  group      seq of the group's first DATA datagram
               36  1  count      DATA datagrams in the group (k, or fewer if cut short)
               37  1  parities   PARITY datagrams in the group (m)
               38  1  index      0 .. m-1
               39  .  block      Reed-Solomon parity (fec.py) of the framed payloads
    HEARTBEAT  28  8  next_seq   seq the next DATA datagram will carry (all before: sent)
               36  1  open       DATA datagrams of the FEC group still open (its parity
                                 is to come); every group before it is closed
               37  4  interval   heartbeat interval, ms
               41  8  dropped    samples the sender dropped (backlog full), cumulative
               49  8  sent       datagrams sent this session (this one excluded)

    trailer    16     mac        HMAC-SHA256(key, every byte before it)[:16]

A payload is framed for the FEC as ``u16 length + payload``, zero-padded to the longest
of its group, so a recovered block gives back its exact payload.

Sealed (encrypted) datagrams, optional: everything between the common header and the mac
is replaced by its ChaCha20-Poly1305 ciphertext and 16-byte tag (seal.py), the common
header being associated data; the mac then covers the sealed bytes. Unsealed datagrams
are exactly as above, so a receiver that never seals reads what it always did.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from otconduit.gateway.diode.keycheck import check_key
from otconduit.gateway.diode.seal import TAG_LEN, Sealer

MAGIC = b"\xcd\x1d"
VERSION = 1
MAC_LEN = 16
SEALED = 0x80  # kind flag: the rest of the datagram is encrypted
MAX_DATAGRAM = 65507  # largest UDP payload over IPv4

_COMMON = struct.Struct(">2sBB8sQQ")
_DATA = struct.Struct(">QB")
_PARITY = struct.Struct(">QBBB")
_HEARTBEAT = struct.Struct(">QBIQQ")
_LEN = struct.Struct(">H")

HEADER_LEN = _COMMON.size  # 28
DATA_HEADER_LEN = HEADER_LEN + _DATA.size  # 37
PARITY_HEADER_LEN = HEADER_LEN + _PARITY.size  # 39
HEARTBEAT_LEN = HEADER_LEN + _HEARTBEAT.size + MAC_LEN  # 81


class Kind(IntEnum):
    DATA = 1
    PARITY = 2
    HEARTBEAT = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    kind: Kind
    session: bytes
    counter: int
    time_ms: int
    sealed: bool = False

    def __post_init__(self) -> None:
        if len(self.session) != 8:
            raise ValueError("session id is 8 bytes")
        if not 0 <= self.counter < 1 << 64 or not 0 <= self.time_ms < 1 << 64:
            raise ValueError("counter and time_ms are unsigned 64-bit")


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    header: Header
    seq: int
    index: int
    payload: bytes

    @property
    def group(self) -> int:
        return self.seq - self.index


@dataclass(frozen=True, slots=True, kw_only=True)
class Parity:
    header: Header
    group: int
    count: int
    parities: int
    index: int
    block: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    header: Header
    next_seq: int
    open: int
    interval_ms: int
    dropped: int
    sent: int


Datagram = Data | Parity | Heartbeat
Category = Literal["malformed", "forged", "replayed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalid:
    """A datagram that is not accepted: ``malformed`` (not ours, truncated, unknown
    version or kind), ``forged`` (the MAC does not verify: wrong key or altered in
    transit) or ``replayed`` (decided by the receiver, not here)."""

    category: Category
    reason: str
    size: int


class Authenticator:
    """HMAC-SHA256 with one sending key and any number of accepted keys (rotation:
    the receiver accepts old and new while the sender changes over). With ``encrypt``
    the datagrams it builds are sealed; it opens sealed datagrams either way. Raises
    :class:`~otconduit.gateway.diode.keycheck.WeakKeyError` for a guessable key."""

    __slots__ = ("_accept", "_sealers", "_send", "encrypt")

    def __init__(self, key: bytes, *more: bytes, encrypt: bool = False) -> None:
        for k in (key, *more):
            check_key(k)
        self._send = hmac.new(key, digestmod=hashlib.sha256)
        self._accept = [hmac.new(k, digestmod=hashlib.sha256) for k in (key, *more)]
        self._sealers = [Sealer(k) for k in (key, *more)]
        self.encrypt = encrypt

    def sign(self, body: bytes) -> bytes:
        h = self._send.copy()
        h.update(body)
        return h.digest()[:MAC_LEN]

    def match(self, body: bytes, mac: bytes) -> int | None:
        """Which accepted key made ``mac`` (every key is tried: constant time)."""
        found = None
        for i, base in enumerate(self._accept):
            h = base.copy()
            h.update(body)
            if hmac.compare_digest(h.digest()[:MAC_LEN], mac) and found is None:
                found = i
        return found

    def verify(self, body: bytes, mac: bytes) -> bool:
        return self.match(body, mac) is not None

    def sealer(self, index: int = 0) -> Sealer:
        """The sealer of accepted key ``index`` (0: the sending key)."""
        return self._sealers[index]


def _finish(auth: Authenticator, kind: Kind, session: bytes, counter: int, time_ms: int,
            rest: bytes) -> bytes:  # fmt: skip
    """Header + rest (sealed if the authenticator encrypts) + mac."""
    if auth.encrypt:
        head = _COMMON.pack(MAGIC, VERSION, kind | SEALED, session, counter, time_ms)
        body = head + auth.sealer().seal(session, counter, head, rest)
    else:
        body = _COMMON.pack(MAGIC, VERSION, kind, session, counter, time_ms) + rest
    return body + auth.sign(body)


def build_data(
    auth: Authenticator, *, session: bytes, counter: int, time_ms: int, seq: int, index: int,
    payload: bytes,
) -> bytes:  # fmt: skip
    return _finish(auth, Kind.DATA, session, counter, time_ms, _DATA.pack(seq, index) + payload)


def build_parity(
    auth: Authenticator, *, session: bytes, counter: int, time_ms: int, group: int, count: int,
    parities: int, index: int, block: bytes,
) -> bytes:  # fmt: skip
    rest = _PARITY.pack(group, count, parities, index) + block
    return _finish(auth, Kind.PARITY, session, counter, time_ms, rest)


def build_heartbeat(
    auth: Authenticator, *, session: bytes, counter: int, time_ms: int, next_seq: int,
    open: int, interval_ms: int, dropped: int, sent: int,
) -> bytes:  # fmt: skip
    rest = _HEARTBEAT.pack(next_seq, open, interval_ms, dropped, sent)
    return _finish(auth, Kind.HEARTBEAT, session, counter, time_ms, rest)


def parse(datagram: bytes, auth: Authenticator) -> Datagram | Invalid:
    """One datagram, authenticated, or why not. Never raises for any input."""
    size = len(datagram)
    if size < HEADER_LEN + MAC_LEN:
        return Invalid(category="malformed", reason=f"too short ({size} bytes)", size=size)
    magic, version, kind, session, counter, time_ms = _COMMON.unpack_from(datagram)
    if magic != MAGIC:
        return Invalid(category="malformed", reason="not a diode datagram (magic)", size=size)
    if version != VERSION:
        return Invalid(category="malformed", reason=f"unsupported version {version}", size=size)
    body, mac = datagram[:-MAC_LEN], datagram[-MAC_LEN:]
    which = auth.match(body, mac)
    if which is None:
        return Invalid(category="forged", reason="MAC does not verify", size=size)
    # Authenticated from here: anything wrong below is a sender defect, still reported.
    sealed = bool(kind & SEALED)
    if sealed:
        plain = auth.sealer(which).open(session, counter, body[:HEADER_LEN], body[HEADER_LEN:])
        if plain is None:
            return Invalid(category="forged", reason="sealed payload does not open", size=size)
        body = body[:HEADER_LEN] + plain
    try:
        header = Header(
            kind=Kind(kind & ~SEALED), session=session, counter=counter, time_ms=time_ms,
            sealed=sealed,
        )  # fmt: skip
    except ValueError:
        return Invalid(category="malformed", reason=f"unknown kind {kind}", size=size)
    rest = len(body) - HEADER_LEN
    if header.kind is Kind.DATA:
        if rest < _DATA.size:
            return Invalid(category="malformed", reason="truncated DATA header", size=size)
        seq, index = _DATA.unpack_from(body, HEADER_LEN)
        if index > seq:
            return Invalid(category="malformed", reason="DATA index beyond seq", size=size)
        return Data(header=header, seq=seq, index=index, payload=body[DATA_HEADER_LEN:])
    if header.kind is Kind.PARITY:
        if rest < _PARITY.size:
            return Invalid(category="malformed", reason="truncated PARITY header", size=size)
        group, count, parities, index = _PARITY.unpack_from(body, HEADER_LEN)
        if not (1 <= count <= 128 and 1 <= parities <= 128 and index < parities):
            return Invalid(category="malformed", reason="PARITY geometry invalid", size=size)
        return Parity(
            header=header, group=group, count=count, parities=parities, index=index,
            block=body[PARITY_HEADER_LEN:],
        )  # fmt: skip
    if rest != _HEARTBEAT.size:
        return Invalid(category="malformed", reason="HEARTBEAT of wrong length", size=size)
    next_seq, open_, interval_ms, dropped, sent = _HEARTBEAT.unpack_from(body, HEADER_LEN)
    if open_ > next_seq:
        return Invalid(category="malformed", reason="HEARTBEAT open group beyond seq", size=size)
    return Heartbeat(
        header=header, next_seq=next_seq, open=open_, interval_ms=interval_ms,
        dropped=dropped, sent=sent,
    )  # fmt: skip


def frame(payload: bytes, width: int) -> bytes:
    """A payload as one FEC block: length, payload, zero padding to ``width`` bytes."""
    if len(payload) + _LEN.size > width:
        raise ValueError("payload longer than the block width")
    return _LEN.pack(len(payload)) + payload + bytes(width - _LEN.size - len(payload))


def unframe(block: bytes) -> bytes | None:
    """The payload of a recovered FEC block, or None if its length is impossible."""
    if len(block) < _LEN.size:
        return None
    (n,) = _LEN.unpack_from(block)
    return block[_LEN.size : _LEN.size + n] if _LEN.size + n <= len(block) else None


def frame_width(payloads: Sequence[bytes]) -> int:
    return _LEN.size + max(len(p) for p in payloads)


def max_payload(mtu: int, *, sealed: bool = False) -> int:
    """The largest DATA payload that keeps every datagram (PARITY too) within ``mtu``."""
    return mtu - PARITY_HEADER_LEN - _LEN.size - MAC_LEN - (TAG_LEN if sealed else 0)
