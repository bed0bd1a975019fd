"""A clinician's pages: dashboard, patients, a new sample, uploading cells without JavaScript, the sample's
result and cells, one cell beside its heatmap, the cells' CSV and the model card."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditEvent
from diagnostics.models import CellImage, Patient, Sample
from tests.factories import days_ago, new_sample
from tests.page_sessions import page_client, text_of
from tests.stored_cells import MODEL_VERSION, add_cells, cell_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinician_client(clinician):
    return page_client(clinician)


def cells_shown(response) -> int:
    return len(re.findall(r'<li class="cell status-', response.content.decode()))


def test_the_dashboard_shows_recent_samples_and_those_still_processing(
    clinician_client, clinician, patient, sample, lab_a
):
    add_cells(sample["id"], ["parasitized"] * 3 + ["uninfected"] * 17)
    busy = new_sample(patient["id"], created_by=clinician.user)
    add_cells(busy.pk, ["uninfected", None, None])

    response = clinician_client.get("/")
    assert response.status_code == 200
    page = text_of(response)
    assert lab_a.name in page and "Clinician" in page and clinician.email in page
    processing = page.split("Still processing")[1].split("Recent samples")[0]
    assert f"Sample {busy.pk}" in processing and "1 of 3 cells done" in processing
    assert f"Sample {sample['id']}" not in processing
    recent = page.split("Recent samples")[1]
    assert f"Sample {sample['id']} {patient['identifier']}" in recent
    assert "Complete 20 / 20 15.0 % Positive Positive" in recent
    assert "Review queue" not in page, "clinicians do not review"


def test_patients_are_listed_searched_and_paginated(clinician_client, clinician):
    for number in range(30):
        clinician.client().post("/api/v1/patients", {"identifier": f"P-{number:03}", "name": "Ada"}, format="json")
    clinician.client().post("/api/v1/patients", {"identifier": "X-1", "name": "Grace Hopper"}, format="json")

    first = clinician_client.get("/patients")
    assert first.status_code == 200
    assert "31 patients" in text_of(first) and "Page 1 of 2" in text_of(first)
    assert "P-000" in text_of(first) and "X-1" not in text_of(first)
    second = clinician_client.get("/patients?page=2")
    assert "X-1" in text_of(second)

    found = clinician_client.get("/patients?q=hopper")
    assert "1 patient matching “hopper”" in text_of(found)
    assert "X-1" in text_of(found) and "P-000" not in text_of(found)
    assert '<label for="patient-search">' in found.content.decode()
    assert "No patient matches" in text_of(clinician_client.get("/patients?q=nobody"))


def test_a_patient_is_created_through_the_form(clinician_client, lab_a):
    form = clinician_client.get("/patients/new").content.decode()
    for field in ["identifier", "name", "sex", "birth_year", "notes"]:
        assert f'for="id_{field}"' in form

    response = clinician_client.post("/patients/new", {"identifier": " P-NEW ", "name": "Ada", "sex": "female"})
    patient = Patient.objects.get(lab=lab_a, identifier="P-NEW")
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}"
    assert (patient.name, patient.sex, patient.birth_year) == ("Ada", "female", None)
    assert AuditEvent.objects.filter(action="patient.create", object_id=str(patient.pk)).exists()
    assert "Patient P-NEW added." in text_of(clinician_client.get(response["Location"]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"identifier": "", "sex": "unknown"}, "This field is required."),
        ({"identifier": "P-1", "sex": "unknown", "birth_year": "1800"}, "Birth year must be between 1900"),
        ({"identifier": "P-1", "sex": "robot"}, "Select a valid choice."),
    ],
)
def test_an_invalid_patient_is_refused_with_the_reason(clinician_client, fields, message):
    response = clinician_client.post("/patients/new", fields)
    assert response.status_code == 400
    assert message in text_of(response)
    assert not Patient.objects.exists()


def test_a_duplicate_identifier_is_refused(clinician_client, patient):
    response = clinician_client.post("/patients/new", {"identifier": patient["identifier"], "sex": "unknown"})
    assert response.status_code == 400
    assert "already exists in this lab" in text_of(response)


def test_a_patient_is_edited_and_only_changed_fields_are_audited(clinician_client, patient):
    form = clinician_client.get(f"/patients/{patient['id']}/edit")
    assert f'value="{patient["identifier"]}"' in form.content.decode()
    fields = {"identifier": patient["identifier"], "name": "Ada Lovelace", "sex": "unknown"}
    response = clinician_client.post(f"/patients/{patient['id']}/edit", fields)
    assert response.status_code == 302
    assert Patient.objects.get(pk=patient["id"]).name == "Ada Lovelace"
    event = AuditEvent.objects.get(action="patient.update", object_id=str(patient["id"]))
    assert event.detail == {"fields": ["name"]}


def test_the_patient_page_shows_samples_newest_first_and_a_parasitemia_chart(clinician_client, clinician, patient):
    old = new_sample(patient["id"], collected_at=days_ago(10), created_by=clinician.user)
    recent = new_sample(patient["id"], collected_at=days_ago(0), created_by=clinician.user)
    empty = new_sample(patient["id"], collected_at=days_ago(5), created_by=clinician.user)
    add_cells(old.pk, ["parasitized"] * 4 + ["uninfected"] * 16)  # 20 %
    add_cells(recent.pk, ["parasitized"] + ["uninfected"] * 19)  # 5 %

    response = clinician_client.get(f"/patients/{patient['id']}")
    assert response.status_code == 200
    html = response.content.decode()
    history = text_of(response).split("Samples, newest first")[1]
    order = [history.index(f"Sample {s.pk}") for s in (recent, empty, old)]
    assert order == sorted(order)

    svg = html.split("<svg")[1].split("</svg>")[0]
    assert 'role="img"' in svg and "<title" in svg
    assert svg.count("<circle") == 2, "samples without a parasitemia are not plotted"
    assert "20 %" in svg and "5 %" in svg
    table = text_of(response).split("The chart's figures as a table")[1]
    assert f"{days_ago(10)} Sample {old.pk} 20.0 %" in table
    assert f"/api/v1/patients/{patient['id']}/history.csv" in html


def test_a_patient_without_classified_samples_has_no_chart(clinician_client, patient):
    response = clinician_client.get(f"/patients/{patient['id']}")
    assert "<svg" not in response.content.decode()
    assert "No sample of this patient has classified cells yet" in text_of(response)


def test_a_new_sample_leads_to_its_upload_page(clinician_client, patient):
    form = clinician_client.get(f"/patients/{patient['id']}/samples/new")
    assert 'for="id_collected_at"' in form.content.decode() and 'type="date"' in form.content.decode()
    response = clinician_client.post(
        f"/patients/{patient['id']}/samples/new", {"collected_at": "2026-01-02", "notes": "Thin smear, finger prick"}
    )
    sample = Sample.objects.get(patient_id=patient["id"])
    assert response.status_code == 302 and response["Location"] == f"/samples/{sample.pk}/upload"
    assert (sample.collected_at, sample.notes) == (dt.date(2026, 1, 2), "Thin smear, finger prick")
    assert AuditEvent.objects.filter(action="sample.create", object_id=str(sample.pk)).exists()


def test_a_sample_collected_in_the_future_is_refused(clinician_client, patient):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    response = clinician_client.post(f"/patients/{patient['id']}/samples/new", {"collected_at": tomorrow.isoformat()})
    assert response.status_code == 400
    assert "cannot be in the future" in text_of(response)
    assert not Sample.objects.exists()


def test_the_upload_page_offers_many_files_a_zip_and_a_script(clinician_client, sample):
    response = clinician_client.get(f"/samples/{sample['id']}/upload")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'action="/samples/{sample["id"]}/upload"' in html and 'enctype="multipart/form-data"' in html
    assert re.search(r'<input id="upload-images" type="file" name="images" multiple accept="image/\*"', html)
    assert 'name="archive" accept=".zip,application/zip"' in html
    assert f'data-api-url="/api/v1/samples/{sample["id"]}/images"' in html
    assert 'src="/static/build/upload.js"' in html
    assert '<label for="upload-images">' in html and '<label for="upload-archive">' in html


def test_uploading_without_javascript_lists_accepted_and_rejected_files(clinician_client, sample):
    images = [
        SimpleUploadedFile("cell-1.png", cell_png(), content_type="image/png"),
        SimpleUploadedFile("notes.txt", b"not a picture at all\n" * 20, content_type="text/plain"),
    ]
    response = clinician_client.post(f"/samples/{sample['id']}/upload", {"images": images})
    assert response.status_code == 200
    page = text_of(response)
    assert "1 cell image accepted and queued for classification; 1 rejected." in page
    assert "notes.txt : not an image: the file is text" in page
    assert "cell-1.png" in page.split("Accepted files")[1]
    stored = CellImage.objects.get(sample_id=sample["id"])
    assert (stored.original_filename, stored.status) == ("cell-1.png", "queued")
    assert "Processing" in text_of(clinician_client.get("/"))


def test_uploading_nothing_or_only_bad_files_is_400(clinician_client, sample):
    empty = clinician_client.post(f"/samples/{sample['id']}/upload", {})
    assert empty.status_code == 400
    assert "Choose cell images" in text_of(empty)
    bad = clinician_client.post(
        f"/samples/{sample['id']}/upload", {"images": [SimpleUploadedFile("a.gif", b"GIF89a....")]}
    )
    assert bad.status_code == 400
    assert "0 cell images accepted" in text_of(bad) and "GIF images are not accepted" in text_of(bad)


@pytest.fixture
def mixed_sample(sample):
    """3 parasitized, 17 uninfected, 2 uncertain uninfected, 1 failed cell."""
    add_cells(sample["id"], ["parasitized"] * 3 + ["uninfected"] * 17)
    add_cells(sample["id"], ["uninfected"] * 2, uncertain=True)
    add_cells(sample["id"], [None], status="failed")
    return sample


def test_the_sample_page_puts_the_result_first_with_the_model_and_a_caveat(clinician_client, mixed_sample):
    response = clinician_client.get(f"/samples/{mixed_sample['id']}")
    assert response.status_code == 200
    page = text_of(response)
    summary = page.split("Result")[1].split("Cells")[0]
    assert "Positive" in summary and "Automatic result, not yet reviewed." in summary
    assert "Parasitemia 13.6 %" in summary and "Classified 22 of 23" in summary
    assert "Uncertain 2" in summary and "Failed 1" in summary
    assert "not a diagnosis" in summary and f"Classified by model {MODEL_VERSION}" in summary
    assert 'href="/model"' in response.content.decode()
    assert f'href="/samples/{mixed_sample["id"]}/cells.csv"' in response.content.decode()


@pytest.mark.parametrize(("show", "count"), [("all", 23), ("parasitized", 3), ("uncertain", 2), ("failed", 1)])
def test_the_cell_grid_filters(clinician_client, mixed_sample, show, count):
    response = clinician_client.get(f"/samples/{mixed_sample['id']}?show={show}")
    assert cells_shown(response) == count
    assert f'href="?show={show}" aria-current="true"' in response.content.decode()


def test_each_cell_shows_its_thumbnail_label_probability_and_uncertainty(clinician_client, mixed_sample):
    response = clinician_client.get(f"/samples/{mixed_sample['id']}?show=uncertain")
    html = response.content.decode()
    image = CellImage.objects.filter(sample_id=mixed_sample["id"], prediction__uncertain=True).first()
    assert f'<img src="/api/v1/images/{image.pk}/file"' in html
    assert f'href="/images/{image.pk}"' in html
    assert "Uninfected 50 % parasitized ⚠ Uncertain" in text_of(response)
    thumbnail = clinician_client.get(f"/api/v1/images/{image.pk}/file")  # the session cookie works for <img>
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/png"
    failed = clinician_client.get(f"/samples/{mixed_sample['id']}?show=failed")
    assert "Failed" in text_of(failed).split("Cells")[-1]


def test_a_cell_opens_large_beside_its_heatmap(clinician_client, mixed_sample):
    image = CellImage.objects.filter(sample_id=mixed_sample["id"], prediction__label="parasitized").first()
    response = clinician_client.get(f"/images/{image.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'src="/api/v1/images/{image.pk}/file"' in html
    assert f'src="/api/v1/images/{image.pk}/heatmap"' in html and "Grad-CAM" in html
    assert "Parasitized" in text_of(response) and "97.0 %" in text_of(response)

    failed = CellImage.objects.get(sample_id=mixed_sample["id"], status="failed")
    response = clinician_client.get(f"/images/{failed.pk}")
    assert "/heatmap" not in response.content.decode()
    assert "could not be classified" in text_of(response)


def test_the_sample_cells_csv_has_a_row_per_cell_and_is_audited(clinician_client, mixed_sample):
    response = clinician_client.get(f"/samples/{mixed_sample['id']}/cells.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="sample-{mixed_sample["id"]}-cells.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 23
    assert sum(row["label"] == "parasitized" for row in rows) == 3
    assert sum(row["uncertain"] == "yes" for row in rows) == 2
    assert [row["status"] for row in rows if not row["label"]] == ["failed"]
    assert {row["model_version"] for row in rows if row["label"]} == {MODEL_VERSION}
    assert AuditEvent.objects.filter(action="export.csv", object_id=f"sample-{mixed_sample['id']}-cells.csv").exists()


def test_a_processing_sample_shows_live_progress_with_a_fallback(clinician_client, sample):
    add_cells(sample["id"], ["uninfected", None, None, None])
    response = clinician_client.get(f"/samples/{sample['id']}")
    html = response.content.decode()
    assert f'data-api-url="/api/v1/samples/{sample["id"]}"' in html and 'src="/static/build/progress.js"' in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert '<progress id="classification-progress" max="4" value="1"' in html
    assert "1 of 4 cells done" in text_of(response)


def test_the_model_card_page_shows_the_validated_figures(clinician_client):
    from diagnostics.served_model import served_model

    card = served_model().card.data
    response = clinician_client.get("/model")
    assert response.status_code == 200
    page = text_of(response)
    assert card["version"] in page and f"{card['input_size']} × {card['input_size']} px" in page
    assert f"Accuracy {card['metrics']['validation']['accuracy'] * 100:.1f} %" in page
    assert f"{card['metrics']['test']['accuracy'] * 100:.1f} %" in page
    assert card["training_data"]["manifest_sha256"] in page
    validation, test = card["metrics"]["validation"], card["metrics"]["test"]
    surest = [f"{m['accuracy_at_coverage']['0.9'] * 100:.1f} %" for m in (validation, test)]
    assert f"Accuracy on the surest 90 % of cells {surest[0]} {surest[1]}" in page
    assert f"{test['sensitivity_at_specificity_0995'] * 100:.1f} %" in page
    assert "not a diagnosis" in page
    assert f"Model {card['version']}" in page, "the footer names the served model"


def test_probabilities_are_never_rounded_to_certainty():
    from diagnostics.templatetags.lab_format import percent

    assert percent(0.996, 0) == "> 99 %"
    assert percent(0.004, 0) == "< 1 %"
    assert percent(0.0213) == "2.1 %"
    assert percent(1.0, 0) == "100 %"
    assert percent(0.0, 1) == "0.0 %"
    assert percent(None) == "—"


def test_cards_written_before_issue_9_show_a_dash_for_its_figures():
    from diagnostics.templatetags.lab_format import at_coverage, percent

    assert percent(at_coverage({"accuracy_at_coverage": {"0.9": 0.9876}}, "0.9")) == "98.8 %"
    assert percent(at_coverage({"accuracy": 0.97}, "0.9")) == "—"
    assert percent(at_coverage(None, "0.9")) == "—"
