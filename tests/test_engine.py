"""The inference engine on the shipped model: accuracy over real cells of patients it never saw in training;
batching and failures over generated cells (the quick layer)."""

import io
import json

import numpy as np
import pytest

from tests.cells import as_png, cells_of_test_patients, generated_cells
from worker.serving.engine import (
    PARASITIZED,
    UNINFECTED,
    CellClassification,
    CellClassifier,
    CellFailure,
    get_classifier,
)
from worker.serving.model_card import load_model_card


@pytest.fixture(scope="module")
def test_cells():
    return cells_of_test_patients(400)


@pytest.fixture(scope="module")
def classifier():
    return get_classifier()


def test_engine_is_accurate_on_unseen_patients(classifier, test_cells):
    results = classifier.classify([as_png(cell.path) for cell in test_cells])
    assert all(isinstance(r, CellClassification) for r in results)
    correct = [(r.label == PARASITIZED) == bool(cell.label) for r, cell in zip(results, test_cells, strict=True)]
    assert np.mean(correct) >= 0.9, "far above the 50% of chance on balanced cells"
    assert {r.label for r in results} == {PARASITIZED, UNINFECTED}
    card = load_model_card()
    for r in results:
        assert 0.0 <= r.probability <= 1.0
        assert r.label == (PARASITIZED if r.probability >= card.threshold else UNINFECTED)
        assert r.uncertain == (card.uncertain_band[0] <= r.probability <= card.uncertain_band[1])
        assert r.model_version == card.version


@pytest.mark.pure
def test_batching_gives_the_same_probabilities_as_one_by_one():
    images = [data for _, data in generated_cells(40)]
    card = load_model_card()
    batched = CellClassifier(card, batch_size=16).classify(images)
    one_by_one = [CellClassifier(card, batch_size=1).classify([image])[0] for image in images[:10]]
    whole = CellClassifier(card, batch_size=256).classify(images)
    np.testing.assert_allclose(
        [r.probability for r in batched[:10]], [r.probability for r in one_by_one], rtol=0, atol=1e-5
    )
    np.testing.assert_allclose([r.probability for r in batched], [r.probability for r in whole], rtol=0, atol=1e-5)


@pytest.mark.pure
def test_a_broken_image_fails_alone(classifier):
    [(_, good)] = generated_cells(1)
    results = classifier.classify([good, b"not an image", good[:100], good])
    assert isinstance(results[0], CellClassification)
    assert isinstance(results[1], CellFailure) and "not a readable image" in results[1].error
    assert isinstance(results[2], CellFailure)
    assert results[3] == results[0]


@pytest.mark.pure
def test_chips_cut_from_fields_are_judged_at_the_field_threshold_and_band(classifier):
    card = classifier.card
    assert card.field_threshold != card.threshold, "the shipped model has a field threshold of its own"
    between = (card.threshold + card.field_threshold) / 2
    as_cell, as_chip = classifier.verdict(between), classifier.verdict(between, from_field=True)
    assert as_cell.probability == as_chip.probability == between
    assert as_cell.label == (PARASITIZED if between >= card.threshold else UNINFECTED)
    assert as_chip.label == (PARASITIZED if between >= card.field_threshold else UNINFECTED)
    assert as_cell.label != as_chip.label
    low, high = card.field_uncertain_band
    assert classifier.verdict(low, from_field=True).uncertain and classifier.verdict(high, from_field=True).uncertain
    images = [data for _, data in generated_cells(3)]
    cells = classifier.classify(images)
    chips = classifier.classify(images, from_field=[True, False, True])
    assert [c.probability for c in cells] == [c.probability for c in chips]
    assert chips[0] == classifier.verdict(cells[0].probability, from_field=True)
    assert chips[1] == cells[1]


@pytest.mark.pure
def test_empty_batch(classifier):
    assert classifier.classify([]) == []


def test_evaluate_command_agrees_with_the_engine(classifier, test_cells, tmp_path):
    """The evaluate command on a folder of PNGs without a manifest reports what the engine says."""
    data = tmp_path / "cells"
    for cell in test_cells[:200]:
        folder = data / ("Parasitized" if cell.label else "Uninfected")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / cell.path.with_suffix(".png").name).write_bytes(as_png(cell.path))
    from worker.training.train import main

    out = tmp_path / "evaluation"
    import contextlib

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["evaluate", "--data", str(data), "--out", str(out)])
    metrics = json.loads(printed.getvalue().strip().splitlines()[-1])
    results = classifier.classify([as_png(cell.path) for cell in test_cells[:200]])
    labels = np.array([cell.label for cell in test_cells[:200]])
    predicted = np.array([r.label == PARASITIZED for r in results])
    assert metrics["n"] == 200
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert metrics["sensitivity"] == pytest.approx(predicted[labels == 1].mean())
    assert metrics["specificity"] == pytest.approx(1 - predicted[labels == 0].mean())
    for key in ("precision", "f1", "auc", "ece", "threshold", "uncertain_fraction", "model_version"):
        assert key in metrics
    assert set(metrics["accuracy_at_coverage"]) == {"0.8", "0.9", "0.95"}
    assert metrics["accuracy_at_coverage"]["0.8"] >= metrics["accuracy_at_coverage"]["0.95"] - 0.02
    assert 0.0 <= metrics["sensitivity_at_specificity_0995"] <= 1.0
    names = ("classification_report.txt", "roc.png", "confusion_matrix.png", "reliability.png", "risk_coverage.png")
    for name in names:
        assert (out / name).stat().st_size > 0
