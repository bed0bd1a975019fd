"""A field photograph with a box on every object found, as a PNG: for reports, LIS attachments and API users.

Pure: pixels and boxes in, PNG bytes out. The colours are the field page's (templates/diagnostics/
field_detail.html): uninfected green, parasitized red, uncertain amber, not yet classified blue, failed
purple, left out grey; a cell cut by the edge (classified, not counted) is drawn with a thinner line.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "uninfected": (22, 163, 74),
    "parasitized": (220, 38, 38),
    "uncertain": (245, 158, 11),
    "pending": (37, 99, 235),
    "failed": (126, 34, 206),
    "left out": (120, 120, 120),
}
# Wide enough to see a ring stage's box, small enough to send: larger photographs are scaled down.
MAX_SIDE = 1600


@dataclass(frozen=True)
class OverlayBox:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photograph's pixels (x1, y1 exclusive)
    category: str  # a key of COLOURS
    counted: bool = True


def field_overlay_png(rgb: np.ndarray, boxes: Sequence[OverlayBox], *, max_side: int = MAX_SIDE) -> bytes:
    image = Image.fromarray(rgb)
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    line = max(2, round(3 * scale))
    for item in boxes:
        x0, y0, x1, y1 = (round(v * scale) for v in item.box)
        width = line if item.counted and item.category != "left out" else max(1, line // 2)
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=COLOURS[item.category], width=width)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
