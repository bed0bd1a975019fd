"""Grad-CAM heatmaps of stored cells: made on first request with the served model, then kept in storage.

The web process uses the LiteRT engine for this (no TensorFlow); the heatmap is cached under the model
version, so a new model makes new heatmaps.
"""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from diagnostics.models import CellImage


def heatmap_png(image: CellImage) -> bytes:
    from worker.serving.engine import get_classifier
    from worker.serving.gradcam import heatmap_overlay_png

    classifier = get_classifier()
    name = f"heatmaps/{classifier.card.version}/lab-{image.sample.lab_id}/{image.pk}.png"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    with default_storage.open(image.file.name, "rb") as handle:
        png = heatmap_overlay_png(handle.read(), classifier)
    default_storage.save(name, ContentFile(png))
    return png
