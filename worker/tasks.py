"""Celery tasks: thin. They take ids, call diagnostics.services and the engine, and own retries.

The model is loaded once per worker process, after the fork (worker_process_init). The main process
checks the model card before that (malaria_site/celery.py), so a missing or corrupt model stops the worker
with a clear message instead of failing every task.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError

from diagnostics import services
from worker.engine import CellClassification, get_classifier

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@worker_process_init.connect
def load_model_in_worker_process(**_):
    get_classifier()


def read_stored(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


@shared_task(
    name="worker.tasks.classify_cell_images",
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def classify_cell_images(self, image_ids: list[int]) -> int:
    token, claimed = services.cell_images_claim(image_ids=image_ids)
    if not claimed:
        return 0  # already done by an earlier delivery of this task
    try:
        outcomes: list[services.CellOutcome] = []
        readable: list[tuple[int, bytes]] = []
        for image in claimed:
            try:
                readable.append((image.id, read_stored(image.file_name)))
            except OSError as exc:
                outcomes.append(services.CellOutcome(image_id=image.id, error=f"stored file cannot be read: {exc}"))
        results = get_classifier().classify([data for _, data in readable])
        for (image_id, _), result in zip(readable, results, strict=True):
            if isinstance(result, CellClassification):
                outcomes.append(
                    services.CellOutcome(
                        image_id=image_id,
                        label=result.label,
                        probability=result.probability,
                        uncertain=result.uncertain,
                        model_version=result.model_version,
                    )
                )
            else:
                outcomes.append(services.CellOutcome(image_id=image_id, error=result.error))
        return services.cell_outcomes_record(token=token, outcomes=outcomes)
    except Exception:
        # Give the images back: a retry (transient errors) or the sweeper classifies them later.
        services.cell_images_release(token=token)
        raise


@shared_task(name="worker.tasks.sweep_stalled_cell_images", acks_late=True)
def sweep_stalled_cell_images() -> int:
    return len(services.cell_images_sweep_stalled())
