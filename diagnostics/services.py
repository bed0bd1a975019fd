"""Writes: patients, samples, uploads, counts and results, reviews.

Functions are named <noun>_<verb>, with typed keyword-only arguments: the acting user (`actor`) and their
membership where a person acts, and the request's facts as an `AuditContext` for the audit event they write.
They call `full_clean()`, so the models' field rules hold whoever calls; they refuse with Django's
`ValidationError` (keyed by the field at fault, when there is one) or `PermissionDenied`, which the API maps
to 400 / 403 in diagnostics.api_errors and the pages show on the form or as the 403 page.
"""

from __future__ import annotations

import datetime as dt
import mmap
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypedDict

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.audit import AuditContext, audit_record
from accounts.models import Membership, User
from diagnostics import selectors, webhooks
from diagnostics.models import (
    CellImage,
    CellImageStatus,
    CellRelabel,
    Decision,
    Field,
    FieldStatus,
    Label,
    Patient,
    Prediction,
    Result,
    Review,
    Sample,
    SampleContributor,
    SampleStatus,
    Sex,
)
from diagnostics.served_model import served_model
from diagnostics.uploads import FIELD_LIMITS, RejectedFile, UploadLimits, ValidatedCell, iter_upload
from worker.serving.results import LEGACY_RATES, CellTally, sample_result

CLASSIFY_TASK = "worker.tasks.classify_cell_images"
SEGMENT_TASK = "worker.tasks.segment_fields"


# -- patients and samples -------------------------------------------------------------------------------


class PatientChanges(TypedDict, total=False):
    identifier: str
    name: str
    sex: str
    birth_year: int | None
    notes: str


def patient_create(
    *,
    actor: User,
    membership: Membership,
    audit: AuditContext,
    identifier: str,
    name: str = "",
    sex: str = Sex.UNKNOWN,
    birth_year: int | None = None,
    notes: str = "",
) -> Patient:
    patient = Patient(
        lab=membership.lab,
        created_by=actor,
        identifier=identifier,
        name=name,
        sex=sex,
        birth_year=birth_year,
        notes=notes,
    )
    patient.full_clean(validate_constraints=False)
    with _identifier_unique_in_lab(patient):
        patient.save()
        audit_record(action="patient.create", context=audit, target=patient, actor=actor, lab=membership.lab)
    return patient


def patient_update(
    *, patient: Patient, actor: User, membership: Membership, audit: AuditContext, changes: PatientChanges
) -> Patient:
    """Change the fields named in `changes` (and audit their names); no changes, nothing written."""
    if not changes:
        return patient
    for name, value in changes.items():
        setattr(patient, name, value)
    patient.full_clean(validate_constraints=False)
    with _identifier_unique_in_lab(patient):
        patient.save()
        audit_record(
            action="patient.update",
            context=audit,
            target=patient,
            actor=actor,
            lab=membership.lab,
            detail={"fields": sorted(changes)},
        )
    return patient


@contextmanager
def _identifier_unique_in_lab(patient: Patient) -> Iterator[None]:
    """Saves in a transaction; a duplicate identifier is the database constraint's to refuse (race-free)."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise ValidationError(f"A patient with identifier {patient.identifier!r} already exists in this lab.") from exc


def sample_create(
    *,
    patient: Patient,
    actor: User,
    membership: Membership,
    audit: AuditContext,
    collected_at: dt.date | None = None,
    notes: str = "",
) -> Sample:
    """A new sample of a patient, collected today unless told otherwise."""
    if patient.lab_id != membership.lab_id:
        raise ValidationError("This patient is not in your lab.")
    sample = Sample(lab=membership.lab, patient=patient, notes=notes, created_by=actor)
    if collected_at is not None:
        sample.collected_at = collected_at
    sample.full_clean()
    with transaction.atomic():
        sample.save()
        SampleContributor.objects.create(sample=sample, email=actor.email)
        audit_record(action="sample.create", context=audit, target=sample, actor=actor, lab=membership.lab)
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
    actor: User,
    membership: Membership,
    audit: AuditContext,
    images: Sequence[UploadedFile],
    archive: UploadedFile | None,
) -> UploadOutcome:
    """Read an upload's files (bounded), validate each on its own, and store those that pass."""
    facts = {"sample": sample, "actor": actor, "membership": membership, "audit": audit}
    with _read_and_validate(images, archive, upload_limits()) as outcomes:
        return _uploaded_store(
            model=CellImage,
            **facts,
            outcomes=outcomes,
            action="sample.upload",
            enqueue=lambda ids: cell_images_enqueue(image_ids=ids),
        )


@contextmanager
def _read_and_validate(
    files: Sequence[UploadedFile], archive: UploadedFile | None, limits: UploadLimits
) -> Iterator[Iterator[ValidatedCell | RejectedFile]]:
    """The upload's outcomes, one file read at a time (bounded: one byte over a limit is enough to refuse it).

    An archive that Django spooled to disk is mapped, not read: its members are then read one at a time.
    """
    readers = [(f.name, partial(f.read, limits.max_file_bytes + 1)) for f in files]
    with ExitStack() as stack:
        zipped = None
        if archive is not None:
            path = getattr(archive, "temporary_file_path", None)
            if path is not None and archive.size:
                handle = stack.enter_context(open(path(), "rb"))  # noqa: SIM115 (closed by the stack)
                zipped = (archive.name, stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)))
            else:
                zipped = (archive.name, archive.read(settings.UPLOAD_MAX_REQUEST_BYTES + 1))
        yield iter_upload(readers, zipped, limits)


def _uploaded_store(
    *,
    model: type[CellImage] | type[Field],
    sample: Sample,
    actor: User,
    membership: Membership,
    audit: AuditContext,
    outcomes: Iterable[ValidatedCell | RejectedFile],
    action: str,
    enqueue: Callable[[Sequence[int]], None],
) -> UploadOutcome:
    """Store each image that passes as soon as it does (so memory holds one file, not the upload), then
    create the rows in one short transaction, and enqueue them once committed (cells or fields). Nothing is
    kept of a request that fails: its stored files are removed."""
    storage = model._meta.get_field("file").storage
    rejected: list[RejectedFile] = []
    stored: list = []
    duplicates: list = []
    try:
        for outcome in outcomes:
            if isinstance(outcome, RejectedFile):
                rejected.append(outcome)
                continue
            row = model(
                sample=sample,
                original_filename=outcome.filename,
                sha256=outcome.sha256,
                width=outcome.width,
                height=outcome.height,
                format=outcome.format,
                byte_size=len(outcome.data),
                uploaded_by=actor,
            )
            row.file.save(outcome.filename, ContentFile(outcome.data), save=False)
            stored.append(row)
        with transaction.atomic():
            Sample.objects.select_for_update().get(pk=sample.pk)
            # Under the sample's lock: of two requests sending the same image at once, the second sees the
            # first's rows here and refuses it as a duplicate (400), rather than failing on the constraint.
            existing = set(
                model.objects.filter(sample=sample, sha256__in=[row.sha256 for row in stored]).values_list(
                    "sha256", flat=True
                )
            )
            accepted = [row for row in stored if row.sha256 not in existing]
            duplicates = [row for row in stored if row.sha256 in existing]
            rejected += [
                RejectedFile(r.original_filename, "duplicate: this image is already in the sample") for r in duplicates
            ]
            model.objects.bulk_create(accepted)
            if accepted:
                SampleContributor.objects.bulk_create(
                    [SampleContributor(sample=sample, email=actor.email)], ignore_conflicts=True
                )
                _reviews_go_stale(sample, actor=actor, membership=membership, audit=audit, added=len(accepted))
                sample_refresh(sample_id=sample.pk)
                audit_record(
                    action=action,
                    context=audit,
                    target=sample,
                    actor=actor,
                    lab=membership.lab,
                    detail={"accepted": len(accepted), "rejected": len(rejected)},
                )
                ids = [row.pk for row in accepted]
                # robust: the upload is committed by then; an unreachable broker must not fail the request
                # (and delete the stored files below). The sweeper re-sends rows left queued.
                transaction.on_commit(lambda: enqueue(ids), robust=True)
    except BaseException:
        # Nothing is kept of a failed upload: the rows rolled back, so the files must go too.
        for row in stored:
            storage.delete(row.file.name)
        raise
    for row in duplicates:
        storage.delete(row.file.name)
    return UploadOutcome(accepted=accepted, rejected=rejected)


def fields_receive(
    *,
    sample: Sample,
    actor: User,
    membership: Membership,
    audit: AuditContext,
    fields: Sequence[UploadedFile],
    archive: UploadedFile | None,
) -> UploadOutcome:
    """Read an upload of field photographs (bounded), validate each with their limits, store those that pass."""
    facts = {"sample": sample, "actor": actor, "membership": membership, "audit": audit}
    with _read_and_validate(fields, archive, FIELD_LIMITS) as outcomes:
        return _uploaded_store(
            model=Field,
            **facts,
            outcomes=outcomes,
            action="sample.upload_fields",
            enqueue=lambda ids: fields_enqueue(field_ids=ids),
        )


def _reviews_go_stale(sample: Sample, *, actor: User, membership: Membership, audit: AuditContext, added: int) -> None:
    """New cells or fields after a review: the review was decided without them, so it stops standing and
    the sample returns to the review queue (the review stays on record, marked stale, and audited)."""
    standing = list(Review.objects.filter(sample=sample, stale_at__isnull=True).values_list("pk", flat=True))
    if not standing:
        return
    Review.objects.filter(pk__in=standing).update(stale_at=timezone.now())
    audit_record(
        action="sample.review_stale",
        context=audit,
        target=sample,
        actor=actor,
        lab=membership.lab,
        detail={"reviews": standing, "images_added": added},
    )


def fields_enqueue(*, field_ids: Sequence[int]) -> None:
    """One segmentation task per field: a field's cells are many already, and fields then spread over workers."""
    from malaria_site.celery import app

    for field_id in field_ids:
        app.send_task(SEGMENT_TASK, args=[[field_id]])
        # Marked sent only once the broker took it: a failed send leaves it for the sweeper's prompt re-send.
        Field.objects.filter(pk=field_id).update(enqueued_at=timezone.now())


def cell_images_enqueue(*, image_ids: Sequence[int]) -> None:
    """Send the images to the workers in chunks, so each model call classifies many cells."""
    from malaria_site.celery import app

    chunk = settings.CLASSIFY_CHUNK_SIZE
    for start in range(0, len(image_ids), chunk):
        ids = list(image_ids[start : start + chunk])
        app.send_task(CLASSIFY_TASK, args=[ids])
        # Marked sent only once the broker took it: a failed send leaves it for the sweeper's prompt re-send.
        CellImage.objects.filter(pk__in=ids).update(enqueued_at=timezone.now())


# -- counts and results ----------------------------------------------------------------------------------


def sample_refresh(*, sample_id: int) -> Sample:
    """Recount a sample's cells and recompute its parasitemia and results, under a row lock."""
    with transaction.atomic():
        sample = Sample.objects.select_for_update().get(pk=sample_id)
        was_complete = sample.status == SampleStatus.COMPLETE
        # Only counted cells count (a cell cut by a field's edge is classified, not counted); a field not yet
        # segmented stands in for its cells as one item, so the sample stays processing until it is done.
        by_status = Counter(
            dict(
                CellImage.objects.filter(sample_id=sample_id, counted=True)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
        )
        by_status.update(
            dict(
                Field.objects.filter(sample_id=sample_id)
                .exclude(status=FieldStatus.SEGMENTED)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
        )
        predictions = Prediction.objects.filter(image__sample_id=sample_id, image__counted=True).aggregate(
            n_parasitized=Count("id", filter=Q(label=Label.PARASITIZED)),
            n_uninfected=Count("id", filter=Q(label=Label.UNINFECTED)),
            n_uncertain=Count("id", filter=Q(uncertain=True)),
            n_confident_parasitized=Count("id", filter=Q(label=Label.PARASITIZED, uncertain=False)),
            n_uncertain_uninfected=Count("id", filter=Q(label=Label.UNINFECTED, uncertain=True)),
            n_from_fields=Count("id", filter=Q(image__field__isnull=False)),
        )
        uncounted_pending = CellImage.objects.filter(
            sample_id=sample_id, counted=False, status__in=[CellImageStatus.QUEUED, CellImageStatus.PROCESSING]
        ).exists()
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
            field_cells=predictions["n_from_fields"],
        )
        card = served_model().card
        outcome = sample_result(tally, card.rule_rates if card else LEGACY_RATES)
        sample.parasitemia = outcome.parasitemia
        sample.parasitemia_low = outcome.parasitemia_low
        sample.parasitemia_high = outcome.parasitemia_high
        sample.result = outcome.result
        sample.result_reason = outcome.reason
        if sample.queued_count or sample.processing_count or uncounted_pending:
            sample.status = SampleStatus.PROCESSING
        elif sample.total_count == 0:
            sample.status = SampleStatus.AWAITING_IMAGES
        else:
            sample.status = SampleStatus.COMPLETE
        latest_review = selectors.latest_review(sample)
        sample.final_result = latest_review.result if latest_review else sample.result
        sample.save()
        if sample.status == SampleStatus.COMPLETE and not was_complete:
            # Every cell and field is done: the lab's webhooks hear of it, in this transaction (an outbox).
            webhooks.sample_event_record(sample=sample, event_type=webhooks.SAMPLE_CLASSIFIED)
    return sample


# -- reviews ---------------------------------------------------------------------------------------------


def review_create(
    *,
    sample: Sample,
    actor: User,
    membership: Membership,
    audit: AuditContext,
    decision: str,
    comment: str,
    result: str | None = None,
    cells: Sequence[tuple[int, str]] = (),
) -> Review:
    """Confirm or override a complete sample's automatic result, relabelling cells (image id, label)."""
    if sample.lab_id != membership.lab_id:
        raise ValidationError("This sample is not in your lab.")
    refusal = sample.review_refusal(actor)
    if refusal:
        raise PermissionDenied(refusal)
    if sample.status != SampleStatus.COMPLETE:
        raise ValidationError("The sample is still being classified (or has no images): review it once it is complete.")
    if decision == Decision.CONFIRM:
        if not sample.result:
            raise ValidationError("There is no automatic result to confirm.")
        if result and result != sample.result:
            raise ValidationError(
                f"Confirming keeps the automatic result ({sample.result}); use override to change it."
            )
        result = sample.result
    elif decision == Decision.OVERRIDE and result not in Result.values:
        raise ValidationError("An override needs a result: positive, negative or indeterminate.")
    review = Review(sample=sample, reviewer=actor, decision=decision, result=result or "", comment=comment)
    review.full_clean()
    relabels = _relabels(sample, cells)
    with transaction.atomic():
        review.save()
        for relabel in relabels:
            relabel.review = review
        CellRelabel.objects.bulk_create(relabels)
        refreshed = sample_refresh(sample_id=sample.pk)
        audit_record(
            action="sample.review",
            context=audit,
            target=sample,
            actor=actor,
            lab=membership.lab,
            detail={"review": review.pk, "decision": decision, "result": result, "cells_relabelled": len(cells)},
        )
        webhooks.sample_event_record(sample=refreshed, event_type=webhooks.SAMPLE_REVIEWED)
    return review


def _relabels(sample: Sample, cells: Sequence[tuple[int, str]]) -> list[CellRelabel]:
    """A review's relabels (not yet saved): each cell of this sample at most once, with a label of the model's."""
    repeated = sorted(image_id for image_id, n in Counter(image_id for image_id, _label in cells).items() if n > 1)
    if repeated:
        raise ValidationError({"cells": f"Each cell once per review: {', '.join(map(str, repeated))} repeated."})
    unknown = sorted({label for _image_id, label in cells} - set(Label.values))
    if unknown:
        raise ValidationError({"cells": f"Unknown labels: {', '.join(unknown)} (parasitized or uninfected)."})
    wanted = [image_id for image_id, _label in cells]
    images = {image.pk: image for image in CellImage.objects.filter(sample=sample, pk__in=wanted)}
    missing = [image_id for image_id in wanted if image_id not in images]
    if missing:
        raise ValidationError({"cells": f"Cell images not in this sample: {', '.join(map(str, missing))}."})
    return [CellRelabel(image=images[image_id], label=label) for image_id, label in cells]
