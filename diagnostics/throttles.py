"""How often one user may upload, ask for heatmaps and render reports: DRF's throttles, counted in the shared
(Redis) cache so every web process sees the same counts. A refusal is 429 with Retry-After (DRF sets it)."""

from __future__ import annotations

import logging
import math

import redis
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


class CountedInTheCache(UserRateThrottle):
    """With Redis down the counts cannot be kept: let the request through (an upload is then kept and sent
    to the workers once the broker is back) rather than refuse every lab's work."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            logger.warning("the cache cannot be reached: %s not throttled", self.scope)
            return True


class UploadThrottle(CountedInTheCache):
    """Cell and field uploads, by the API or the upload page; reading lists is not counted."""

    scope = "uploads"

    def allow_request(self, request, view) -> bool:
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class HeatmapThrottle(CountedInTheCache):
    """Grad-CAM heatmaps: the first request for a cell runs the network in the web process."""

    scope = "heatmaps"


class ReportThrottle(CountedInTheCache):
    """PDF reports: each is laid out by WeasyPrint in the web process (about a second of CPU)."""

    scope = "reports"


def page_wait(request, throttle_class: type[CountedInTheCache]) -> int | None:
    """For a page (a Django view): seconds to wait, or None when the request may go ahead."""
    throttle = throttle_class()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))
