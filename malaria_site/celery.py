"""The Celery app. Tasks live in worker/tasks.py; the model is loaded there, after the fork."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "malaria_site.settings")

app = Celery("malaria_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["worker"])


def classifies(celery_app: Celery) -> bool:
    """Whether this worker consumes the queue of classification and segmentation tasks (its -Q selection is made
    before worker_init). A notifications worker (-Q notifications, docs/webhooks.md) never runs the model, so it
    neither checks nor loads it, and a model it would refuse does not stop it. (Memory barely changes: 110 against
    117 MB a pool process, 144 against 155 MB the main one, measured 2026-11-29.)"""
    from django.conf import settings

    return settings.CELERY_TASK_DEFAULT_QUEUE in celery_app.amqp.queues.consume_from


@worker_init.connect
def refuse_to_start_without_a_valid_model(sender=None, **_):
    """A worker whose model card or files are missing, corrupt or from other code must not start at all."""
    if not classifies(sender.app if sender is not None else app):
        return
    from worker.serving.engine import CellClassifier
    from worker.serving.model_card import ModelFileError, load_model_card, served_model_dir

    try:
        # Opened once and dropped: the input size and outputs are in the model file, not in the card.
        # Each pool process then loads its own copy after the fork (worker/tasks.py).
        CellClassifier(load_model_card(served_model_dir()), threads=1)
    except ModelFileError as exc:
        # SystemExit, not an exception: Celery logs and ignores exceptions raised by signal handlers.
        raise SystemExit(f"The worker cannot start: {exc}") from exc
