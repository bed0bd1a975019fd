"""Field photographs on the pages: uploading them without JavaScript, the sample's list of fields, and a field's
page with a box on every cell found (each a link to its cell page), sealed from other labs."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnostics.models import Field, FieldStatus, Label, Sample
from tests.factories import CellImageFactory, FieldFactory, PredictionFactory, field_png
from tests.page_sessions import page_client, text_of
from tests.test_field_detection import drawn_field, grid

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinician_client(clinician):
    return page_client(clinician)


def drawn_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(drawn_field(grid(step=220, margin=150))).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def segmented_field(stored_sample):
    """A segmented 640 x 480 field: a parasitized, an uninfected and an uncertain cell, one cut by the edge and not
    yet classified, and a white cell left out."""
    field = FieldFactory(
        sample=stored_sample,
        png=field_png(640, 480),
        original_filename="smear-01.png",
        status=FieldStatus.SEGMENTED,
        quality=["out of focus"],
        cell_diameter=72.0,
        skipped=[{"box": [500, 300, 590, 390], "kind": "white cell"}],
    )
    cells = []
    for box, label, uncertain in [
        ([100, 100, 172, 172], Label.PARASITIZED, False),
        ([200, 100, 272, 172], Label.UNINFECTED, False),
        ([300, 100, 372, 172], Label.PARASITIZED, True),
    ]:
        image = CellImageFactory(sample=stored_sample, field=field, box=box, counted=True, status="classified")
        PredictionFactory(image=image, label=label, uncertain=uncertain)
        cells.append(image)
    cells.append(CellImageFactory(sample=stored_sample, field=field, box=[0, 300, 50, 372], counted=False))
    return field, cells


def test_field_photographs_are_uploaded_without_javascript(clinician_client, sample):
    form = clinician_client.get(f"/samples/{sample['id']}/upload?kind=fields")
    assert form.status_code == 200
    html = form.content.decode()
    assert 'accept="image/jpeg,image/png,image/tiff"' in html and 'capture="environment"' in html
    assert 'name="fields"' in html and 'name="kind" value="fields"' in html
    count = "Red cells examined so far: 0 of the 500 needed to call the sample negative. Photograph more fields."
    assert count in text_of(form)

    response = clinician_client.post(
        f"/samples/{sample['id']}/upload",
        {
            "kind": "fields",
            "fields": [
                SimpleUploadedFile("smear.jpg", drawn_jpeg(), "image/jpeg"),
                SimpleUploadedFile("notes.txt", b"not a photograph", "text/plain"),
            ],
        },
    )
    assert response.status_code == 200
    field = Field.objects.get(sample_id=sample["id"])
    assert (field.original_filename, field.width, field.height, field.format) == ("smear.jpg", 1280, 960, "JPEG")
    assert field.status == FieldStatus.QUEUED
    page = text_of(response)
    assert "1 field photograph accepted and queued" in page and "1 rejected" in page
    assert "notes.txt" in page
    assert f'href="/fields/{field.pk}"' in response.content.decode()


def test_an_upload_without_photographs_is_refused_on_the_page(clinician_client, sample):
    response = clinician_client.post(f"/samples/{sample['id']}/upload", {"kind": "fields"})
    assert response.status_code == 400
    assert "Choose field photographs, or a ZIP archive of them, to upload." in text_of(response)
    assert not Field.objects.exists()


def test_the_upload_page_says_when_enough_red_cells_were_examined(clinician_client, stored_sample):
    Sample.objects.filter(pk=stored_sample.pk).update(classified_count=512)
    page = text_of(clinician_client.get(f"/samples/{stored_sample.pk}/upload?kind=fields"))
    assert "Red cells examined so far: 512 of the 500 needed to call the sample negative. Enough." in page


def test_the_sample_page_lists_its_fields(clinician_client, segmented_field):
    field, _ = segmented_field
    queued = FieldFactory(sample=field.sample, png=field_png(800, 600), original_filename="smear-02.png")
    response = clinician_client.get(f"/samples/{field.sample_id}")
    assert response.status_code == 200
    html, page = response.content.decode(), text_of(response)
    assert "Field photographs (2)" in page
    assert "smear-01.png Segmented 4 3 2 1 ⚠ Out of focus" in page
    assert "smear-02.png Queued — — — —" in page
    assert f'href="/fields/{field.pk}"' in html and f'href="/fields/{queued.pk}"' in html
    assert f'src="/api/v1/fields/{field.pk}/file"' in html
    assert f'href="/samples/{field.sample_id}/upload?kind=fields"' in html


def test_the_field_page_draws_a_box_linking_to_every_cell(clinician_client, segmented_field):
    field, cells = segmented_field
    response = clinician_client.get(f"/fields/{field.pk}")
    assert response.status_code == 200
    html, page = response.content.decode(), text_of(response)
    assert 'viewBox="0 0 640 480"' in html
    assert f'<img src="/api/v1/fields/{field.pk}/file" width="640" height="480"' in html
    assert '<title id="field-svg-title">Field photograph smear-01.png with a box on each of the 4 red cells' in html
    links = re.findall(r'<a href="/images/(\d+)" aria-label="([^"]+)"><rect class="([^"]+)"', html)
    assert [int(pk) for pk, _, _ in links] == [cell.pk for cell in cells]
    labels = {label: classes for _, label, classes in links}
    assert labels["cell 1: parasitized, 0.97"] == "box box-parasitized"
    assert labels["cell 2: uninfected, 0.03"] == "box box-uninfected"
    assert labels["cell 3: parasitized, 0.50, uncertain"] == "box box-uncertain"
    assert labels["cell 4: queued, cut by the edge, not counted"] == "box box-pending box-edge"
    assert '<rect class="box box-skipped" x="500" y="300" width="90" height="90"><title>Left out: White cell' in html
    assert "Quality: ⚠ Out of focus" in page
    for legend in ["Uninfected (1)", "Parasitized (1)", "Uncertain (1)", "Not yet classified (1)"]:
        assert legend in page
    assert (
        "Cut by the edge: classified, not counted (1)" in page and "Left out: white cells, clumps, debris (1)" in page
    )
    assert 'for="field-zoom"' in html


def test_another_labs_field_is_not_found(make_person, lab_b, segmented_field):
    field, _ = segmented_field
    stranger = page_client(make_person("clinician", lab_b))
    response = stranger.get(f"/fields/{field.pk}")
    assert response.status_code == 404
    assert "smear-01.png" not in text_of(response)
    refused = stranger.post(
        f"/samples/{field.sample_id}/upload",
        {"kind": "fields", "fields": [SimpleUploadedFile("s.jpg", drawn_jpeg(), "image/jpeg")]},
    )
    assert refused.status_code == 404
    assert Field.objects.count() == 1
