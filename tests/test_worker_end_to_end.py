"""Upload through the API -> a real Celery worker -> predictions in PostgreSQL, equal to the engine's."""

from __future__ import annotations

import io
import time

import pytest

from diagnostics.models import CellImage, Prediction
from tests.celery_worker import CeleryWorker, purge_queue
from tests.cells import as_png, cells_of_test_patients
from worker.serving.engine import get_classifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def cell_pngs():
    return [(cell.path.with_suffix(".png").name, as_png(cell.path)) for cell in cells_of_test_patients(480)]


def upload(client, sample_id, files):
    payload = {"images": [_named(name, data) for name, data in files]}
    return client.post(f"/api/v1/samples/{sample_id}/images", payload, format="multipart")


def _named(name, data):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def wait_until(condition, timeout=90, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture
def worker():
    purge_queue()
    process = CeleryWorker().start()
    yield process
    process.stop()


def test_uploaded_cells_are_classified_as_the_engine_classifies_them(worker, clinician, sample, cell_pngs):
    files = cell_pngs[:60]
    response = upload(clinician.client(), sample["id"], files + [("broken.png", b"\x89PNG\r\n\x1a\nbroken")])
    assert response.status_code == 202, response.content
    body = response.json()
    assert len(body["accepted"]) == 60
    assert body["rejected"][0]["filename"] == "broken.png"

    client = clinician.client()
    wait_until(
        lambda: client.get(f"/api/v1/samples/{sample['id']}").json()["status"] == "complete", message="classification"
    )
    detail = client.get(f"/api/v1/samples/{sample['id']}").json()
    assert detail["counts"] == {"total": 60, "queued": 0, "processing": 0, "classified": 60, "failed": 0}
    assert detail["parasitized"] + detail["uninfected"] == 60
    assert detail["result"] in {"positive", "negative", "indeterminate"}

    expected = get_classifier().classify([data for _, data in files])
    images = client.get(f"/api/v1/samples/{sample['id']}/images?page_size=100").json()["results"]
    by_name = {image["filename"]: image for image in images}
    for (name, _), engine_result in zip(files, expected, strict=True):
        prediction = by_name[name]["prediction"]
        assert prediction["label"] == engine_result.label
        assert prediction["probability"] == pytest.approx(engine_result.probability, abs=1e-5)
        assert prediction["uncertain"] == engine_result.uncertain
        assert prediction["model_version"] == engine_result.model_version


def test_a_file_damaged_in_storage_fails_alone(clinician, sample, cell_pngs):
    from django.core.files.storage import default_storage

    purge_queue()
    response = upload(clinician.client(), sample["id"], cell_pngs[:6])
    assert response.status_code == 202
    victim = CellImage.objects.filter(sample_id=sample["id"]).first()
    with default_storage.open(victim.file.name, "wb") as handle:
        handle.write(b"garbage")
    process = CeleryWorker().start()
    try:
        client = clinician.client()
        wait_until(lambda: client.get(f"/api/v1/samples/{sample['id']}").json()["status"] == "complete")
    finally:
        process.stop()
    victim.refresh_from_db()
    assert victim.status == "failed"
    assert "not a readable image" in victim.error
    detail = client.get(f"/api/v1/samples/{sample['id']}").json()
    assert detail["counts"]["failed"] == 1
    assert detail["counts"]["classified"] == 5
    assert detail["result"] != ""


def test_worker_killed_mid_chunk_loses_nothing_and_classifies_each_cell_once(clinician, sample, cell_pngs):
    purge_queue()
    settings_for_worker = {"CLASSIFY_CHUNK_SIZE": 480, "PROCESSING_TIMEOUT_SECONDS": 3, "SWEEP_INTERVAL_SECONDS": 1}
    first = CeleryWorker(**settings_for_worker).start()
    try:
        from django.test import override_settings

        with override_settings(CLASSIFY_CHUNK_SIZE=480):  # one chunk: a long window to kill it in
            response = upload(clinician.client(), sample["id"], cell_pngs)
        assert response.status_code == 202
        wait_until(
            lambda: CellImage.objects.filter(sample_id=sample["id"], status="processing").exists(),
            timeout=60,
            message="the worker to claim the chunk",
        )
        first.kill()
    finally:
        first.kill()
    assert CellImage.objects.filter(sample_id=sample["id"]).exclude(status="classified").exists(), (
        "the kill came too late to interrupt the chunk"
    )

    second = CeleryWorker(**settings_for_worker).start()
    try:
        wait_until(
            lambda: CellImage.objects.filter(sample_id=sample["id"], status="classified").count() == len(cell_pngs),
            timeout=90,
            message="every cell classified after the restart",
        )
    finally:
        second.stop()
    images = CellImage.objects.filter(sample_id=sample["id"])
    assert images.count() == len(cell_pngs)
    assert Prediction.objects.filter(image__sample_id=sample["id"]).count() == len(cell_pngs)
    assert images.filter(attempts__gte=2).exists(), "the interrupted chunk was claimed again"
    assert "IntegrityError" not in second.log()


def test_worker_with_a_corrupt_model_refuses_to_start_naming_the_file(tmp_path):
    import shutil

    from worker.serving.model_card import DEFAULT_MODEL_DIR

    broken = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, broken)
    tflite = broken / "malaria_cnn.tflite"
    tflite.write_bytes(tflite.read_bytes()[:1000])
    worker = CeleryWorker(MALARIA_MODEL_DIR=broken)
    with pytest.raises(RuntimeError, match="exited"):
        worker.start()
    assert f"{tflite}: tflite file does not match the sha256 in the model card" in worker.log()
