"""Training on field chips: which found cell gets which label, the split by block, and the field threshold.

Pure: boxes and arrays only; the chips of real IML fields are checked where the shared set is present.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.cells import shared_fields_or_skip
from worker.tools.evaluate_fields import AnnotatedBox
from worker.training.calibration import choose_uncertain_band, threshold_for_specificity
from worker.training.field_chips import label_found_cells, split_blocks

pytestmark = pytest.mark.pure


def box(x, y, size=80):
    return (x, y, x + size, y + size)


def test_found_cells_take_their_label_from_the_boxes():
    annotated = [
        AnnotatedBox(box(0, 0), "red blood cell"),
        AnnotatedBox(box(200, 0), "ring"),
        AnnotatedBox(box(400, 0), "gametocyte"),
        AnnotatedBox(box(600, 0), "difficult"),
    ]
    found = [
        box(2, 2),  # a boxed red cell
        box(205, 3),  # the ring: IoU about 0.82
        box(450, 0),  # half over the gametocyte: IoU 0.23, neither label
        box(800, 0),  # nobody boxed it: infected cells are all boxed, so uninfected
        box(602, 0),  # on the difficult box: left out
        box(270, 0),  # grazes the ring (IoU 0.06): left out, it may be a fragment of it
    ]
    assert label_found_cells(found, annotated) == [
        (0, ""),
        (1, "ring"),
        (-1, ""),
        (0, ""),
        (-1, ""),
        (-1, ""),
    ]


def test_one_infected_box_labels_one_found_cell():
    annotated = [AnnotatedBox(box(0, 0), "trophozoite")]
    found = [box(0, 0), box(4, 4)]
    labels = label_found_cells(found, annotated)
    assert sorted(labels) == [(-1, ""), (1, "trophozoite")], "the best match is parasitized, the other left out"


def test_no_boxes_or_no_cells():
    assert label_found_cells([], [AnnotatedBox(box(0, 0), "ring")]) == []
    assert label_found_cells([box(0, 0)], []) == [(0, "")]


def test_blocks_are_split_whole_and_the_same_every_time():
    blocks = [1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 17] * 3
    split = split_blocks(blocks)
    assert split == split_blocks(list(reversed(blocks)))
    assert (len(split["test"]), len(split["validation"]), len(split["train"])) == (2, 3, 8)
    assert set().union(*split.values()) == set(blocks)
    assert not (split["test"] & split["validation"]) and not (split["train"] & (split["test"] | split["validation"]))
    assert split != split_blocks(blocks, seed=1)


@pytest.mark.parametrize("specificity", [0.9, 0.995, 0.999])
def test_field_threshold_is_the_most_sensitive_one_that_keeps_the_specificity(specificity):
    rng = np.random.default_rng(3)
    negatives, positives = rng.beta(1, 12, 8000), rng.beta(6, 2, 90)
    probabilities = np.concatenate([negatives, positives])
    labels = np.concatenate([np.zeros(8000), np.ones(90)])
    threshold = threshold_for_specificity(probabilities, labels, specificity)
    false_calls = int((negatives >= threshold).sum())
    assert false_calls <= 8000 * (1 - specificity)
    # Any lower threshold, down to the next negative, calls one more uninfected cell parasitized.
    next_lower = negatives[negatives < threshold].max()
    assert int((negatives >= next_lower).sum()) > 8000 * (1 - specificity)


@pytest.mark.parametrize("choose", ["balanced", "specificity"])
def test_thresholds_sit_between_cells_so_float_noise_cannot_flip_a_call(choose):
    from worker.training.calibration import choose_threshold

    rng = np.random.default_rng(11)
    probabilities = np.concatenate([rng.beta(1, 8, 3000), rng.beta(5, 2, 300)])
    labels = np.concatenate([np.zeros(3000), np.ones(300)])
    pick = choose_threshold if choose == "balanced" else lambda p, y: threshold_for_specificity(p, y, 0.995)
    threshold = pick(probabilities, labels)
    assert np.abs(probabilities - threshold).min() > 1e-6
    for noise in (-1e-7, 1e-7):  # what exporting to LiteRT does to a probability
        noisy = probabilities + noise
        np.testing.assert_array_equal(noisy >= pick(noisy, labels), probabilities >= threshold)
        np.testing.assert_array_equal(noisy >= threshold, probabilities >= threshold)


def test_field_threshold_edge_cases():
    assert threshold_for_specificity(np.array([0.2, 0.9]), np.array([0, 1]), 0.0) == 0.0
    only_negatives = threshold_for_specificity(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 0]), 1.0)
    assert only_negatives > 0.3


def test_a_balanced_band_does_not_let_the_common_class_hide_the_rare_one():
    rng = np.random.default_rng(5)
    negatives = rng.beta(1, 30, 9900)  # almost all confidently uninfected
    positives = rng.uniform(0.2, 0.8, 100)  # the rare infected ones sit around the threshold
    probabilities = np.concatenate([negatives, positives])
    labels = np.concatenate([np.zeros(9900), np.ones(100)])
    plain = choose_uncertain_band(probabilities, labels, 0.5)
    balanced = choose_uncertain_band(probabilities, labels, 0.5, balanced=True)
    assert plain == (0.5, 0.5), "99.5 % of all cells are right already: no band at all"
    assert balanced[1] - balanced[0] > 0.05, "weighing infected cells as much widens it"


def test_chips_from_a_real_field_are_cut_by_the_served_detector():
    from worker.tools.evaluate_fields import read_annotations
    from worker.training.field_chips import field_chips

    dataset_path = shared_fields_or_skip()
    annotations = read_annotations(dataset_path / "annotations.json")
    name = next(n for n, boxes in sorted(annotations.items()) if any(b.kind == "gametocyte" for b in boxes))
    chips = field_chips(dataset_path / "fields" / name, annotations[name], 48)
    assert len(chips) > 50
    assert {chip.shape for chip, _, _ in chips} == {(48, 48, 3)}
    assert any(label == 1 and stage == "gametocyte" for _, label, stage in chips)
    corners = np.stack([chip[0, 0] for chip, _, _ in chips])
    assert (corners == 0).mean() > 0.9, "outside the cell's mask is black, as in the NIH crops"


# -- risk-coverage (the evaluate command's accuracy_at_coverage and sensitivity_at_specificity_0995) --------


def test_risk_coverage_keeps_the_surest_cells_first():
    from worker.training.calibration import accuracy_at_coverage, risk_coverage

    probabilities = np.array([0.99, 0.01, 0.6, 0.45, 0.9, 0.05, 0.52, 0.3])
    labels = np.array([1, 0, 0, 1, 1, 0, 1, 0])
    # distance from 0.5: 0.49, 0.49, 0.10, 0.05, 0.40, 0.45, 0.02, 0.20 -> the two wrong ones (0.6, 0.45) come late
    curve = risk_coverage(probabilities, labels, 0.5)
    assert curve["coverage"].tolist() == [k / 8 for k in range(1, 9)]
    assert curve["accuracy"][:5].tolist() == [1.0] * 5
    assert curve["accuracy"][-1] == 6 / 8
    assert accuracy_at_coverage(probabilities, labels, 0.5, 0.625) == 1.0
    assert accuracy_at_coverage(probabilities, labels, 0.5, 0.75) == 5 / 6
    assert curve["sensitivity"][-1] == 3 / 4 and curve["specificity"][-1] == 3 / 4


def test_sensitivity_at_specificity():
    from worker.training.calibration import sensitivity_at_specificity

    negatives = np.linspace(0.0, 0.5, 1000)  # 99.5 % right: 5 may be called positive, from 0.4975 up
    positives = np.array([0.2, 0.497, 0.499, 0.6, 0.9])
    probabilities = np.concatenate([negatives, positives])
    labels = np.concatenate([np.zeros(1000), np.ones(5)])
    assert sensitivity_at_specificity(probabilities, labels, 0.995) == 3 / 5
    assert sensitivity_at_specificity(probabilities, labels, 0.0) == 1.0
