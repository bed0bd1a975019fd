"""Celery tasks: the only Django-aware part of the worker. Ids in, one service call, retries here.

The model is loaded once per worker process, after the fork (worker_process_init). The main process
checks the model card before that (malaria_site/celery.py), so a missing or corrupt model stops the worker
with a clear message instead of failing every task.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from diagnostics import classification, segmentation, webhooks, work_queue
from diagnostics.work_queue import TRANSIENT_ERRORS
from worker.serving.engine import get_classifier


@worker_process_init.connect
def load_model_in_worker_process(**_):
    from malaria_site.celery import app, classifies

    if classifies(app):
        get_classifier()


@shared_task(
    name="worker.tasks.classify_cell_images",
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    # 2, 4, 8, ... 60, 60 s without jitter: 5 minutes of retries, longer than a database restart.
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=False,
    max_retries=9,
)
def classify_cell_images(self, image_ids: list[int]) -> int:
    # The task id stays the same across retries: a retry takes back the claim an earlier try left behind.
    return classification.cell_images_classify(image_ids=image_ids, run=self.request.id)


@shared_task(
    name="worker.tasks.segment_fields",
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    # 2, 4, 8, ... 60, 60 s without jitter: 5 minutes of retries, longer than a database restart.
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=False,
    max_retries=9,
)
def segment_fields(self, field_ids: list[int]) -> int:
    return segmentation.fields_segment(field_ids=field_ids, run=self.request.id)


@shared_task(name="worker.tasks.sweep_stalled_cell_images", acks_late=True)
def sweep_stalled_cell_images() -> int:
    # Fields are swept by the same periodic task: one schedule, one sweeper. The broker is asked once, and the
    # webhook deliveries it lost are sent again here (the relay's own schedule would wait QUEUED_RESEND_SECONDS).
    emptied = work_queue.broker_emptied()
    if emptied:
        webhooks.deliveries_resend_unsent(broker_emptied=True)
    return len(classification.cell_images_sweep_stalled(broker_emptied=emptied)) + len(
        segmentation.fields_sweep_stalled(broker_emptied=emptied)
    )


@shared_task(
    bind=True,
    name="worker.tasks.deliver_webhook",
    acks_late=True,
    # Routed to WEBHOOK_QUEUE (CELERY_TASK_ROUTES), which only notification workers consume: a receiver that
    # is slow or down holds up other deliveries at most, never cells or fields.
    autoretry_for=(webhooks.DeliveryFailed, *TRANSIENT_ERRORS),
    retry_backoff=settings.WEBHOOK_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=False,  # the next attempt's time, shown to the lab, is then the one Celery keeps
    max_retries=settings.WEBHOOK_MAX_ATTEMPTS - 1,
)
def deliver_webhook(self, delivery_id: int) -> str:
    retry_in = None
    if self.request.retries < self.max_retries:
        retry_in = get_exponential_backoff_interval(
            factor=self.retry_backoff, retries=self.request.retries, maximum=self.retry_backoff_max, full_jitter=False
        )
    return webhooks.delivery_send(delivery_id=delivery_id, retry_in=retry_in)


@shared_task(name="worker.tasks.resend_webhook_deliveries", acks_late=True)
def resend_webhook_deliveries() -> int:
    return len(webhooks.deliveries_resend_unsent())
