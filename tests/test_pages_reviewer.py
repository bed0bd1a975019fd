"""A reviewer's pages: the queue of samples awaiting review (most uncertain first, own samples excluded) and
the review form (confirm, override, relabel cells, comment), with the sample's audit trail underneath."""

from __future__ import annotations

import pytest

from diagnostics.models import CellRelabel, Review, Sample
from tests.page_sessions import page_client, text_of
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer_client(reviewer):
    return page_client(reviewer)


def sample_by(person, patient, labels=(), uncertain_labels=()) -> int:
    response = person.client().post("/api/v1/samples", {"patient": patient["id"]}, format="json")
    assert response.status_code == 201
    sample_id = response.json()["id"]
    add_cells(sample_id, list(labels))
    add_cells(sample_id, list(uncertain_labels), uncertain=True)
    return sample_id


def positive_sample(person, patient) -> int:
    """20 classified cells, 3 of them parasitized (15 %): automatically positive."""
    return sample_by(person, patient, ["parasitized"] * 3 + ["uninfected"] * 17)


def queue_ids(reviewer_client) -> list[int]:
    rows = text_of(reviewer_client.get("/reviews")).split("Review sample ")[1:]
    return [int(row.split(" ")[0]) for row in rows]


def test_the_queue_lists_unreviewed_complete_samples_most_uncertain_first(
    reviewer_client, clinician, reviewer, patient
):
    few = sample_by(clinician, patient, ["uninfected"] * 20, ["uninfected"])
    many = sample_by(clinician, patient, ["uninfected"] * 20, ["uninfected"] * 5)
    none = sample_by(clinician, patient, ["uninfected"] * 20)
    processing = sample_by(clinician, patient, ["uninfected", None])
    empty = sample_by(clinician, patient)
    reviewed = positive_sample(clinician, patient)
    Review.objects.create(
        sample_id=reviewed, reviewer=reviewer.user, decision="confirm", result="positive", comment="Seen."
    )
    own = sample_by(reviewer, patient, ["uninfected"] * 20, ["uninfected"] * 9)

    assert queue_ids(reviewer_client) == [many, few, none]
    response = reviewer_client.get("/reviews")
    assert response.status_code == 200
    assert "3 samples awaiting review" in text_of(response)
    assert clinician.email in text_of(response)
    for absent in (processing, empty, reviewed, own):
        assert f"/samples/{absent}/review" not in response.content.decode()
    dashboard = text_of(reviewer_client.get("/"))
    assert "3 samples awaiting review" in dashboard and "Review queue" in dashboard


def test_a_reviewer_confirms_through_the_form(reviewer_client, clinician, reviewer, patient):
    sample_id = positive_sample(clinician, patient)
    page = reviewer_client.get(f"/samples/{sample_id}/review")
    assert page.status_code == 200
    assert "Confirm the automatic result (positive)" in text_of(page)

    response = reviewer_client.post(
        f"/samples/{sample_id}/review", {"decision": "confirm", "comment": "Ring forms seen."}
    )
    assert response.status_code == 302 and response["Location"] == f"/samples/{sample_id}"
    review = Review.objects.get(sample_id=sample_id)
    assert (review.decision, review.result, review.reviewer, review.comment) == (
        "confirm",
        "positive",
        reviewer.user,
        "Ring forms seen.",
    )
    sample_page = text_of(reviewer_client.get(response["Location"]))
    assert "Review saved: result confirmed as positive." in sample_page
    assert f"Automatic result confirmed by {reviewer.email}" in sample_page
    assert sample_id not in queue_ids(reviewer_client)


def test_a_reviewer_overrides_and_relabels_cells_through_the_form(reviewer_client, clinician, patient):
    sample_id = positive_sample(clinician, patient)
    parasitized = list(
        Sample.objects.get(pk=sample_id).images.filter(prediction__label="parasitized").values_list("pk", flat=True)
    )
    form = reviewer_client.get(f"/samples/{sample_id}/review?show=parasitized").content.decode()
    for image_id in parasitized:
        assert f'<select id="cell-{image_id}" name="cell_{image_id}">' in form

    fields = {"decision": "override", "result": "negative", "comment": "Stain debris, not parasites."}
    fields.update({f"cell_{image_id}": "uninfected" for image_id in parasitized[:2]})
    fields[f"cell_{parasitized[2]}"] = ""  # "Keep"
    response = reviewer_client.post(f"/samples/{sample_id}/review", fields)
    assert response.status_code == 302
    sample = Sample.objects.get(pk=sample_id)
    assert (sample.result, sample.final_result) == ("positive", "negative")
    relabels = CellRelabel.objects.filter(review__sample=sample)
    assert sorted(relabels.values_list("image_id", "label")) == [(i, "uninfected") for i in parasitized[:2]]

    page = text_of(reviewer_client.get(f"/samples/{sample_id}?show=parasitized"))
    assert "Overridden (automatic: positive)" in page
    assert page.count("Reviewer: Uninfected") == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decision": "confirm", "comment": ""}, "This field is required."),
        ({"decision": "override", "comment": "Unsure."}, "An override needs a result"),
        ({"decision": "confirm", "result": "negative", "comment": "No."}, "use override to change it"),
        ({"comment": "No decision."}, "This field is required."),
    ],
)
def test_an_incomplete_review_is_refused_with_the_reason(reviewer_client, clinician, patient, fields, message):
    sample_id = positive_sample(clinician, patient)
    image_id = Sample.objects.get(pk=sample_id).images.first().pk
    response = reviewer_client.post(f"/samples/{sample_id}/review", {**fields, f"cell_{image_id}": "parasitized"})
    assert response.status_code == 400
    assert message in text_of(response)
    assert '<option value="parasitized" selected>' in response.content.decode(), "chosen relabels are kept"
    assert not Review.objects.exists()


def test_relabelling_a_cell_of_another_sample_is_refused(reviewer_client, clinician, patient):
    sample_id = positive_sample(clinician, patient)
    other = positive_sample(clinician, patient)
    stranger = Sample.objects.get(pk=other).images.first().pk
    response = reviewer_client.post(
        f"/samples/{sample_id}/review",
        {"decision": "override", "result": "negative", "comment": "x", f"cell_{stranger}": "uninfected"},
    )
    assert response.status_code == 400
    assert f"Cell images not in this sample: {stranger}." in text_of(response)
    assert not Review.objects.exists()


def test_a_clinician_may_not_review(clinician, patient):
    sample_id = positive_sample(clinician, patient)
    clinician_client = page_client(clinician)
    for response in (
        clinician_client.get("/reviews"),
        clinician_client.get(f"/samples/{sample_id}/review"),
        clinician_client.post(f"/samples/{sample_id}/review", {"decision": "confirm", "comment": "Mine."}),
    ):
        assert response.status_code == 403
        assert "Only a reviewer of this lab may review samples." in text_of(response)
    assert not Review.objects.exists()
    assert "Review this sample" not in text_of(clinician_client.get(f"/samples/{sample_id}"))


def test_the_creator_of_a_sample_is_told_another_reviewer_must_review_it(reviewer_client, reviewer, patient):
    sample_id = positive_sample(reviewer, patient)
    page = reviewer_client.get(f"/samples/{sample_id}/review")
    assert page.status_code == 200
    assert "You created this sample or uploaded images to it, so another reviewer must review it." in text_of(page)
    assert 'name="decision"' not in page.content.decode()
    refused = reviewer_client.post(f"/samples/{sample_id}/review", {"decision": "confirm", "comment": "Looks fine."})
    assert refused.status_code == 403
    assert "another reviewer must review it" in text_of(refused)
    assert not Review.objects.exists()


def test_a_sample_still_processing_cannot_be_reviewed_yet(reviewer_client, clinician, patient):
    sample_id = sample_by(clinician, patient, ["uninfected", None])
    page = reviewer_client.get(f"/samples/{sample_id}/review")
    assert "still being classified" in text_of(page)
    assert 'name="decision"' not in page.content.decode()


def test_the_review_page_shows_the_audit_trail(reviewer_client, clinician, reviewer, patient):
    sample_id = positive_sample(clinician, patient)
    reviewer_client.post(f"/samples/{sample_id}/review", {"decision": "confirm", "comment": "Ring forms seen."})
    second = page_client(reviewer)
    trail = text_of(second.get(f"/samples/{sample_id}/review")).split("Audit trail")[1]
    assert "sample.create" in trail and clinician.email in trail
    assert "sample.review" in trail and reviewer.email in trail and "decision: confirm" in trail
    assert trail.index("sample.review") < trail.index("sample.create"), "newest first"
