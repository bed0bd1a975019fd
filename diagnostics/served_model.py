"""The card of the model this deployment serves, for the pages (version in the footer, the model card page).

Only worker.serving.model_card is imported (no inference runtime). The card is verified against its files once per
change of the card file, not on every page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from worker.serving.model_card import CARD_NAME, ModelCard, ModelFileError, load_model_card, served_model_dir

# What the product is for, when a card does not say (cards before it recorded one).
INTENDED_USE = "Screening aid for trained microscopists; not a diagnosis."


@dataclass(frozen=True)
class ServedModel:
    card: ModelCard | None
    error: str = ""

    @property
    def version(self) -> str:
        return self.card.version if self.card else "unavailable"

    @property
    def intended_use(self) -> str:
        """The card's intended-use statement: one source for the model card page and the sample reports."""
        return (self.card.data.get("intended_use") if self.card else None) or INTENDED_USE


def served_model() -> ServedModel:
    directory = served_model_dir()
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
