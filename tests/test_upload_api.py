"""Uploading cells to a sample through the API: each file validated on its own before anything is stored."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from accounts.models import AuditEvent
from diagnostics.models import CellImage
from tests.cells import cell_png, named
from worker.tools.upload_corpus import zipped

pytestmark = pytest.mark.django_db


def post(person, sample_id, **fields):
    return person.client().post(f"/api/v1/samples/{sample_id}/images", fields, format="multipart")


def test_good_cells_are_accepted_and_queued(clinician, sample):
    response = post(clinician, sample["id"], images=[named("a.png", cell_png()), named("b.png", cell_png())])
    assert response.status_code == 202
    body = response.json()
    assert [item["filename"] for item in body["accepted"]] == ["a.png", "b.png"]
    assert {item["status"] for item in body["accepted"]} == {"queued"}
    assert body["rejected"] == []
    detail = clinician.client().get(f"/api/v1/samples/{sample['id']}").json()
    assert detail["status"] == "processing"
    assert detail["counts"]["total"] == 2 and detail["counts"]["queued"] == 2
    image = CellImage.objects.get(pk=body["accepted"][0]["id"])
    assert (image.width, image.height, image.format) == (100, 120, "PNG")
    assert not image.file.name.endswith("/a.png"), "stored under a random name, never the client's"
    assert image.original_filename == "a.png"


def test_bad_files_are_rejected_one_by_one_and_good_ones_kept(clinician, sample):
    good = cell_png()
    response = post(
        clinician,
        sample["id"],
        images=[
            named("good.png", good),
            named("empty.png", b""),
            named("notes.png", b"this is text, not a cell"),
            named("truncated.png", good[: len(good) // 2]),
        ],
    )
    assert response.status_code == 202
    body = response.json()
    assert [item["filename"] for item in body["accepted"]] == ["good.png"]
    errors = {item["filename"]: item["error"] for item in body["rejected"]}
    assert set(errors) == {"empty.png", "notes.png", "truncated.png"}
    assert "empty" in errors["empty.png"]
    assert "text" in errors["notes.png"]
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 1


def test_nothing_accepted_is_400_and_stores_nothing(clinician, sample):
    response = post(clinician, sample["id"], images=[named("x.png", b"<html><script>alert(1)</script>")])
    assert response.status_code == 400
    assert response.json()["accepted"] == []
    assert response.json()["rejected"][0]["filename"] == "x.png"
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 0


def test_no_files_at_all_is_400_with_a_clear_message(clinician, sample):
    response = post(clinician, sample["id"])
    assert response.status_code == 400
    assert "images" in response.json()["detail"]


def test_zip_archive_members_are_validated_one_by_one(clinician, sample):
    archive = zipped(
        {"cells/one.png": cell_png(), "cells/two.png": cell_png(), "../../etc/evil.png": cell_png(), "inner.zip": b"PK"}
    )
    response = post(clinician, sample["id"], archive=named("cells.zip", archive))
    assert response.status_code == 202
    body = response.json()
    assert sorted(item["filename"] for item in body["accepted"]) == ["one.png", "two.png"]
    errors = " | ".join(f"{item['filename']}: {item['error']}" for item in body["rejected"])
    assert "unsafe path" in errors
    assert "nested" in errors


def test_duplicate_of_an_image_already_in_the_sample_is_rejected(clinician, sample):
    png = cell_png()
    assert post(clinician, sample["id"], images=[named("first.png", png)]).status_code == 202
    response = post(clinician, sample["id"], images=[named("again.png", png)])
    assert response.status_code == 400
    assert response.json()["rejected"] == [
        {"filename": "again.png", "error": "duplicate: this image is already in the sample"}
    ]


def test_the_same_image_may_go_to_another_sample(clinician, patient, sample):
    png = cell_png()
    other = clinician.client().post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()
    assert post(clinician, sample["id"], images=[named("a.png", png)]).status_code == 202
    assert post(clinician, other["id"], images=[named("a.png", png)]).status_code == 202


def test_decompression_bomb_is_rejected(clinician, sample):
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # 400 Mpixels in a few KB
    response = post(clinician, sample["id"], images=[named("bomb.png", buffer.getvalue())])
    assert response.status_code == 400
    assert "pixels" in response.json()["rejected"][0]["error"] or "bomb" in response.json()["rejected"][0]["error"]


def test_file_over_the_size_limit_is_rejected(clinician, sample, settings):
    settings.UPLOAD_MAX_FILE_BYTES = 1000
    response = post(clinician, sample["id"], images=[named("big.png", cell_png(300, 300))])
    assert response.status_code == 400
    assert "limit" in response.json()["rejected"][0]["error"]


def test_request_over_the_limit_is_413(clinician, sample, settings):
    settings.UPLOAD_MAX_REQUEST_BYTES = 2000
    response = post(clinician, sample["id"], images=[named("a.png", cell_png(300, 300))])
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 0


def test_oversized_request_is_refused_before_its_body_is_read(clinician, sample, settings):
    """Also for page sessions, whose CSRF check would otherwise parse the whole body first."""
    from django.test import Client

    settings.UPLOAD_MAX_REQUEST_BYTES = 2000
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician_user(clinician))
    response = client.post(f"/samples/{sample['id']}/upload", {"images": [named("a.png", cell_png(300, 300))]})
    assert response.status_code == 413
    assert "limit" in response.content.decode()
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 0


def clinician_user(person):
    person.client().get("/api/v1/me")  # first sign-in creates the user
    return person.user


def test_upload_is_audited(clinician, sample):
    post(clinician, sample["id"], images=[named("a.png", cell_png()), named("bad.png", b"")])
    event = AuditEvent.objects.get(action="sample.upload", object_id=str(sample["id"]))
    assert event.actor_email == clinician.email
    assert event.detail == {"accepted": 1, "rejected": 1}
    assert event.ip_address == "127.0.0.1"


def test_other_lab_cannot_upload(other_lab_clinician, sample):
    response = post(other_lab_clinician, sample["id"], images=[named("a.png", cell_png())])
    assert response.status_code == 404
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 0


def test_uploads_past_the_rate_get_429_with_retry_after(clinician, sample, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "uploads": "2/min"}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        for shade in (1, 2):
            assert post(clinician, sample["id"], images=[named(f"{shade}.png", cell_png())]).status_code == 202
        refused = post(clinician, sample["id"], images=[named("3.png", cell_png())])
        assert refused.status_code == 429
        assert 0 < int(refused["Retry-After"]) <= 60
        assert "throttled" in refused.json()["detail"]
        assert clinician.client().get(f"/api/v1/samples/{sample['id']}/images").status_code == 200, "reading is free"
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert CellImage.objects.filter(sample_id=sample["id"]).count() == 2


def test_a_json_body_over_a_megabyte_is_413_before_it_is_read(clinician):
    response = clinician.client().post(
        "/api/v1/patients", {"identifier": "BIG-1", "notes": "x" * (1024 * 1024 + 10)}, format="json"
    )
    assert response.status_code == 413
    assert "limit for anything but an upload" in response.json()["detail"]


def test_patient_notes_are_capped_like_every_text_field(clinician):
    from diagnostics.models import NOTES_MAX_LENGTH

    response = clinician.client().post(
        "/api/v1/patients", {"identifier": "LONG-1", "notes": "x" * (NOTES_MAX_LENGTH + 1)}, format="json"
    )
    assert response.status_code == 400
    assert "notes" in response.json()
