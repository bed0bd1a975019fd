"""From the network's logit to a calibrated probability, with the temperature fitted in training.

NumPy only: serving must not import SciPy for one sigmoid (about 0.6 s and 49 MB per worker process).
The fitting itself lives in worker.training.calibration.
"""

from __future__ import annotations

import numpy as np


def calibrated_probability(logits: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit / T), what SciPy's expit gives to within 2 units in the last place.

    Not bit for bit on every machine: NumPy's vectorised exp differs from the C library's by up to one unit
    in the last place on some CPUs (seen on an AVX-512 machine), far below anything a threshold can see
    (tests/test_serving_calibration.py compares them)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    # exp(-z) overflows to inf for z < -709, and 1 / (1 + inf) is the right limit, 0.
    with np.errstate(over="ignore", under="ignore"):
        return 1.0 / (1.0 + np.exp(-z))
