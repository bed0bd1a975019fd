"""Reads, already scoped to the requesting member's lab: another lab's rows simply do not exist here."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from accounts.models import AuditEvent, Membership
from diagnostics.models import CellImage, CellRelabel, Patient, Review, Sample


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
    samples = Sample.objects.filter(lab=membership.lab).select_related("patient", "created_by")
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


def sample_get(membership: Membership, sample_id) -> Sample:
    reviews = Review.objects.select_related("reviewer").prefetch_related("cell_labels")
    return _get_or_404(samples_for(membership).prefetch_related(Prefetch("reviews", queryset=reviews)), sample_id)


def cell_images_for(membership: Membership, *, sample: Sample | None = None) -> QuerySet[CellImage]:
    images = CellImage.objects.filter(sample__lab=membership.lab).select_related("prediction")
    if sample is not None:
        images = images.filter(sample=sample)
    latest_relabels = CellRelabel.objects.order_by("-review__created_at", "-review_id")
    return images.prefetch_related(Prefetch("relabels", queryset=latest_relabels)).order_by("id")


def cell_image_get(membership: Membership, image_id) -> CellImage:
    return _get_or_404(cell_images_for(membership), image_id)


def audit_events_for(membership: Membership, *, object_type: str, object_id) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(lab=membership.lab, object_type=object_type, object_id=str(object_id))


def _get_or_404(queryset: QuerySet, pk):
    try:
        return queryset.get(pk=int(pk))
    except (queryset.model.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.") from None
