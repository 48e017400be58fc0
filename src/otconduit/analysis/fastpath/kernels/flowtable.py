"""Open-addressing hash table from a packet's 4-tuple and VLAN to a lane slot.

Keys are two int64 words (addresses; ports and VLAN); the value is ``2 * slot +
direction``. Deleted entries are marked -2 and probed past; the owner keeps live plus
deleted entries under half the table and rebuilds it when they would not be.
"""

from __future__ import annotations

import numpy as np

from otconduit.jit import njit

_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3's 64-bit finalizer constants
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


@njit(cache=True, nogil=True, inline="always")
def _mix(x):
    x ^= x >> _S33
    x *= _MIX_1
    x ^= x >> _S33
    x *= _MIX_2
    x ^= x >> _S33
    return x


@njit(cache=True, nogil=True, inline="always")
def _slot_hash(k1, k2, mask):
    """Every bit of both words reaches the index. A multiply alone carries bits upward
    only: the client port, high in ``k2``, never reached a small table's index, so all
    the connections of one client to one server shared one probe chain."""
    h = _mix(np.uint64(k1) ^ _mix(np.uint64(k2)))
    return np.int64(h & np.uint64(mask))


@njit(cache=True, nogil=True, inline="always")
def flow_keys(src, dst, sport, dport, vlan):
    k1 = (np.int64(src) << 32) | np.int64(dst)
    k2 = (np.int64(sport) << 48) | (np.int64(dport) << 32) | (np.int64(vlan) & 0xFFFFFFFF)
    return k1, k2


@njit(cache=True, nogil=True, inline="always")
def _table_find(tk1, tk2, tv, k1, k2):
    """Position holding the key, or -1. Deleted entries (-2) are probed past."""
    mask = len(tv) - 1
    h = _slot_hash(k1, k2, mask)
    while True:
        v = tv[h]
        if v == -1:
            return -1
        if v >= 0 and tk1[h] == k1 and tk2[h] == k2:
            return h
        h = (h + 1) & mask


@njit(cache=True, nogil=True)
def table_insert(tk1, tk2, tv, k1, k2, value):
    """Insert or overwrite; returns 1 when a new position was used."""
    h = _table_find(tk1, tk2, tv, k1, k2)
    if h >= 0:
        tv[h] = value
        return 0
    mask = len(tv) - 1
    h = _slot_hash(k1, k2, mask)
    while tv[h] >= 0:
        h = (h + 1) & mask
    fresh = 1 if tv[h] == -1 else 0
    tk1[h] = k1
    tk2[h] = k2
    tv[h] = value
    return fresh


@njit(cache=True, nogil=True)
def table_delete(tk1, tk2, tv, k1, k2):
    h = _table_find(tk1, tk2, tv, k1, k2)
    if h >= 0:
        tv[h] = -2


@njit(cache=True, nogil=True, inline="always")
def table_get(tk1, tk2, tv, k1, k2):
    h = _table_find(tk1, tk2, tv, k1, k2)
    return -1 if h < 0 else tv[h]
