"""CSV exports: the lab's register of samples and one patient's history, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from tests.factories import days_ago, new_sample
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db

HEADER = [
    "sample_id",
    "patient_identifier",
    "collected_at",
    "status",
    "total",
    "classified",
    "failed",
    "parasitized",
    "uninfected",
    "uncertain",
    "parasitemia",
    "automatic_result",
    "final_result",
    "reviewer",
    "reviewed_at",
    "created_by",
]


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    data = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(data)))


def as_dicts(rows: list[list[str]]) -> list[dict]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.fixture
def reviewed_sample(clinician, reviewer, patient):
    """Positive by the model (3 of 20 cells parasitized, 2 uncertain), overridden to negative by the reviewer."""
    sample = new_sample(patient["id"], collected_at=days_ago(2), created_by=clinician.user)
    add_cells(sample.pk, ["parasitized"] * 3 + ["uninfected"] * 15)
    add_cells(sample.pk, ["uninfected"] * 2, uncertain=True)
    response = reviewer.client().post(
        f"/api/v1/samples/{sample.pk}/reviews",
        {"decision": "override", "result": "negative", "comment": "Platelets, not parasites."},
        format="json",
    )
    assert response.status_code == 201, response.content
    return sample


def test_the_register_has_a_header_and_one_row_per_sample(clinician, reviewer, patient, reviewed_sample):
    empty = new_sample(patient["id"], created_by=clinician.user)
    response = clinician.client().get("/api/v1/export/samples.csv")
    assert response["Content-Disposition"] == 'attachment; filename="samples.csv"'
    rows = csv_rows(response)
    assert rows[0] == HEADER
    assert [row[0] for row in rows[1:]] == [str(empty.pk), str(reviewed_sample.pk)]
    reviewed = as_dicts(rows)[1]
    assert reviewed["patient_identifier"] == patient["identifier"]
    assert reviewed["collected_at"] == days_ago(2)
    assert reviewed["status"] == "complete"
    assert [reviewed[k] for k in ("total", "classified", "failed")] == ["20", "20", "0"]
    assert [reviewed[k] for k in ("parasitized", "uninfected", "uncertain")] == ["3", "17", "2"]
    assert reviewed["parasitemia"] == "0.1500"
    assert (reviewed["automatic_result"], reviewed["final_result"]) == ("positive", "negative")
    assert reviewed["reviewer"] == reviewer.email
    assert dt.datetime.fromisoformat(reviewed["reviewed_at"]).date() == timezone.now().date()
    assert reviewed["created_by"] == clinician.email


def test_a_sample_without_images_or_review_has_empty_cells(clinician, patient):
    new_sample(patient["id"], created_by=clinician.user)
    row = as_dicts(csv_rows(clinician.client().get("/api/v1/export/samples.csv")))[0]
    assert row["status"] == "awaiting_images"
    assert row["total"] == "0"
    assert [row[k] for k in ("parasitemia", "automatic_result", "final_result", "reviewer", "reviewed_at")] == [""] * 5


@pytest.mark.parametrize(
    ("query", "expected_days"),
    [
        ({}, [0, 3, 10]),
        ({"from": "DAYS_AGO_5"}, [0, 3]),
        ({"to": "DAYS_AGO_3"}, [3, 10]),
        ({"from": "DAYS_AGO_10", "to": "DAYS_AGO_3"}, [3, 10]),
        ({"from": "DAYS_AGO_3", "to": "DAYS_AGO_3"}, [3]),
        ({"from": "DAYS_AGO_2", "to": "DAYS_AGO_1"}, []),
    ],
)
def test_the_register_filters_by_collection_date(clinician, patient, query, expected_days):
    for days in (10, 3, 0):
        new_sample(patient["id"], collected_at=days_ago(days), created_by=clinician.user)
    query = {key: days_ago(int(value.rsplit("_", 1)[1])) for key, value in query.items()}
    rows = as_dicts(csv_rows(clinician.client().get("/api/v1/export/samples.csv", query)))
    assert [row["collected_at"] for row in rows] == [days_ago(days) for days in expected_days]


@pytest.mark.parametrize("query", [{"from": "last week"}, {"to": "2024-13-01"}])
def test_a_bad_date_is_400_naming_the_parameter(clinician, query):
    from accounts.models import AuditEvent

    response = clinician.client().get("/api/v1/export/samples.csv", query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    [name] = query
    assert "Date has wrong format" in response.json()[name][0]
    assert not AuditEvent.objects.filter(action="export.csv").exists()


@pytest.mark.parametrize("identifier", ['=HYPERLINK("http://x")', "+1+2", "-3+4", "@SUM(A1)"])
def test_cells_a_spreadsheet_would_run_as_formulas_are_quoted(clinician, identifier):
    client = clinician.client()
    patient = client.post("/api/v1/patients", {"identifier": identifier}, format="json").json()
    new_sample(patient["id"], created_by=clinician.user)
    [row] = as_dicts(csv_rows(client.get("/api/v1/export/samples.csv")))
    assert row["patient_identifier"] == "'" + identifier
    [history_row] = as_dicts(csv_rows(client.get(f"/api/v1/patients/{patient['id']}/history.csv")))
    assert history_row["patient_identifier"] == "'" + identifier


def test_a_patients_history_has_only_their_samples(clinician, patient):
    client = clinician.client()
    other = client.post("/api/v1/patients", {"identifier": "OTHER-9"}, format="json").json()
    older = new_sample(patient["id"], collected_at=days_ago(7), created_by=clinician.user)
    newer = new_sample(patient["id"], collected_at=days_ago(1), created_by=clinician.user)
    new_sample(other["id"], created_by=clinician.user)
    response = client.get(f"/api/v1/patients/{patient['id']}/history.csv")
    assert response["Content-Disposition"] == f'attachment; filename="patient-{patient["id"]}-history.csv"'
    rows = csv_rows(response)
    assert rows[0] == HEADER
    assert [(r["sample_id"], r["patient_identifier"]) for r in as_dicts(rows)] == [
        (str(newer.pk), patient["identifier"]),
        (str(older.pk), patient["identifier"]),
    ]


def test_each_export_is_audited(clinician, lab_a, patient, reviewed_sample):
    from accounts.models import AuditEvent

    client = clinician.client()
    csv_rows(client.get("/api/v1/export/samples.csv", {"from": days_ago(30)}))
    csv_rows(client.get(f"/api/v1/patients/{patient['id']}/history.csv"))
    events = list(AuditEvent.objects.filter(action="export.csv").order_by("id"))
    assert [(e.object_type, e.object_id) for e in events] == [
        ("export", "samples.csv"),
        ("export", f"patient-{patient['id']}-history.csv"),
    ]
    for event in events:
        assert (event.actor, event.lab_id, event.ip_address) == (clinician.user, lab_a.id, "127.0.0.1")
        assert event.detail["rows"] == 1
    assert events[0].detail["query"] == {"from": days_ago(30)}


def test_nothing_that_carries_patient_data_may_be_cached(clinician, patient, sample):
    """Cache-Control: no-store on the API's JSON, the CSV exports, cell images and heatmaps, and the pages."""
    from tests.page_sessions import page_client
    from tests.stored_cells import add_cells

    image = add_cells(sample["id"], ["parasitized"])[0]
    api = clinician.client()
    answers = {
        "json": api.get(f"/api/v1/samples/{sample['id']}"),
        "csv": api.get("/api/v1/export/samples.csv"),
        "history csv": api.get(f"/api/v1/patients/{patient['id']}/history.csv"),
        "cell image": api.get(f"/api/v1/images/{image.pk}/file"),
        "heatmap": api.get(f"/api/v1/images/{image.pk}/heatmap"),
        "page": page_client(clinician).get(f"/samples/{sample['id']}"),
        "error": api.get("/api/v1/samples/999999999"),
    }
    for name, response in answers.items():
        assert response.status_code in (200, 404), name
        assert response["Cache-Control"] == "no-store", name
