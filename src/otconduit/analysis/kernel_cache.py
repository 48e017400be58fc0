"""Keep numba's on-disk cache of the bulk-path kernels in step with their sources.

numba keys a cached kernel on its own source file only. The lane kernels
(``kernels_s7``, ``kernels_enip``, ``kernels_dnp3``) compile in helpers from
``kernels_tx`` and ``kernels`` and tables from ``protocols/dnp3/objects.py``, so an
upgrade that changed only those would keep serving the old compiled code. Before the
first kernel runs, :func:`check` compares a digest of all those sources with the one
stored beside the cache and drops the cached kernels when they differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
SOURCES = (
    _HERE / "kernels.py",
    _HERE / "kernels_tx.py",
    _HERE / "kernels_s7.py",
    _HERE / "kernels_enip.py",
    _HERE / "kernels_dnp3.py",
    _HERE.parent / "protocols" / "dnp3" / "objects.py",
)
_checked = False


def digest() -> str:
    h = hashlib.sha256()
    for path in SOURCES:
        h.update(path.read_bytes())
    return h.hexdigest()


def check(cache: Path = _HERE / "__pycache__") -> bool:
    """Drop the cached kernels if their sources changed since they were cached; True
    when it dropped them. Runs once per process; a cache it cannot write is left to
    numba (which then compiles in memory)."""
    global _checked
    if _checked:
        return False
    _checked = True
    stamp = cache / "kernels.sources"
    current = digest()
    try:
        if stamp.read_text() == current:
            return False
    except OSError:
        pass
    try:
        for f in cache.glob("kernels*.nb[ic]"):
            f.unlink()
        cache.mkdir(exist_ok=True)
        stamp.write_text(current)
    except OSError:
        return False
    return True
