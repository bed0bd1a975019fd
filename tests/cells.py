"""Real cells from the shared NIH set, for tests that need them (skipped with a reason when it is absent)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

SHARED_CELLS = Path(
    os.environ.get("MALARIA_CELLS", Path(__file__).resolve().parents[2] / "shared/datasets/nih-malaria-cells")
)


def as_png(path: Path) -> bytes:
    """A shared (WebP) cell re-encoded as PNG, as uploads arrive."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return buffer.getvalue()


def shared_cells_or_skip():
    if not (SHARED_CELLS / "Parasitized").is_dir():
        pytest.skip(f"the shared cell images are not at {SHARED_CELLS} (set MALARIA_CELLS)")
    return SHARED_CELLS


def cells_of_test_patients(count: int):
    """`count` cells of the shipped model's test patients, alternating labels, in a stable order."""
    from worker.dataset import list_cells
    from worker.model_card import load_model_card

    folder = shared_cells_or_skip()
    test_patients = set(load_model_card().data["training_data"]["patients"]["test"])
    cells = [cell for cell in list_cells(folder) if cell.patient in test_patients]
    by_label = [[c for c in cells if c.label == label] for label in (0, 1)]
    step = [max(1, len(group) // (count // 2)) for group in by_label]
    picked = [group[::s][: count // 2] for group, s in zip(by_label, step, strict=True)]
    return [cell for pair in zip(*picked, strict=True) for cell in pair]
