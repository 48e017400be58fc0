"""Reed-Solomon erasure code over GF(2^8): any ``k`` of ``k + m`` blocks give back the
``k`` data blocks.

Systematic code: the data blocks go out unchanged, followed by ``m`` parity blocks.
Parity ``j`` is ``sum_i C[j][i] * data[i]`` over GF(2^8) with a Cauchy matrix
``C[j][i] = 1 / (x_j + y_i)``, ``x_j = j`` and ``y_i = 128 + i`` (all distinct, so
every square sub-matrix of ``[I; C]`` is invertible: the code is MDS for any
``k <= 128`` and ``m <= 128``). Because ``C[j][i]`` does not depend on ``k``, a group
cut short (the sender flushes when it goes idle) just uses the first ``k'`` columns.
The field is GF(2)[x] / (x^8 + x^4 + x^3 + x^2 + 1), 0x11D, the polynomial of most RS
erasure codes (e.g. RFC 5510 section 8.1).

Blocks of one group must have the same length; the caller pads them (the diode frames
each payload with its length first, see :mod:`otconduit.gateway.diode.wire`).
Pure numpy: a block is coded with one table lookup per coefficient, so a k=8, m=2 group
of 1,400-byte blocks costs tens of microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

MAX_DATA = 128
MAX_PARITY = 128
_POLY = 0x11D

U8 = npt.NDArray[np.uint8]


class FecError(ValueError):
    """Not enough blocks to decode, or blocks of a group that do not fit together."""


def _tables() -> tuple[list[int], list[int], U8]:
    exp = [0] * 512
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= _POLY
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    mul = np.zeros((256, 256), dtype=np.uint8)
    for a in range(1, 256):
        for b in range(1, 256):
            mul[a, b] = exp[log[a] + log[b]]
    return exp, log, mul


_EXP, _LOG, MUL = _tables()


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(256)")
    return _EXP[255 - _LOG[a]]


def coefficient(j: int, i: int) -> int:
    """Cauchy coefficient of data block ``i`` in parity block ``j``."""
    return gf_inv(j ^ (MAX_DATA + i))


def _check(k: int, m: int) -> None:
    if not 1 <= k <= MAX_DATA:
        raise FecError(f"k={k}: a group holds 1 to {MAX_DATA} data blocks")
    if not 0 <= m <= MAX_PARITY:
        raise FecError(f"m={m}: a group has 0 to {MAX_PARITY} parity blocks")


def _combine(coeffs: Sequence[int], blocks: U8) -> U8:
    """sum_i coeffs[i] * blocks[i] over GF(256); ``blocks`` is (n, length)."""
    acc = np.zeros(blocks.shape[1], dtype=np.uint8)
    for c, row in zip(coeffs, blocks, strict=True):
        if c == 1:
            acc ^= row
        elif c:
            acc ^= MUL[c][row]
    return acc


def _as_matrix(blocks: Sequence[bytes]) -> U8:
    length = len(blocks[0])
    if any(len(b) != length for b in blocks):
        raise FecError("blocks of one group must have the same length")
    return np.frombuffer(b"".join(blocks), dtype=np.uint8).reshape(len(blocks), length)


def encode(data: Sequence[bytes], m: int) -> list[bytes]:
    """The ``m`` parity blocks of ``data`` (equal-length blocks)."""
    _check(len(data), m)
    if m == 0:
        return []
    mat = _as_matrix(data)
    return [
        _combine([coefficient(j, i) for i in range(len(data))], mat).tobytes() for j in range(m)
    ]


def _invert(rows: list[list[int]]) -> list[list[int]]:
    """Gauss-Jordan inverse of a square matrix over GF(256)."""
    n = len(rows)
    a = [list(r) + [1 if i == j else 0 for j in range(n)] for i, r in enumerate(rows)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:  # cannot happen for a Cauchy-based code; guards misuse
            raise FecError("singular decoding matrix")
        a[col], a[pivot] = a[pivot], a[col]
        inv = gf_inv(a[col][col])
        a[col] = [gf_mul(inv, v) for v in a[col]]
        for r in range(n):
            f = a[r][col]
            if r != col and f:
                a[r] = [v ^ gf_mul(f, p) for v, p in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def decode(k: int, m: int, blocks: Mapping[int, bytes]) -> dict[int, bytes]:
    """The missing data blocks of a group from any ``k`` received ones.

    ``blocks`` maps a block index to its bytes: ``0 .. k-1`` for data, ``k .. k+m-1``
    for parity ``0 .. m-1``. Returns ``{data index: bytes}`` for every data block that
    was absent (empty when none was). Raises :class:`FecError` with fewer than ``k``.
    """
    _check(k, m)
    if any(not 0 <= i < k + m for i in blocks):
        raise FecError(f"block index out of range for k={k}, m={m}")
    missing = [i for i in range(k) if i not in blocks]
    if not missing:
        return {}
    if len(blocks) < k:
        raise FecError(f"{len(blocks)} of {k + m} blocks received, {k} needed")
    # Every present data block, then just enough parity blocks to make k equations.
    chosen = sorted(i for i in blocks if i < k)
    chosen += sorted(i for i in blocks if i >= k)[: len(missing)]
    rows = [
        [1 if c == i else 0 for c in range(k)]
        if i < k
        else [coefficient(i - k, c) for c in range(k)]
        for i in chosen
    ]
    inverse = _invert(rows)
    mat = _as_matrix([blocks[i] for i in chosen])
    return {i: _combine(inverse[i], mat).tobytes() for i in missing}
