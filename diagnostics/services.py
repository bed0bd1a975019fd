"""Writes: patients, samples, uploads, the worker's claims and predictions, reviews.

Functions are named <noun>_<verb>, keyword-only. Each takes the acting user's membership where a person
acts, and writes an audit event for what a lab would want to trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership
from diagnostics.models import (
    CellImage,
    CellImageStatus,
    CellRelabel,
    Decision,
    Label,
    Patient,
    Prediction,
    Result,
    Review,
    Sample,
    SampleStatus,
)
from diagnostics.uploads import RejectedFile, UploadLimits, ValidatedCell, validate_upload
from worker.serving.results import CellTally, automatic_result, parasitemia

CLASSIFY_TASK = "worker.tasks.classify_cell_images"


class ServiceError(ValueError):
    """A request that breaks a rule of the lab's workflow; the message is shown to the user.

    `field` names the input at fault, when there is one (the API reports it as a field error).
    """

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field


# -- patients and samples -------------------------------------------------------------------------------


def patient_create(*, membership: Membership, request=None, **fields) -> Patient:
    patient = Patient(lab=membership.lab, created_by=request.user if request else None, **fields)
    try:
        with transaction.atomic():
            patient.save()
            audit_record(
                action="patient.create", target=patient, actor=_actor(request), lab=membership.lab, request=request
            )
    except IntegrityError as exc:
        raise ServiceError(f"A patient with identifier {patient.identifier!r} already exists in this lab.") from exc
    return patient


def patient_update(*, patient: Patient, membership: Membership, request=None, **fields) -> Patient:
    for name, value in fields.items():
        setattr(patient, name, value)
    try:
        with transaction.atomic():
            patient.save()
            audit_record(
                action="patient.update",
                target=patient,
                actor=_actor(request),
                lab=membership.lab,
                request=request,
                detail={"fields": sorted(fields)},
            )
    except IntegrityError as exc:
        raise ServiceError(f"A patient with identifier {patient.identifier!r} already exists in this lab.") from exc
    return patient


def sample_create(
    *, patient: Patient, membership: Membership, collected_at: dt.date | None = None, notes: str = "", request=None
) -> Sample:
    if patient.lab_id != membership.lab_id:
        raise ServiceError("This patient is not in your lab.")
    with transaction.atomic():
        sample = Sample.objects.create(
            lab=membership.lab,
            patient=patient,
            collected_at=collected_at or timezone.localdate(),
            notes=notes,
            created_by=_actor(request),
        )
        audit_record(action="sample.create", target=sample, actor=_actor(request), lab=membership.lab, request=request)
    return sample


# -- uploads ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadOutcome:
    accepted: list[CellImage]
    rejected: list[RejectedFile]


def upload_limits() -> UploadLimits:
    return UploadLimits(max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES, max_files=settings.UPLOAD_MAX_FILES)


def cell_images_receive(
    *,
    sample: Sample,
    membership: Membership,
    images: Sequence[UploadedFile],
    archive: UploadedFile | None,
    request=None,
) -> UploadOutcome:
    """Read an upload's files (bounded), validate each on its own, and store those that pass."""
    limits = upload_limits()
    # One byte over a limit is enough for validation to say the file is too large.
    files = [(f.name, f.read(limits.max_file_bytes + 1)) for f in images]
    zipped = (archive.name, archive.read(settings.UPLOAD_MAX_REQUEST_BYTES + 1)) if archive else None
    cells, rejected = validate_upload(files, zipped, limits)
    return cell_images_upload(sample=sample, membership=membership, cells=cells, rejected=rejected, request=request)


def cell_images_upload(
    *,
    sample: Sample,
    membership: Membership,
    cells: Sequence[ValidatedCell],
    rejected: Sequence[RejectedFile],
    request=None,
) -> UploadOutcome:
    """Store validated cells, queue them for classification once committed; duplicates are rejected."""
    rejected = list(rejected)
    existing = set(
        CellImage.objects.filter(sample=sample, sha256__in=[c.sha256 for c in cells]).values_list("sha256", flat=True)
    )
    accepted: list[CellImage] = []
    stored_names: list[str] = []
    try:
        with transaction.atomic():
            Sample.objects.select_for_update().get(pk=sample.pk)
            for cell in cells:
                if cell.sha256 in existing:
                    rejected.append(RejectedFile(cell.filename, "duplicate: this image is already in the sample"))
                    continue
                image = CellImage(
                    sample=sample,
                    original_filename=cell.filename,
                    sha256=cell.sha256,
                    width=cell.width,
                    height=cell.height,
                    format=cell.format,
                    byte_size=len(cell.data),
                    uploaded_by=_actor(request),
                )
                image.file.save(cell.filename, ContentFile(cell.data), save=False)
                stored_names.append(image.file.name)
                accepted.append(image)
            CellImage.objects.bulk_create(accepted)
            if accepted:
                sample_refresh(sample_id=sample.pk)
                audit_record(
                    action="sample.upload",
                    target=sample,
                    actor=_actor(request),
                    lab=membership.lab,
                    request=request,
                    detail={"accepted": len(accepted), "rejected": len(rejected)},
                )
                ids = [image.pk for image in accepted]
                # robust: the upload is committed by then; an unreachable broker must not fail the request
                # (and delete the stored files below). The sweeper re-sends images left queued.
                transaction.on_commit(lambda: cell_images_enqueue(image_ids=ids), robust=True)
    except BaseException:
        # Nothing is kept of a failed upload: the rows rolled back, so the files must go too.
        storage = CellImage._meta.get_field("file").storage
        for name in stored_names:
            storage.delete(name)
        raise
    return UploadOutcome(accepted=accepted, rejected=rejected)


def cell_images_enqueue(*, image_ids: Sequence[int]) -> None:
    """Send the images to the workers in chunks, so each model call classifies many cells."""
    from malaria_site.celery import app

    chunk = settings.CLASSIFY_CHUNK_SIZE
    CellImage.objects.filter(pk__in=image_ids).update(enqueued_at=timezone.now())
    for start in range(0, len(image_ids), chunk):
        app.send_task(CLASSIFY_TASK, args=[list(image_ids[start : start + chunk])])


# -- counts and results ----------------------------------------------------------------------------------


def sample_refresh(*, sample_id: int) -> Sample:
    """Recount a sample's cells and recompute its parasitemia and results, under a row lock."""
    with transaction.atomic():
        sample = Sample.objects.select_for_update().get(pk=sample_id)
        by_status = dict(
            CellImage.objects.filter(sample_id=sample_id)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        predictions = Prediction.objects.filter(image__sample_id=sample_id).aggregate(
            n_parasitized=Count("id", filter=Q(label=Label.PARASITIZED)),
            n_uninfected=Count("id", filter=Q(label=Label.UNINFECTED)),
            n_uncertain=Count("id", filter=Q(uncertain=True)),
            n_confident_parasitized=Count("id", filter=Q(label=Label.PARASITIZED, uncertain=False)),
            n_uncertain_uninfected=Count("id", filter=Q(label=Label.UNINFECTED, uncertain=True)),
        )
        sample.queued_count = by_status.get(CellImageStatus.QUEUED, 0)
        sample.processing_count = by_status.get(CellImageStatus.PROCESSING, 0)
        sample.classified_count = by_status.get(CellImageStatus.CLASSIFIED, 0)
        sample.failed_count = by_status.get(CellImageStatus.FAILED, 0)
        sample.total_count = sum(by_status.values())
        sample.parasitized_count = predictions["n_parasitized"]
        sample.uninfected_count = predictions["n_uninfected"]
        sample.uncertain_count = predictions["n_uncertain"]
        tally = CellTally(
            classified=sample.parasitized_count + sample.uninfected_count,
            parasitized=sample.parasitized_count,
            uncertain=sample.uncertain_count,
            confident_parasitized=predictions["n_confident_parasitized"],
            uncertain_uninfected=predictions["n_uncertain_uninfected"],
        )
        sample.parasitemia = parasitemia(tally)
        sample.result = automatic_result(tally)
        if sample.total_count == 0:
            sample.status = SampleStatus.AWAITING_IMAGES
        elif sample.queued_count or sample.processing_count:
            sample.status = SampleStatus.PROCESSING
        else:
            sample.status = SampleStatus.COMPLETE
        latest_review = sample.reviews.order_by("-created_at", "-id").first()
        sample.final_result = latest_review.result if latest_review else sample.result
        sample.save()
    return sample


# -- reviews ---------------------------------------------------------------------------------------------


def review_create(
    *,
    sample: Sample,
    membership: Membership,
    decision: str,
    comment: str,
    result: str | None = None,
    cells: Sequence[tuple[int, str]] = (),
    request=None,
) -> Review:
    reviewer = _actor(request)
    if sample.lab_id != membership.lab_id:
        raise ServiceError("This sample is not in your lab.")
    if sample.created_by_id is not None and reviewer is not None and sample.created_by_id == reviewer.pk:
        raise PermissionError("You created this sample, so another reviewer must review it.")
    if sample.status != SampleStatus.COMPLETE:
        raise ServiceError("The sample is still being classified (or has no images): review it once it is complete.")
    if decision == Decision.CONFIRM:
        if not sample.result:
            raise ServiceError("There is no automatic result to confirm.")
        if result and result != sample.result:
            raise ServiceError(f"Confirming keeps the automatic result ({sample.result}); use override to change it.")
        result = sample.result
    elif decision == Decision.OVERRIDE:
        if result not in Result.values:
            raise ServiceError("An override needs a result: positive, negative or indeterminate.")
    else:
        raise ServiceError("decision must be confirm or override")
    wanted = [image_id for image_id, _label in cells]
    images = {image.pk: image for image in CellImage.objects.filter(sample=sample, pk__in=wanted)}
    missing = [image_id for image_id in wanted if image_id not in images]
    if missing:
        raise ServiceError(f"Cell images not in this sample: {', '.join(map(str, missing))}.", field="cells")
    with transaction.atomic():
        review = Review.objects.create(
            sample=sample, reviewer=reviewer, decision=decision, result=result, comment=comment
        )
        CellRelabel.objects.bulk_create(
            [CellRelabel(review=review, image=images[image_id], label=label) for image_id, label in cells]
        )
        sample_refresh(sample_id=sample.pk)
        audit_record(
            action="sample.review",
            target=sample,
            actor=reviewer,
            lab=membership.lab,
            request=request,
            detail={"review": review.pk, "decision": decision, "result": result, "cells_relabelled": len(cells)},
        )
    return review


def _actor(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None
