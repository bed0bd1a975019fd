"""A reviewer confirms or overrides a complete sample's automatic result, and may relabel cells."""

from __future__ import annotations

import pytest

from tests.page_sessions import page_client, text_of
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db


@pytest.fixture
def complete_sample(sample):
    """20 classified cells, 3 of them parasitized (15 %): automatically positive."""
    images = add_cells(sample["id"], ["parasitized"] * 3 + ["uninfected"] * 17)
    return {"id": sample["id"], "parasitized": [i.pk for i in images[:3]], "uninfected": [i.pk for i in images[3:]]}


def post_review(person, sample_id: int, **body):
    return person.client().post(f"/api/v1/samples/{sample_id}/reviews", body, format="json")


def sample_of(person, sample_id: int) -> dict:
    return person.client().get(f"/api/v1/samples/{sample_id}").json()


def test_the_sample_under_review_is_automatically_positive(clinician, complete_sample):
    body = sample_of(clinician, complete_sample["id"])
    assert (body["status"], body["result"], body["final_result"]) == ("complete", "positive", "positive")


def test_a_reviewer_confirms_the_automatic_result(reviewer, clinician, complete_sample):
    response = post_review(reviewer, complete_sample["id"], decision="confirm", comment="Ring forms seen.")
    assert response.status_code == 201
    review = response.json()
    assert (review["decision"], review["result"], review["reviewer"]) == ("confirm", "positive", reviewer.email)
    assert (review["comment"], review["cells"]) == ("Ring forms seen.", [])
    body = sample_of(clinician, complete_sample["id"])
    assert body["final_result"] == body["result"] == "positive"
    assert body["reviews"] == [review]


def test_confirming_with_the_same_result_spelled_out_is_fine(reviewer, complete_sample):
    response = post_review(reviewer, complete_sample["id"], decision="confirm", result="positive", comment="Yes.")
    assert response.status_code == 201
    assert response.json()["result"] == "positive"


def test_a_reviewer_overrides_and_relabels_cells(reviewer, clinician, complete_sample):
    relabelled = complete_sample["parasitized"][:2]
    cells = [{"image": image_id, "label": "uninfected"} for image_id in relabelled]
    response = post_review(
        reviewer, complete_sample["id"], decision="override", result="negative", comment="Artefacts.", cells=cells
    )
    assert response.status_code == 201
    assert (response.json()["decision"], response.json()["result"]) == ("override", "negative")
    assert sorted(response.json()["cells"], key=lambda c: c["image"]) == cells

    body = sample_of(clinician, complete_sample["id"])
    assert body["result"] == "positive", "the automatic result is kept next to the reviewed one"
    assert body["final_result"] == "negative"
    assert sorted(body["reviews"][0]["cells"], key=lambda c: c["image"]) == cells

    images = clinician.client().get(f"/api/v1/samples/{complete_sample['id']}/images", {"page_size": 50}).json()
    reviewed = {image["id"]: image["reviewed_label"] for image in images["results"]}
    assert len(reviewed) == 20
    assert {i: reviewed[i] for i in relabelled} == dict.fromkeys(relabelled, "uninfected")
    assert [i for i, label in reviewed.items() if label is not None] == relabelled
    model_labels = {image["id"]: image["prediction"]["label"] for image in images["results"]}
    assert {model_labels[i] for i in relabelled} == {"parasitized"}, "the model's own label is still shown"


def test_an_override_needs_a_result(reviewer, clinician, complete_sample):
    response = post_review(reviewer, complete_sample["id"], decision="override", comment="Not sure.")
    assert response.status_code == 400
    assert "needs a result" in response.json()["detail"]
    assert sample_of(clinician, complete_sample["id"])["reviews"] == []


def test_confirming_a_different_result_is_refused(reviewer, clinician, complete_sample):
    response = post_review(reviewer, complete_sample["id"], decision="confirm", result="negative", comment="No.")
    assert response.status_code == 400
    assert "override" in response.json()["detail"]
    assert sample_of(clinician, complete_sample["id"])["final_result"] == "positive"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "confirm"}, "comment"),
        ({"decision": "confirm", "comment": ""}, "comment"),
        ({"decision": "approve", "comment": "x"}, "decision"),
        ({"decision": "override", "result": "maybe", "comment": "x"}, "result"),
    ],
)
def test_malformed_reviews_are_field_errors(reviewer, complete_sample, body, field):
    response = post_review(reviewer, complete_sample["id"], **body)
    assert response.status_code == 400
    assert field in response.json()


def test_relabelling_a_cell_of_another_sample_is_refused(reviewer, clinician, patient, complete_sample):
    other = clinician.client().post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()
    stranger = add_cells(other["id"], ["parasitized"])[0]
    response = post_review(
        reviewer,
        complete_sample["id"],
        decision="override",
        result="negative",
        comment="x",
        cells=[
            {"image": complete_sample["parasitized"][0], "label": "uninfected"},
            {"image": stranger.pk, "label": "uninfected"},
        ],
    )
    assert response.status_code == 400
    assert str(stranger.pk) in response.json()["cells"][0]
    assert sample_of(clinician, complete_sample["id"])["reviews"] == []


def test_relabelling_the_same_cell_twice_in_one_review_is_refused(reviewer, clinician, complete_sample):
    image = complete_sample["parasitized"][0]
    response = post_review(
        reviewer,
        complete_sample["id"],
        decision="override",
        result="negative",
        comment="x",
        cells=[{"image": image, "label": "uninfected"}, {"image": image, "label": "parasitized"}],
    )
    assert response.status_code == 400
    assert "cells" in response.json()
    assert sample_of(clinician, complete_sample["id"])["reviews"] == []


@pytest.mark.parametrize("labels", [["uninfected", None], []], ids=["processing", "no-images"])
def test_a_sample_that_is_not_complete_cannot_be_reviewed(reviewer, clinician, sample, labels):
    add_cells(sample["id"], labels)
    response = post_review(reviewer, sample["id"], decision="override", result="negative", comment="Too early.")
    assert response.status_code == 400
    assert "complete" in response.json()["detail"]
    assert sample_of(clinician, sample["id"])["reviews"] == []


def test_a_sample_whose_cells_all_failed_has_nothing_to_confirm(reviewer, sample):
    add_cells(sample["id"], [None], status="failed")
    response = post_review(reviewer, sample["id"], decision="confirm", comment="x")
    assert response.status_code == 400
    assert "no automatic result" in response.json()["detail"]
    overridden = post_review(reviewer, sample["id"], decision="override", result="indeterminate", comment="Redo.")
    assert overridden.status_code == 201


def test_a_clinician_may_not_review(clinician, complete_sample):
    response = post_review(clinician, complete_sample["id"], decision="confirm", comment="x")
    assert response.status_code == 403
    assert "reviewer" in response.json()["detail"]
    assert sample_of(clinician, complete_sample["id"])["reviews"] == []


def test_the_creator_of_a_sample_may_not_review_it(make_person, lab_a):
    creator = make_person("reviewer", lab_a)
    client = creator.client()
    patient = client.post("/api/v1/patients", {"identifier": "OWN-1"}, format="json").json()
    sample = client.post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()
    add_cells(sample["id"], ["uninfected"] * 20)
    response = post_review(creator, sample["id"], decision="confirm", comment="Mine.")
    assert response.status_code == 403
    assert "another reviewer" in response.json()["detail"]
    assert sample_of(creator, sample["id"])["reviews"] == []


def test_a_reviewer_of_another_lab_gets_404(make_person, lab_b, clinician, complete_sample):
    outsider = make_person("reviewer", lab_b)
    response = post_review(outsider, complete_sample["id"], decision="confirm", comment="x")
    assert response.status_code == 404
    assert list(response.json()) == ["detail"]
    assert sample_of(clinician, complete_sample["id"])["reviews"] == []


def test_the_latest_review_wins(reviewer, make_person, lab_a, clinician, complete_sample):
    second = make_person("reviewer", lab_a)
    post_review(reviewer, complete_sample["id"], decision="confirm", comment="Positive.")
    assert sample_of(clinician, complete_sample["id"])["final_result"] == "positive"
    post_review(second, complete_sample["id"], decision="override", result="indeterminate", comment="Poor stain.")
    body = sample_of(clinician, complete_sample["id"])
    assert body["final_result"] == "indeterminate"
    assert [(r["reviewer"], r["result"]) for r in body["reviews"]] == [
        (second.email, "indeterminate"),
        (reviewer.email, "positive"),
    ]
    post_review(reviewer, complete_sample["id"], decision="confirm", comment="Restained: positive.")
    assert sample_of(clinician, complete_sample["id"])["final_result"] == "positive"


def test_a_review_outlasts_a_recount(reviewer, clinician, complete_sample):
    from diagnostics.services import sample_refresh

    post_review(reviewer, complete_sample["id"], decision="override", result="negative", comment="Artefacts.")
    sample_refresh(sample_id=complete_sample["id"])
    assert sample_of(clinician, complete_sample["id"])["final_result"] == "negative"


def test_a_review_is_audited(reviewer, lab_a, complete_sample):
    from accounts.models import AuditEvent

    image = complete_sample["parasitized"][0]
    review = post_review(
        reviewer,
        complete_sample["id"],
        decision="override",
        result="negative",
        comment="x",
        cells=[{"image": image, "label": "uninfected"}],
    ).json()
    event = AuditEvent.objects.get(action="sample.review")
    assert (event.object_type, event.object_id) == ("sample", str(complete_sample["id"]))
    assert (event.actor, event.lab_id, event.ip_address) == (reviewer.user, lab_a.id, "127.0.0.1")
    assert event.detail == {"review": review["id"], "decision": "override", "result": "negative", "cells_relabelled": 1}


# -- four eyes and stale reviews (issue 10) ---------------------------------------------------------------


def awaiting(person) -> list[int]:
    from accounts.selectors import membership_for_user
    from diagnostics.selectors import samples_awaiting_review

    user = person.user
    membership = membership_for_user(user)
    return list(samples_awaiting_review(membership, reviewer=user).values_list("pk", flat=True))


def upload_one_cell(person, sample_id: int):
    from tests.cells import cell_png, named

    response = person.client().post(
        f"/api/v1/samples/{sample_id}/images", {"images": [named("later.png", cell_png())]}, format="multipart"
    )
    assert response.status_code == 202, response.content
    return response.json()["accepted"][0]["id"]


def classify_as_the_worker_would(image_id: int, sample_id: int, label: str = "uninfected"):
    from diagnostics.models import CellImage, CellImageStatus
    from diagnostics.services import sample_refresh
    from tests.factories import PredictionFactory

    CellImage.objects.filter(pk=image_id).update(status=CellImageStatus.CLASSIFIED)
    PredictionFactory(image_id=image_id, label=label)
    sample_refresh(sample_id=sample_id)


def test_a_reviewer_who_uploaded_cells_to_a_sample_may_not_review_it(make_person, lab_a, complete_sample):
    uploader = make_person("reviewer", lab_a)
    uploader.client().get("/api/v1/me")  # signed in once: the account exists
    assert complete_sample["id"] in awaiting(uploader)
    image_id = upload_one_cell(uploader, complete_sample["id"])
    classify_as_the_worker_would(image_id, complete_sample["id"])
    response = post_review(uploader, complete_sample["id"], decision="confirm", comment="Mine too.")
    assert response.status_code == 403
    assert "uploaded images to it" in response.json()["detail"]
    assert complete_sample["id"] not in awaiting(uploader)


def test_the_creator_stays_barred_after_their_account_is_deleted_and_made_again(make_person, lab_a):
    from accounts.models import User

    creator = make_person("reviewer", lab_a)
    client = creator.client()
    patient = client.post("/api/v1/patients", {"identifier": "GONE-1"}, format="json").json()
    sample = client.post("/api/v1/samples", {"patient": patient["id"]}, format="json").json()
    add_cells(sample["id"], ["uninfected"] * 20)
    old_pk = creator.user.pk
    User.objects.filter(pk=old_pk).delete()  # a site administrator deletes the account
    response = post_review(creator, sample["id"], decision="confirm", comment="I am new here.")
    assert creator.user.pk != old_pk, "signing in again made a new account"
    assert response.status_code == 403
    assert "another reviewer" in response.json()["detail"]
    assert sample_of(creator, sample["id"])["reviews"] == []


def test_images_added_after_a_review_make_it_stale_and_send_the_sample_back_to_review(
    reviewer, clinician, lab_a, complete_sample
):
    from accounts.models import AuditEvent

    review = post_review(reviewer, complete_sample["id"], decision="override", result="negative", comment="x").json()
    assert sample_of(clinician, complete_sample["id"])["final_result"] == "negative"
    assert complete_sample["id"] not in awaiting(reviewer)

    image_id = upload_one_cell(clinician, complete_sample["id"])
    body = sample_of(clinician, complete_sample["id"])
    assert body["final_result"] == body["result"] == "positive", "the old decision no longer stands"
    assert body["reviews"][0]["id"] == review["id"] and body["reviews"][0]["stale_at"] is not None
    event = AuditEvent.objects.get(action="sample.review_stale")
    assert (event.actor, event.lab_id) == (clinician.user, lab_a.id)
    assert event.detail == {"reviews": [review["id"]], "images_added": 1}

    classify_as_the_worker_would(image_id, complete_sample["id"])
    assert complete_sample["id"] in awaiting(reviewer)
    page = page_client(reviewer).get(f"/samples/{complete_sample['id']}")
    assert "it no longer stands and the sample needs a new review" in text_of(page)
    again = post_review(reviewer, complete_sample["id"], decision="confirm", comment="Seen with the new cells.")
    assert again.status_code == 201
    assert sample_of(clinician, complete_sample["id"])["final_result"] == "positive"
    assert complete_sample["id"] not in awaiting(reviewer)
