"""API errors are JSON with a `detail` (or field errors) and the right status code.

The one place where the services' refusals become HTTP: Django's `ValidationError` is a 400 (keyed by field
when the service named one, else `detail`), `PermissionDenied` a 403 that keeps its reason.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import exception_handler as drf_exception_handler


class FirstRendererAlways(DefaultContentNegotiation):
    """For a view that answers one fixed format (a PDF, a FHIR bundle): that format whatever the Accept header
    says (clients send `Accept: application/pdf` or `application/fhir+json`, which no renderer offers), and
    its errors in the API's JSON, as documented for every operation, never a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(validation_error_body(exc))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)


def validation_error_body(exc: ValidationError) -> dict:
    # A refusal that names no field is {"detail": "..."}, a plain string like DRF's own errors.
    errors = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
    body: dict = {field: messages for field, messages in errors.items() if field != NON_FIELD_ERRORS}
    if NON_FIELD_ERRORS in errors:
        body["detail"] = " ".join(errors[NON_FIELD_ERRORS])
    return body
