"""Cross-validation by patient: folds keep patients whole, scoring never fits on the fold it scores, and
the intervals come from resampling patients. Pure: arrays only (the training loop itself runs in
`python -m worker.training crossvalidate`, whose figures are in docs/model.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from worker.training.crossvalidation import (
    OutOfFold,
    combined_logits,
    cross_fitted,
    patient_folds,
    score,
    symmetric_views,
)

pytestmark = pytest.mark.pure


def synthetic(n_patients=40, cells=30, separation=3.0, seed=0):
    """Patients with 30 cells each; half are infected (half their cells parasitized); logits ~ N(+-sep/2, 1)."""
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"P{i:03d}" for i in range(n_patients)], cells)
    labels = np.zeros(len(patients), np.int32)
    for i in range(0, n_patients, 2):
        labels[i * cells : i * cells + cells // 2] = 1
    logits = rng.normal(0.0, 1.0, len(labels)) + np.where(labels == 1, separation / 2, -separation / 2)
    return patients, labels, logits


def test_folds_keep_each_patient_whole_and_spread_infected_patients_evenly():
    patients, labels, _ = synthetic()
    folds = patient_folds(patients, labels, 4, seed=1)
    for patient in set(patients):
        assert len(set(folds[patients == patient])) == 1
    infected_per_fold = [len({p for p in patients[(folds == f) & (labels == 1)]}) for f in range(4)]
    assert infected_per_fold == [5, 5, 5, 5]


def test_the_eight_views_are_the_exact_symmetries_of_the_square():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    views = symmetric_views(x)
    assert len(views) == 8
    assert np.array_equal(views[0], x)
    assert len({view.tobytes() for view in views}) == 8  # all different for a generic image
    for view in views:  # a symmetry only moves pixels: the same multiset of pixels per cell
        assert np.array_equal(np.sort(view.reshape(2, -1), axis=1), np.sort(x.reshape(2, -1), axis=1))


def test_a_folds_threshold_is_fitted_without_that_fold():
    patients, labels, logits = synthetic()
    folds = patient_folds(patients, labels, 4, seed=1)
    before = cross_fitted(logits, labels, folds)
    # Make fold 0's own predictions useless: its threshold, temperature and band must not move.
    scrambled = logits.copy()
    scrambled[folds == 0] = np.random.default_rng(3).normal(size=(folds == 0).sum())
    after = cross_fitted(scrambled, labels, folds)
    assert np.array_equal(before.threshold[folds == 0], after.threshold[folds == 0])
    assert np.array_equal(before.low[folds == 0], after.low[folds == 0])
    assert not np.array_equal(before.threshold[folds == 1], after.threshold[folds == 1])


def test_test_time_augmentation_variants_average_the_views_they_say():
    patients, labels, logits = synthetic()
    folds = patient_folds(patients, labels, 4, seed=1)
    views = np.stack([logits + shift for shift in np.linspace(-1, 1, 8)], axis=1)
    assert np.allclose(combined_logits(views, labels, folds, "plain"), logits + -1)
    assert np.allclose(combined_logits(views, labels, folds, "tta8"), logits)
    banded = combined_logits(views, labels, folds, "tta8-band")
    changed = ~np.isclose(banded, logits - 1)
    assert 0 < changed.sum() < len(labels) // 2  # only the uncertain cells are averaged
    with pytest.raises(ValueError):
        combined_logits(views, labels, folds, "tta4")


def out_of_fold(name, logits, patients, labels, folds):
    return OutOfFold(name, logits[None, :, None].repeat(8, axis=2), labels, patients, folds, {})


def test_a_better_method_wins_with_an_interval_and_a_paired_difference_that_excludes_zero():
    patients, labels, weak = synthetic(separation=2.0, seed=1)
    _, _, strong = synthetic(separation=4.0, seed=1)
    folds = patient_folds(patients, labels, 4, seed=1)
    point_weak, resampled_weak = score([out_of_fold("weak", weak, patients, labels, folds)], samples=200)
    point_strong, resampled_strong = score([out_of_fold("strong", strong, patients, labels, folds)], samples=200)
    assert point_strong["auc"] > point_weak["auc"]
    low, high = np.percentile(resampled_weak[:, 0], [2.5, 97.5])
    assert low < point_weak["auc"] < high
    difference = resampled_strong[:, 0] - resampled_weak[:, 0]  # the same patients drawn for both (seed 0)
    assert np.percentile(difference, 2.5) > 0


def test_an_ensemble_of_two_methods_averages_their_logits():
    patients, labels, a = synthetic(seed=1)
    _, _, b = synthetic(seed=2)
    folds = patient_folds(patients, labels, 4, seed=1)
    both, _ = score(
        [out_of_fold("a", a, patients, labels, folds), out_of_fold("b", b, patients, labels, folds)], samples=5
    )
    averaged, _ = score([out_of_fold("ab", (a + b) / 2, patients, labels, folds)], samples=5)
    assert both["auc"] == pytest.approx(averaged["auc"])
    other_folds = patient_folds(patients, labels, 4, seed=2)
    with pytest.raises(ValueError, match="other cells or folds"):
        score([out_of_fold("a", a, patients, labels, folds), out_of_fold("b", b, patients, labels, other_folds)])


def test_soft_targets_keep_labels_the_teacher_agrees_with_and_temper_the_ones_it_confidently_disputes():
    from worker.training.soft_targets import soft_targets

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400).astype(np.float64)
    teacher = np.where(labels == 1, 4.0, -4.0) + rng.normal(0, 1, 400)
    teacher[0], labels[0] = -6.0, 1.0  # a cell labelled parasitized that the teacher, not having seen it, calls clean
    assert np.array_equal(soft_targets(labels, teacher, 0.0), labels.astype(np.float32))
    targets = soft_targets(labels, teacher, 0.5)
    assert targets.dtype == np.float32
    assert targets[0] < 0.51  # half the label, almost none of the teacher
    agreeing = (np.abs(teacher) > 3) & ((teacher > 0) == (labels == 1))
    assert agreeing.sum() > 300
    assert np.abs(targets[agreeing] - labels[agreeing]).max() < 0.05


def test_disputed_cells_are_those_whose_label_the_teacher_finds_very_unlikely():
    from worker.training.soft_targets import disputed

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400).astype(np.float64)
    teacher = np.where(labels == 1, 4.0, -4.0) + rng.normal(0, 0.5, 400)
    teacher[:3] = [-6.0, 6.0, 0.0]
    labels[:3] = [1.0, 0.0, 1.0]  # disputed both ways, and one the teacher cannot call
    assert disputed(labels, teacher, 0.05).tolist() == [True, True] + [False] * 398


def test_the_model_card_records_the_training_cpu_and_its_instruction_sets():
    from worker.training.train import training_cpu

    cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse avx avx2 avx512f amx_tile\n"
    assert training_cpu(cpuinfo) == {
        "model": "Intel(R) Xeon(R) Processor",
        "instruction_sets": ["avx2", "avx512f", "amx_tile"],
    }
    assert training_cpu("") == {"model": "unknown", "instruction_sets": []}
    assert set(training_cpu()) == {"model", "instruction_sets"}
