"""The automatic result of a sample, from its classified red cells. See docs/results.md for the reasoning.

The cell classifier calls a few uninfected cells parasitized, so a handful of parasitized calls among
thousands of cells is not a positive smear, and a smear is only negative when enough cells were examined.
A sample is
- positive when its confidently parasitized cells clearly exceed what the classifier's false-positive rate
  explains: at least POSITIVE_MIN_CELLS of them, and the lower bound of their share's 95 % Wilson interval
  above CONFIDENT_FALSE_POSITIVE_RATE;
- negative when at least MIN_CELLS_FOR_NEGATIVE red cells were classified and the suspect cells (any
  parasitized call, or any uncertain call: uncertain cells count against a negative) stay within the
  NEGATIVE_QUANTILE quantile of the count SUSPECT_FALSE_POSITIVE_RATE alone gives among uninfected cells
  (a binomial);
- indeterminate otherwise, with the reason: a reviewer must look.
The false-positive rates were measured on validation patients only. Pure Python: no Django, no SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# WHO thin-film counting (Malaria microscopy SOP MM-SOP-09) counts parasitized cells against 500 to 2,000 red
# cells; a negative needs at least the low end of that range. Single-cell NIH samples (~70 cells) never reach it.
MIN_CELLS_FOR_NEGATIVE = 500
POSITIVE_MIN_CELLS = 2
NEGATIVE_QUANTILE = 0.99
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile, for the Wilson interval

# Measured on the 1,571 uninfected cells of the model card's 23 validation patients (model cnn-2026.11.26;
# `python -m worker.tools.patient_results --split validation` prints them): 2 were called parasitized outside
# the uncertain band, 44 were called parasitized or fell inside it (18 parasitized calls in all, the card's
# validation fp). Remeasure when the model changes.
VALIDATION_UNINFECTED_CELLS = 1571
VALIDATION_CONFIDENT_FALSE_PARASITIZED = 2
VALIDATION_SUSPECT_UNINFECTED = 44
CONFIDENT_FALSE_POSITIVE_RATE = VALIDATION_CONFIDENT_FALSE_PARASITIZED / VALIDATION_UNINFECTED_CELLS  # 0.13 %
SUSPECT_FALSE_POSITIVE_RATE = VALIDATION_SUSPECT_UNINFECTED / VALIDATION_UNINFECTED_CELLS  # 2.8 %


@dataclass(frozen=True)
class CellTally:
    classified: int
    parasitized: int
    uncertain: int
    confident_parasitized: int
    uncertain_uninfected: int
    field_cells: int = 0  # of the classified cells, those cut from whole-field photographs

    @property
    def suspect(self) -> int:
        """Cells that might be parasitized: every parasitized call and every uncertain call."""
        return self.parasitized + self.uncertain_uninfected


@dataclass(frozen=True)
class SampleResult:
    result: str  # '' while nothing is classified, else 'positive', 'negative' or 'indeterminate'
    reason: str
    parasitemia: float | None  # parasitized calls / classified cells
    parasitemia_low: float | None  # its 95 % Wilson interval
    parasitemia_high: float | None


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (Wilson 1927), clipped to [0, 1]."""
    if trials <= 0:
        raise ValueError("no trials")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summing the probabilities in log space (math.lgamma)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
    return min(1.0, total)


def binomial_quantile(q: float, n: int, p: float) -> int:
    """The smallest k with P(X <= k) >= q, for X ~ Binomial(n, p) (SciPy's binom.ppf)."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    total = 0.0
    for k in range(n + 1):
        total += math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        if total >= q:
            return k
    return n


def false_positive_limit(n: int, rate: float) -> int:
    """The most calls a false-positive rate alone explains among n uninfected cells, at NEGATIVE_QUANTILE."""
    return binomial_quantile(NEGATIVE_QUANTILE, n, rate)


def parasitemia(tally: CellTally) -> float | None:
    return tally.parasitized / tally.classified if tally.classified else None


def sample_result(tally: CellTally, *, validated_on_fields: bool = False) -> SampleResult:
    """The result, the reason shown to the reviewer and the parasitemia with its 95 % interval.

    The false-positive rates below were measured on single-cell crops. A model not validated on cells cut
    from field photographs (its card says) gives no automatic result for samples holding such cells: the
    NIH-only model calls about 5 % of uninfected field cells parasitized (docs/benchmarks.md), which would
    make almost every healthy smear "positive".
    """
    n = tally.classified
    if n == 0:
        return SampleResult("", "", None, None, None)
    low, high = wilson_interval(tally.parasitized, n)

    def done(result: str, reason: str) -> SampleResult:
        return SampleResult(result, reason, tally.parasitized / n, low, high)

    if tally.field_cells and not validated_on_fields:
        return done(
            "indeterminate",
            f"{tally.field_cells} of {n} red cells come from field photographs, on which the served model has "
            "not been validated: a reviewer must read this sample",
        )

    sure = tally.confident_parasitized
    if sure >= POSITIVE_MIN_CELLS and wilson_interval(sure, n)[0] > CONFIDENT_FALSE_POSITIVE_RATE:
        return done(
            "positive",
            f"{sure} of {n} red cells confidently parasitized: clearly more than the classifier's "
            f"false-positive rate ({CONFIDENT_FALSE_POSITIVE_RATE:.2%}) explains",
        )
    if n < MIN_CELLS_FOR_NEGATIVE:
        return done(
            "indeterminate",
            f"only {n} red cells examined; at least {MIN_CELLS_FOR_NEGATIVE} are needed to call a sample negative",
        )
    # The confidently parasitized cells need no limit of their own here: with these rates, one more than
    # false_positive_limit(n, CONFIDENT_FALSE_POSITIVE_RATE) is always positive above (a test checks it).
    suspect_limit = false_positive_limit(n, SUSPECT_FALSE_POSITIVE_RATE)
    if tally.suspect > suspect_limit:
        return done(
            "indeterminate",
            f"{tally.suspect} of {n} red cells parasitized or uncertain ({tally.parasitized} called parasitized, "
            f"{tally.uncertain_uninfected} uncertain uninfected): more than the classifier's false-positive rate "
            f"explains (at most {suspect_limit}) but not clearly a positive",
        )
    return done(
        "negative",
        f"{n} red cells examined; {tally.suspect} parasitized or uncertain, within what the classifier's "
        f"false-positive rate explains (at most {suspect_limit})",
    )


def automatic_result(tally: CellTally) -> str:
    """'' while nothing is classified, else 'positive', 'negative' or 'indeterminate'."""
    return sample_result(tally).result
