"""The automatic result of a sample from its classified red cells, at and around each boundary. No database."""

from __future__ import annotations

import dataclasses
import math

import pytest

from worker.serving.results import (
    LEGACY_RATES,
    MIN_CELLS_FOR_NEGATIVE,
    NEGATIVE_QUANTILE,
    POSITIVE_MIN_CELLS,
    CellTally,
    FalsePositiveRates,
    RuleRates,
    SampleResult,
    automatic_result,
    binomial_cdf,
    binomial_quantile,
    false_positive_limit,
    parasitemia,
    sample_result,
    wilson_interval,
)

pytestmark = pytest.mark.pure

# The rule's boundaries below are worked out at the rates of the model that had no field validation
# (cnn-2026.11.26), which sample_result uses by default; the served card's rates are tested further down.
CONFIDENT_FALSE_POSITIVE_RATE = LEGACY_RATES.cells.confident_rate
SUSPECT_FALSE_POSITIVE_RATE = LEGACY_RATES.cells.suspect_rate


def tally(*, parasitized=0, uninfected=0, uncertain_parasitized=0, uncertain_uninfected=0) -> CellTally:
    """Counted as diagnostics.services.sample_refresh counts: a cell's label, and whether it was uncertain."""
    return CellTally(
        classified=parasitized + uninfected + uncertain_parasitized + uncertain_uninfected,
        parasitized=parasitized + uncertain_parasitized,
        uncertain=uncertain_parasitized + uncertain_uninfected,
        confident_parasitized=parasitized,
        uncertain_uninfected=uncertain_uninfected,
    )


def test_the_numbers_are_the_documented_ones():
    assert (MIN_CELLS_FOR_NEGATIVE, POSITIVE_MIN_CELLS, NEGATIVE_QUANTILE) == (500, 2, 0.99)
    assert pytest.approx(2 / 1571) == CONFIDENT_FALSE_POSITIVE_RATE
    assert pytest.approx(44 / 1571) == SUSPECT_FALSE_POSITIVE_RATE
    # What they give at the counts WHO uses (docs/results.md quotes these).
    limits = {n: false_positive_limit(n, SUSPECT_FALSE_POSITIVE_RATE) for n in (500, 1000, 2000)}
    assert limits == {500: 23, 1000: 41, 2000: 74}


def test_nothing_classified_has_no_result_yet():
    assert sample_result(tally()) == SampleResult("", "", None, None, None)
    assert automatic_result(tally()) == ""
    assert parasitemia(tally()) is None


def test_the_result_carries_the_parasitemia_and_its_interval():
    outcome = sample_result(tally(parasitized=3, uninfected=17))
    assert outcome.parasitemia == pytest.approx(0.15)
    assert (outcome.parasitemia_low, outcome.parasitemia_high) == pytest.approx((0.052369, 0.360419), abs=1e-6)
    assert automatic_result(tally(parasitized=3, uninfected=17)) == outcome.result == "positive"


def test_the_interval_covers_every_parasitized_call_uncertain_or_not():
    outcome = sample_result(tally(parasitized=3, uncertain_parasitized=1, uninfected=16))
    assert outcome.parasitemia == parasitemia(tally(parasitized=3, uncertain_parasitized=1, uninfected=16)) == 0.2
    assert (outcome.parasitemia_low, outcome.parasitemia_high) == wilson_interval(4, 20)


# -- MIN_CELLS_FOR_NEGATIVE: fewer red cells are never negative, however clean ------------------------------


def test_enough_uninfected_cells_are_negative():
    outcome = sample_result(tally(uninfected=MIN_CELLS_FOR_NEGATIVE))
    assert outcome.result == "negative"
    assert outcome.reason == (
        "500 red cells examined; 0 parasitized or uncertain, within what the classifier's false-positive rate "
        "explains (at most 23)"
    )


def test_one_cell_short_is_indeterminate_with_the_reason():
    outcome = sample_result(tally(uninfected=MIN_CELLS_FOR_NEGATIVE - 1))
    assert outcome.result == "indeterminate"
    assert outcome.reason == "only 499 red cells examined; at least 500 are needed to call a sample negative"


def test_a_single_cell_sample_of_nih_size_is_never_negative():
    outcome = sample_result(tally(uninfected=70))
    assert (outcome.result, outcome.reason) == (
        "indeterminate",
        "only 70 red cells examined; at least 500 are needed to call a sample negative",
    )


# -- the false-positive limit on suspect cells (parasitized or uncertain), at 500 and 2,000 cells ------------


@pytest.mark.parametrize("cells", [500, 2000])
@pytest.mark.parametrize("kind", ["uncertain_uninfected", "uncertain_parasitized"])
def test_suspect_cells_at_the_limit_are_negative_and_one_more_is_not(cells, kind):
    limit = false_positive_limit(cells, SUSPECT_FALSE_POSITIVE_RATE)
    at = sample_result(tally(uninfected=cells - limit, **{kind: limit}))
    over = sample_result(tally(uninfected=cells - limit - 1, **{kind: limit + 1}))
    assert at.result == "negative"
    assert over.result == "indeterminate"
    assert "more than the classifier's false-positive rate explains" in over.reason
    assert over.reason.endswith(f"(at most {limit}) but not clearly a positive")


def test_the_indeterminate_reason_names_the_counts():
    outcome = sample_result(tally(parasitized=1, uncertain_parasitized=10, uncertain_uninfected=13, uninfected=476))
    assert (outcome.result, outcome.reason) == (
        "indeterminate",
        "24 of 500 red cells parasitized or uncertain (11 called parasitized, 13 uncertain uninfected): more than "
        "the classifier's false-positive rate explains (at most 23) but not clearly a positive",
    )


def test_a_stray_confident_parasitized_call_among_many_cells_is_negative():
    assert automatic_result(tally(parasitized=1, uninfected=1999)) == "negative"


# -- positive: at least POSITIVE_MIN_CELLS confident cells, Wilson lower bound above the false-positive rate --


@pytest.mark.parametrize(("cells", "confident", "last_positive"), [(431, 2, True), (432, 2, False)])
def test_two_confident_cells_are_positive_up_to_431_cells(cells, confident, last_positive):
    low = wilson_interval(confident, cells)[0]
    assert (low > CONFIDENT_FALSE_POSITIVE_RATE) is last_positive
    outcome = sample_result(tally(parasitized=confident, uninfected=cells - confident))
    assert outcome.result == ("positive" if last_positive else "indeterminate")


@pytest.mark.parametrize(("cells", "expected"), [(801, "positive"), (802, "negative")])
def test_three_confident_cells_among_enough_cells(cells, expected):
    assert automatic_result(tally(parasitized=3, uninfected=cells - 3)) == expected


def test_the_positive_reason():
    outcome = sample_result(tally(parasitized=10, uninfected=990))
    assert (outcome.result, outcome.reason) == (
        "positive",
        "10 of 1000 red cells confidently parasitized: clearly more than the classifier's false-positive rate "
        "(0.13%) explains",
    )


def test_one_parasitized_cell_is_never_positive():
    assert automatic_result(tally(parasitized=1)) == "indeterminate"
    assert automatic_result(tally(parasitized=POSITIVE_MIN_CELLS)) == "positive"


def test_uncertain_parasitized_cells_never_make_a_positive():
    assert automatic_result(tally(uncertain_parasitized=100, uninfected=900)) == "indeterminate"
    assert automatic_result(tally(parasitized=100, uninfected=900)) == "positive"


def test_confident_cells_beyond_their_own_limit_are_always_positive():
    """Why the rule needs no separate limit on confident cells before a negative: one over it is positive."""
    for cells in range(MIN_CELLS_FOR_NEGATIVE, 20_001, 50):
        over = false_positive_limit(cells, CONFIDENT_FALSE_POSITIVE_RATE) + 1
        assert automatic_result(tally(parasitized=over, uninfected=cells - over)) == "positive", cells


# -- the statistics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (5, 10, 0.236593, 0.763407),
        (0, 10, 0.0, 0.277533),  # z^2 / (n + z^2)
        (10, 10, 0.722467, 1.0),
    ],
)
def test_wilson_interval_known_values(successes, trials, low, high):
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-6)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe_1998(successes, trials, low, high):
    """Newcombe, Statistics in Medicine 17:857 (1998), table I, method 3 (score, without continuity correction)."""
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_without_trials_is_an_error():
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_binomial_tail_in_small_cases_by_hand():
    assert binomial_cdf(0, 10, 0.1) == pytest.approx(0.9**10)
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)
    assert binomial_cdf(-1, 3, 0.5) == 0.0 and binomial_cdf(3, 3, 0.5) == 1.0
    assert binomial_quantile(0.99, 100, 0.0) == 0 and binomial_quantile(0.99, 100, 1.0) == 100
    assert math.isclose(binomial_cdf(10, 100_000, SUSPECT_FALSE_POSITIVE_RATE), 0.0, abs_tol=1e-300)


def test_binomial_tail_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for n in (1, 20, 70, 499, 500, 2000, 10_000, 100_000):
        for p in (CONFIDENT_FALSE_POSITIVE_RATE, SUSPECT_FALSE_POSITIVE_RATE, 0.01, 0.3):
            for q in (0.5, 0.95, NEGATIVE_QUANTILE, 0.999):
                assert binomial_quantile(q, n, p) == int(stats.binom.ppf(q, n, p)), (q, n, p)
            for k in {0, 1, int(n * p), int(n * p + 3 * math.sqrt(n * p) + 1)}:
                assert binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-9, abs=1e-12), (k, n, p)


def test_cells_from_fields_get_no_automatic_result_from_a_model_not_validated_on_fields():
    clear_positive = tally(parasitized=40, uninfected=960)
    from_fields = dataclasses.replace(clear_positive, field_cells=1000)
    assert sample_result(clear_positive).result == "positive"
    unvalidated = sample_result(from_fields)
    assert unvalidated.result == "indeterminate"
    assert unvalidated.reason == (
        "1000 of 1000 red cells come from field photographs, on which the served model has not been validated: "
        "a reviewer must read this sample"
    )
    assert unvalidated.parasitemia == 0.04, "the count is still shown"
    validated = RuleRates(cells=LEGACY_RATES.cells, fields=FalsePositiveRates(8000, 8, 80))
    assert sample_result(from_fields, validated).result == "positive"


def test_a_mixed_sample_is_judged_at_the_rate_its_mix_gives():
    rates = RuleRates(cells=FalsePositiveRates(1000, 20, 60), fields=FalsePositiveRates(10_000, 10, 100))
    only_cells = tally(parasitized=6, uninfected=994)
    outcome = sample_result(only_cells, rates)
    assert outcome.result == "negative", "6 in 1,000 is within 2 % confident false calls"
    assert outcome.reason.endswith("(at most 78)"), "99th percentile of Binomial(1000, 6 %)"
    only_fields = dataclasses.replace(only_cells, field_cells=1000)
    assert sample_result(only_fields, rates).result == "positive", "6 in 1,000 is far above 0.1 %"
    half = dataclasses.replace(only_cells, field_cells=500)  # confident 1.05 %, suspect 3.5 %
    outcome = sample_result(half, rates)
    assert outcome.result == "negative"
    assert outcome.reason.endswith("(at most 49)"), "99th percentile of Binomial(1000, 3.5 %)"


def test_a_rate_measured_as_zero_counts_as_one_cell():
    rates = FalsePositiveRates(uninfected=2000, confident=0, suspect=5)
    assert rates.confident_rate == 1 / 2000
    assert rates.suspect_rate == 5 / 2000
    no_false_calls = RuleRates(cells=rates, fields=None)
    # Two confident calls in 3,000 cells: a zero rate would call it positive; 1 in 2,000 does not.
    assert sample_result(tally(parasitized=2, uninfected=2998), no_false_calls).result != "positive"


@pytest.mark.parametrize("kind", ["cells", "fields"])
def test_at_the_served_models_rates_confident_cells_beyond_their_limit_are_positive(kind):
    from worker.serving.model_card import load_model_card

    rates = load_model_card().rule_rates
    rate = getattr(rates, kind).confident_rate
    for cells in range(MIN_CELLS_FOR_NEGATIVE, 20_001, 50):
        over = false_positive_limit(cells, rate) + 1
        counts = tally(parasitized=over, uninfected=cells - over)
        counts = dataclasses.replace(counts, field_cells=cells if kind == "fields" else 0)
        assert sample_result(counts, rates).result == "positive", cells
