"""Loading the shipped model checks its card against the files and the code; anything off names the file."""

import json
import shutil

import pytest

from worker.serving.engine import CellClassifier
from worker.serving.model_card import CARD_NAME, DEFAULT_MODEL_DIR, ModelFileError, load_model_card

pytestmark = pytest.mark.pure


@pytest.fixture
def model_copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def edit_card(folder, change):
    card = json.loads((folder / CARD_NAME).read_text())
    change(card)
    (folder / CARD_NAME).write_text(json.dumps(card))


def test_shipped_model_loads_with_its_figures():
    card = load_model_card()
    assert card.input_size > 0
    assert 0.0 < card.threshold < 1.0
    low, high = card.uncertain_band
    assert low <= card.threshold <= high
    assert card.temperature > 0
    for split in ("validation", "test"):
        assert 0.5 < card.data["metrics"][split]["accuracy"] <= 1.0
    assert len(card.data["training_data"]["manifest_sha256"]) == 64
    assert CellClassifier(card).card.version == card.version


def test_shipped_model_is_small():
    total = sum(path.stat().st_size for path in DEFAULT_MODEL_DIR.iterdir())
    assert total <= 10 * 1024 * 1024


def test_missing_card_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"model_card\.json: model card not found"):
        load_model_card(tmp_path)


def test_corrupt_card_names_the_file(model_copy):
    (model_copy / CARD_NAME).write_text("{not json")
    with pytest.raises(ModelFileError, match=r"model_card\.json: model card is not valid JSON"):
        load_model_card(model_copy)


def test_card_missing_fields(model_copy):
    edit_card(model_copy, lambda card: card.pop("threshold"))
    with pytest.raises(ModelFileError, match="lacks threshold"):
        load_model_card(model_copy)


@pytest.mark.parametrize("role", ["tflite", "weights"])
def test_missing_model_file_names_it(model_copy, role):
    name = json.loads((model_copy / CARD_NAME).read_text())["files"][role]["name"]
    (model_copy / name).unlink()
    with pytest.raises(ModelFileError, match=rf"{name}: {role} file named by the model card is missing"):
        load_model_card(model_copy)


@pytest.mark.parametrize("role", ["tflite", "weights"])
def test_corrupt_model_file_is_caught_by_its_digest(model_copy, role):
    name = json.loads((model_copy / CARD_NAME).read_text())["files"][role]["name"]
    data = bytearray((model_copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / name).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=rf"{name}: {role} file does not match the sha256"):
        load_model_card(model_copy)


def test_model_from_other_preprocessing_is_refused(model_copy):
    edit_card(model_copy, lambda card: card.update(preprocessing="stretch/nearest/v0"))
    with pytest.raises(ModelFileError, match="trained with preprocessing 'stretch/nearest/v0'"):
        load_model_card(model_copy)


def test_model_from_other_architecture_is_refused(model_copy):
    edit_card(model_copy, lambda card: card["architecture"].update(version="resnet/v9"))
    with pytest.raises(ModelFileError, match="does not match this code"):
        load_model_card(model_copy)


def test_card_input_size_must_match_the_tflite_model(model_copy):
    edit_card(model_copy, lambda card: card.update(input_size=card["input_size"] + 8))
    with pytest.raises(ModelFileError, match=r"malaria_cnn\.tflite: model input .* does not match"):
        CellClassifier(load_model_card(model_copy))


def test_file_names_cannot_escape_the_model_folder(model_copy):
    edit_card(model_copy, lambda card: card["files"]["tflite"].update(name="../../etc/passwd"))
    with pytest.raises(ModelFileError, match="must not contain a path"):
        load_model_card(model_copy)


def test_shipped_model_is_validated_on_field_chips_with_its_own_rates():
    card = load_model_card()
    assert card.validated_on_fields
    low, high = card.field_uncertain_band
    assert 0.0 < low <= card.field_threshold <= high < 1.0
    rates = card.rule_rates
    assert rates.fields is not None and rates.fields.uninfected > 1000
    assert rates.cells.uninfected == card.data["metrics"]["validation"]["tn"] + card.data["metrics"]["validation"]["fp"]
    assert "validation" in rates.cells.measured_on and "validation" in rates.fields.measured_on
    assert set(card.data["training_data"]["fields"]["blocks"]["test"]).isdisjoint(
        card.data["training_data"]["fields"]["blocks"]["train"]
    )


def test_a_card_not_validated_on_fields_gives_no_field_rates(model_copy):
    from worker.serving.results import LEGACY_RATES

    edit_card(model_copy, lambda card: card.update(validated_on_fields=False))
    assert load_model_card(model_copy).rule_rates.fields is None
    edit_card(model_copy, lambda card: [card.pop(k, None) for k in ("validated_on_fields", "false_positive_rates")])
    assert load_model_card(model_copy).rule_rates == LEGACY_RATES, "a card from before rates were written"
