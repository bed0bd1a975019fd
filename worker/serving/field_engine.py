"""Whole-field photographs in, every red cell found and classified out: the field counterpart of the engine.

Pure: bytes in, results out. Fields are decoded, segmented and cut into chips on a small thread pool
(Pillow and OpenCV release the GIL), while the calling thread classifies the chips of the fields already
prepared with the cell engine's interpreter: on 2 cores the two overlap. The objects the detector's colour
rule took for white cells are classified too: a red cell filled by a parasite (a gametocyte, a mature
trophozoite) looks like one, so those the classifier calls parasitized are red cells after all.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from worker.serving.engine import PARASITIZED, CellClassification, CellClassifier
from worker.serving.fields import COUNTED, WHITE_CELL, FieldAnalysis, FoundObject, analyse_field, cell_chip
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
            raise FieldImageError("the photograph is not a readable image (damaged or not an image)") from exc


def chips_of(rgb: np.ndarray, analysis: FieldAnalysis, found: Sequence[FoundObject], size: int) -> np.ndarray:
    """uint8 network inputs (n, size, size, 3) of these objects' chips, as the cell engine prepares a cell."""
    chips = [prepare_cell_uint8(Image.fromarray(cell_chip(rgb, analysis, cell)), size) for cell in found]
    return np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8)


def settle(
    analysis: FieldAnalysis, candidates: Sequence[FoundObject], verdicts: Sequence[CellClassification]
) -> FieldAnalysis:
    """The analysis with the white-cell look-alikes among `candidates` whose verdict is parasitized taken
    for red cells (FieldAnalysis.look_alikes); other candidates are left as they are."""
    promoted = {
        o.label for o, v in zip(candidates, verdicts, strict=True) if o.kind == WHITE_CELL and v.label == PARASITIZED
    }
    return analysis.settled(promoted)


def classify_field(
    rgb: np.ndarray, analysis: FieldAnalysis, classifier: CellClassifier
) -> tuple[FieldAnalysis, list[tuple[FieldCell, np.ndarray]]]:
    """Classify every red cell and white-cell look-alike of one analysed photograph, for the worker, which
    stores each chip: the settled analysis, and each red cell with its verdict and its chip (RGB, the cell's
    box, black outside its mask; the network's input is prepared from these very pixels)."""
    candidates = analysis.red_cells + analysis.look_alikes
    if not candidates:
        return analysis, []
    chips = [cell_chip(rgb, analysis, o) for o in candidates]
    size = classifier.card.input_size
    inputs = np.stack([prepare_cell_uint8(Image.fromarray(chip), size) for chip in chips])
    settled, cells = judge(classifier, analysis, candidates, classifier.probabilities(to_network_input(inputs)))
    chip_of = {o.label: chip for o, chip in zip(candidates, chips, strict=True)}
    return settled, [(cell, chip_of[cell.found.label]) for cell in cells]


def judge(
    classifier: CellClassifier, analysis: FieldAnalysis, candidates: Sequence[FoundObject], probabilities
) -> tuple[FieldAnalysis, list[FieldCell]]:
    """Verdicts at the field threshold for the candidates' probabilities: the settled analysis and its red
    cells, each with its verdict."""
    verdicts = [classifier.verdict(p, from_field=True) for p in probabilities]
    settled = settle(analysis, candidates, verdicts)
    by_label = {o.label: v for o, v in zip(candidates, verdicts, strict=True)}
    return settled, [FieldCell(found=o, classification=by_label[o.label]) for o in settled.red_cells]


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
        candidates = analysis.red_cells + analysis.look_alikes
        return analysis, candidates, chips_of(rgb, analysis, candidates, self.cells.card.input_size)

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
            analysis, candidates, chips = prepared
            probabilities = self.cells.probabilities(to_network_input(chips)) if len(chips) else []
            settled, cells = judge(self.cells, analysis, candidates, probabilities)
            results.append(FieldResult(analysis=settled, cells=cells))
        return results
