"""otconduit.jit: numba's cffi support is left out, cffi itself stays importable."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from otconduit.arrays import distinct_ints


def test_numba_loads_without_cffi_and_cffi_still_imports() -> None:
    pytest.importorskip("cffi")
    code = (
        "import sys\n"
        "import otconduit.jit\n"
        "from numba.core.typing import cffi_utils\n"
        "print(cffi_utils.SUPPORTED, 'cffi' in sys.modules)\n"
        "import cffi\n"
        "print(cffi.FFI is not None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False", "True"]


def test_distinct_ints() -> None:
    assert distinct_ints(np.array([7, 7, 7], np.int32)) == [7]
    assert distinct_ints(np.array([9, 1, 9, 4], np.int64)) == [1, 4, 9]
