"""Cells for tests: generated ones for tests that need "a cell", real ones from the shared NIH set for tests
about what the model sees.

Without the shared set, tests of real cells skip with a reason on a developer's machine; with
MALARIA_REQUIRE_SHARED=1 (set by .ci/run) they fail instead, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from malaria_site.env import env_bool
from worker.tools.bench_classifier import as_png  # noqa: F401 (the one re-encoding of a shared cell as PNG)

SHARED_CELLS = Path(
    os.environ.get("MALARIA_CELLS", Path(__file__).resolve().parents[2] / "shared/datasets/nih-malaria-cells")
)

SHARED_FIELDS = Path(
    os.environ.get("MALARIA_FIELDS", Path(__file__).resolve().parents[2] / "shared/datasets/iml-malaria-fields")
)

_variants = itertools.count(1)


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


def generated_cells(count: int) -> list[tuple[str, bytes]]:
    """`count` distinct generated cells as (file name, PNG bytes), as an upload carries them."""
    return [(f"generated-{index:04}.png", cell_png()) for index in range(count)]


def named(name: str, data: bytes) -> io.BytesIO:
    """A file as a multipart upload carries it: bytes with a name."""
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def upload(client, sample_id: int, files: list[tuple[str, bytes]]):
    """POST cells to a sample's images endpoint, as the pages' script does."""
    payload = {"images": [named(name, data) for name, data in files]}
    return client.post(f"/api/v1/samples/{sample_id}/images", payload, format="multipart")


def shared_cells_or_skip() -> Path:
    if not (SHARED_CELLS / "Parasitized").is_dir():
        reason = f"the shared cell images are not at {SHARED_CELLS} (set MALARIA_CELLS)"
        if env_bool("MALARIA_REQUIRE_SHARED"):
            pytest.fail(f"{reason}, and MALARIA_REQUIRE_SHARED is set: these tests must run here")
        pytest.skip(reason)
    return SHARED_CELLS


def shared_fields_or_skip() -> Path:
    if not (SHARED_FIELDS / "annotations.json").is_file() or not (SHARED_FIELDS / "fields").is_dir():
        reason = f"the shared field photographs are not at {SHARED_FIELDS} (set MALARIA_FIELDS)"
        if env_bool("MALARIA_REQUIRE_SHARED"):
            pytest.fail(f"{reason}, and MALARIA_REQUIRE_SHARED is set: these tests must run here")
        pytest.skip(reason)
    return SHARED_FIELDS


def cells_of_test_patients(count: int):
    """`count` cells of the shipped model's test patients, alternating labels, in a stable order."""
    from worker.serving.model_card import load_model_card
    from worker.training.dataset import list_cells

    folder = shared_cells_or_skip()
    test_patients = set(load_model_card().data["training_data"]["patients"]["test"])
    cells = [cell for cell in list_cells(folder) if cell.patient in test_patients]
    by_label = [[c for c in cells if c.label == label] for label in (0, 1)]
    step = [max(1, len(group) // (count // 2)) for group in by_label]
    picked = [group[::s][: count // 2] for group, s in zip(by_label, step, strict=True)]
    return [cell for pair in zip(*picked, strict=True) for cell in pair]
