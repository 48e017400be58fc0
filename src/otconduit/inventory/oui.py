"""MAC vendor lookup from the IEEE registry shipped offline with netaddr.

netaddr parses its whole index into dictionaries the first time any address is looked
up (about a tenth of a second, once per process, which every analysis paid). Here the
index is read into two sorted arrays and the registry record of an OUI is read from
the registry file only when asked: the same answer as
``netaddr.EUI(mac).oui.registration().org`` (its first registration), for a fraction
of the start-up.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np

_PACKAGE = "netaddr.eui"
_LOCAL = 1 << 41  # locally administered bit of a 48-bit MAC: no registry entry applies


@lru_cache(maxsize=1)
def _index() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(OUIs sorted, their record offsets, sizes): the first registration of each."""
    text = (files(_PACKAGE) / "oui.idx").read_bytes()
    rows = np.array(text.replace(b"\n", b",").split(b",")[: text.count(b"\n") * 3])
    table = rows.astype(np.int64).reshape(-1, 3)
    order = np.argsort(table[:, 0], kind="stable")  # file order within one OUI
    table = table[order]
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()


def _organisation(record: str) -> str | None:
    for line in record.split("\n"):
        line = line.strip()
        if "(hex)" in line:
            parts = line.split(None, 2)
            return parts[2] if len(parts) == 3 else None
    return None


@lru_cache(maxsize=65536)
def mac_vendor(mac: str) -> str | None:
    """Organisation that registered the MAC's OUI, or None for unregistered/local MACs."""
    digits = mac.replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 12:
        return None
    try:
        value = int(digits, 16)
    except ValueError:
        return None
    if value & _LOCAL:
        return None
    keys, offsets, sizes = _index()
    oui = value >> 24
    k = int(np.searchsorted(keys, oui))
    if k == len(keys) or int(keys[k]) != oui:
        return None
    with (files(_PACKAGE) / "oui.txt").open("rb") as fh:
        fh.seek(int(offsets[k]))
        record = fh.read(int(sizes[k])).decode("utf-8", "replace")
    org = _organisation(record)
    if org is None:
        return None
    org = " ".join(org.split()).strip(" ,.")
    return org or None
