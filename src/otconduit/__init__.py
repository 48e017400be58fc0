"""Conduit: passive OT monitoring and IT/OT convergence toolkit."""

import os as _os
import tempfile as _tempfile
from pathlib import Path as _Path

__version__ = "0.1.0"


def _private_kernel_cache() -> None:
    """numba keeps compiled kernels beside their sources. A user who cannot write there
    (the sensor running as its own service user) gets a cache folder of their own
    instead of an error; set before numba is first imported."""
    if "NUMBA_CACHE_DIR" in _os.environ:
        return
    here = _Path(__file__).resolve().parent
    folders = [here / "analysis" / "fastpath" / "kernels", here / "store", here / "capture"]
    if all(_os.access(f / "__pycache__" if (f / "__pycache__").exists() else f, _os.W_OK)
           for f in folders):  # fmt: skip
        return
    base = _os.environ.get("XDG_CACHE_HOME") or str(_Path.home() / ".cache")
    if not _os.access(base, _os.W_OK) and not _os.access(_Path(base).parent, _os.W_OK):
        base = _tempfile.gettempdir()
    _os.environ["NUMBA_CACHE_DIR"] = str(_Path(base) / f"conduit-kernels-{_os.getuid()}")


_private_kernel_cache()
