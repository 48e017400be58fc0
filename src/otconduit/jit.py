"""numba, set up once for every compiled loop of Conduit (import ``njit`` from here).

numba's first compile or cache load types cffi functions too: it imports cffi and builds
a C parser, 30 ms of every ``conduit analyze`` start, although no kernel calls cffi. Its
cffi support is loaded here with cffi hidden, so it is off for numba alone; cffi itself
stays importable for anything else in the process.
"""

from __future__ import annotations

import sys

_ABSENT = object()


def _numba_without_cffi() -> None:
    if "numba.core.typing.cffi_utils" in sys.modules:
        return
    saved = sys.modules.get("cffi", _ABSENT)
    sys.modules["cffi"] = None  # type: ignore[assignment]  # import cffi -> ImportError
    try:
        import numba.core.typing.cffi_utils  # noqa: F401
    finally:
        if saved is _ABSENT:
            del sys.modules["cffi"]
        else:
            sys.modules["cffi"] = saved  # type: ignore[assignment]


_numba_without_cffi()

from numba import njit  # noqa: E402

__all__ = ["njit"]
