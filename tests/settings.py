"""The test suite's settings (pyproject.toml names this module): production's, pointed at the harness's services.

The production module is loaded as on a developer's machine: debug on, so that it decides to trust the
Auth emulator of a demo- project (the only way it ever does), with a fixed secret key. DEBUG is then turned
off again, as pytest-django does for the tests' own requests, so that the pages and the workers behave as
in production; the trust decided at load stays.

The services come from TEST_* variables only, with defaults on this machine: a DATABASE_URL or REDIS_URL
exported in the shell cannot move the suite off PostgreSQL, and the cache (flushed before every test) and
the broker have a Redis database each. Worker and web processes started by tests load this module too.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from unittest import mock

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from malaria_site.env import env_str

PRODUCTION_LOADED_WITH = {
    "DJANGO_DEBUG": "1",
    "DJANGO_SECRET_KEY": "test-suite-only-not-a-secret",
    "FIREBASE_AUTH_EMULATOR_TRUSTED": "1",
    "FIREBASE_PROJECT_ID": "demo-malaria-detect",
    # The services of a developer's shell are not the suite's: they are set below.
    "DATABASE_URL": "",
    "REDIS_URL": "",
    "MEDIA_ROOT": "",
    "S3_BUCKET": "",
}
with mock.patch.dict(os.environ, PRODUCTION_LOADED_WITH):
    from malaria_site.settings import *  # noqa: F403
    from malaria_site.settings import REDIS_BROKER_OPTIONS, STORAGES, VAR_DIR, s3_storage

DEBUG = False

database_url = env_str("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/malaria")
DATABASES = {"default": dj_database_url.parse(database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"TEST_DATABASE_URL must be a PostgreSQL database (the tests run on the real thing), not {database_url!r}"
    )

redis_cache_url = env_str("TEST_REDIS_CACHE_URL", "redis://127.0.0.1:6379/15")
redis_broker_url = env_str("TEST_REDIS_BROKER_URL", "redis://127.0.0.1:6379/14")
if redis_cache_url == redis_broker_url:
    raise ImproperlyConfigured(
        "TEST_REDIS_BROKER_URL and TEST_REDIS_CACHE_URL must differ: clearing the cache would drop queued tasks"
    )
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_cache_url}}
CELERY_BROKER_URL = redis_broker_url
CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_BROKER_OPTIONS

MEDIA_ROOT = Path(env_str("TEST_MEDIA_ROOT", str(VAR_DIR / "test-media")))


STORAGES = {
    **STORAGES,
    # A worker started by tests/test_s3_storage.py stores and reads images in that test's bucket.
    "default": (
        s3_storage(env_str("TEST_S3_BUCKET"), env_str("TEST_S3_ENDPOINT_URL"))
        if env_str("TEST_S3_BUCKET")
        else {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}}
    ),
}

# Webhooks: the tests' receivers listen on 127.0.0.1, which production refuses (docs/webhooks.md, "SSRF");
# deliveries are retried after 1, 2 s instead of minutes, and a slow receiver times out after 1 s.
WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
WEBHOOK_MAX_ATTEMPTS = 3
WEBHOOK_RETRY_BACKOFF_SECONDS = 1
WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = 2
WEBHOOK_TIMEOUT_SECONDS = 1.0
