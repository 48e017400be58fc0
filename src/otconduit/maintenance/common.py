"""What the watch model (:mod:`.model`) and the CSV detector (:mod:`.changes`) share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ModelError(ValueError):
    """The training data cannot give a model (too few rows, no sensors, not finite)."""


@dataclass(frozen=True, slots=True)
class Scored:
    """Scores and 0/1 anomaly labels of the rows after training."""

    score: np.ndarray
    anomaly: np.ndarray


def trailing_mean(z: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` rows at each row (fewer at the start)."""
    c = np.cumsum(np.vstack([np.zeros((1, z.shape[1])), z]), axis=0)
    idx = np.arange(1, len(z) + 1)
    lo = np.maximum(idx - window, 0)
    out: np.ndarray = (c[idx] - c[lo]) / (idx - lo)[:, None]
    return out
