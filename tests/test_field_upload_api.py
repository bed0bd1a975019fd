"""Field photographs through the API: uploaded with the photographs' limits, then listed, read and served."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from diagnostics import segmentation
from diagnostics.models import Field, Prediction
from tests.cells import named
from tests.test_field_detection import drawn_field

pytestmark = pytest.mark.django_db

CENTRES = [(x, y) for y in (200, 500, 800) for x in (200, 500, 800, 1100)]


def encoded(rgb, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=image_format)
    return buffer.getvalue()


def plain(width: int, height: int, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (215, 225, 215)).save(buffer, format=image_format)
    return buffer.getvalue()


def post(person, sample_id, **files):
    return person.client().post(f"/api/v1/samples/{sample_id}/fields", files, format="multipart")


def test_photographs_are_accepted_and_bad_files_rejected_one_by_one(clinician, sample):
    jpeg = encoded(drawn_field(CENTRES, seed=1), "JPEG")
    png = encoded(drawn_field(CENTRES, seed=2), "PNG")
    response = post(
        clinician,
        sample["id"],
        fields=[
            named("a.jpg", jpeg),
            named("b.png", png),
            named("tiny.png", plain(200, 150)),
            named("huge.png", plain(4100, 3000)),
            named("cut.jpg", jpeg[: len(jpeg) // 2]),
            named("notes.txt", b"this is text, not a photograph"),
            named("old.bmp", plain(640, 480, "BMP")),
        ],
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert [item["filename"] for item in body["accepted"]] == ["a.jpg", "b.png"]
    assert {item["status"] for item in body["accepted"]} == {"queued"}
    reasons = {item["filename"]: item["error"] for item in body["rejected"]}
    assert "under the 320 x 240 minimum" in reasons["tiny.png"]
    assert "over the 12,000,000-pixel limit" in reasons["huge.png"]
    assert "damaged" in reasons["cut.jpg"]
    assert "not an image" in reasons["notes.txt"]
    assert "use JPEG, PNG or TIFF" in reasons["old.bmp"]
    field = Field.objects.get(pk=body["accepted"][0]["id"])
    assert (field.width, field.height, field.format) == (1280, 960, "JPEG")
    assert field.file.name.startswith("fields/") and not field.file.name.endswith("a.jpg")
    detail = clinician.client().get(f"/api/v1/samples/{sample['id']}").json()
    assert detail["status"] == "processing"
    assert detail["field_count"] == 2
    assert detail["counts"]["total"] == 2 and detail["counts"]["queued"] == 2

    again = post(clinician, sample["id"], fields=[named("a-again.jpg", jpeg)])
    assert again.status_code == 400
    assert again.json()["rejected"] == [
        {"filename": "a-again.jpg", "error": "duplicate: this image is already in the sample"}
    ]


def test_an_upload_without_photographs_is_refused(clinician, sample):
    response = post(clinician, sample["id"])
    assert response.status_code == 400
    assert "fields" in response.json()["detail"]


def test_a_field_is_listed_and_read_with_its_cells(clinician, sample):
    png = encoded(drawn_field([*CENTRES, (1262, 350)]), "PNG")
    field_id = post(clinician, sample["id"], fields=[named("smear.png", png)]).json()["accepted"][0]["id"]
    segmentation.fields_segment(field_ids=[field_id])
    client = clinician.client()

    listed = client.get(f"/api/v1/samples/{sample['id']}/fields").json()["results"]
    assert [row["id"] for row in listed] == [field_id]
    assert listed[0]["status"] == "segmented"
    counted = Prediction.objects.filter(image__field_id=field_id, image__counted=True)
    assert listed[0]["counts"] == {
        "red_cells": 13,
        "counted": 12,
        "parasitized": counted.filter(label="parasitized").count(),
        "uncertain": counted.filter(uncertain=True).count(),
    }

    detail = client.get(f"/api/v1/fields/{field_id}").json()
    assert detail["filename"] == "smear.png" and (detail["width"], detail["height"]) == (1280, 960)
    assert 68 <= detail["cell_diameter"] <= 80
    assert detail["quality"] == [] and detail["skipped"] == []
    assert len(detail["cells"]) == 13
    assert sum(cell["counted"] for cell in detail["cells"]) == 12
    cell = detail["cells"][0]
    prediction = Prediction.objects.get(image_id=cell["id"])
    assert len(cell["box"]) == 4 and cell["status"] == "classified", "classified while segmented"
    assert (cell["label"], cell["probability"], cell["uncertain"]) == (
        prediction.label,
        pytest.approx(prediction.probability),
        prediction.uncertain,
    )

    served = client.get(f"/api/v1/fields/{field_id}/file")
    assert served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == png
    served.close()


def test_another_labs_field_does_not_exist(clinician, other_lab_clinician, sample):
    png = encoded(drawn_field(CENTRES), "PNG")
    field_id = post(clinician, sample["id"], fields=[named("smear.png", png)]).json()["accepted"][0]["id"]
    client = other_lab_clinician.client()
    for url in (
        f"/api/v1/fields/{field_id}",
        f"/api/v1/fields/{field_id}/file",
        f"/api/v1/samples/{sample['id']}/fields",
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert set(response.json()) == {"detail"}


def test_photographs_in_a_zip_archive_are_accepted(clinician, sample):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("smear/one.jpg", encoded(drawn_field(CENTRES, seed=3), "JPEG"))
        archive.writestr("smear/two.tif", encoded(drawn_field(CENTRES, seed=4), "TIFF"))
        archive.writestr("smear/small.png", plain(100, 100))
    response = post(clinician, sample["id"], archive=named("smear.zip", buffer.getvalue()))
    assert response.status_code == 202, response.content
    body = response.json()
    assert [item["filename"] for item in body["accepted"]] == ["one.jpg", "two.tif"]
    assert [item["filename"] for item in body["rejected"]] == ["smear.zip/smear/small.png"]
