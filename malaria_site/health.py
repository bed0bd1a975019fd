"""Health for orchestrators: /health/live (the process answers) and /health/ready (it can do its work).

Answered by HealthCheckMiddleware, first in the chain, before the host check and the HTTPS redirect: a
container's healthcheck calls http://127.0.0.1:8000, which is neither an allowed host nor HTTPS.

Readiness checks what a request needs: the database, Redis (cache and broker), the image storage and the
served model's card. Each check is bounded by the client libraries' own timeouts; the answer names the
failing dependency but never its address, credentials or error text (those go to the log).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from diagnostics.served_model import served_model

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    if settings.REDIS_URL:  # without Redis (the embedded set-up) the local-memory cache and filesystem broker stand in
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    cache.get("health-check")


def _storage() -> None:
    default_storage.exists("health-check")


def _model() -> None:
    model = served_model()
    if model.card is None:
        raise RuntimeError(model.error)


CHECKS = {"database": _database, "redis": _redis, "storage": _storage, "model": _model}


@never_cache
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request):
    results, failing = {}, []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            results[name] = {"ok": True, "ms": round(1000 * (time.monotonic() - started), 1)}
        except Exception:  # any failure of a dependency means not ready; the detail is for the log only
            logger.exception("readiness check %s failed", name)
            results[name] = {"ok": False}
            failing.append(name)
    body = {"status": "unavailable" if failing else "ok", "checks": results}
    response = JsonResponse(body, status=503 if failing else 200)
    if failing:
        response["Retry-After"] = "10"
    return response


class HealthCheckMiddleware:
    PATHS = {"/health/live": live, "/health/ready": ready}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self.PATHS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
