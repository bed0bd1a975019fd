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
