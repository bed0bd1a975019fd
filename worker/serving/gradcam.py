"""Grad-CAM heatmaps: where the network looked when it classified one cell.

The served model outputs the class activation map of its last convolution, which for this network
(global average pooling into one dense unit) equals Grad-CAM for the Parasitized logit. For a cell called
Uninfected we show the evidence for that call instead (the negated map), as Grad-CAM does for the
predicted class. The map is upsampled to the padded square, cropped back to the cell's own size,
coloured and blended over the cell.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from worker.serving.engine import CellClassifier
from worker.serving.preprocessing import open_cell_image, pad_to_square, prepare_cell, to_rgb

# A perceptually ordered dark-blue -> cyan -> yellow -> red ramp (no matplotlib needed at serving time).
_RAMP = np.array([[0, 0, 96], [0, 96, 255], [0, 224, 224], [255, 230, 0], [255, 64, 0], [192, 0, 0]], dtype=np.float32)
# The overlay's opacity grows with the heat, so where the network did not look the cell shows as it is.
MAX_OVERLAY_ALPHA = 0.6
# The overlay is drawn at most this many pixels across: the map itself is 6 x 6, and a cell is shown at
# about 200 px, so a larger picture costs time and memory (up to the megapixel upload limit) for nothing.
MAX_OVERLAY_SIDE = 256


def colourize(heat: np.ndarray) -> np.ndarray:
    """heat in [0, 1] (h, w) -> uint8 RGB (h, w, 3)."""
    positions = np.linspace(0.0, 1.0, len(_RAMP))
    channels = [np.interp(heat, positions, _RAMP[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def heatmap_overlay_png(data: bytes, classifier: CellClassifier) -> bytes:
    """PNG bytes with the Grad-CAM heatmap blended over the cell: the cell's own size, at most
    MAX_OVERLAY_SIDE across (the classification itself always sees the whole cell)."""
    cell = to_rgb(open_cell_image(data))
    logit, activation = classifier.activation_map(prepare_cell(cell, classifier.card.input_size))
    evidence = activation if logit >= 0 else -activation
    heat = np.maximum(evidence, 0.0)
    heat = heat / heat.max() if heat.max() > 0 else heat
    if max(cell.size) > MAX_OVERLAY_SIDE:
        cell = cell.copy()
        cell.thumbnail((MAX_OVERLAY_SIDE, MAX_OVERLAY_SIDE), Image.Resampling.BILINEAR)
    square = pad_to_square(cell)
    heat_image = Image.fromarray((heat * 255).astype(np.uint8), "L").resize(square.size, Image.Resampling.BICUBIC)
    left, top = (square.width - cell.width) // 2, (square.height - cell.height) // 2
    heat_crop = np.asarray(heat_image.crop((left, top, left + cell.width, top + cell.height)), dtype=np.float32) / 255
    coloured = colourize(heat_crop).astype(np.float32)
    base = np.asarray(cell, dtype=np.float32)
    alpha = (MAX_OVERLAY_ALPHA * np.sqrt(heat_crop))[..., None]
    blended = (1 - alpha) * base + alpha * coloured
    buffer = io.BytesIO()
    Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()
