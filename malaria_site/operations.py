"""What a site administrator watches: the work queue's depth and age, and the workers answering.

`/admin/operations` (staff only), linked from the admin's index. Counts come from PostgreSQL (the rows are
the truth: a message lost by the broker still shows as queued), the broker's own queue length from Redis,
and the workers from a one-second Celery ping.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Min
from django.shortcuts import render
from django.utils import timezone

from diagnostics.models import CellImage, Field


def _rows(model) -> dict:
    by_status = dict(model.objects.values_list("status").annotate(n=Count("id")).order_by())
    oldest = model.objects.filter(status="queued").aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "queued": by_status.get("queued", 0),
        "processing": by_status.get("processing", 0),
        "failed": by_status.get("failed", 0),
        "oldest_queued_minutes": round((timezone.now() - oldest).total_seconds() / 60, 1) if oldest else None,
    }


def _broker() -> tuple[int | None, list[str]]:
    """Messages waiting in the broker's queue (None without Redis) and the names of the workers answering."""
    from malaria_site.celery import app

    waiting = None
    if settings.REDIS_URL:
        import redis

        try:
            waiting = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).llen(
                settings.CELERY_TASK_DEFAULT_QUEUE
            )
        except redis.RedisError:
            waiting = None
    try:
        workers = sorted((app.control.inspect(timeout=1.0).ping() or {}).keys())
    except Exception:  # the broker is down: no worker can be reached either
        workers = []
    return waiting, workers


@staff_member_required
def operations(request):
    waiting, workers = _broker()
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "work": {"Cell images": _rows(CellImage), "Field photographs": _rows(Field)},
        "broker_waiting": waiting,
        "workers": workers,
    }
    return render(request, "admin/operations.html", context)
