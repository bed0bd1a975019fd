"""The FHIR R4 export of a sample (GET /api/v1/samples/{id}/fhir, docs/fhir.md): a Bundle that validates
against the FHIR models (fhir.resources, R4B: see docs/fhir.md for why that stands for R4), follows the
reviews (preliminary, final, amended), stays in the caller's lab and is audited; and the pure builder's
edge cases (interval, counts, no red cell classified)."""

from __future__ import annotations

import datetime as dt

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from diagnostics import fhir

# The codes the builder may write where FHIR binds a required value set (fhir.resources checks types,
# cardinalities and formats, not value-set bindings, so the test checks these).
REPORT_STATUSES = {"registered", "partial", "preliminary", "final", "amended", "corrected", "appended"}
OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended"}
GENDERS = {"male", "female", "other", "unknown"}
SNOMED_RESULTS = {"10828004": "positive", "260385009": "negative", "82334004": "indeterminate"}


def validated(bundle: dict) -> dict:
    """The bundle, after checking it against the FHIR models and the rules the models leave out: each entry's
    fullUrl unique and matching its resource's id, every reference resolving inside the bundle, a value or a
    reason for its absence (obs-6), and the required code bindings."""
    Bundle.model_validate(bundle)
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        if resource["resourceType"] == "Observation":
            assert resource["status"] in OBSERVATION_STATUSES
            assert ("valueQuantity" in resource or "valueCodeableConcept" in resource) != (
                "dataAbsentReason" in resource
            )
        if resource["resourceType"] == "DiagnosticReport":
            assert resource["status"] in REPORT_STATUSES
        if resource["resourceType"] == "Patient":
            assert resource["gender"] in GENDERS
    for reference in references(bundle):
        assert reference in full_urls, f"{reference} is not in the bundle"
    return bundle


def references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for value in node.values() for r in references(value)]
    if isinstance(node, list):
        return [r for value in node for r in references(value)]
    return []


def resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def one(bundle: dict, resource_type: str) -> dict:
    [resource] = resources(bundle, resource_type)
    return resource


def observation(bundle: dict, loinc: str) -> dict:
    [found] = [o for o in resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == loinc]
    return found


def components(obs: dict) -> dict[str, dict]:
    return {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in obs.get("component", [])}


def presence_result(bundle: dict) -> str:
    [coding] = observation(bundle, "51587-4")["valueCodeableConcept"]["coding"]
    assert coding["system"] == "http://snomed.info/sct"
    return SNOMED_RESULTS[coding["code"]]


# -- the pure builder -----------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 28, 14, 30, tzinfo=dt.UTC)


def facts(**changes) -> fhir.SampleFacts:
    values = dict(
        system_base="https://malaria.example.org",
        lab_id=7,
        lab_name="Lab of the river",
        patient_id=11,
        patient_identifier="MRN-1",
        patient_name="Ada",
        patient_sex="female",
        patient_birth_year=1990,
        sample_id=42,
        collected_at=dt.date(2026, 11, 27),
        sample_status="complete",
        automatic_result="positive",
        result_reason="3 of 20 red cells confidently parasitized.",
        final_result="positive",
        cells_counted=20,
        parasitized=3,
        uncertain=2,
        parasitemia=0.15,
        parasitemia_low=0.0524,
        parasitemia_high=0.3604,
        classified_at=NOW,
        model_versions=("cnn-2026.11.28",),
        review=None,
        earlier_results=(),
        stale_reviews=0,
        generated_at=NOW,
    )
    return fhir.SampleFacts(**{**values, **changes})


def review(result: str = "positive", decision: str = "confirm") -> fhir.ReviewFacts:
    return fhir.ReviewFacts(
        result=result, decision=decision, reviewer="rev@example.org", at=NOW, comment="Ring forms seen."
    )


@pytest.mark.pure
def test_the_parasitemia_is_a_percent_with_its_interval_and_counts_as_components():
    bundle = validated(fhir.sample_bundle(facts()))
    parasitemia = observation(bundle, "101343-2")
    ucum = "http://unitsofmeasure.org"
    assert parasitemia["valueQuantity"] == {"value": 15.0, "unit": "%", "system": ucum, "code": "%"}
    assert "referenceRange" not in parasitemia  # the interval is not a normal range
    counts = components(parasitemia)
    assert counts["parasitemia-95ci-low"]["value"] == 5.24
    assert counts["parasitemia-95ci-high"]["value"] == 36.04
    assert {k: v["value"] for k, v in counts.items() if v["code"] == "{cells}"} == {
        "red-cells-counted": 20,
        "parasitized-cells": 3,
        "uncertain-cells": 2,
    }
    assert all(v["system"] == ucum for v in counts.values())
    assert (
        "Parasitemia 15 % (95 % interval 5.24-36.04 %) over 20 red cells."
        in one(bundle, "DiagnosticReport")["conclusion"]
    )


@pytest.mark.pure
def test_no_red_cell_classified_gives_a_reason_instead_of_a_parasitemia():
    no_cells = facts(
        automatic_result="indeterminate",
        final_result="indeterminate",
        result_reason="No red cell could be classified.",
        cells_counted=0,
        parasitized=0,
        uncertain=0,
        parasitemia=None,
        parasitemia_low=None,
        parasitemia_high=None,
        classified_at=None,
        model_versions=(),
    )
    bundle = validated(fhir.sample_bundle(no_cells))
    parasitemia = observation(bundle, "101343-2")
    assert "valueQuantity" not in parasitemia
    assert parasitemia["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    assert {k: v["value"] for k, v in components(parasitemia).items()} == {
        "red-cells-counted": 0,
        "parasitized-cells": 0,
        "uncertain-cells": 0,
    }
    assert presence_result(bundle) == "indeterminate"
    assert resources(bundle, "Device") == []
    report = one(bundle, "DiagnosticReport")
    assert "issued" not in report and "Parasitemia" not in report["conclusion"]


@pytest.mark.pure
def test_a_zero_parasitemia_keeps_its_value_and_an_interval_from_zero():
    negative = facts(
        automatic_result="negative",
        final_result="negative",
        cells_counted=600,
        parasitized=0,
        uncertain=0,
        parasitemia=0.0,
        parasitemia_low=0.0,
        parasitemia_high=0.0064,
    )
    parasitemia = observation(validated(fhir.sample_bundle(negative)), "101343-2")
    assert parasitemia["valueQuantity"]["value"] == 0.0
    assert components(parasitemia)["parasitemia-95ci-low"]["value"] == 0.0
    assert components(parasitemia)["parasitemia-95ci-high"]["value"] == 0.64


@pytest.mark.pure
def test_a_parasitemia_without_a_stored_interval_has_no_interval_components():
    parasitemia = observation(
        validated(fhir.sample_bundle(facts(parasitemia_low=None, parasitemia_high=None))), "101343-2"
    )
    assert set(components(parasitemia)) == {"red-cells-counted", "parasitized-cells", "uncertain-cells"}


@pytest.mark.pure
@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"sample_status": "awaiting_images", "automatic_result": "", "final_result": ""}, "registered"),
        ({"sample_status": "processing"}, "partial"),
        ({}, "preliminary"),
        ({"stale_reviews": 1, "earlier_results": ()}, "preliminary"),
        ({"review": review()}, "final"),
        ({"review": review(), "earlier_results": ("positive",)}, "final"),
        (
            {"review": review("negative", "override"), "final_result": "negative", "earlier_results": ("positive",)},
            "amended",
        ),
    ],
    ids=[
        "no-images",
        "classifying",
        "unreviewed",
        "review-gone-stale",
        "confirmed",
        "confirmed-twice",
        "overridden-later",
    ],
)
def test_the_report_status_follows_the_reviews(changes, status):
    bundle = validated(fhir.sample_bundle(facts(**changes)))
    report = one(bundle, "DiagnosticReport")
    assert report["status"] == status
    if status in ("registered", "partial"):
        assert report["result"] == [] and resources(bundle, "Observation") == []
    else:
        assert observation(bundle, "51587-4")["status"] == status
        assert observation(bundle, "101343-2")["status"] == ("preliminary" if status == "preliminary" else "final")
        assert len(report["result"]) == 2


@pytest.mark.pure
def test_ids_are_stable_per_object_and_differ_between_labs():
    first, again = fhir.sample_bundle(facts()), fhir.sample_bundle(facts(generated_at=NOW + dt.timedelta(hours=1)))
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    other_lab = fhir.sample_bundle(facts(lab_id=8))
    assert one(first, "Patient")["id"] != one(other_lab, "Patient")["id"]
    assert one(first, "Patient")["identifier"][0]["system"] == "https://malaria.example.org/labs/7/patients"
    assert one(other_lab, "Patient")["identifier"][0]["system"] == "https://malaria.example.org/labs/8/patients"


@pytest.mark.pure
@pytest.mark.parametrize(
    ("sex", "gender"), [("female", "female"), ("male", "male"), ("other", "other"), ("", "unknown")]
)
def test_patient_sex_and_birth_year(sex, gender):
    patient = one(validated(fhir.sample_bundle(facts(patient_sex=sex, patient_birth_year=1984))), "Patient")
    assert (patient["gender"], patient["birthDate"]) == (gender, "1984")
    unnamed = one(fhir.sample_bundle(facts(patient_name="", patient_birth_year=None)), "Patient")
    assert "name" not in unnamed and "birthDate" not in unnamed


@pytest.mark.pure
def test_a_sample_classified_by_two_models_lists_both_devices():
    bundle = validated(fhir.sample_bundle(facts(model_versions=("cnn-a", "cnn-b"))))
    assert sorted(d["version"][0]["value"] for d in resources(bundle, "Device")) == ["cnn-a", "cnn-b"]
    presence = observation(bundle, "51587-4")
    assert "device" not in presence
    assert any("cnn-a, cnn-b" in note["text"] for note in presence["note"])


def test_the_builders_words_are_the_models_choices():
    from diagnostics.models import Result, SampleStatus, Sex

    assert set(fhir.RESULT_CODES) == set(Result.values)
    assert set(Sex.values) == fhir.GENDERS
    assert {"awaiting_images", "processing", "complete"} == set(SampleStatus.values)


# -- the endpoint, on a real classified sample in PostgreSQL ------------------------------------------------

pytestmark_db = pytest.mark.django_db


@pytest.fixture
def classified(clinician, patient):
    """A complete sample of lab A: 3 of 20 red cells parasitized (2 more uncertain), positive by the model."""
    from diagnostics.models import Sample
    from tests.factories import new_sample
    from tests.stored_cells import add_cells

    sample = new_sample(patient["id"], collected_at="2026-11-20", created_by=clinician.user)
    add_cells(sample.pk, ["parasitized"] * 3 + ["uninfected"] * 15)
    add_cells(sample.pk, ["uninfected"] * 2, uncertain=True)
    sample = Sample.objects.get(pk=sample.pk)
    assert (sample.status, sample.result) == ("complete", "positive")
    return sample


def fetch(person, sample_id: int, **headers) -> dict:
    response = person.client().get(f"/api/v1/samples/{sample_id}/fhir", **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Cache-Control"] == "no-store"
    return validated(response.json())


def post_review(reviewer, sample_id: int, **body):
    response = reviewer.client().post(f"/api/v1/samples/{sample_id}/reviews", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytestmark_db
def test_a_classified_sample_is_a_valid_bundle_with_the_labs_patient(clinician, lab_a, patient, classified):
    from django.conf import settings

    from diagnostics.models import Patient

    Patient.objects.filter(pk=patient["id"]).update(sex="male", birth_year=1971)
    bundle = fetch(clinician, classified.pk, HTTP_ACCEPT="application/fhir+json")
    assert bundle["type"] == "collection"
    assert bundle["entry"][0]["resource"]["resourceType"] == "DiagnosticReport"
    person = one(bundle, "Patient")
    assert person["identifier"] == [
        {
            "use": "usual",
            "system": f"{settings.FHIR_SYSTEM_BASE}/labs/{lab_a.id}/patients",
            "value": patient["identifier"],
        }
    ]
    assert (person["name"], person["gender"], person["birthDate"]) == ([{"text": "Ada"}], "male", "1971")
    assert one(bundle, "Organization")["name"] == lab_a.name
    specimen = one(bundle, "Specimen")
    assert specimen["collection"]["collectedDateTime"] == "2026-11-20"
    assert specimen["type"]["coding"][0]["code"] == "119297000"
    assert one(bundle, "Device")["version"] == [{"value": "test-model"}]
    report = one(bundle, "DiagnosticReport")
    assert report["status"] == "preliminary"
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "32700-7",
        "display": "Microscopic observation [Identifier] in Blood by Malaria smear",
    }
    assert "not yet reviewed" in report["conclusion"]
    assert presence_result(bundle) == "positive"
    parasitemia = observation(bundle, "101343-2")
    assert parasitemia["valueQuantity"]["value"] == 15.0
    counts = components(parasitemia)
    assert (counts["red-cells-counted"]["value"], counts["parasitized-cells"]["value"]) == (20, 3)
    assert counts["parasitemia-95ci-low"]["value"] == round(classified.parasitemia_low * 100, 4)
    assert counts["parasitemia-95ci-high"]["value"] == round(classified.parasitemia_high * 100, 4)


@pytestmark_db
def test_the_report_goes_final_then_amended_and_the_value_follows(clinician, reviewer, classified):
    bundle = fetch(clinician, classified.pk)
    assert one(bundle, "DiagnosticReport")["status"] == "preliminary"

    post_review(reviewer, classified.pk, decision="confirm", comment="Ring forms seen.")
    bundle = fetch(clinician, classified.pk)
    report = one(bundle, "DiagnosticReport")
    assert report["status"] == "final"
    assert report["resultsInterpreter"] == [{"display": reviewer.email}]
    assert "Ring forms seen." in report["conclusion"]
    assert (presence_result(bundle), observation(bundle, "51587-4")["status"]) == ("positive", "final")
    assert observation(bundle, "101343-2")["status"] == "final"

    post_review(reviewer, classified.pk, decision="override", result="negative", comment="Platelets, not parasites.")
    bundle = fetch(clinician, classified.pk)
    report = one(bundle, "DiagnosticReport")
    assert report["status"] == "amended"
    assert report["conclusionCode"][0]["coding"][0]["code"] == "260385009"
    assert (presence_result(bundle), observation(bundle, "51587-4")["status"]) == ("negative", "amended")
    assert "The automatic result was positive" in report["conclusion"]
    # The same objects keep their fullUrls from one version of the report to the next.
    assert one(bundle, "DiagnosticReport")["id"] == report["id"]


@pytestmark_db
def test_a_review_gone_stale_makes_the_report_partial_then_preliminary_again(clinician, reviewer, classified):
    from diagnostics.models import CellImage, CellImageStatus
    from diagnostics.services import sample_refresh
    from tests.cells import cell_png, named
    from tests.factories import PredictionFactory

    post_review(reviewer, classified.pk, decision="confirm", comment="Ring forms seen.")
    # A cell uploaded after the review: the review no longer stands (services.cell_images_receive).
    upload = clinician.client().post(
        f"/api/v1/samples/{classified.pk}/images", {"images": [named("later.png", cell_png())]}, format="multipart"
    )
    assert upload.status_code == 202, upload.content
    report = one(fetch(clinician, classified.pk), "DiagnosticReport")
    assert (report["status"], report["result"]) == ("partial", [])

    image_id = upload.json()["accepted"][0]["id"]  # classified as the worker would
    CellImage.objects.filter(pk=image_id).update(status=CellImageStatus.CLASSIFIED)
    PredictionFactory(image_id=image_id)
    sample_refresh(sample_id=classified.pk)
    bundle = fetch(clinician, classified.pk)
    report = one(bundle, "DiagnosticReport")
    assert report["status"] == "preliminary"
    assert "resultsInterpreter" not in report
    assert "no longer stands" in report["conclusion"]
    assert components(observation(bundle, "101343-2"))["red-cells-counted"]["value"] == 21


@pytestmark_db
def test_a_sample_without_images_is_registered_with_no_results(clinician, sample):
    report = one(fetch(clinician, sample["id"]), "DiagnosticReport")
    assert (report["status"], report["result"]) == ("registered", [])


@pytestmark_db
def test_each_export_is_audited(clinician, reviewer, lab_a, classified):
    from accounts.models import AuditEvent

    fetch(clinician, classified.pk)
    post_review(reviewer, classified.pk, decision="confirm", comment="Agree.")
    fetch(reviewer, classified.pk)
    events = list(AuditEvent.objects.filter(action="sample.fhir_export").order_by("id"))
    assert [(e.actor, e.lab_id, e.object_type, e.object_id, e.ip_address) for e in events] == [
        (clinician.user, lab_a.id, "sample", str(classified.pk), "127.0.0.1"),
        (reviewer.user, lab_a.id, "sample", str(classified.pk), "127.0.0.1"),
    ]
    assert [e.detail["report_status"] for e in events] == ["preliminary", "final"]


@pytestmark_db
def test_another_labs_sample_is_not_found_and_not_audited(other_lab_clinician, classified, patient):
    from accounts.models import AuditEvent

    response = other_lab_clinician.client().get(
        f"/api/v1/samples/{classified.pk}/fhir", HTTP_ACCEPT="application/fhir+json"
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"  # errors are the API's own, whatever was asked for
    assert response.json() == {"detail": "Not found."}
    assert patient["identifier"].encode() not in response.content
    assert not AuditEvent.objects.filter(action="sample.fhir_export").exists()


@pytestmark_db
def test_callers_without_a_lab_are_refused(classified, pending_user):
    from rest_framework.test import APIClient

    anonymous = APIClient().get(f"/api/v1/samples/{classified.pk}/fhir")
    assert anonymous.status_code == 401
    assert "Bearer" in anonymous.json()["detail"]
    pending = pending_user.client().get(f"/api/v1/samples/{classified.pk}/fhir")
    assert pending.status_code == 403
    assert "pending" in pending.json()["detail"]


@pytestmark_db
def test_the_operation_is_in_the_openapi_description(db):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/v1/schema?format=json").json()
    operation = schema["paths"]["/api/v1/samples/{sample_id}/fhir"]["get"]
    assert "application/fhir+json" in operation["responses"]["200"]["content"]
    assert {"401", "404"} <= set(operation["responses"])


@pytest.mark.pure
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "malaria.example.org,www.example.org"}, "https://malaria.example.org"),
        ({"DJANGO_ALLOWED_HOSTS": "malaria.example.org", "FHIR_SYSTEM_BASE": "https://lab.example.org/"}, None),
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "Set FHIR_SYSTEM_BASE"),
        ({"DJANGO_ALLOWED_HOSTS": ".example.org"}, "Set FHIR_SYSTEM_BASE"),
    ],
    ids=["from-allowed-hosts", "set", "wildcard-refused", "subdomain-wildcard-refused"],
)
def test_production_never_exports_the_placeholder_system(env, expected):
    """Outside debug the identifier systems are the site's own address, or start-up stops and says why."""
    from tests.test_emulator_guard import run_python

    result = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.FHIR_SYSTEM_BASE)",
        DJANGO_SECRET_KEY="x" * 50,
        **env,
    )
    if expected is None:
        assert result.stdout.strip().endswith("https://lab.example.org"), result.stderr[-2000:]
    elif expected.startswith("https://"):
        assert result.stdout.strip().endswith(expected), result.stderr[-2000:]
    else:
        assert result.returncode != 0 and expected in result.stderr
