"""Reads, already scoped to the requesting member's lab: another lab's rows simply do not exist here.

Review state is read here and only here, for the API, the pages and the exports alike: a sample's reviews
and its latest review (`reviews_of`, `latest_review`), and a cell's reviewed label (the `reviewed_label` that
`cell_images_for` annotates).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.models import AuditEvent, Membership, User
from diagnostics.models import (
    LATEST_REVIEW_FIRST,
    CellImage,
    CellImageStatus,
    CellRelabel,
    Field,
    Label,
    Patient,
    Prediction,
    Review,
    Sample,
    SampleStatus,
    Webhook,
    WebhookDelivery,
)

# What a sample's cell grid can be narrowed to (the model's labels; a reviewer's relabels are shown beside them).
CELL_FILTERS = {
    "all": Q(),
    "parasitized": Q(prediction__label=Label.PARASITIZED),
    "uncertain": Q(prediction__uncertain=True),
    "failed": Q(status=CellImageStatus.FAILED),
}


def patients_for(membership: Membership, *, search: str = "") -> QuerySet[Patient]:
    patients = Patient.objects.filter(lab=membership.lab)
    if search:
        patients = patients.filter(Q(identifier__icontains=search) | Q(name__icontains=search))
    return patients.order_by("identifier", "id")


def patient_get(membership: Membership, patient_id) -> Patient:
    return _get_or_404(patients_for(membership), patient_id)


def samples_for(
    membership: Membership,
    *,
    patient_id=None,
    status: str = "",
    result: str = "",
    collected_from: dt.date | None = None,
    collected_to: dt.date | None = None,
) -> QuerySet[Sample]:
    field_count = Field.objects.filter(sample=OuterRef("pk")).values("sample").annotate(n=Count("id")).values("n")
    samples = (
        Sample.objects.filter(lab=membership.lab)
        .select_related("patient", "created_by")
        .annotate(field_count=Coalesce(Subquery(field_count, output_field=IntegerField()), 0))
    )
    if patient_id is not None:
        samples = samples.filter(patient_id=patient_id)
    if status:
        samples = samples.filter(status=status)
    if result:
        samples = samples.filter(final_result=result)
    if collected_from:
        samples = samples.filter(collected_at__gte=collected_from)
    if collected_to:
        samples = samples.filter(collected_at__lte=collected_to)
    return samples.order_by("-collected_at", "-created_at", "-id")


def samples_recent(membership: Membership, *, limit: int = 20) -> QuerySet[Sample]:
    return samples_for(membership).order_by("-created_at", "-id")[:limit]


def samples_in_progress(membership: Membership) -> QuerySet[Sample]:
    return samples_for(membership, status=SampleStatus.PROCESSING).order_by("created_at", "id")


def samples_awaiting_review(membership: Membership, *, reviewer: User) -> QuerySet[Sample]:
    """Complete samples with no review that stands (none, or only stale ones), most uncertain cells first;
    a reviewer never sees the samples they created or uploaded to."""
    standing = Review.objects.filter(sample=OuterRef("pk"), stale_at__isnull=True)
    return (
        samples_for(membership, status=SampleStatus.COMPLETE)
        .filter(~Exists(standing))
        .reviewable_by(reviewer)
        .order_by("-uncertain_count", "created_at", "id")
    )


def parasitemia_series(membership: Membership, *, patient: Patient) -> QuerySet[Sample]:
    """A patient's samples that have a parasitemia, oldest first (for the chart)."""
    return (
        samples_for(membership, patient_id=patient.pk)
        .filter(parasitemia__isnull=False)
        .order_by("collected_at", "created_at", "id")
    )


def sample_model_versions(sample: Sample) -> list[str]:
    """The model versions that classified this sample's cells (usually one)."""
    versions = Prediction.objects.filter(image__sample=sample).values_list("model_version", flat=True)
    return sorted(set(versions))


def sample_get(membership: Membership, sample_id) -> Sample:
    return _get_or_404(with_reviews(samples_for(membership)), sample_id)


# -- review state ----------------------------------------------------------------------------------------


def _reviews_latest_first() -> QuerySet[Review]:
    return Review.objects.select_related("reviewer").prefetch_related("cell_labels").order_by(*LATEST_REVIEW_FIRST)


def with_reviews(samples: QuerySet[Sample]) -> QuerySet[Sample]:
    """The samples with their reviews loaded in two queries, for `reviews_of` and `latest_review`."""
    return samples.prefetch_related(Prefetch("reviews", queryset=_reviews_latest_first(), to_attr="_reviews"))


def reviews_of(sample: Sample) -> list[Review]:
    """A sample's reviews, the latest first. Loaded by `with_reviews`, or queried here for any other sample."""
    if not hasattr(sample, "_reviews"):
        sample._reviews = list(_reviews_latest_first().filter(sample=sample))
    return sample._reviews


def latest_review(sample: Sample) -> Review | None:
    """The review whose result is the sample's final result: the latest that is not stale, else None."""
    return next((review for review in reviews_of(sample) if review.stale_at is None), None)


def cell_images_for(membership: Membership, *, sample: Sample | None = None, show: str = "all") -> QuerySet[CellImage]:
    """Cell images, each with `reviewed_label`: the label from the latest review that relabelled that cell, else
    None (relabels add up: a later review that leaves the cell alone does not undo it)."""
    images = CellImage.objects.filter(sample__lab=membership.lab).select_related("prediction")
    if sample is not None:
        images = images.filter(sample=sample)
    images = images.filter(CELL_FILTERS.get(show, Q()))
    latest_relabel = CellRelabel.objects.filter(image=OuterRef("pk")).order_by(*_through("review", LATEST_REVIEW_FIRST))
    return images.annotate(reviewed_label=Subquery(latest_relabel.values("label")[:1])).order_by("id")


def cell_image_get(membership: Membership, image_id) -> CellImage:
    return _get_or_404(cell_images_for(membership), image_id)


def fields_for(membership: Membership, *, sample: Sample | None = None) -> QuerySet[Field]:
    """Field photographs, each with its cell counts: red cells found, those counted (not cut by the edge), and
    among the counted the parasitized and the uncertain (the model's labels)."""
    fields = Field.objects.filter(sample__lab=membership.lab)
    if sample is not None:
        fields = fields.filter(sample=sample)
    counted = Q(cells__counted=True)
    return fields.annotate(
        red_cells=Count("cells"),
        counted_cells=Count("cells", filter=counted),
        parasitized_cells=Count("cells", filter=counted & Q(cells__prediction__label=Label.PARASITIZED)),
        uncertain_cells=Count("cells", filter=counted & Q(cells__prediction__uncertain=True)),
    ).order_by("id")


def field_get(membership: Membership, field_id) -> Field:
    return _get_or_404(fields_for(membership), field_id)


def field_cells(membership: Membership, field: Field) -> QuerySet[CellImage]:
    return cell_images_for(membership).filter(field=field)


def _through(relation: str, ordering: list[str]) -> list[str]:
    """An ordering of reviews, applied to the rows that point to a review through `relation`."""
    return [f"-{relation}__{o[1:]}" if o.startswith("-") else f"{relation}__{o}" for o in ordering]


def audit_events_for(membership: Membership, *, object_type: str, object_id) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(lab=membership.lab, object_type=object_type, object_id=str(object_id))


def _get_or_404(queryset: QuerySet, pk):
    try:
        return queryset.get(pk=int(pk))
    except (queryset.model.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.") from None


# -- webhooks --------------------------------------------------------------------------------------------


def webhooks_for(membership: Membership) -> QuerySet[Webhook]:
    return Webhook.objects.filter(lab=membership.lab).select_related("created_by").order_by("-created_at", "-id")


def webhook_get(membership: Membership, webhook_id) -> Webhook:
    return _get_or_404(webhooks_for(membership), webhook_id)


def webhook_deliveries(membership: Membership, *, webhook: Webhook | None = None) -> QuerySet[WebhookDelivery]:
    """The lab's deliveries, newest first (of one webhook when given)."""
    deliveries = WebhookDelivery.objects.filter(webhook__lab=membership.lab).select_related("webhook")
    if webhook is not None:
        deliveries = deliveries.filter(webhook=webhook)
    return deliveries.order_by("-created_at", "-id")
