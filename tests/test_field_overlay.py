"""The overlay PNG: a field photograph with a box per object found, in the field page's colours."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from worker.serving.field_overlay import COLOURS, OverlayBox, field_overlay_png

pytestmark = pytest.mark.pure


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_each_box_is_drawn_in_its_colour_where_the_object_is():
    photograph = np.full((480, 640, 3), 220, np.uint8)
    boxes = [
        OverlayBox((100, 100, 180, 180), "parasitized"),
        OverlayBox((300, 100, 380, 180), "uninfected"),
        OverlayBox((500, 300, 580, 380), "left out"),
    ]
    out = pixels(field_overlay_png(photograph, boxes))
    assert out.shape == (480, 640, 3)
    assert out[100, 140].tolist() == list(COLOURS["parasitized"]), "top edge of the first box"
    assert out[140, 300].tolist() == list(COLOURS["uninfected"]), "left edge of the second box"
    assert out[379, 540].tolist() == list(COLOURS["left out"]), "bottom edge of the third box"
    assert out[140, 140].tolist() == [220, 220, 220], "inside a box the photograph shows"


def test_a_large_photograph_is_scaled_down_with_its_boxes():
    photograph = np.full((3000, 4000, 3), 220, np.uint8)
    out = pixels(field_overlay_png(photograph, [OverlayBox((2000, 1000, 2200, 1200), "uncertain")]))
    assert out.shape == (1200, 1600, 3)
    assert out[400, 850].tolist() == list(COLOURS["uncertain"]), "(2000, 1000) lands at (800, 400)"
