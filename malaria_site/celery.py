"""The Celery app. Tasks live in worker/tasks.py; the model is loaded there, after the fork."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "malaria_site.settings")

app = Celery("malaria_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["worker"])
