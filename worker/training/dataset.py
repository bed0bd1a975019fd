"""Labelled cell folders: which file is which label and which patient, the split by patient, caches.

A folder holds `Parasitized/` and `Uninfected/` with images in any format Pillow reads. The patient of a
file comes from `manifest.csv` (columns `file`, `patient`) when present, else from the `C<number>`
prefix of the file name, as in the NIH set. Cells of one patient are never split between train,
validation and test: papers that split by cell leak patients and overstate accuracy.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.serving.preprocessing import PREPROCESSING_VERSION, prepare_cell_uint8

LABELS = ("Uninfected", "Parasitized")  # index 1 is the positive class
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
PATIENT_PREFIX = re.compile(r"^(C\d+)")


class DatasetError(ValueError):
    """The folder does not have the expected layout."""


@dataclass(frozen=True)
class CellFile:
    path: Path
    label: int  # 1 = Parasitized, 0 = Uninfected
    patient: str


def patient_from_name(name: str) -> str:
    match = PATIENT_PREFIX.match(name)
    if not match:
        raise DatasetError(f"cannot tell the patient of {name!r}: no manifest.csv and no C<number> prefix")
    return match.group(1)


def list_cells(folder: str | os.PathLike) -> list[CellFile]:
    """Every labelled cell image under folder, in a stable order."""
    root = Path(folder)
    if not all((root / label).is_dir() for label in LABELS):
        raise DatasetError(f"{root} must contain the folders {' and '.join(LABELS)}")
    manifest_patients: dict[str, str] = {}
    manifest = root / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as handle:
            for row in csv.DictReader(handle):
                manifest_patients[Path(row["file"]).name] = row["patient"]
    cells = []
    for label_index, label in enumerate(LABELS):
        for path in sorted((root / label).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            patient = manifest_patients.get(path.name) or patient_from_name(path.name)
            cells.append(CellFile(path=path, label=label_index, patient=patient))
    if not cells:
        raise DatasetError(f"{root} holds no images")
    return cells


def manifest_digest(cells: list[CellFile]) -> str:
    """sha256 over (label, patient, file name) of every cell: names the exact data a model saw."""
    digest = hashlib.sha256()
    for cell in sorted(cells, key=lambda c: (c.label, c.path.name)):
        digest.update(f"{LABELS[cell.label]}/{cell.path.name}\t{cell.patient}\n".encode())
    return digest.hexdigest()


def split_patients(
    cells: list[CellFile], *, seed: int = 20181, validation: float = 0.15, test: float = 0.20
) -> dict[str, set[str]]:
    """Deterministic train/validation/test split of patients, stratified by infected vs healthy."""
    infected: dict[str, bool] = {}
    for cell in cells:
        infected[cell.patient] = infected.get(cell.patient, False) or cell.label == 1
    split: dict[str, set[str]] = {"train": set(), "validation": set(), "test": set()}
    rng = random.Random(seed)
    for group in (True, False):
        patients = sorted(p for p, is_infected in infected.items() if is_infected is group)
        rng.shuffle(patients)
        n_test = round(len(patients) * test)
        n_validation = round(len(patients) * validation)
        split["test"].update(patients[:n_test])
        split["validation"].update(patients[n_test : n_test + n_validation])
        split["train"].update(patients[n_test + n_validation :])
    return split


def load_arrays(cells: list[CellFile], size: int, *, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Decode and preprocess every cell: uint8 images (n, size, size, 3) and labels (n,)."""

    def one(cell: CellFile) -> np.ndarray:
        return prepare_cell_uint8(cell.path.read_bytes(), size)

    # Pillow releases the GIL while decoding, so threads use both cores.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        images = np.stack(list(pool.map(one, cells, chunksize=64)))
    labels = np.array([cell.label for cell in cells], dtype=np.int32)
    return images, labels


def cached_arrays(
    cells: list[CellFile], size: int, cache_dir: str | os.PathLike = ".cache"
) -> tuple[np.ndarray, np.ndarray]:
    """load_arrays, cached on disk by the data's digest, the size and the preprocessing version."""
    key = hashlib.sha256(f"{manifest_digest(cells)}|{size}|{PREPROCESSING_VERSION}".encode()).hexdigest()
    path = Path(cache_dir) / f"cells-{size}-{key[:16]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return stored["images"], stored["labels"]
    images, labels = load_arrays(cells, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, labels=labels)
    tmp.replace(path)
    return images, labels
