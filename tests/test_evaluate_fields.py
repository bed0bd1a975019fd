"""`make evaluate-fields`: IoU, one-to-one matching and the metrics on hand-made boxes; the command on real fields."""

import json

import pytest

from tests.cells import shared_fields_or_skip
from worker.tools.evaluate_fields import (
    AnnotatedBox,
    ScoredCell,
    aggregate,
    iou,
    iou_matrix,
    match,
    read_annotations,
    score_field,
)

KEYS = {
    "fields",
    "red_cells_annotated",
    "rbc_recall_iou50",
    "rbc_recall_iou30",
    "rbc_precision_iou50",
    "count_error_median",
    "infected_annotated",
    "infected_found",
    "infected_sensitivity",
    "false_parasitized_per_1000",
    "uncertain_fraction",
    "fields_per_s",
    "model_version",
    "infected_found_by_stage",
}


def cell(box, parasitized=False, uncertain=False):
    return ScoredCell(box, "counted", parasitized, uncertain)


@pytest.mark.pure
def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # ends are exclusive: touching is no overlap
    assert iou((0, 0, 10, 10), (30, 30, 40, 40)) == 0.0
    assert iou((0, 0, 0, 10), (0, 0, 0, 10)) == 0.0  # empty boxes


@pytest.mark.pure
def test_iou_matrix_agrees_with_iou():
    a = [(0, 0, 10, 10), (5, 5, 20, 20)]
    b = [(0, 0, 10, 10), (5, 0, 15, 10), (100, 100, 110, 110)]
    matrix = iou_matrix(a, b)
    assert matrix.shape == (2, 3)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            assert matrix[i, j] == pytest.approx(iou(x, y))
    assert iou_matrix([], b).shape == (0, 3)


@pytest.mark.pure
def test_matching_is_one_to_one_and_better_than_greedy():
    x, y = (5, 0, 15, 10), (11, 0, 21, 10)
    a = (6, 0, 16, 10)  # IoU 0.82 with x, 0.33 with y
    b = (2, 0, 12, 10)  # IoU 0.54 with x, 0.05 with y
    # Greedy would give a -> x and leave b unmatched; the assignment matches both.
    assert match([a, b], [x, y], 0.3) == [(0, 1), (1, 0)]
    assert match([a, b], [x, y], 0.5) == [(0, 0)]  # one annotated box, one found cell at most
    assert len(match([a, a], [x], 0.3)) == 1
    assert match([], [x], 0.5) == [] and match([a], [], 0.5) == []


def two_fields():
    first = score_field(
        [
            AnnotatedBox((0, 0, 10, 10), "red blood cell"),
            AnnotatedBox((20, 0, 30, 10), "red blood cell"),
            AnnotatedBox((40, 0, 50, 10), "red blood cell"),
            AnnotatedBox((60, 0, 70, 10), "ring"),
            AnnotatedBox((80, 0, 90, 10), "difficult"),
        ],
        [
            cell((0, 0, 10, 10)),  # red cell, IoU 1
            cell((22, 0, 32, 10), parasitized=True, uncertain=True),  # red cell at IoU 0.67: a false parasitized
            cell((44, 0, 54, 10)),  # red cell at IoU 0.43: matched at 0.3 only
            cell((60, 0, 70, 10), parasitized=True),  # the ring, found and called parasitized
            cell((80, 0, 90, 10), parasitized=True),  # on the difficult box: neither counts nor penalises
            cell((100, 0, 110, 10)),  # nothing annotated there
        ],
    )
    second = score_field(
        [AnnotatedBox((0, 0, 10, 10), "red blood cell"), AnnotatedBox((20, 0, 30, 10), "gametocyte")],
        [cell((22, 0, 32, 10))],  # the gametocyte, found but called uninfected
    )
    return first, second


@pytest.mark.pure
def test_one_field_counts():
    first, second = two_fields()
    assert (first.red_annotated, first.matched50, first.matched30) == (4, 3, 4)
    assert (first.found, first.found_scored, first.found_matched50) == (6, 5, 3)
    assert (first.false_parasitized, first.uncertain) == (1, 1)
    assert first.infected["ring"] == first.infected_found["ring"] == first.infected_parasitized["ring"] == 1
    assert (second.red_annotated, second.matched50, second.found) == (2, 1, 1)
    assert (second.infected_found["gametocyte"], second.infected_parasitized["gametocyte"]) == (1, 0)


@pytest.mark.pure
def test_metrics_over_fields():
    metrics = aggregate(two_fields(), seconds=4.0, model_version="m1")
    assert set(metrics) >= KEYS
    assert metrics["fields"] == 2
    assert metrics["red_cells_annotated"] == 6
    assert metrics["rbc_recall_iou50"] == pytest.approx(4 / 6, abs=1e-4)
    assert metrics["rbc_recall_iou30"] == pytest.approx(5 / 6, abs=1e-4)
    assert metrics["rbc_precision_iou50"] == pytest.approx(4 / 6, abs=1e-4)  # the difficult one left out
    assert metrics["count_error_median"] == 0.5  # |6 - 4| / 4 and |1 - 2| / 2
    assert metrics["infected_annotated"] == 2
    assert metrics["infected_found"] == 1.0
    assert metrics["infected_sensitivity"] == 0.5
    assert metrics["false_parasitized_per_1000"] == pytest.approx(1000 / 6, abs=0.01)
    assert metrics["uncertain_fraction"] == pytest.approx(1 / 7, abs=1e-4)
    assert metrics["fields_per_s"] == 0.5
    assert metrics["model_version"] == "m1"
    assert metrics["infected_found_by_stage"]["ring"] == {"annotated": 1, "found": 1, "parasitized": 1}
    assert metrics["infected_found_by_stage"]["gametocyte"] == {"annotated": 1, "found": 1, "parasitized": 0}
    assert metrics["infected_found_by_stage"]["schizont"] == {"annotated": 0, "found": 0, "parasitized": 0}


@pytest.mark.pure
def test_shares_without_a_denominator_are_null():
    empty = score_field([], [])
    metrics = aggregate([empty], seconds=0.0, model_version="m1")
    assert metrics["fields"] == 1
    for key in ("rbc_recall_iou50", "infected_found", "infected_sensitivity", "uncertain_fraction"):
        assert metrics[key] is None
    assert metrics["count_error_median"] is None and metrics["false_parasitized_per_1000"] is None


@pytest.mark.pure
def test_annotations_are_read_as_corner_boxes(tmp_path):
    path = tmp_path / "annotations.json"
    record = {
        "image_name": "a.JPG",
        "objects": [{"type": "ring", "bbox": {"x": "305", "y": "169", "h": "78", "w": "81"}}],
    }
    path.write_text(json.dumps([record]))
    assert read_annotations(path) == {"a.JPG": [AnnotatedBox((305, 169, 386, 247), "ring")]}


def test_command_on_two_real_fields(tmp_path, capsys):
    from worker.tools.evaluate_fields import main

    data = shared_fields_or_skip()
    assert main(["evaluate", "--data", str(data), "--limit", "2", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1  # a table for people first
    metrics = json.loads(lines[-1])
    assert set(metrics) >= KEYS
    assert metrics["fields"] == 2
    assert metrics["red_cells_annotated"] > 0
    for key in ("rbc_recall_iou50", "rbc_recall_iou30", "rbc_precision_iou50", "uncertain_fraction"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["rbc_recall_iou50"] <= metrics["rbc_recall_iou30"]
    for key in ("infected_found", "infected_sensitivity"):
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    assert metrics["count_error_median"] >= 0.0
    assert 0.0 <= metrics["false_parasitized_per_1000"] <= 1000.0
    assert metrics["fields_per_s"] > 0
    assert isinstance(metrics["model_version"], str) and metrics["model_version"]
    assert len(list(tmp_path.glob("*.png"))) == 2
