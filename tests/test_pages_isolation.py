"""Labs are sealed from each other on the pages too: another lab's patients, samples and cells are a 404
on every page, and dashboards, lists and queues never show another lab's rows."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnostics.models import CellImage, Patient, Review, Sample
from tests.page_sessions import page_client, text_of
from tests.stored_cells import add_cells, cell_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab_a_objects(clinician, patient, sample):
    images = add_cells(sample["id"], ["parasitized"] * 3 + ["uninfected"] * 17)
    return {
        "patient": patient["id"],
        "sample": sample["id"],
        "image": images[0].pk,
        "identifier": patient["identifier"],
    }


def pages_of(objects) -> list[tuple[str, str, dict | None]]:
    patient, sample, image = objects["patient"], objects["sample"], objects["image"]
    return [
        ("get", f"/patients/{patient}", None),
        ("get", f"/patients/{patient}/edit", None),
        ("post", f"/patients/{patient}/edit", {"identifier": "STOLEN", "sex": "unknown"}),
        ("get", f"/patients/{patient}/samples/new", None),
        ("post", f"/patients/{patient}/samples/new", {"collected_at": "2026-01-01"}),
        ("get", f"/samples/{sample}", None),
        ("get", f"/samples/{sample}/upload", None),
        ("post", f"/samples/{sample}/upload", {"images": [SimpleUploadedFile("c.png", cell_png())]}),
        ("get", f"/samples/{sample}/cells.csv", None),
        ("get", f"/samples/{sample}/review", None),
        ("post", f"/samples/{sample}/review", {"decision": "confirm", "comment": "x"}),
        ("get", f"/images/{image}", None),
        ("get", f"/api/v1/images/{image}/file", None),
        ("get", f"/api/v1/patients/{patient}/history.csv", None),
    ]


@pytest.mark.parametrize("role", ["clinician", "reviewer"])
def test_every_page_of_another_labs_objects_is_404(make_person, lab_b, lab_a_objects, role):
    browser = page_client(make_person(role, lab_b))
    for method, url, data in pages_of(lab_a_objects):
        response = getattr(browser, method)(url, data) if data else getattr(browser, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
        if not url.startswith("/api/"):
            assert "Not found" in text_of(response) and lab_a_objects["identifier"] not in text_of(response)
    assert Patient.objects.get(pk=lab_a_objects["patient"]).identifier == lab_a_objects["identifier"]
    assert Sample.objects.filter(patient_id=lab_a_objects["patient"]).count() == 1
    assert CellImage.objects.filter(sample_id=lab_a_objects["sample"]).count() == 20
    assert not Review.objects.exists()


def test_dashboards_lists_and_queues_show_only_the_own_lab(make_person, lab_b, lab_a_objects, other_lab_clinician):
    other_patient = other_lab_clinician.client().post("/api/v1/patients", {"identifier": "B-1"}, format="json").json()
    other_sample = other_lab_clinician.client().post("/api/v1/samples", {"patient": other_patient["id"]}, format="json")
    add_cells(other_sample.json()["id"], ["uninfected"] * 20)

    browser = page_client(other_lab_clinician)
    reviewer_b = page_client(make_person("reviewer", lab_b))
    links = [f'href="/patients/{lab_a_objects["patient"]}"', f'href="/samples/{lab_a_objects["sample"]}']
    for client, url in [(browser, "/"), (browser, "/patients"), (reviewer_b, "/"), (reviewer_b, "/reviews")]:
        response = client.get(url)
        assert response.status_code == 200
        assert lab_a_objects["identifier"] not in text_of(response), url
        assert not any(link in response.content.decode() for link in links), url
    search = browser.get(f"/patients?q={lab_a_objects['identifier']}")
    assert "No patient matches" in text_of(search)
    assert not any(link in search.content.decode() for link in links)
    assert "B-1" in text_of(browser.get("/patients"))
    assert f"/samples/{other_sample.json()['id']}/review" in reviewer_b.get("/reviews").content.decode()
