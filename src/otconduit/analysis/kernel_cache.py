"""Keep numba's on-disk cache of the compiled kernels in step with their sources.

numba keys a cached kernel on its own source file only. The lane kernels
(``fastpath/kernels/<protocol>.py``) compile in helpers from the other kernel modules,
the store's detail renderer and tables from protocol packages (each protocol's
``FastLane.kernel_sources`` names them, e.g. ``protocols/dnp3/objects.py``), so an
upgrade that changed only those would keep serving the old compiled code. Before the
first kernel runs, :func:`check` compares a digest of all those sources with the one
stored beside the cache and drops the cached kernels when they differ.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from otconduit.protocols import registry

_HERE = Path(__file__).resolve().parent
_KERNELS = _HERE / "fastpath" / "kernels"
_STORE = (
    _HERE.parent / "store" / "detail_render.py",
    _HERE.parent / "store" / "detail_holes.py",
    _HERE.parent / "store" / "opchunks.py",  # NULL
)
_checked = False


def _module_file(name: str) -> Path:
    found = importlib.util.find_spec(name)
    if found is None or found.origin is None:
        raise LookupError(f"kernel source module {name!r} not found")
    return Path(found.origin).resolve()


def protocol_sources() -> list[Path]:
    """Protocol modules the registered fast lanes' kernels compile in."""
    return [
        _module_file(name)
        for spec in registry.default_protocols()
        if spec.fast_lane is not None
        for name in spec.fast_lane.kernel_sources
    ]


def sources() -> list[Path]:
    """Every source file the compiled kernels are built from."""
    return [*sorted(_KERNELS.glob("*.py")), *_STORE, *protocol_sources()]


def digest() -> str:
    h = hashlib.sha256()
    for path in sources():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_folder(source_dir: Path) -> Path:
    """Where numba keeps the compiled code of a source folder's functions: beside them,
    or under NUMBA_CACHE_DIR when that is set (numba's own naming: the folder's name and
    a SHA-1 of its absolute path)."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return source_dir / "__pycache__"
    hashed = hashlib.sha1(str(source_dir.resolve()).encode()).hexdigest()
    return Path(root) / f"{source_dir.name}_{hashed}"


def cache_locations() -> tuple[tuple[Path, str], ...]:
    """Where numba keeps the compiled kernels: folder and the files in it that are kernels."""
    return (
        (cache_folder(_KERNELS), "*.nb[ic]"),
        (cache_folder(_HERE.parent / "store"), "detail_render.*.nb[ic]"),
    )


def check(caches: tuple[tuple[Path, str], ...] | None = None) -> bool:
    """Drop the cached kernels if their sources changed since they were cached; True
    when it dropped them. Runs once per process; a cache it cannot write is left to
    numba (which then compiles in memory). The stamp lives in the first folder."""
    global _checked
    if _checked:
        return False
    _checked = True
    if caches is None:
        caches = cache_locations()
    stamp = caches[0][0] / "kernels.sources"
    current = digest()
    try:
        if stamp.read_text() == current:
            return False
    except OSError:
        pass
    try:
        for folder, pattern in caches:
            for f in folder.glob(pattern):
                f.unlink()
        caches[0][0].mkdir(parents=True, exist_ok=True)
        stamp.write_text(current)
    except OSError:
        return False
    return True
