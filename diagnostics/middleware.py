"""Refuse oversized requests before anything reads their body (CSRF checks and form parsing included).

Uploads (multipart) may be large, up to UPLOAD_MAX_REQUEST_BYTES; every other body (JSON to the API, page
forms) is a few kilobytes, so it is held to REQUEST_MAX_BODY_BYTES. DRF's JSON parser reads the stream
itself, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE, so the cap must be here.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        is_upload = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/form-data")
        limit = settings.UPLOAD_MAX_REQUEST_BYTES if is_upload else settings.REQUEST_MAX_BODY_BYTES
        if length > limit:
            if is_upload:
                message = (
                    f"The upload is over the {limit // (1024 * 1024)} MB limit per request: "
                    "send the images in several requests."
                )
            else:
                message = f"The request body is over the {_size(limit)} limit for anything but an upload."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _size(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit / 1024:g} KB"


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every page and API answer: they carry patient data (lists, results, CSV,
    cell images, heatmaps), which no browser or proxy cache may keep. Static files (bundles, CSS) are
    answered before this by WhiteNoise, with their own long-lived caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["Cache-Control"] = "no-store"
        return response
