"""The automatic result of a sample from its classified cells, at and around each threshold. No database."""

from __future__ import annotations

import pytest

from worker.serving.results import (
    MIN_CELLS_FOR_RESULT,
    NEGATIVE_PARASITEMIA,
    POSITIVE_MIN_CELLS,
    POSITIVE_PARASITEMIA,
    CellTally,
    automatic_result,
    parasitemia,
)

pytestmark = pytest.mark.pure


def tally(*, parasitized=0, uninfected=0, uncertain_parasitized=0, uncertain_uninfected=0) -> CellTally:
    """Counted as diagnostics.services.sample_refresh counts: a cell's label, and whether it was uncertain."""
    return CellTally(
        classified=parasitized + uninfected + uncertain_parasitized + uncertain_uninfected,
        parasitized=parasitized + uncertain_parasitized,
        uncertain=uncertain_parasitized + uncertain_uninfected,
        confident_parasitized=parasitized,
        uncertain_uninfected=uncertain_uninfected,
    )


def share(fraction: float, of: int) -> int:
    return round(fraction * of)


def test_the_thresholds_are_the_documented_ones():
    assert (MIN_CELLS_FOR_RESULT, POSITIVE_PARASITEMIA, POSITIVE_MIN_CELLS, NEGATIVE_PARASITEMIA) == (
        20,
        0.025,
        2,
        0.05,
    )


def test_nothing_classified_has_no_result_yet():
    assert automatic_result(tally()) == ""
    assert parasitemia(tally()) is None


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (tally(parasitized=50, uninfected=50), "positive"),
        (tally(parasitized=30, uninfected=170, uncertain_uninfected=5), "positive"),
        (tally(uninfected=200), "negative"),
        (tally(parasitized=1, uninfected=199), "negative"),
        (tally(uninfected=10), "indeterminate"),
        (tally(uninfected=150, uncertain_uninfected=50), "indeterminate"),
        (tally(parasitized=2, uninfected=150, uncertain_parasitized=48), "indeterminate"),
    ],
    ids=[
        "half-parasitized",
        "15-percent-with-a-few-uncertain",
        "all-uninfected",
        "one-stray-parasitized-call",
        "too-few-cells",
        "many-uncertain-uninfected",
        "many-uncertain-parasitized",
    ],
)
def test_clear_cases(cells, expected):
    assert automatic_result(cells) == expected


# -- MIN_CELLS_FOR_RESULT: fewer cells than this are never negative ------------------------------------------


def test_enough_uninfected_cells_are_negative():
    assert automatic_result(tally(uninfected=MIN_CELLS_FOR_RESULT)) == "negative"


def test_one_cell_short_is_indeterminate():
    assert automatic_result(tally(uninfected=MIN_CELLS_FOR_RESULT - 1)) == "indeterminate"


def test_a_single_uninfected_cell_is_indeterminate():
    assert automatic_result(tally(uninfected=1)) == "indeterminate"


# -- POSITIVE_PARASITEMIA: share of confidently parasitized cells --------------------------------------------


@pytest.mark.parametrize(("extra", "expected"), [(0, "positive"), (-1, "negative")], ids=["at", "just-under"])
def test_positive_parasitemia_boundary(extra, expected):
    cells = 1000
    parasitized = share(POSITIVE_PARASITEMIA, cells) + extra
    assert automatic_result(tally(parasitized=parasitized, uninfected=cells - parasitized)) == expected


def test_uncertain_parasitized_cells_do_not_make_a_positive():
    cells = 1000
    parasitized = share(NEGATIVE_PARASITEMIA + 0.01, cells)  # above both thresholds
    assert automatic_result(tally(uncertain_parasitized=parasitized, uninfected=cells - parasitized)) == "indeterminate"
    assert automatic_result(tally(parasitized=parasitized, uninfected=cells - parasitized)) == "positive"


# -- POSITIVE_MIN_CELLS: one or two parasitized calls are not a positive smear, whatever the share -----------


def test_enough_parasitized_cells_are_positive_even_in_a_small_sample():
    assert automatic_result(tally(parasitized=POSITIVE_MIN_CELLS)) == "positive"


def test_one_parasitized_cell_short_is_not_positive():
    assert automatic_result(tally(parasitized=POSITIVE_MIN_CELLS - 1)) == "indeterminate"


def test_min_cells_applies_even_when_the_share_is_reached():
    cells = MIN_CELLS_FOR_RESULT
    parasitized = POSITIVE_MIN_CELLS - 1
    assert parasitized / cells >= POSITIVE_PARASITEMIA
    assert automatic_result(tally(parasitized=parasitized, uninfected=cells - parasitized)) == "indeterminate"
    assert automatic_result(tally(parasitized=parasitized + 1, uninfected=cells - parasitized - 1)) == "positive"


# -- NEGATIVE_PARASITEMIA: negative only if, counting every uncertain cell as parasitized, it stays under ------


@pytest.mark.parametrize(("extra", "expected"), [(0, "indeterminate"), (-1, "negative")], ids=["at", "just-under"])
def test_negative_parasitemia_boundary(extra, expected):
    # Uncertain parasitized calls: below the positive rule, so only the negative rule decides.
    cells = 1000
    parasitized = share(NEGATIVE_PARASITEMIA, cells) + extra
    assert automatic_result(tally(uncertain_parasitized=parasitized, uninfected=cells - parasitized)) == expected


@pytest.mark.parametrize(("extra", "expected"), [(0, "indeterminate"), (-1, "negative")], ids=["at", "just-under"])
def test_uncertain_uninfected_cells_count_against_a_negative(extra, expected):
    cells = 1000
    worst = share(NEGATIVE_PARASITEMIA, cells) + extra
    parasitized = worst // 2
    uncertain = worst - parasitized
    cells_left = cells - parasitized - uncertain
    result = automatic_result(
        tally(uncertain_parasitized=parasitized, uncertain_uninfected=uncertain, uninfected=cells_left)
    )
    assert result == expected


@pytest.mark.parametrize(("extra", "expected"), [(0, "indeterminate"), (-1, "negative")], ids=["at", "just-under"])
def test_negative_boundary_with_the_fewest_cells(extra, expected):
    cells = MIN_CELLS_FOR_RESULT
    parasitized = round(NEGATIVE_PARASITEMIA * cells) + extra  # 1 of 20 is exactly 5 %
    assert automatic_result(tally(uncertain_parasitized=parasitized, uninfected=cells - parasitized)) == expected


def test_parasitemia_counts_every_parasitized_call():
    assert parasitemia(tally(parasitized=3, uncertain_parasitized=1, uninfected=16)) == pytest.approx(0.20)
