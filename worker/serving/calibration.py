"""From the network's logit to a calibrated probability, with the temperature fitted in training.

NumPy only: serving must not import SciPy for one sigmoid (about 0.6 s and 49 MB per worker process).
The fitting itself lives in worker.training.calibration.
"""

from __future__ import annotations

import numpy as np


def calibrated_probability(logits: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit / T), bit for bit what SciPy's expit gives (tests/test_engine.py compares them)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    # exp(-z) overflows to inf for z < -709, and 1 / (1 + inf) is the right limit, 0.
    with np.errstate(over="ignore", under="ignore"):
        return 1.0 / (1.0 + np.exp(-z))
