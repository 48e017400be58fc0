"""Small numpy helpers more than one subsystem uses."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def distinct_ints(values: npt.NDArray[np.integer]) -> list[int]:
    """The distinct values, ascending. Most often there is one (a file's link type, a
    group's function code, a poller's unit), which two reductions tell without the sort
    ``np.unique`` does."""
    lo, hi = int(values.min()), int(values.max())
    return [lo] if lo == hi else np.unique(values).tolist()
