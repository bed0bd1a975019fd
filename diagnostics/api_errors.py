"""API errors are JSON with a `detail` (or field errors) and the right status code."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from diagnostics.services import ServiceError


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        # A dict keeps the message a plain string: {"detail": "..."}, like DRF's own errors.
        body = {exc.field: [str(exc)]} if exc.field else {"detail": str(exc)}
        return drf_exception_handler(exceptions.ValidationError(body), context)
    if isinstance(exc, PermissionError):
        exc = exceptions.PermissionDenied(str(exc))
    return drf_exception_handler(exc, context)
