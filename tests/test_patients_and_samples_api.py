"""Registering patients and their samples through the API, finding them again, and the audit trail it leaves."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import days_ago
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db


def create_patient(client, **fields):
    return client.post("/api/v1/patients", fields, format="json")


def create_sample(client, patient_id: int, **fields):
    return client.post("/api/v1/samples", {"patient": patient_id, **fields}, format="json")


# -- patients ----------------------------------------------------------------------------------------------


def test_creating_a_patient_returns_it(clinician):
    response = create_patient(
        clinician.client(), identifier="  MRN-001 ", name="Grace", sex="female", birth_year=1990, notes="Fever."
    )
    assert response.status_code == 201
    body = response.json()
    assert body["identifier"] == "MRN-001"
    assert (body["name"], body["sex"], body["birth_year"], body["notes"]) == ("Grace", "female", 1990, "Fever.")
    assert set(body) == {"id", "identifier", "name", "sex", "birth_year", "notes", "created_at", "updated_at"}
    assert clinician.client().get(f"/api/v1/patients/{body['id']}").json() == body


def test_a_patient_needs_an_identifier(clinician):
    response = create_patient(clinician.client(), identifier="   ", name="Nobody")
    assert response.status_code == 400
    assert "identifier" in response.json()


def test_duplicate_identifier_in_the_same_lab_is_refused(clinician, reviewer):
    assert create_patient(clinician.client(), identifier="MRN-7").status_code == 201
    response = create_patient(reviewer.client(), identifier=" MRN-7")
    assert response.status_code == 400
    assert response.json() == {"detail": "A patient with identifier 'MRN-7' already exists in this lab."}
    assert len(clinician.client().get("/api/v1/patients").json()["results"]) == 1


def test_the_same_identifier_is_allowed_in_another_lab(clinician, other_lab_clinician):
    assert create_patient(clinician.client(), identifier="MRN-7").status_code == 201
    response = create_patient(other_lab_clinician.client(), identifier="MRN-7")
    assert response.status_code == 201
    assert response.json()["identifier"] == "MRN-7"


@pytest.mark.parametrize(("search", "found"), [("mrn-01", ["MRN-010", "MRN-011"]), ("LOVELACE", ["MRN-011"])])
def test_search_by_identifier_or_name_ignores_case(clinician, search, found):
    client = clinician.client()
    create_patient(client, identifier="MRN-010", name="Grace Hopper")
    create_patient(client, identifier="MRN-011", name="Ada Lovelace")
    create_patient(client, identifier="X-3", name="Alan")
    response = client.get("/api/v1/patients", {"search": search})
    assert response.status_code == 200
    assert [p["identifier"] for p in response.json()["results"]] == found


def test_patch_changes_only_the_fields_sent(clinician, patient):
    response = clinician.client().patch(
        f"/api/v1/patients/{patient['id']}", {"name": "Ada King", "birth_year": 1985}, format="json"
    )
    assert response.status_code == 200
    again = clinician.client().get(f"/api/v1/patients/{patient['id']}").json()
    assert (again["name"], again["birth_year"], again["identifier"]) == ("Ada King", 1985, patient["identifier"])


def test_patch_to_an_identifier_already_taken_is_refused(clinician, patient):
    create_patient(clinician.client(), identifier="TAKEN")
    response = clinician.client().patch(f"/api/v1/patients/{patient['id']}", {"identifier": "TAKEN"}, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["detail"]
    assert clinician.client().get(f"/api/v1/patients/{patient['id']}").json()["identifier"] == patient["identifier"]


@pytest.mark.parametrize("birth_year", [1899, "next year", -1])
def test_impossible_birth_years_are_refused(clinician, birth_year):
    year = timezone.localdate().year + 1 if birth_year == "next year" else birth_year
    response = create_patient(clinician.client(), identifier="MRN-1", birth_year=year)
    assert response.status_code == 400
    assert list(response.json()) == ["birth_year"]


@pytest.mark.parametrize("birth_year", [1900, "this year"])
def test_birth_years_at_the_limits_are_accepted(clinician, patient, birth_year):
    year = timezone.localdate().year if birth_year == "this year" else birth_year
    response = clinician.client().patch(f"/api/v1/patients/{patient['id']}", {"birth_year": year}, format="json")
    assert response.status_code == 200
    assert response.json()["birth_year"] == year


# -- samples -----------------------------------------------------------------------------------------------


def test_a_patients_samples_are_newest_first_by_collection_date(clinician, patient):
    client = clinician.client()
    ids = {days: create_sample(client, patient["id"], collected_at=days_ago(days)).json()["id"] for days in (5, 1, 9)}
    response = client.get(f"/api/v1/patients/{patient['id']}/samples")
    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [ids[1], ids[5], ids[9]]
    assert [s["collected_at"] for s in response.json()["results"]] == [days_ago(1), days_ago(5), days_ago(9)]


def test_a_sample_defaults_to_being_collected_today(clinician, patient):
    response = create_sample(clinician.client(), patient["id"])
    assert response.status_code == 201
    assert response.json()["collected_at"] == timezone.localdate().isoformat()


def test_a_sample_for_another_labs_patient_is_a_field_error_like_a_missing_patient(clinician, other_lab_clinician):
    lab_a_patient = create_patient(clinician.client(), identifier="SECRET-1").json()
    client = other_lab_clinician.client()
    response = create_sample(client, lab_a_patient["id"])
    assert response.status_code == 400
    assert response.json() == {"patient": ["No such patient in your lab."]}
    assert create_sample(client, 10**9).json() == response.json()
    assert client.get("/api/v1/samples").json()["count"] == 0


def test_a_collection_date_in_the_future_is_refused(clinician, patient):
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    response = create_sample(clinician.client(), patient["id"], collected_at=tomorrow)
    assert response.status_code == 400
    assert response.json() == {"collected_at": ["The collection date cannot be in the future."]}


def test_sample_detail_of_a_new_sample(clinician, patient):
    created = create_sample(clinician.client(), patient["id"], notes="Thin smear, Giemsa.")
    assert created.status_code == 201
    body = clinician.client().get(f"/api/v1/samples/{created.json()['id']}").json()
    assert body == created.json()
    assert body["patient"] == patient["id"]
    assert body["patient_identifier"] == patient["identifier"]
    assert body["created_by"] == clinician.email
    assert body["notes"] == "Thin smear, Giemsa."
    assert body["status"] == "awaiting_images"
    assert body["counts"] == {"total": 0, "queued": 0, "processing": 0, "classified": 0, "failed": 0}
    assert (body["parasitized"], body["uninfected"], body["uncertain"]) == (0, 0, 0)
    assert body["parasitemia"] is None
    assert (body["result"], body["final_result"]) == ("", "")
    assert body["reviews"] == []


@pytest.fixture
def samples_in_states(clinician, patient):
    """Three samples of two patients: positive and complete (10 days ago), processing (3), empty (today)."""
    client = clinician.client()
    other = create_patient(client, identifier="OTHER-1").json()
    positive = create_sample(client, patient["id"], collected_at=days_ago(10)).json()
    processing = create_sample(client, patient["id"], collected_at=days_ago(3)).json()
    empty = create_sample(client, other["id"]).json()
    add_cells(positive["id"], ["parasitized"] * 3 + ["uninfected"] * 17)
    add_cells(processing["id"], ["uninfected", None])
    return {"positive": positive["id"], "processing": processing["id"], "empty": empty["id"], "other": other["id"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["empty", "processing", "positive"]),
        ({"patient": "PATIENT"}, ["processing", "positive"]),
        ({"patient": "OTHER"}, ["empty"]),
        ({"status": "complete"}, ["positive"]),
        ({"status": "processing"}, ["processing"]),
        ({"status": "awaiting_images"}, ["empty"]),
        ({"result": "positive"}, ["positive"]),
        ({"result": "negative"}, []),
        ({"collected_from": days_ago(5)}, ["empty", "processing"]),
        ({"collected_to": days_ago(3)}, ["processing", "positive"]),
        ({"collected_from": days_ago(10), "collected_to": days_ago(10)}, ["positive"]),
    ],
)
def test_sample_list_filters(clinician, patient, samples_in_states, filters, expected):
    filters = {
        key: {"PATIENT": patient["id"], "OTHER": samples_in_states["other"]}.get(value, value)
        for key, value in filters.items()
    }
    response = clinician.client().get("/api/v1/samples", filters)
    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [samples_in_states[name] for name in expected]


@pytest.mark.parametrize("filters", [{"status": "done"}, {"result": "maybe"}, {"collected_from": "yesterday"}])
def test_unknown_filter_values_are_400(clinician, filters):
    response = clinician.client().get("/api/v1/samples", filters)
    assert response.status_code == 400
    assert list(response.json()) == list(filters)


def test_sample_list_is_paginated(clinician, samples_in_states):
    client = clinician.client()
    first = client.get("/api/v1/samples", {"page_size": 2}).json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 3
    assert first["previous"] is None
    assert len(first["results"]) == 2
    second = client.get(first["next"]).json()
    assert second["next"] is None
    assert second["previous"] is not None
    assert [s["id"] for s in first["results"] + second["results"]] == [
        samples_in_states["empty"],
        samples_in_states["processing"],
        samples_in_states["positive"],
    ]


def test_a_complete_sample_shows_its_counts_and_result(clinician, samples_in_states):
    body = clinician.client().get(f"/api/v1/samples/{samples_in_states['positive']}").json()
    assert body["status"] == "complete"
    assert body["counts"] == {"total": 20, "queued": 0, "processing": 0, "classified": 20, "failed": 0}
    assert (body["parasitized"], body["uninfected"]) == (3, 17)
    assert body["parasitemia"] == pytest.approx(0.15)
    assert (body["result"], body["final_result"]) == ("positive", "positive")


# -- the audit trail ---------------------------------------------------------------------------------------


def test_patient_and_sample_writes_are_audited(clinician, lab_a):
    from accounts.models import AuditEvent

    client = clinician.client()
    patient = create_patient(client, identifier="AUD-1").json()
    client.patch(f"/api/v1/patients/{patient['id']}", {"name": "Audited", "notes": "x"}, format="json")
    sample = create_sample(client, patient["id"]).json()
    events = {
        e.action: e for e in AuditEvent.objects.filter(action__in=["patient.create", "patient.update", "sample.create"])
    }
    assert set(events) == {"patient.create", "patient.update", "sample.create"}
    for event in events.values():
        assert event.actor == clinician.user
        assert event.actor_email == clinician.email
        assert event.lab_id == lab_a.id
        assert event.ip_address == "127.0.0.1"
    assert (events["patient.create"].object_type, events["patient.create"].object_id) == ("patient", str(patient["id"]))
    assert events["patient.update"].detail == {"fields": ["name", "notes"]}
    assert (events["sample.create"].object_type, events["sample.create"].object_id) == ("sample", str(sample["id"]))


def test_a_refused_duplicate_leaves_no_audit_event(clinician):
    from accounts.models import AuditEvent

    create_patient(clinician.client(), identifier="ONCE")
    create_patient(clinician.client(), identifier="ONCE")
    assert AuditEvent.objects.filter(action="patient.create").count() == 1
