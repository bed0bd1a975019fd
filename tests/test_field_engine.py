"""The field engine: photograph bytes in, every red cell found and classified by the shipped model out."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.test_field_detection import drawn_field, grid
from worker.serving.engine import get_classifier
from worker.serving.field_engine import FieldClassifier, FieldFailure, FieldResult

pytestmark = pytest.mark.pure


def jpeg(pixels, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92, **save)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def engine():
    return FieldClassifier(get_classifier())


def test_every_cell_of_every_field_is_classified_in_order(engine):
    few, many = grid(step=300, margin=200), grid()
    results = engine.classify([jpeg(drawn_field(few)), jpeg(drawn_field(many)), jpeg(drawn_field(few, seed=3))])
    assert [len(r.cells) for r in results] == [len(few), len(many), len(few)]
    cell = results[1].cells[0]
    assert cell.counted and 0.0 <= cell.classification.probability <= 1.0
    assert cell.classification.model_version == get_classifier().card.version


def test_a_broken_photograph_fails_alone(engine):
    good = jpeg(drawn_field(grid(step=300, margin=200)))
    results = engine.classify([good, b"\xff\xd8\xff not really a jpeg", good])
    assert isinstance(results[0], FieldResult) and isinstance(results[2], FieldResult)
    assert isinstance(results[1], FieldFailure) and "not a readable image" in results[1].error


def test_a_phone_photograph_is_turned_upright_before_cells_are_found(engine):
    pixels = drawn_field([(300, 480)], size=(960, 1280))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    (result,) = engine.classify([jpeg(pixels, exif=exif)])
    assert (result.analysis.width, result.analysis.height) == (960, 1280)
    (cell,) = result.cells
    x0, y0, x1, y1 = cell.found.box
    assert x0 < 960 - 480 < x1 and y0 < 300 < y1


def test_white_cell_look_alikes_called_parasitized_are_red_cells_after_all():
    import numpy as np

    from worker.serving.engine import PARASITIZED, UNINFECTED, CellClassification
    from worker.serving.field_engine import settle
    from worker.serving.fields import COUNTED, EDGE, WHITE_CELL, FieldAnalysis, FoundObject

    objects = [
        FoundObject((0, 0, 10, 10), COUNTED, 1),
        FoundObject((20, 0, 30, 10), WHITE_CELL, 2),  # a gametocyte filling its cell
        FoundObject((40, 0, 50, 10), WHITE_CELL, 3),  # a real white cell
        FoundObject((0, 50, 10, 60), WHITE_CELL, 4, at_edge=True),  # a parasitized cell cut by the edge
    ]
    analysis = FieldAnalysis(60, 60, 10.0, objects, (), 1.0, np.zeros((60, 60), np.int32))
    assert analysis.look_alikes == objects[1:]

    def verdict(label):
        return CellClassification(0.9 if label == PARASITIZED else 0.1, label, uncertain=False, model_version="m")

    verdicts = [verdict(UNINFECTED), verdict(PARASITIZED), verdict(UNINFECTED), verdict(PARASITIZED)]
    settled = settle(analysis, objects, verdicts)
    assert [o.kind for o in settled.objects] == [COUNTED, COUNTED, WHITE_CELL, EDGE]
    assert [o.label for o in settled.red_cells] == [1, 2, 4]
    assert analysis.objects[1].kind == WHITE_CELL, "the analysis itself is left as it was"
    only_look_alikes = settle(analysis, objects[1:], verdicts[1:])
    assert only_look_alikes == settled, "the worker settles look-alikes alone, before the red cells are classified"
