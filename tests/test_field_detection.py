"""Finding red cells on a whole-field photograph (worker/serving/fields.py), on fields drawn here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from worker.serving.fields import COUNTED, EDGE, WHITE_CELL, analyse_field, cell_chip

pytestmark = pytest.mark.pure

BACKGROUND = (215, 225, 215)
RED_CELL = (200, 140, 160)


def drawn_field(centres, *, radius=36, size=(960, 1280), white_cells=(), seed=0) -> np.ndarray:
    """A smear-like field: pale background, pink disks with a paler centre, a little noise."""
    height, width = size
    field = np.zeros((height, width, 3), np.uint8)
    field[:] = BACKGROUND
    for x, y in centres:
        cv2.circle(field, (x, y), radius, RED_CELL, -1)
        cv2.circle(field, (x, y), radius // 3, (215, 170, 185), -1)
    for x, y in white_cells:
        cv2.circle(field, (x, y), int(radius * 1.3), (190, 170, 200), -1)
        cv2.circle(field, (x, y), radius, (90, 30, 120), -1)
    noise = np.random.default_rng(seed).normal(0, 4, field.shape)
    return np.clip(field + noise, 0, 255).astype(np.uint8)


def grid(step=110, margin=100, size=(960, 1280)):
    return [
        (x, y) for y in range(margin, size[0] - margin + 1, step) for x in range(margin, size[1] - margin + 1, step)
    ]


def test_every_separate_cell_is_found_once_with_its_size():
    centres = grid()
    analysis = analyse_field(drawn_field(centres))
    assert analysis.quality == ()
    assert 68 <= analysis.cell_diameter <= 80
    found = [o for o in analysis.objects if o.kind == COUNTED]
    assert len(found) == len(centres)
    for x, y in centres:
        assert sum(o.box[0] <= x < o.box[2] and o.box[1] <= y < o.box[3] for o in found) == 1


def test_a_cells_box_reaches_its_pale_rim():
    """A real cell's rim is paler than its body and blurs into the background; the box must still hold it."""
    radius, centres = 36, grid(step=130)
    field = drawn_field(centres, radius=radius)
    for x, y in centres:  # a pale ring of 5 px between the body and the background
        cv2.circle(field, (x, y), radius + 5, (208, 190, 196), 5)
    analysis = analyse_field(field)
    found = [o for o in analysis.objects if o.kind == COUNTED]
    assert len(found) == len(centres)
    for o in found:
        width, height = o.box[2] - o.box[0], o.box[3] - o.box[1]
        assert 2 * radius + 2 <= width <= 2 * radius + 16 and 2 * radius + 2 <= height <= 2 * radius + 16


def test_touching_cells_are_split():
    pairs = [(300, 300), (366, 300), (700, 500), (700, 566), (1000, 300), (1060, 330)]
    analysis = analyse_field(drawn_field(pairs + grid(step=400, margin=150)))
    boxes = [o.box for o in analysis.red_cells]
    for x, y in pairs:
        assert sum(b[0] <= x < b[2] and b[1] <= y < b[3] for b in boxes) >= 1
    widths = sorted(b[2] - b[0] for b in boxes)
    assert widths[-1] < 110, "no box spans two touching cells"


def test_a_cell_cut_by_the_edge_is_classified_but_not_counted():
    analysis = analyse_field(drawn_field([(20, 400), (640, 480)]))
    kinds = sorted(o.kind for o in analysis.red_cells)
    assert kinds == [COUNTED, EDGE]


def test_a_white_cell_is_left_out():
    analysis = analyse_field(drawn_field(grid(step=200), white_cells=[(650, 480)]))
    white = [o for o in analysis.objects if o.kind == WHITE_CELL]
    assert len(white) == 1 and white[0].box[0] < 650 < white[0].box[2]
    assert all(not (o.box[0] < 650 < o.box[2] and o.box[1] < 480 < o.box[3]) for o in analysis.red_cells)


@pytest.mark.parametrize(
    ("field", "flag"),
    [
        (np.full((960, 1280, 3), 220, np.uint8), "no cells"),
        (np.full((960, 1280, 3), 20, np.uint8), "too dark"),
        (cv2.GaussianBlur(drawn_field(grid()), (0, 0), 6), "out of focus"),
    ],
    ids=["blank", "dark", "blurred"],
)
def test_a_bad_photograph_is_flagged_not_an_error(field, flag):
    assert flag in analyse_field(field).quality


def test_a_chip_is_the_cell_on_black():
    analysis = analyse_field(drawn_field([(640, 480)]))
    (cell,) = analysis.red_cells
    chip = cell_chip(drawn_field([(640, 480)]), analysis, cell)
    height, width = chip.shape[:2]
    assert 64 <= width <= 90 and 64 <= height <= 90
    assert chip[0, 0].tolist() == [0, 0, 0], "corners are outside the cell"
    assert chip[height // 2, width // 4].sum() > 300, "the cell itself is kept"


def test_real_fields_of_another_lab_pass_the_quality_checks_and_fail_them_when_blurred():
    from tests.cells import shared_fields_or_skip
    from worker.serving.field_engine import decode_field

    fields = sorted((shared_fields_or_skip() / "fields").glob("*.JPG"))[::60]
    for path in fields:
        rgb = decode_field(path.read_bytes())
        analysis = analyse_field(rgb)
        assert analysis.quality == (), path.name
        assert 55 <= analysis.cell_diameter <= 95, "IML red cells are about 80 px across"
        assert len(analysis.red_cells) >= 60, path.name
        assert "out of focus" in analyse_field(cv2.GaussianBlur(rgb, (0, 0), 3)).quality, path.name
