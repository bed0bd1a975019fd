"""Uncaught errors: a database or Redis that cannot be reached is 503 with Retry-After (a dependency is
down, try again), anything else 500; JSON for the API, a self-contained page otherwise (base.html reads the
database, which may be what is down). Django calls handler500 inside its except block, so the exception is
at hand whether it came from a view or from a middleware (sessions, authentication)."""

from __future__ import annotations

import sys

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import page_not_found

DEPENDENCY_DOWN = (OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RETRY_AFTER_SECONDS = 30
UNAVAILABLE = "A service the product needs (its database or queue) cannot be reached just now; try again in a minute."
FAILED = "Something went wrong on our side; the error has been logged. Nothing you sent was lost."


def not_found(request, exception=None):
    """A URL that matches nothing: JSON under /api/ (batch clients parse every answer), the 404 page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def server_error(request):
    error = sys.exc_info()[1]
    unavailable = isinstance(error, DEPENDENCY_DOWN)
    status, message = (503, UNAVAILABLE) if unavailable else (500, FAILED)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=status)
    else:
        page = {"title": "Temporarily unavailable", "heading": "Temporarily unavailable", "message": message}
        response = HttpResponse(render_to_string("500.html", page if unavailable else {}), status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
