"""Upload through the API -> a real Celery worker -> predictions in PostgreSQL, equal to the engine's.

The cells are generated: these tests are about the path from upload to prediction, not about the model.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from diagnostics.models import CellImage, Prediction
from tests.celery_worker import CeleryWorker, purge_queue, wait_until
from tests.cells import generated_cells, upload
from worker.serving.engine import get_classifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def cell_pngs():
    return generated_cells(60)


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
    """The first worker claims a chunk and holds it (a test-only pause, tests/celery_app.py): the kill lands
    mid-chunk every time. The second worker classifies the rest; its sweeper puts the dead claim back."""
    purge_queue()
    settings_for_worker = {"CLASSIFY_CHUNK_SIZE": 20, "PROCESSING_TIMEOUT_SECONDS": 3, "SWEEP_INTERVAL_SECONDS": 1}
    first = CeleryWorker(pause_after_claim=True, **settings_for_worker).start()
    try:
        with override_settings(CLASSIFY_CHUNK_SIZE=20):  # three chunks
            response = upload(clinician.client(), sample["id"], cell_pngs)
        assert response.status_code == 202
        held = first.paused_claim()
        images = CellImage.objects.filter(sample_id=sample["id"])
        assert sorted(images.filter(status="processing").values_list("id", flat=True)) == held
        assert len(held) == 20
        assert images.filter(status="queued").count() == 40
        first.kill()
    finally:
        first.kill()

    second = CeleryWorker(**settings_for_worker).start()
    try:
        wait_until(
            lambda: images.filter(status="classified").count() == len(cell_pngs),
            timeout=90,
            message="every cell classified after the restart",
        )
    finally:
        second.stop()
    assert images.count() == len(cell_pngs)
    assert Prediction.objects.filter(image__sample_id=sample["id"]).count() == len(cell_pngs)
    assert not images.filter(pk__in=held, attempts__lt=2).exists(), "every cell of the dead claim was claimed again"
    assert set(images.exclude(pk__in=held).values_list("attempts", flat=True)) == {1}
    assert "IntegrityError" not in second.log()


def test_an_uploaded_field_is_segmented_and_its_cells_classified(worker, clinician, sample):
    import io

    from PIL import Image

    from tests.cells import named
    from tests.test_field_detection import drawn_field

    centres = [(x, y) for y in (200, 500, 800) for x in (200, 500, 800, 1100)]
    buffer = io.BytesIO()
    Image.fromarray(drawn_field([*centres, (1262, 350)])).save(buffer, format="JPEG", quality=92)
    client = clinician.client()
    response = client.post(
        f"/api/v1/samples/{sample['id']}/fields",
        {"fields": [named("smear.jpg", buffer.getvalue())]},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    field_id = response.json()["accepted"][0]["id"]

    def cells_classified():
        field = client.get(f"/api/v1/fields/{field_id}").json()
        return field["status"] == "segmented" and field["cells"] and all(c["label"] for c in field["cells"])

    wait_until(cells_classified, message="segmentation and classification")
    wait_until(lambda: client.get(f"/api/v1/samples/{sample['id']}").json()["status"] == "complete")
    field = client.get(f"/api/v1/fields/{field_id}").json()
    assert len(field["cells"]) == 13 and sum(c["counted"] for c in field["cells"]) == 12
    detail = client.get(f"/api/v1/samples/{sample['id']}").json()
    assert detail["counts"] == {"total": 12, "queued": 0, "processing": 0, "classified": 12, "failed": 0}
    assert detail["parasitized"] + detail["uninfected"] == 12
    assert detail["field_count"] == 1
