"""Whole-field photographs in, every red cell found and classified out: the field counterpart of the engine.

Pure: bytes in, results out. Fields are decoded, segmented and cut into chips on a small thread pool
(Pillow and OpenCV release the GIL), while the calling thread classifies the chips of the fields already
prepared with the cell engine's interpreter: on 2 cores the two overlap.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from worker.serving.engine import CellClassification, CellClassifier
from worker.serving.fields import COUNTED, FieldAnalysis, FoundObject, analyse_field, cell_chip
from worker.serving.preprocessing import prepare_cell_uint8, to_network_input


@dataclass(frozen=True)
class FieldCell:
    found: FoundObject
    classification: CellClassification

    @property
    def counted(self) -> bool:
        return self.found.kind == COUNTED


@dataclass(frozen=True)
class FieldResult:
    analysis: FieldAnalysis
    cells: list[FieldCell]


@dataclass(frozen=True)
class FieldFailure:
    error: str


class FieldImageError(ValueError):
    """The photograph cannot be decoded, or is larger than allowed (the message says which)."""


def decode_field(data: bytes, *, max_pixels: int | None = None) -> np.ndarray:
    """RGB pixels of a photograph, turned upright as its EXIF says (phones store them sideways).

    The size is checked from the header before any pixel is decoded: the worker applies the upload's limit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if max_pixels is not None and image.width * image.height > max_pixels:
                    raise FieldImageError(f"the photograph is over the {max_pixels:,}-pixel limit")
                return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        except FieldImageError:
            raise
        except Exception as exc:  # Pillow raises many exception types for damaged files
            raise FieldImageError(f"the photograph is not a readable image ({type(exc).__name__})") from exc


class FieldClassifier:
    def __init__(self, cells: CellClassifier, *, threads: int | None = None):
        self.cells = cells
        self._workers = (threads or cells.threads) + 1
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="field")

    def _prepare(self, data: bytes) -> tuple[FieldAnalysis, list[FoundObject], np.ndarray] | FieldFailure:
        try:
            rgb = decode_field(data)
        except FieldImageError as exc:
            return FieldFailure(error=str(exc))
        analysis = analyse_field(rgb)
        found = analysis.red_cells
        size = self.cells.card.input_size
        chips = [prepare_cell_uint8(Image.fromarray(cell_chip(rgb, analysis, cell)), size) for cell in found]
        return analysis, found, (np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8))

    def classify(self, photographs: Sequence[bytes]) -> list[FieldResult | FieldFailure]:
        # A few fields ahead of the classifier, not all of them: memory stays bounded by the window.
        window = self._workers + 1
        pending = [self._pool.submit(self._prepare, data) for data in photographs[:window]]
        results: list[FieldResult | FieldFailure] = []
        for index in range(len(photographs)):
            prepared = pending[index].result()
            pending[index] = None  # type: ignore[call-overload]
            if index + window < len(photographs):
                pending.append(self._pool.submit(self._prepare, photographs[index + window]))
            if isinstance(prepared, FieldFailure):
                results.append(prepared)
                continue
            analysis, found, chips = prepared
            probabilities = self.cells.probabilities(to_network_input(chips)) if len(chips) else []
            cells = [
                FieldCell(found=cell, classification=self.cells.verdict(p))
                for cell, p in zip(found, probabilities, strict=True)
            ]
            results.append(FieldResult(analysis=analysis, cells=cells))
        return results
