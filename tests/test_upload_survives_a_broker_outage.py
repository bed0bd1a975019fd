"""An upload made while the broker is down is kept and answered 202; the sweeper sends its cells later."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from diagnostics.classification import cell_images_sweep_stalled
from diagnostics.models import CellImage
from tests.celery_worker import broker_unreachable, purge_queue, queued_tasks
from tests.cells import generated_cells, upload

# Real commits: the enqueue runs after the upload's transaction commits, inside the request, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def test_an_upload_while_the_broker_is_down_is_kept_and_sent_by_the_sweeper(clinician, sample, settings):
    purge_queue()
    with broker_unreachable():
        response = upload(clinician.client(), sample["id"], generated_cells(3))
    assert response.status_code == 202, response.content
    assert len(response.json()["accepted"]) == 3
    images = CellImage.objects.filter(sample_id=sample["id"])
    ids = list(images.values_list("id", flat=True))
    assert len(ids) == 3
    assert set(images.values_list("status", flat=True)) == {"queued"}
    assert all(default_storage.exists(image.file.name) for image in images), "the stored files are kept"
    assert queued_tasks() == [], "nothing reached the broker"
    detail = clinician.client().get(f"/api/v1/samples/{sample['id']}").json()
    assert (detail["status"], detail["counts"]["queued"]) == ("processing", 3)

    assert set(images.values_list("enqueued_at", flat=True)) == {None}, "never marked sent"

    # The broker is back; the sweeper sends what never reached it QUEUED_NEVER_SENT_SECONDS (30 s) after the
    # upload, not after the 15 minutes it gives messages the broker took and lost.
    assert cell_images_sweep_stalled() == [], "not before they have waited"
    assert settings.QUEUED_NEVER_SENT_SECONDS <= 30
    images.update(created_at=timezone.now() - dt.timedelta(seconds=settings.QUEUED_NEVER_SENT_SECONDS + 1))
    assert sorted(cell_images_sweep_stalled()) == ids
    assert queued_tasks() == [("worker.tasks.classify_cell_images", [ids])]


def test_clients_sending_the_same_files_at_once_get_duplicates_not_errors(clinician, sample):
    """Ten clients upload the same cells to one sample at the same moment: each image is stored once, the
    others are told "duplicate" (400), and nobody gets a 500 from the unique constraint."""
    import threading

    from django.db import connections

    purge_queue()
    files = generated_cells(10)
    answers: list[int] = []
    start = threading.Barrier(10)

    def client_uploads():
        try:
            api = clinician.client()
            start.wait()
            answers.append(upload(api, sample["id"], files).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client_uploads) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers).count(202) >= 1 and all(code in (202, 400) for code in answers), answers
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 10
