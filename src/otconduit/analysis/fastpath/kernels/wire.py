"""Integer readers for the kernels (big- and little-endian), inlined into callers."""

from __future__ import annotations

import numpy as np

from otconduit.jit import njit


@njit(cache=True, nogil=True, inline="always")
def u16(buf, p):
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@njit(cache=True, nogil=True, inline="always")
def u32(buf, p):
    return (
        (np.int64(buf[p]) << 24)
        | (np.int64(buf[p + 1]) << 16)
        | (np.int64(buf[p + 2]) << 8)
        | np.int64(buf[p + 3])
    )


@njit(cache=True, nogil=True, inline="always")
def u16le(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8)


@njit(cache=True, nogil=True, inline="always")
def u32le(b, p):
    return (
        np.int64(b[p])
        | (np.int64(b[p + 1]) << 8)
        | (np.int64(b[p + 2]) << 16)
        | (np.int64(b[p + 3]) << 24)
    )


@njit(cache=True, nogil=True, inline="always")
def mac48(buf, p):
    v = np.int64(0)
    for k in range(6):
        v = (v << 8) | np.int64(buf[p + k])
    return v
