"""Serving applies the temperature without SciPy, and gets the probabilities SciPy would (to the last bits)."""

import numpy as np
import pytest

from worker.serving.calibration import calibrated_probability

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.37])
def test_calibrated_probability_is_scipys_expit_to_the_last_bits(temperature):
    expit = pytest.importorskip("scipy.special").expit
    logits = np.concatenate([np.linspace(-900, 900, 20_001), np.random.default_rng(7).normal(0, 6, 20_000)])
    # NumPy's SIMD exp and the C library's may differ by one unit in the last place, depending on the CPU.
    np.testing.assert_array_max_ulp(calibrated_probability(logits, temperature), expit(logits / temperature), maxulp=2)


def test_extreme_logits_give_0_and_1_without_warnings():
    with np.errstate(all="raise"):
        probabilities = calibrated_probability(np.array([-1e6, 0.0, 1e6]), 1.0)
    assert probabilities.tolist() == [0.0, 0.5, 1.0]
