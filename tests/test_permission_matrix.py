"""Who may call which endpoint: every v1 endpoint for every kind of caller, one test per pair.

Another lab's objects do not exist for a caller: 404 with nothing but a detail, never 403, never data.
"""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest
from PIL import Image
from rest_framework.test import APIClient

from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "me": ("get", "/api/v1/me"),
    "patients-list": ("get", "/api/v1/patients"),
    "patients-create": ("post", "/api/v1/patients"),
    "patient-get": ("get", "/api/v1/patients/{patient}"),
    "patient-patch": ("patch", "/api/v1/patients/{patient}"),
    "patient-samples": ("get", "/api/v1/patients/{patient}/samples"),
    "patient-history-csv": ("get", "/api/v1/patients/{patient}/history.csv"),
    "samples-list": ("get", "/api/v1/samples"),
    "samples-create": ("post", "/api/v1/samples"),
    "sample-get": ("get", "/api/v1/samples/{sample}"),
    "sample-images-list": ("get", "/api/v1/samples/{sample}/images"),
    "sample-images-upload": ("post", "/api/v1/samples/{sample}/images"),
    "sample-reviews-create": ("post", "/api/v1/samples/{sample}/reviews"),
    "sample-report": ("get", "/api/v1/samples/{sample}/report.pdf"),
    "sample-fields-list": ("get", "/api/v1/samples/{sample}/fields"),
    "sample-fields-upload": ("post", "/api/v1/samples/{sample}/fields"),
    "field-get": ("get", "/api/v1/fields/{field}"),
    "field-file": ("get", "/api/v1/fields/{field}/file"),
    "field-overlay": ("get", "/api/v1/fields/{field}/overlay.png"),
    "image-get": ("get", "/api/v1/images/{image}"),
    "image-file": ("get", "/api/v1/images/{image}/file"),
    "image-heatmap": ("get", "/api/v1/images/{image}/heatmap"),
    "export-samples-csv": ("get", "/api/v1/export/samples.csv"),
}

# Endpoints about one object of lab A (the others are lists, creation, or about the caller).
LAB_A_OBJECT_ENDPOINTS = [
    "patient-get",
    "patient-patch",
    "patient-samples",
    "patient-history-csv",
    "sample-get",
    "sample-images-list",
    "sample-images-upload",
    "sample-reviews-create",
    "sample-report",
    "sample-fields-list",
    "sample-fields-upload",
    "field-get",
    "field-file",
    "field-overlay",
    "image-get",
    "image-file",
    "image-heatmap",
]


@pytest.fixture
def lab_a_objects(patient, sample):
    """A patient of lab A with one complete sample holding one classified cell and one segmented field."""
    from diagnostics.models import FieldStatus
    from tests.factories import FieldFactory, field_png

    image = add_cells(sample["id"], ["uninfected"])[0]
    with image.file.open("rb") as handle:
        png = handle.read()
    photograph = field_png()
    field = FieldFactory(sample_id=sample["id"], png=photograph, status=FieldStatus.SEGMENTED)
    return SimpleNamespace(patient=patient, sample=sample, image=image, png=png, field=field, photograph=photograph)


def send(client: APIClient, endpoint: str, objects):
    method, template = ENDPOINTS[endpoint]
    url = template.format(
        patient=objects.patient["id"], sample=objects.sample["id"], image=objects.image.pk, field=objects.field.pk
    )
    if endpoint in ("sample-images-upload", "sample-fields-upload"):
        return client.post(url)  # multipart with no files
    body = {
        "patients-create": {"identifier": "NEW-1", "name": "Bea"},
        "patient-patch": {"name": "Renamed"},
        "samples-create": {"patient": objects.patient["id"]},
        "sample-reviews-create": {"decision": "confirm", "comment": "Agree with the automatic result."},
    }.get(endpoint)
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body, format="json")


def content(response) -> bytes:
    if response.streaming:
        data = b"".join(response.streaming_content)
        response.close()
        return data
    return response.content


def csv_identifiers(data: bytes) -> list[str]:
    return [row["patient_identifier"] for row in csv.DictReader(io.StringIO(data.decode()))]


def result_ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def assert_only_a_detail(response):
    body = response.json()
    assert set(body) == {"detail"}, body
    assert body["detail"]


# -- callers who are not members of any lab -------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_caller_is_401_with_a_detail(lab_a_objects, endpoint):
    response = send(APIClient(), endpoint, lab_a_objects)
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert lab_a_objects.patient["identifier"].encode() not in content(response)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_token_is_401(lab_a_objects, endpoint):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = send(client, endpoint, lab_a_objects)
    assert response.status_code == 401
    assert_only_a_detail(response)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_signed_in_user_without_a_lab_is_403_pending(lab_a_objects, pending_user, endpoint):
    response = send(pending_user.client(), endpoint, lab_a_objects)
    assert response.status_code == 403
    assert "pending" in response.json()["detail"]
    assert_only_a_detail(response)


# -- members of lab A -------------------------------------------------------------------------------------


def assert_lab_a_member_sees(endpoint: str, response, objects, lab_a):
    """What a member of lab A gets from each endpoint, beyond the status code."""
    if endpoint == "me":
        assert response.json()["lab"] == {"id": lab_a.id, "name": lab_a.name}
    elif endpoint == "patients-list":
        assert objects.patient["id"] in result_ids(response)
    elif endpoint == "patients-create":
        from diagnostics.models import Patient

        assert Patient.objects.get(pk=response.json()["id"]).lab_id == lab_a.id
    elif endpoint in ("patient-get", "patient-patch"):
        assert response.json()["id"] == objects.patient["id"]
    elif endpoint in ("patient-samples", "samples-list"):
        assert objects.sample["id"] in result_ids(response)
    elif endpoint in ("patient-history-csv", "export-samples-csv"):
        assert response["Content-Type"].startswith("text/csv")
        assert objects.patient["identifier"] in csv_identifiers(content(response))
    elif endpoint == "samples-create":
        assert response.json()["patient"] == objects.patient["id"]
    elif endpoint == "sample-get":
        assert response.json()["id"] == objects.sample["id"]
        assert response.json()["counts"]["classified"] == 1
    elif endpoint == "sample-report":
        from tests.test_reports import pdf_text

        assert response["Content-Type"] == "application/pdf"
        assert f"Identifier {objects.patient['identifier']}" in pdf_text(content(response))
    elif endpoint == "sample-images-list":
        assert result_ids(response) == [objects.image.pk]
    elif endpoint == "sample-images-upload":
        assert "images" in response.json()["detail"]
    elif endpoint == "sample-fields-list":
        assert result_ids(response) == [objects.field.pk]
    elif endpoint == "sample-fields-upload":
        assert "fields" in response.json()["detail"]
    elif endpoint == "field-get":
        assert response.json()["id"] == objects.field.pk
        assert response.json()["cells"] == []
    elif endpoint == "field-file":
        assert response["Content-Type"] == "image/png"
        assert content(response) == objects.photograph
    elif endpoint == "field-overlay":
        assert response["Content-Type"] == "image/png"
        original = Image.open(io.BytesIO(objects.photograph))
        assert Image.open(io.BytesIO(content(response))).size == original.size
    elif endpoint == "image-get":
        assert response.json()["id"] == objects.image.pk
        assert response.json()["prediction"]["label"] == "uninfected"
    elif endpoint == "image-file":
        assert response["Content-Type"] == "image/png"
        assert content(response) == objects.png
    elif endpoint == "image-heatmap":
        assert response["Content-Type"] == "image/png"
        heatmap = content(response)
        assert Image.open(io.BytesIO(heatmap)).size == (100, 120)
        assert heatmap != objects.png


MEMBER_STATUS = {
    "me": 200,
    "patients-list": 200,
    "patients-create": 201,
    "patient-get": 200,
    "patient-patch": 200,
    "patient-samples": 200,
    "patient-history-csv": 200,
    "samples-list": 200,
    "samples-create": 201,
    "sample-get": 200,
    "sample-report": 200,
    "sample-images-list": 200,
    "sample-images-upload": 400,
    "sample-fields-list": 200,
    "sample-fields-upload": 400,
    "field-get": 200,
    "field-file": 200,
    "field-overlay": 200,
    "image-get": 200,
    "image-file": 200,
    "image-heatmap": 200,
    "export-samples-csv": 200,
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_clinician_of_lab_a(lab_a_objects, clinician, lab_a, endpoint):
    response = send(clinician.client(), endpoint, lab_a_objects)
    if endpoint == "sample-reviews-create":
        from diagnostics.models import Review

        assert response.status_code == 403
        assert "reviewer" in response.json()["detail"]
        assert not Review.objects.exists()
        return
    assert response.status_code == MEMBER_STATUS[endpoint], content(response)[:500]
    assert_lab_a_member_sees(endpoint, response, lab_a_objects, lab_a)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_reviewer_of_lab_a(lab_a_objects, reviewer, lab_a, endpoint):
    response = send(reviewer.client(), endpoint, lab_a_objects)
    if endpoint == "sample-reviews-create":
        assert response.status_code == 201, response.json()
        assert response.json()["result"] == "indeterminate"
        assert response.json()["reviewer"] == reviewer.email
        return
    assert response.status_code == MEMBER_STATUS[endpoint], content(response)[:500]
    assert_lab_a_member_sees(endpoint, response, lab_a_objects, lab_a)


def test_the_samples_creator_may_not_review_it(make_person, lab_a):
    creator = make_person("reviewer", lab_a)
    client = creator.client()
    patient = client.post("/api/v1/patients", {"identifier": "SELF-1"}, format="json").json()
    sample = client.post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()
    add_cells(sample["id"], ["uninfected"])
    response = client.post(
        f"/api/v1/samples/{sample['id']}/reviews", {"decision": "confirm", "comment": "Mine."}, format="json"
    )
    assert response.status_code == 403
    assert "another reviewer" in response.json()["detail"]
    assert client.get(f"/api/v1/samples/{sample['id']}").json()["reviews"] == []


# -- a member of another lab ------------------------------------------------------------------------------


@pytest.fixture
def lab_b_patient(other_lab_clinician):
    client = other_lab_clinician.client()
    patient = client.post("/api/v1/patients", {"identifier": "B-1", "name": "Bo"}, format="json").json()
    sample = client.post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()
    return SimpleNamespace(patient=patient, sample=sample)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_clinician_of_lab_b_sees_nothing_of_lab_a(lab_a_objects, lab_b_patient, other_lab_clinician, lab_b, endpoint):
    from diagnostics.models import Patient, Review

    response = send(other_lab_clinician.client(), endpoint, lab_a_objects)
    data = content(response)
    assert lab_a_objects.patient["identifier"].encode() not in data
    if endpoint in LAB_A_OBJECT_ENDPOINTS:
        assert response.status_code == 404, data[:500]
        assert_only_a_detail(response)
        assert Patient.objects.get(pk=lab_a_objects.patient["id"]).name == "Ada"
        assert not Review.objects.exists()
    elif endpoint == "me":
        assert response.status_code == 200
        assert response.json()["lab"] == {"id": lab_b.id, "name": lab_b.name}
    elif endpoint in ("patients-list", "samples-list"):
        assert response.status_code == 200
        row = lab_b_patient.patient if endpoint == "patients-list" else lab_b_patient.sample
        assert result_ids(response) == [row["id"]]
    elif endpoint == "export-samples-csv":
        assert response.status_code == 200
        assert csv_identifiers(data) == ["B-1"]
    elif endpoint == "patients-create":
        assert response.status_code == 201
        assert Patient.objects.get(pk=response.json()["id"]).lab_id == lab_b.id
    elif endpoint == "samples-create":
        # The same answer as for a patient id that exists nowhere: nothing tells lab A's patient exists.
        assert response.status_code == 400
        assert response.json() == {"patient": ["No such patient in your lab."]}
    else:
        pytest.fail(f"no expectation for {endpoint}")


# -- public ------------------------------------------------------------------------------------------------


def test_schema_is_public_and_lists_the_endpoints(db):
    response = APIClient().get("/api/v1/schema")
    assert response.status_code == 200
    assert b"Malaria Detect API" in response.content
    assert b"/api/v1/samples/{sample_id}/reviews" in response.content


def test_docs_are_public(db):
    response = APIClient().get("/api/v1/docs")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
