"""Web and workers on different machines share images through an S3-compatible bucket (issue 10).

The bucket is served by moto's server mode on 127.0.0.1, started here; the web side (this process) and a
real Celery worker (another process) both use the production S3 storage settings (`s3_storage`) on it.
Nothing is written to the local media folder.
"""

from __future__ import annotations

import pytest

from malaria_site.auth_emulator import free_port
from tests.celery_worker import CeleryWorker, purge_queue, wait_until
from tests.cells import generated_cells, named, upload
from tests.settings import s3_storage
from tests.test_field_detection import drawn_field
from tests.test_field_upload_api import CENTRES, encoded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-test",
    "AWS_SECRET_ACCESS_KEY": "local-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def bucket(settings, monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    endpoint, name = f"http://127.0.0.1:{port}", "malaria-images"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=name)
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(name, endpoint)}
    yield client, name, endpoint
    server.stop()


def keys(client, name: str) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", [])]


def test_cells_and_fields_go_through_a_bucket_shared_by_web_and_worker(bucket, clinician, sample, settings):
    client, name, endpoint = bucket
    local_before = {p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()} if settings.MEDIA_ROOT.exists() else set()
    api = clinician.client()
    response = upload(api, sample["id"], generated_cells(4))
    assert response.status_code == 202, response.content
    fields = api.post(
        f"/api/v1/samples/{sample['id']}/fields",
        {"fields": [named("field.jpg", encoded(drawn_field(CENTRES, seed=3), "JPEG"))]},
        format="multipart",
    )
    assert fields.status_code == 202, fields.content
    stored = keys(client, name)
    assert (
        sum(key.startswith("cells/") for key in stored) == 4 and sum(key.startswith("fields/") for key in stored) == 1
    )

    purge_queue()
    worker = CeleryWorker(TEST_S3_BUCKET=name, TEST_S3_ENDPOINT_URL=endpoint, **CREDENTIALS).start()
    try:
        from diagnostics.services import cell_images_enqueue, fields_enqueue

        cell_images_enqueue(image_ids=[item["id"] for item in response.json()["accepted"]])
        fields_enqueue(field_ids=[item["id"] for item in fields.json()["accepted"]])
        wait_until(
            lambda: api.get(f"/api/v1/samples/{sample['id']}").json()["status"] == "complete",
            timeout=120,
            message="classification through the bucket",
        )
    finally:
        worker.stop()
    detail = api.get(f"/api/v1/samples/{sample['id']}").json()
    assert detail["counts"]["failed"] == 0 and detail["counts"]["classified"] > 4, "the field's chips were classified"
    assert any(key.startswith("cells/") for key in set(keys(client, name)) - set(stored)), "chips written by the worker"
    image_id = response.json()["accepted"][0]["id"]
    heatmap = api.get(f"/api/v1/images/{image_id}/heatmap")
    assert heatmap.status_code == 200 and heatmap.content.startswith(b"\x89PNG")
    assert api.get(f"/api/v1/images/{image_id}/file").status_code == 200
    local_after = {p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()} if settings.MEDIA_ROOT.exists() else set()
    assert local_after == local_before, "nothing went to the local media folder"
