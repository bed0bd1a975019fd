"""The card of the model this deployment serves, for the pages (version in the footer, the model card page).

Only worker.model_card is imported (no inference runtime). The card is verified against its files once per
change of the card file, not on every page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from worker.model_card import CARD_NAME, DEFAULT_MODEL_DIR, ModelCard, ModelFileError, load_model_card


@dataclass(frozen=True)
class ServedModel:
    card: ModelCard | None
    error: str = ""

    @property
    def version(self) -> str:
        return self.card.version if self.card else "unavailable"


def model_directory() -> Path:
    return Path(os.environ.get("MALARIA_MODEL_DIR") or DEFAULT_MODEL_DIR)


def served_model() -> ServedModel:
    directory = model_directory()
    try:
        stamp = (directory / CARD_NAME).stat().st_mtime_ns
    except OSError:
        stamp = None
    return _load(str(directory), stamp)


@lru_cache(maxsize=4)
def _load(directory: str, stamp: int | None) -> ServedModel:
    try:
        return ServedModel(card=load_model_card(directory))
    except ModelFileError as exc:
        return ServedModel(card=None, error=str(exc))
