"""Labelled chips from boxed whole-field photographs (the IML set), cut exactly as the worker cuts them.

The classifier must learn from the chips it will be served, so the chips come from the served detector
(worker.serving.fields) on each photograph, not from the annotators' boxes: the same mask, the same black
background, the same cells cut by the edge, and the white-cell look-alikes it classifies. A found cell takes
its label from the boxes:
- Parasitized when it matches an infected box (ring, trophozoite, schizont, gametocyte) at IoU >= 0.3,
  the evaluate command's rule for "found";
- Uninfected when it overlaps no infected box at all (IoU < 0.05) and no `difficult` box at IoU >= 0.3.
  The infected cells are exhaustively boxed (dataset README) while red-cell boxes are not, so a found
  cell with no box is a red cell nobody boxed, or debris the detector took for one: either way the
  classifier must call it Uninfected, and the evaluate command counts it as a false parasitized one if not;
- anything in between (a fragment of an infected cell, a clump half over one) is left out of training.

Fields are split by `block` (consecutive frames come from one slide), never by field or cell.
"""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from worker.serving.fields import DETECTOR_VERSION, analyse_field, cell_chip
from worker.serving.preprocessing import PREPROCESSING_VERSION, prepare_cell_uint8
from worker.tools.evaluate_fields import DIFFICULT, STAGES, iou_matrix, match, read_annotations, read_blocks

INFECTED_IOU = 0.3  # as worker.tools.evaluate_fields
UNINFECTED_MAX_IOU = 0.05
# Bump when the labelling rule above changes what this module returns (the detector has its own version).
CHIPS_VERSION = f"iml-boxes-with-look-alikes/v2+{DETECTOR_VERSION}"


@dataclass(frozen=True)
class FieldChips:
    images: np.ndarray  # uint8 (n, size, size, 3), as prepare_cell_uint8
    labels: np.ndarray  # int32 (n,): 1 = Parasitized
    blocks: np.ndarray  # int32 (n,): the field's block
    fields: np.ndarray  # str (n,): the field's file name
    stages: np.ndarray  # str (n,): the infected box's stage, "" for uninfected


def label_found_cells(boxes: list, annotated: list) -> list[tuple[int, str]]:
    """(label, stage) per found box: 1 / 0 as the module docstring says, -1 to leave out."""
    infected = [a for a in annotated if a.kind in STAGES]
    difficult = [a.box for a in annotated if a.kind == DIFFICULT]
    labels: list[tuple[int, str]] = [(-1, "")] * len(boxes)
    near_infected = iou_matrix(boxes, [a.box for a in infected]).max(axis=1) if infected and boxes else None
    on_difficult = iou_matrix(boxes, difficult).max(axis=1) if difficult and boxes else None
    for i in range(len(boxes)):
        clear = near_infected is None or near_infected[i] < UNINFECTED_MAX_IOU
        if clear and (on_difficult is None or on_difficult[i] < INFECTED_IOU):
            labels[i] = (0, "")
    for i, j in match(boxes, [a.box for a in infected], INFECTED_IOU):
        labels[i] = (1, infected[j].kind)
    return labels


def field_chips(path: Path, annotated: list, size: int) -> list[tuple[np.ndarray, int, str]]:
    """(chip, label, stage) for every labelled red cell the served detector finds on one photograph."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    analysis = analyse_field(rgb)
    # The white-cell look-alikes too: the classifier decides which of them are red cells filled by a parasite
    # (worker.serving.field_engine), so it must learn real white cells as not parasitized.
    found = analysis.red_cells + analysis.look_alikes
    chips = []
    for cell, (label, stage) in zip(found, label_found_cells([c.box for c in found], annotated), strict=True):
        if label >= 0:
            chip = prepare_cell_uint8(Image.fromarray(cell_chip(rgb, analysis, cell)), size)
            chips.append((chip, label, stage))
    return chips


def load_field_chips(folder: str | os.PathLike, size: int, *, workers: int = 2) -> FieldChips:
    root = Path(folder)
    annotations = read_annotations(root / "annotations.json")
    block_of = read_blocks(root / "manifest.csv")
    names = sorted(n for n in annotations if (root / "fields" / n).is_file())
    if not names:
        raise FileNotFoundError(f"{root} holds no boxed fields")

    def one(name: str):
        return name, field_chips(root / "fields" / name, annotations[name], size)

    images, labels, blocks, fields, stages = [], [], [], [], []
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV and Pillow release the GIL
        for name, chips in pool.map(one, names):
            for chip, label, stage in chips:
                images.append(chip)
                labels.append(label)
                blocks.append(block_of[name])
                fields.append(name)
                stages.append(stage)
    return FieldChips(
        images=np.stack(images),
        labels=np.array(labels, np.int32),
        blocks=np.array(blocks, np.int32),
        fields=np.array(fields),
        stages=np.array(stages),
    )


def fields_digest(folder: str | os.PathLike) -> str:
    """sha256 over the manifest and the annotations: names the exact boxed fields a model saw."""
    root = Path(folder)
    digest = hashlib.sha256()
    for name in ("manifest.csv", "annotations.json"):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def cached_field_chips(folder: str | os.PathLike, size: int, cache_dir: str | os.PathLike = ".cache") -> FieldChips:
    """load_field_chips, cached on disk by the data's digest, the size and both versions."""
    key = hashlib.sha256(f"{fields_digest(folder)}|{size}|{PREPROCESSING_VERSION}|{CHIPS_VERSION}".encode())
    path = Path(cache_dir) / f"field-chips-{size}-{key.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return FieldChips(**{k: stored[k] for k in FieldChips.__dataclass_fields__})
    chips = load_field_chips(folder, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{k: getattr(chips, k) for k in FieldChips.__dataclass_fields__})
    tmp.replace(path)
    return chips


def split_blocks(blocks: list[int] | np.ndarray, *, seed: int = 345, validation: int = 3, test: int = 2) -> dict:
    """Deterministic train/validation/test split of blocks (whole slides' runs of frames)."""
    ordered = sorted({int(b) for b in blocks})
    random.Random(seed).shuffle(ordered)
    return {
        "test": set(ordered[:test]),
        "validation": set(ordered[test : test + validation]),
        "train": set(ordered[test + validation :]),
    }
