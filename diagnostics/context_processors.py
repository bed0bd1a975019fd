"""The served model's version, for the footer of every page."""

from __future__ import annotations

from diagnostics.served_model import served_model


def served_model_version(request) -> dict:
    return {"served_model_version": served_model().version}
