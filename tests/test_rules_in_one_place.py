"""Each rule has one home: field rules on the models (the page, the API and a direct service call refuse the
same input with the same words), who may review a sample, and the review state the selectors read."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory
from django.utils import timezone

from accounts.audit import NO_REQUEST, audit_context
from tests.page_sessions import page_client, text_of

pytestmark = pytest.mark.django_db

NEXT_YEAR = timezone.localdate().year + 1
TOMORROW = timezone.localdate() + dt.timedelta(days=1)


@pytest.fixture
def member(lab_a):
    """A clinician of lab A as rows: the actor and membership a service takes."""
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory()
    return user, MembershipFactory(lab=lab_a, email=user.email)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"identifier": "P-1", "birth_year": 1899}, "birth_year", "Birth year must be between 1900 and"),
        ({"identifier": "P-1", "birth_year": NEXT_YEAR}, "birth_year", "Birth year must be between 1900 and"),
        ({"identifier": "   "}, "identifier", ""),
    ],
    ids=["born-1899", "born-next-year", "blank-identifier"],
)
def test_a_patient_is_refused_alike_by_the_page_the_api_and_the_service(clinician, member, fields, field, message):
    from diagnostics import services
    from diagnostics.models import Patient

    api = clinician.client().post("/api/v1/patients", fields, format="json")
    assert api.status_code == 400
    assert list(api.json()) == [field]
    assert message in api.json()[field][0]

    page = page_client(clinician).post("/patients/new", {"sex": "unknown", **fields})
    assert page.status_code == 400
    assert message in text_of(page)

    actor, membership = member
    with pytest.raises(ValidationError) as refused:
        services.patient_create(actor=actor, membership=membership, audit=NO_REQUEST, **fields)
    assert list(refused.value.message_dict) == [field]
    assert message in refused.value.message_dict[field][0]
    assert not Patient.objects.exists()


def test_a_collection_date_in_the_future_is_refused_alike(clinician, patient, member):
    from diagnostics import services
    from diagnostics.models import Patient, Sample

    message = "The collection date cannot be in the future."
    api = clinician.client().post(
        "/api/v1/samples", {"patient": patient["id"], "collected_at": TOMORROW.isoformat()}, format="json"
    )
    assert api.json() == {"collected_at": [message]}
    page = page_client(clinician).post(f"/patients/{patient['id']}/samples/new", {"collected_at": TOMORROW})
    assert page.status_code == 400 and message in text_of(page)
    actor, membership = member
    with pytest.raises(ValidationError) as refused:
        services.sample_create(
            patient=Patient.objects.get(pk=patient["id"]),
            actor=actor,
            membership=membership,
            audit=NO_REQUEST,
            collected_at=TOMORROW,
        )
    assert refused.value.message_dict == {"collected_at": [message]}
    assert not Sample.objects.exists()


def test_a_service_strips_the_identifier_as_the_forms_do(member):
    from diagnostics import services

    actor, membership = member
    patient = services.patient_create(actor=actor, membership=membership, audit=NO_REQUEST, identifier="  MRN-9 ")
    assert patient.identifier == "MRN-9"


@pytest.fixture
def complete_sample_of(lab_a):
    from tests.stored_cells import add_cells

    def make(creator):
        from tests.factories import SampleFactory

        sample = SampleFactory(patient__lab=lab_a, created_by=creator)
        add_cells(sample.pk, ["parasitized"] * 3 + ["uninfected"] * 17)
        sample.refresh_from_db()
        return sample

    return make


def test_a_reviewer_never_reviews_a_sample_they_created(lab_a, complete_sample_of):
    from accounts.models import Role
    from diagnostics import selectors, services
    from diagnostics.models import Review
    from tests.factories import MembershipFactory, UserFactory

    creator, other = UserFactory(), UserFactory()
    membership = MembershipFactory(lab=lab_a, email=creator.email, role=Role.REVIEWER)
    own = complete_sample_of(creator)

    reason = "You created this sample or uploaded images to it, so another reviewer must review it."
    assert own.review_refusal(creator) == reason
    assert own.review_refusal(other) is None
    assert own not in selectors.samples_awaiting_review(membership, reviewer=creator)
    assert own in selectors.samples_awaiting_review(membership, reviewer=other)
    with pytest.raises(PermissionDenied, match=reason):
        services.review_create(
            sample=own, actor=creator, membership=membership, audit=NO_REQUEST, decision="confirm", comment="Mine."
        )
    assert not Review.objects.exists()


def test_review_state_comes_from_the_selectors(member, complete_sample_of):
    """The latest review is the newest (the later saved of two in the same instant); a cell keeps the label of
    the latest review that relabelled it, whatever later reviews leave alone."""
    from diagnostics import selectors
    from diagnostics.models import Review
    from tests.factories import CellRelabelFactory, ReviewFactory

    sample = complete_sample_of(None)
    first_cell, second_cell = sample.images.order_by("id")[:2]
    first = ReviewFactory(sample=sample, decision="override", result="negative")
    CellRelabelFactory(review=first, image=first_cell, label="uninfected")
    CellRelabelFactory(review=first, image=second_cell, label="uninfected")
    second = ReviewFactory(sample=sample, decision="override", result="indeterminate")
    CellRelabelFactory(review=second, image=second_cell, label="parasitized")
    Review.objects.filter(pk=first.pk).update(created_at=second.created_at)  # a tie: the later saved wins

    _actor, membership = member
    fresh = selectors.sample_get(membership, sample.pk)
    assert selectors.latest_review(fresh) == second
    assert [r.pk for r in selectors.reviews_of(fresh)] == [second.pk, first.pk]
    assert selectors.latest_review(Review.objects.get(pk=first.pk).sample) == second, "unloaded: queried"
    labels = {i.pk: i.reviewed_label for i in selectors.cell_images_for(membership, sample=sample)}
    assert (labels[first_cell.pk], labels[second_cell.pk]) == ("uninfected", "parasitized")
    assert sum(label is not None for label in labels.values()) == 2


def test_the_audit_context_keeps_the_address_and_a_bounded_user_agent():
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="x" * 500)
    context = audit_context(request)
    assert (context.ip_address, context.user_agent) == ("10.1.2.3", "x" * 300)
