"""No dead links: every page reachable from the dashboard, as a clinician and as a reviewer, answers 200,
and so does every link on it (cell image files are left to the API's tests)."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import pytest

from accounts.models import Lab
from diagnostics.models import Patient, Review
from diagnostics.views import CELLS_PER_PAGE, PATIENTS_PER_PAGE
from tests.page_sessions import page_client
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db

SKIPPED = ("/admin", "/static/", "/api/v1/images/")
MOST_PAGES = 400


def crawl(client, start: str = "/") -> tuple[dict[str, int], list[str]]:
    """Breadth-first over <a href> within the site; returns each URL's status and the dead links found."""
    statuses: dict[str, int] = {}
    dead: list[str] = []
    queue = [(start, "(start)")]
    while queue:
        url, referrer = queue.pop(0)
        if url in statuses:
            continue
        assert len(statuses) < MOST_PAGES, "the crawl does not end: links keep making new URLs"
        response = client.get(url)
        statuses[url] = response.status_code
        if response.status_code != 200:
            dead.append(f"{url} ({response.status_code}) linked from {referrer}")
            continue
        if response.streaming:
            b"".join(response.streaming_content)  # a CSV export must not fail half-way
            continue
        if not response["Content-Type"].startswith("text/html"):
            continue
        page = response.content.decode()
        for href in re.findall(r'<a\b[^>]*?\shref="([^"]*)"', page):
            target = urlsplit(urljoin(f"http://testserver{url}", html.unescape(href)))
            if target.netloc != "testserver":
                continue
            if target.fragment and target.path == urlsplit(url).path:
                if f'id="{target.fragment}"' not in page:
                    dead.append(f"{url}#{target.fragment} (no such anchor)")
                continue
            path = target.path + (f"?{target.query}" if target.query else "")
            if not path.startswith(SKIPPED):
                queue.append((path, url))
    return statuses, dead


@pytest.fixture
def busy_lab(clinician, reviewer, patient, sample, lab_a: Lab):
    """A lab with a page of patients more than fits, and samples in every state, one reviewed."""
    for number in range(PATIENTS_PER_PAGE):
        Patient.objects.create(lab=lab_a, identifier=f"Z-{number:03}")
    images = add_cells(sample["id"], ["parasitized"] * 30 + ["uninfected"] * (CELLS_PER_PAGE - 20))
    add_cells(sample["id"], ["uninfected"] * 3, uncertain=True)
    add_cells(sample["id"], [None], status="failed")
    samples = clinician.client()
    reviewer.client().get("/api/v1/me")  # the reviewer's first sign-in creates their user
    reviewed = samples.post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()["id"]
    add_cells(reviewed, ["uninfected"] * 20)
    review = Review.objects.create(
        sample_id=reviewed, reviewer=reviewer.user, decision="override", result="indeterminate", comment="Redo."
    )
    review.cell_labels.create(image=images[0], label="uninfected")
    processing = samples.post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()["id"]
    add_cells(processing, ["uninfected", None])
    samples.post("/api/v1/samples", {"patient": patient["id"]}, format="json")  # awaiting images
    return {"sample": sample["id"], "reviewed": reviewed, "processing": processing, "patient": patient["id"]}


@pytest.mark.parametrize("role", ["clinician", "reviewer"])
def test_every_page_reachable_from_the_dashboard_answers(request, busy_lab, role):
    client = page_client(request.getfixturevalue(role))
    statuses, dead = crawl(client)
    assert dead == []
    sample, patient = busy_lab["sample"], busy_lab["patient"]
    expected = {
        "/",
        "/patients",
        "/patients?page=2",
        "/patients/new",
        f"/patients/{patient}",
        f"/patients/{patient}/edit",
        f"/patients/{patient}/samples/new",
        f"/api/v1/patients/{patient}/history.csv",
        f"/samples/{sample}",
        f"/samples/{sample}?show=uncertain",
        f"/samples/{sample}?page=2",
        f"/samples/{sample}/upload",
        f"/samples/{sample}/cells.csv",
        f"/samples/{busy_lab['processing']}",
        "/model",
    }
    if role == "reviewer":
        expected |= {"/reviews", f"/samples/{sample}/review", f"/samples/{busy_lab['reviewed']}"}
    assert expected <= set(statuses), sorted(expected - set(statuses))
    assert any(url.startswith("/images/") for url in statuses), "cell pages are linked from the grid"
