"""Cell images put in a sample through the ORM, as the worker leaves them, for tests of what follows classification."""

from __future__ import annotations

from collections.abc import Iterable

from tests.cells import cell_png  # noqa: F401 (imported from here by older tests)
from tests.factories import MODEL_VERSION, CellImageFactory, PredictionFactory  # noqa: F401


def add_cells(sample_id: int, labels: Iterable[str | None], *, uncertain: bool = False, status: str = ""):
    """One stored cell image per label ('parasitized', 'uninfected', or None for a cell not yet classified).

    Classified cells get a prediction; the sample's counts and results are recomputed as the worker would.
    """
    from diagnostics.models import CellImageStatus, Sample
    from diagnostics.services import sample_refresh

    sample = Sample.objects.get(pk=sample_id)
    images = []
    for index, label in enumerate(labels):
        image = CellImageFactory(
            sample=sample,
            original_filename=f"cell-{index}.png",
            status=status or (CellImageStatus.QUEUED if label is None else CellImageStatus.CLASSIFIED),
        )
        if label is not None:
            PredictionFactory(image=image, label=label, uncertain=uncertain)
        images.append(image)
    sample_refresh(sample_id=sample_id)
    return images
