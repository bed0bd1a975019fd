"""The shipped model's card: what the model is, how it was made and validated, and the files it needs.

The card (model_card.json) sits beside the files it names and records each file's sha256. Loading checks
the card against those files and against this code (preprocessing and architecture versions), and any
missing, corrupt or mismatched file is a ModelFileError naming the file: a worker must never silently
classify with a model other than the one its card describes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from worker.serving.preprocessing import PREPROCESSING_VERSION
from worker.serving.results import LEGACY_RATES, FalsePositiveRates, RuleRates

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "model"
CARD_NAME = "model_card.json"
# Bump when worker.training.architecture.build_model changes the network it builds for a given configuration.
ARCHITECTURE_VERSION = "strided-stem-vgg/v1"
REQUIRED_FIELDS = (
    "version",
    "architecture",
    "input_size",
    "preprocessing",
    "temperature",
    "threshold",
    "uncertain_band",
    "training_data",
    "metrics",
    "created",
    "files",
)


class ModelFileError(RuntimeError):
    """The model card or a file it names is missing, corrupt or does not match this code."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class ModelCard:
    directory: Path
    data: dict

    @property
    def version(self) -> str:
        return self.data["version"]

    @property
    def validated_on_fields(self) -> bool:
        """Whether the model was validated on cells cut from whole-field photographs (not only on crops)."""
        return bool(self.data.get("validated_on_fields", False))

    @property
    def field_threshold(self) -> float:
        """The threshold for chips cut from field photographs, chosen for what a parasitemia needs (at least
        99.5 % of uninfected chips right): they come at natural prevalence, 1 infected in 100 or fewer."""
        return float(self.data.get("field_threshold", self.data["threshold"]))

    @property
    def field_uncertain_band(self) -> tuple[float, float]:
        low, high = self.data.get("field_uncertain_band", self.data["uncertain_band"])
        return float(low), float(high)

    @property
    def rule_rates(self) -> RuleRates:
        """The false-positive rates the sample result rule uses, as measured on validation data at training."""
        rates = self.data.get("false_positive_rates")
        if not rates:
            return LEGACY_RATES
        fields = rates.get("fields") if self.validated_on_fields else None
        return RuleRates(
            cells=FalsePositiveRates.from_card(rates["cells"]),
            fields=FalsePositiveRates.from_card(fields) if fields else None,
        )

    @property
    def input_size(self) -> int:
        return int(self.data["input_size"])

    @property
    def temperature(self) -> float:
        return float(self.data["temperature"])

    @property
    def threshold(self) -> float:
        return float(self.data["threshold"])

    @property
    def uncertain_band(self) -> tuple[float, float]:
        low, high = self.data["uncertain_band"]
        return float(low), float(high)

    def file(self, role: str) -> Path:
        """Path of the file with this role ('tflite', 'weights'), already checked against its digest."""
        return self.directory / self.data["files"][role]["name"]


def served_model_dir() -> Path:
    """The model this deployment serves: MALARIA_MODEL_DIR, else the shipped one."""
    return Path(os.environ.get("MALARIA_MODEL_DIR") or DEFAULT_MODEL_DIR)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model_card(directory: str | Path = DEFAULT_MODEL_DIR) -> ModelCard:
    """Read and verify the card and every file it names."""
    directory = Path(directory)
    card_path = directory / CARD_NAME
    if not card_path.is_file():
        raise ModelFileError(card_path, "model card not found")
    try:
        data = json.loads(card_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(card_path, f"model card is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelFileError(card_path, "model card is not a JSON object")
    missing = [field for field in REQUIRED_FIELDS if field not in data]
    if missing:
        raise ModelFileError(card_path, f"model card lacks {', '.join(missing)}")
    if data["preprocessing"] != PREPROCESSING_VERSION:
        raise ModelFileError(
            card_path,
            f"model was trained with preprocessing {data['preprocessing']!r} but this code does "
            f"{PREPROCESSING_VERSION!r}",
        )
    architecture = data["architecture"]
    if not isinstance(architecture, dict) or architecture.get("version") != ARCHITECTURE_VERSION:
        raise ModelFileError(
            card_path, f"model architecture {architecture!r} does not match this code's {ARCHITECTURE_VERSION!r}"
        )
    files = data["files"]
    if not isinstance(files, dict) or "tflite" not in files:
        raise ModelFileError(card_path, "model card names no tflite file")
    for role, entry in files.items():
        path = directory / entry["name"]
        if Path(entry["name"]).name != entry["name"]:
            raise ModelFileError(card_path, f"file name {entry['name']!r} must not contain a path")
        if not path.is_file():
            raise ModelFileError(path, f"{role} file named by the model card is missing")
        if sha256_of(path) != entry["sha256"]:
            raise ModelFileError(path, f"{role} file does not match the sha256 in the model card (corrupt or replaced)")
    return ModelCard(directory=directory, data=data)


def write_model_card(directory: Path, data: dict) -> Path:
    """Write the card, recording the sha256 of every file in data['files']."""
    for entry in data["files"].values():
        entry["sha256"] = sha256_of(directory / entry["name"])
    path = directory / CARD_NAME
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path
