"""The worker's side of classification: claim queued cell images, classify them, record the outcomes.

A task may run twice and a worker may die mid-chunk, so work is claimed with a conditional UPDATE and a
claim token; outcomes are written only for images still held by that claim; a claim that fails is
released; and a periodic sweep puts back what a dead worker held (docs/decisions.md, "Lost work").
The Celery tasks in worker/tasks.py call cell_images_classify and cell_images_sweep_stalled, nothing else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction

from diagnostics import services, work_queue
from diagnostics.models import CellImage, CellImageStatus, Prediction
from worker.serving.engine import CellClassification, get_classifier

logger = logging.getLogger(__name__)


def cell_images_classify(*, image_ids: Sequence[int], run: str | None = None) -> int:
    """Classify one chunk of queued images end to end; returns how many outcomes were recorded.

    run: the task's id, kept with the claim so that a retry of the same task takes back what an earlier try
    could not release. Images already claimed or done are skipped. On any error the claim is released (a retry or the
    sweeper classifies them later) and the error propagates for the task's retry policy.
    """
    token, claimed = cell_images_claim(image_ids=image_ids, run=run)
    if not claimed:
        return 0  # already done by an earlier delivery of this task
    try:
        outcomes: list[CellOutcome] = []
        readable: list[tuple[int, bytes, bool]] = []
        for image in claimed:
            try:
                readable.append((image.id, _read_stored(image.file_name), image.from_field))
            except OSError:
                # The reason (a storage path, a provider's message) is for the log, not for the lab.
                logger.exception("stored cell image %s cannot be read", image.id)
                outcomes.append(CellOutcome(image_id=image.id, error="the stored image cannot be read"))
        results = get_classifier().classify(
            [data for _, data, _ in readable], from_field=[from_field for _, _, from_field in readable]
        )
        for (image_id, _, _), result in zip(readable, results, strict=True):
            if isinstance(result, CellClassification):
                outcomes.append(
                    CellOutcome(
                        image_id=image_id,
                        label=result.label,
                        probability=result.probability,
                        uncertain=result.uncertain,
                        model_version=result.model_version,
                    )
                )
            else:
                outcomes.append(CellOutcome(image_id=image_id, error=result.error))
        return cell_outcomes_record(token=token, outcomes=outcomes)
    except BaseException as exc:
        cell_images_release(token=token, error=exc)
        raise


def _read_stored(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


@dataclass(frozen=True)
class ClaimedImage:
    id: int
    file_name: str
    from_field: bool = False  # a chip the worker cut from a field photograph: the field threshold applies


def cell_images_claim(*, image_ids: Iterable[int], run: str | None = None) -> tuple[uuid.UUID, list[ClaimedImage]]:
    """Claim queued images for one task run; images already claimed or done are skipped (tasks may run twice)."""
    token = work_queue.claim(CellImage, list(image_ids), run)
    rows = CellImage.objects.filter(claim_token=token).values_list("id", "file", "sample_id", "field_id")
    if not rows:
        return token, []
    for sample_id in {row[2] for row in rows}:
        services.sample_refresh(sample_id=sample_id)
    return token, [ClaimedImage(id=row[0], file_name=row[1], from_field=row[3] is not None) for row in rows]


@dataclass(frozen=True)
class CellOutcome:
    image_id: int
    label: str | None = None  # None: the image failed
    probability: float | None = None
    uncertain: bool = False
    model_version: str = ""
    error: str = ""


def cell_outcomes_record(*, token: uuid.UUID, outcomes: Sequence[CellOutcome]) -> int:
    """Write predictions and failures of a claim in bulk; the samples' counts and results follow atomically."""
    with transaction.atomic():
        # Only images still held by this claim: a swept-and-reclaimed image is someone else's now.
        held = set(
            CellImage.objects.select_for_update()
            .filter(claim_token=token, status=CellImageStatus.PROCESSING)
            .values_list("id", flat=True)
        )
        outcomes = [o for o in outcomes if o.image_id in held]
        predictions = [Prediction.of(o.image_id, o) for o in outcomes if o.label is not None]
        Prediction.objects.bulk_create(predictions)
        classified = [o.image_id for o in outcomes if o.label is not None]
        CellImage.objects.filter(pk__in=classified).update(
            status=CellImageStatus.CLASSIFIED, claim_token=None, error=""
        )
        for o in outcomes:
            if o.label is None:
                CellImage.objects.filter(pk=o.image_id).update(
                    status=CellImageStatus.FAILED, claim_token=None, error=o.error[:300]
                )
        sample_ids = set(
            CellImage.objects.filter(pk__in=[o.image_id for o in outcomes]).values_list("sample_id", flat=True)
        )
        for sample_id in sorted(sample_ids):
            services.sample_refresh(sample_id=sample_id)
    return len(outcomes)


def cell_images_release(*, token: uuid.UUID, error: BaseException | None = None) -> list[int]:
    """Put a claim's unfinished images back in the queue, or fail those tried too often; returns the ids queued."""
    return work_queue.claim_release(CellImage, token=token, error=error, work="classification")


def cell_images_sweep_stalled(
    *,
    older_than_seconds: int | None = None,
    max_attempts: int = work_queue.MAX_ATTEMPTS,
    broker_emptied: bool = False,
) -> list[int]:
    """Images stuck in 'processing' go back to the queue (or fail after max_attempts); lost ones are sent again."""
    return work_queue.sweep_stalled(
        CellImage,
        enqueue=lambda ids: services.cell_images_enqueue(image_ids=ids),
        work="classification",
        older_than_seconds=older_than_seconds,
        max_attempts=max_attempts,
        broker_emptied=broker_emptied,
    )
