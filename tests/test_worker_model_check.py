"""A worker refuses to start on a model it cannot serve, naming the file, instead of failing every task."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.celery_worker import CeleryWorker
from worker.serving.model_card import CARD_NAME, DEFAULT_MODEL_DIR

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def model_copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def test_worker_with_a_corrupt_model_refuses_to_start_naming_the_file(model_copy):
    tflite = model_copy / "malaria_cnn.tflite"
    tflite.write_bytes(tflite.read_bytes()[:1000])
    worker = CeleryWorker(MALARIA_MODEL_DIR=model_copy)
    with pytest.raises(RuntimeError, match="exited"):
        worker.start()
    assert f"{tflite}: tflite file does not match the sha256 in the model card" in worker.log()


def test_worker_whose_card_disagrees_with_the_models_input_size_refuses_to_start(model_copy):
    card = json.loads((model_copy / CARD_NAME).read_text())
    card["input_size"] += 8
    (model_copy / CARD_NAME).write_text(json.dumps(card))
    worker = CeleryWorker(MALARIA_MODEL_DIR=model_copy)
    with pytest.raises(RuntimeError, match="exited"):
        worker.start()
    assert f"does not match the card's {card['input_size']}px" in worker.log()
    assert "malaria_cnn.tflite" in worker.log()


def test_a_notifications_worker_neither_checks_nor_loads_the_model(model_copy):
    """It never classifies (-Q notifications): a model it would refuse does not stop it, so it loads none."""
    import time

    from tests.celery_worker import NOTIFICATIONS_QUEUE

    tflite = model_copy / "malaria_cnn.tflite"
    tflite.write_bytes(tflite.read_bytes()[:1000])
    notifier = CeleryWorker(queue=NOTIFICATIONS_QUEUE, beat=False, MALARIA_MODEL_DIR=model_copy).start()
    try:
        time.sleep(2)  # a pool process that tried to load the model would have failed by now
        assert notifier.process.poll() is None
        assert "tflite file does not match" not in notifier.log() and "Traceback" not in notifier.log()
    finally:
        notifier.stop()
