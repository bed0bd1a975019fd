"""Cell images put in a sample through the ORM, as the worker leaves them, for tests of what follows classification."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Iterable

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

_variants = itertools.count(1)

MODEL_VERSION = "test-model"


def cell_png(width: int = 100, height: int = 120) -> bytes:
    """A cell-like PNG: a pink disk on black, with a dark dot placed so that no two calls give the same bytes."""
    variant = next(_variants)
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, width - 8, height - 8), fill=(225, 150, 185))
    x, y = 30 + variant % 40, 30 + (variant // 40) % 60
    draw.point((x, y), fill=(90, 30, 110))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def add_cells(sample_id: int, labels: Iterable[str | None], *, uncertain: bool = False, status: str = ""):
    """One stored cell image per label ('parasitized', 'uninfected', or None for a cell not yet classified).

    Classified cells get a prediction; the sample's counts and results are recomputed as the worker would.
    """
    from diagnostics.models import CellImage, CellImageStatus, Prediction, Sample
    from diagnostics.services import sample_refresh

    sample = Sample.objects.get(pk=sample_id)
    images = []
    for label in labels:
        png = cell_png()
        image = CellImage(
            sample=sample,
            original_filename=f"cell-{len(images)}.png",
            sha256=hashlib.sha256(png).hexdigest(),
            width=100,
            height=120,
            format="PNG",
            byte_size=len(png),
            status=status or (CellImageStatus.QUEUED if label is None else CellImageStatus.CLASSIFIED),
        )
        image.file.save("cell.png", ContentFile(png))
        if label is not None:
            Prediction.objects.create(
                image=image,
                label=label,
                probability=0.5 if uncertain else (0.97 if label == "parasitized" else 0.03),
                uncertain=uncertain,
                model_version=MODEL_VERSION,
            )
        images.append(image)
    sample_refresh(sample_id=sample_id)
    return images
