"""The automatic result of a sample, from its classified red cells. See docs/results.md for the reasoning.

The cell classifier calls a few uninfected cells parasitized, so a handful of parasitized calls among
thousands of cells is not a positive smear, and a smear is only negative when enough cells were examined.
A sample is
- positive when its confidently parasitized cells clearly exceed what the classifier's false-positive rate
  explains: at least POSITIVE_MIN_CELLS of them, and the lower bound of their share's 95 % Wilson interval
  above the confident false-positive rate;
- negative when at least MIN_CELLS_FOR_NEGATIVE red cells were classified and the suspect cells (any
  parasitized call, or any uncertain call: uncertain cells count against a negative) stay within the
  NEGATIVE_QUANTILE quantile of the count the suspect false-positive rate alone gives among uninfected cells
  (a binomial);
- indeterminate otherwise, with the reason: a reviewer must look.
The false-positive rates belong to the model: training measures them on validation data only (single cells on
validation patients, field chips on validation blocks, each at its own threshold and band) and writes them in
the model card. A sample holding both kinds of cell is judged at the rate its mix gives. Pure Python: no
Django, no SciPy.
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


@dataclass(frozen=True)
class FalsePositiveRates:
    """The classifier's false calls among the uninfected cells of one kind, counted on validation data."""

    uninfected: int  # uninfected cells examined
    confident: int  # of them, called parasitized outside the uncertain band
    suspect: int  # called parasitized or uncertain
    measured_on: str = ""

    @property
    def confident_rate(self) -> float:
        # Never zero: no confident false call among a few thousand validation cells is not a zero rate, and a
        # zero would make any two confident calls a positive.
        return max(self.confident, 1) / self.uninfected

    @property
    def suspect_rate(self) -> float:
        return self.suspect / self.uninfected

    @classmethod
    def from_card(cls, data: dict) -> FalsePositiveRates:
        return cls(
            int(data["uninfected"]), int(data["confident"]), int(data["suspect"]), str(data.get("measured_on", ""))
        )


@dataclass(frozen=True)
class RuleRates:
    cells: FalsePositiveRates  # single-cell crops
    fields: FalsePositiveRates | None  # chips cut from field photographs; None: the model was not validated on them


# For a model card written before cards carried their rates (cnn-2026.11.26): its 1,571 uninfected cells of 23
# validation patients, 2 called parasitized outside the uncertain band, 44 parasitized or inside it.
LEGACY_RATES = RuleRates(
    cells=FalsePositiveRates(1571, 2, 44, "cnn-2026.11.26: NIH validation patients (23)"), fields=None
)


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


def mixed_rates(tally: CellTally, rates: RuleRates) -> tuple[float, float]:
    """(confident, suspect) false-positive rates of this sample's mix of single cells and field cells.

    The expected number of false calls is the sum over both kinds; judging it with one binomial at the mean
    rate slightly overstates the spread of the true (Poisson binomial) count, so a negative is, if anything,
    a little easier to reach than with exact mixing; with one kind of cell it is exact.
    """
    assert rates.fields is not None or not tally.field_cells
    n, from_fields = tally.classified, tally.field_cells
    share = from_fields / n if n else 0.0
    kinds = [(1.0 - share, rates.cells)] + ([(share, rates.fields)] if rates.fields is not None else [])
    return (
        sum(w * r.confident_rate for w, r in kinds if w),
        sum(w * r.suspect_rate for w, r in kinds if w),
    )


def sample_result(tally: CellTally, rates: RuleRates = LEGACY_RATES) -> SampleResult:
    """The result, the reason shown to the reviewer and the parasitemia with its 95 % interval.

    rates: the served model's (ModelCard.rule_rates). A model not validated on cells cut from field
    photographs (rates.fields is None) gives no automatic result for samples holding such cells: the
    NIH-only model calls about 5 % of uninfected field cells parasitized (docs/benchmarks.md), which would
    make almost every healthy smear "positive".
    """
    n = tally.classified
    if n == 0:
        return SampleResult("", "", None, None, None)
    low, high = wilson_interval(tally.parasitized, n)

    def done(result: str, reason: str) -> SampleResult:
        return SampleResult(result, reason, tally.parasitized / n, low, high)

    if tally.field_cells and rates.fields is None:
        return done(
            "indeterminate",
            f"{tally.field_cells} of {n} red cells come from field photographs, on which the served model has "
            "not been validated: a reviewer must read this sample",
        )
    confident_rate, suspect_rate = mixed_rates(tally, rates)

    sure = tally.confident_parasitized
    if sure >= POSITIVE_MIN_CELLS and wilson_interval(sure, n)[0] > confident_rate:
        return done(
            "positive",
            f"{sure} of {n} red cells confidently parasitized: clearly more than the classifier's "
            f"false-positive rate ({confident_rate:.2%}) explains",
        )
    if n < MIN_CELLS_FOR_NEGATIVE:
        return done(
            "indeterminate",
            f"only {n} red cells examined; at least {MIN_CELLS_FOR_NEGATIVE} are needed to call a sample negative",
        )
    # The confidently parasitized cells need no limit of their own here: at the served rates, one more than
    # false_positive_limit(n, confident_rate) is always positive above (a test checks it).
    suspect_limit = false_positive_limit(n, suspect_rate)
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


def automatic_result(tally: CellTally, rates: RuleRates = LEGACY_RATES) -> str:
    """'' while nothing is classified, else 'positive', 'negative' or 'indeterminate'."""
    return sample_result(tally, rates).result
