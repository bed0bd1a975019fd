"""A card's figures come from its files: `measure` gives the shipped card's own figures back, and `export`
re-derives the shipped calibration from the same weights (the path `train` writes every card through).

Real model, real data from ../shared: they skip without it (and fail under MALARIA_REQUIRE_SHARED).
"""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from tests.cells import shared_cells_or_skip, shared_fields_or_skip
from worker.serving.model_card import CARD_NAME, DEFAULT_MODEL_DIR, load_model_card

pytestmark = [pytest.mark.pure, pytest.mark.slow]

SERVING_KEYS = ("temperature", "threshold", "uncertain_band", "field_threshold", "field_uncertain_band")


@pytest.fixture
def model_copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def flat(tree: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}: pytest.approx compares flat mappings only."""
    out: dict = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            out.update(flat(dict(enumerate(value)), f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def shipped() -> dict:
    return json.loads((DEFAULT_MODEL_DIR / CARD_NAME).read_text())


def test_measure_gives_the_shipped_card_its_own_figures_back(model_copy):
    from worker.training.card_figures import measure_command

    args = argparse.Namespace(
        model=str(model_copy), data=str(shared_cells_or_skip()), fields=str(shared_fields_or_skip())
    )
    measure_command(args)
    before, after = shipped(), json.loads((model_copy / CARD_NAME).read_text())
    assert {key: after[key] for key in SERVING_KEYS} == {key: before[key] for key in SERVING_KEYS}
    assert after["false_positive_rates"] == before["false_positive_rates"]
    assert after["files"] == before["files"]
    # The figures issue 9 added are on the shipped card, and are what its files give today.
    assert flat(after["metrics"]) == pytest.approx(flat(before["metrics"]), rel=1e-6)
    for metrics in (after["metrics"]["test"], after["metrics"]["fields"]["test"]):
        assert set(metrics["accuracy_at_coverage"]) == {"0.8", "0.9", "0.95"}
        assert 0.8 < metrics["sensitivity_at_specificity_0995"] <= 1.0
    load_model_card(model_copy)


def test_measure_refuses_data_the_model_was_not_trained_on(model_copy, tmp_path):
    from worker.training.card_figures import measure_command

    cells = str(shared_cells_or_skip())
    with pytest.raises(SystemExit, match="trained with field chips"):
        measure_command(argparse.Namespace(model=str(model_copy), data=cells, fields=None))
    other = tmp_path / "cells"
    for label in ("Parasitized", "Uninfected"):
        (other / label).mkdir(parents=True)
        shutil.copy(next((shared_cells_or_skip() / label).iterdir()), other / label)
    shutil.copy(shared_cells_or_skip() / "manifest.csv", other / "manifest.csv")
    with pytest.raises(SystemExit):
        measure_command(argparse.Namespace(model=str(model_copy), data=str(other), fields=str(shared_fields_or_skip())))
    assert (model_copy / CARD_NAME).read_text() == (DEFAULT_MODEL_DIR / CARD_NAME).read_text()


@pytest.mark.parametrize("int8_weights", [False, True], ids=["fp32", "int8-weights"])
def test_export_rederives_the_calibration_from_the_same_weights(tmp_path, int8_weights):
    from worker.training.export import RUNTIMES, export_command

    out = tmp_path / "exported"
    args = argparse.Namespace(
        model=str(DEFAULT_MODEL_DIR),
        data=str(shared_cells_or_skip()),
        fields=str(shared_fields_or_skip()),
        out=str(out),
        version="cnn-test-export",
        int8_weights=int8_weights,
    )
    export_command(args)
    card, before = load_model_card(out), shipped()
    assert card.version == "cnn-test-export" and card.data["runtime"] == RUNTIMES[int8_weights]
    assert card.data["exported_from"]["version"] == before["version"]
    tflite_bytes = card.file("tflite").stat().st_size
    if int8_weights:
        # Int8 weights: a quarter of the file, the same ranking, a calibration of its own.
        assert tflite_bytes < 0.3 * (DEFAULT_MODEL_DIR / before["files"]["tflite"]["name"]).stat().st_size
        assert card.data["metrics"]["validation"]["auc"] == pytest.approx(
            before["metrics"]["validation"]["auc"], abs=5e-4
        )
    else:
        # The same network through LiteRT instead of Keras: the same temperature and ranking to float noise,
        # and thresholds that make the same calls on validation data. (They are not the card's numbers: the
        # card's sit on a validation cell's own probability, today's halfway to the next one.)
        assert card.temperature == pytest.approx(before["temperature"], rel=1e-5)
        after_metrics = card.data["metrics"]
        for part in ("validation", "test"):
            assert after_metrics[part]["auc"] == pytest.approx(before["metrics"][part]["auc"], abs=1e-6)
        calls = ("tp", "fp", "tn", "fn")
        assert [after_metrics["validation"][k] for k in calls] == [before["metrics"]["validation"][k] for k in calls]
        fields, shipped_fields = after_metrics["fields"]["validation"], before["metrics"]["fields"]["validation"]
        assert fields["tp"] == shipped_fields["tp"] and abs(fields["fp"] - shipped_fields["fp"]) <= 1
    with pytest.raises(SystemExit, match="not empty"):
        export_command(args)
