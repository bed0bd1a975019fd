"""Settings, read from the environment (every variable is listed in .env.example).

Defaults work on a laptop with nothing installed but Python and Node: SQLite in var/ and a filesystem
message broker in var/broker/. Set DATABASE_URL and REDIS_URL for PostgreSQL and Redis. Nothing here
knows about tests: the test suite has its own module, tests/settings.py, chosen by pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from malaria_site.env import env_bool, env_float, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MALARIA_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-never-used-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "diagnostics",
]

MIDDLEWARE = [
    "malaria_site.health.HealthCheckMiddleware",
    "diagnostics.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "diagnostics.middleware.NoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.FirebaseSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "malaria_site.urls"
# Pages: a Firebase ID token is exchanged once for a Django session (POST /session), rechecked for revocation.
LOGIN_URL = "/signin"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
WSGI_APPLICATION = "malaria_site.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.membership",
                "diagnostics.context_processors.served_model_version",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'malaria.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    )
}
# A connection kept between requests is checked before reuse: after a database restart the first request
# reconnects instead of failing with a dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and a worker write at once: readers never block the writer (WAL), a writer waits
    # for the other (timeout, seconds) and takes the lock when its transaction starts, so two transactions
    # never both read and then both ask to write (that fails at once with "database is locked").
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis when configured (shared by web processes: token revocation checks), else local memory.
REDIS_URL = env_str("REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

# Cell images go through Django's storage API, so web and workers may run on different machines.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
S3_BUCKET = env_str("S3_BUCKET")


def s3_storage(bucket: str, endpoint_url: str | None = None, region: str | None = None) -> dict:
    """Images in an S3-compatible bucket: private, signed URLs, never overwritten (credentials: AWS_* env)."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }


STORAGES = {
    "default": (
        s3_storage(S3_BUCKET, env_str("S3_ENDPOINT_URL") or None, env_str("S3_REGION") or None)
        if S3_BUCKET
        else {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}}
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Uploads: limits per file, per archive and per request.
UPLOAD_MAX_FILE_BYTES = env_int("UPLOAD_MAX_FILE_BYTES", 10 * 1024 * 1024, minimum=1)
UPLOAD_MAX_REQUEST_BYTES = env_int("UPLOAD_MAX_REQUEST_BYTES", 200 * 1024 * 1024, minimum=1)
# Any other request body (JSON, page forms): a patient with notes is a few kilobytes.
REQUEST_MAX_BODY_BYTES = env_int("REQUEST_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
UPLOAD_MAX_FILES = env_int("UPLOAD_MAX_FILES", 2000, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES + 1

REST_FRAMEWORK = {
    # Firebase first: DRF takes the WWW-Authenticate header (and so 401, not 403) from the first class.
    # Sessions let the pages' scripts call the API with the session cookie and an X-CSRFToken header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.FirebaseAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsLabMember"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50, minimum=1),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "diagnostics.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per user, in the shared cache (diagnostics.throttles); 429 with Retry-After past them.
    "DEFAULT_THROTTLE_RATES": {
        "uploads": env_str("UPLOAD_THROTTLE_RATE", "120/min"),
        "heatmaps": env_str("HEATMAP_THROTTLE_RATE", "600/min"),
        "reports": env_str("REPORT_THROTTLE_RATE", "30/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Malaria Detect API",
    "DESCRIPTION": "Patients, samples and cell images of a lab; CNN classification of cells as a screening aid.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "diagnostics.api_schema.document_errors",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "SampleStatusEnum": "diagnostics.models.SampleStatus",
        "CellImageStatusEnum": "diagnostics.models.CellImageStatus",
        "FieldStatusEnum": "diagnostics.models.FieldStatus",
        "ResultEnum": "diagnostics.models.Result",
        "DeliveryStatusEnum": "diagnostics.models.DeliveryStatus",
    },
}

# FHIR export (diagnostics/fhir.py, docs/fhir.md): the namespace of this installation's identifier systems
# (a lab's patients are {FHIR_SYSTEM_BASE}/labs/{id}/patients), the site's own https address so that identifiers
# are unique beyond it. Outside debug it defaults to the first of DJANGO_ALLOWED_HOSTS (a placeholder must never
# reach a lab's records), and start-up stops when that is a wildcard; in development the .invalid domain
# (RFC 2606) says it was never set.
if DEBUG:
    _fhir_base_default = "https://malaria-detect.invalid"
elif ALLOWED_HOSTS and ALLOWED_HOSTS[0] != "*" and not ALLOWED_HOSTS[0].startswith("."):
    _fhir_base_default = f"https://{ALLOWED_HOSTS[0]}"
else:
    _fhir_base_default = ""
FHIR_SYSTEM_BASE = env_str("FHIR_SYSTEM_BASE", _fhir_base_default).rstrip("/")
if not FHIR_SYSTEM_BASE:
    raise ImproperlyConfigured(
        f"Set FHIR_SYSTEM_BASE to the site's https address (docs/fhir.md): DJANGO_ALLOWED_HOSTS={ALLOWED_HOSTS!r} "
        "does not name one host to take it from"
    )
if not FHIR_SYSTEM_BASE.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        f"FHIR_SYSTEM_BASE={FHIR_SYSTEM_BASE!r} must be an http(s) address, e.g. https://malaria.example.org"
    )

# Firebase Authentication. In development and tests the Auth emulator stands in for Google; its tokens
# are unsigned, so trusting it is an explicit switch that only a debug process of a demo- project may turn
# on, decided here once at start-up (accounts.firebase refuses the emulator in any other process).
FIREBASE_PROJECT_ID = env_str("FIREBASE_PROJECT_ID", "demo-malaria-detect")
FIREBASE_AUTH_EMULATOR_HOST = env_str("FIREBASE_AUTH_EMULATOR_HOST")
FIREBASE_AUTH_EMULATOR_TRUSTED = env_bool("FIREBASE_AUTH_EMULATOR_TRUSTED", False)
if FIREBASE_AUTH_EMULATOR_TRUSTED and not DEBUG:
    raise ImproperlyConfigured(
        "FIREBASE_AUTH_EMULATOR_TRUSTED=1 needs DJANGO_DEBUG=1: the Auth emulator's unsigned tokens are only "
        "accepted in development. Unset FIREBASE_AUTH_EMULATOR_TRUSTED in production."
    )
if FIREBASE_AUTH_EMULATOR_TRUSTED and not FIREBASE_PROJECT_ID.startswith("demo-"):
    raise ImproperlyConfigured(
        f"FIREBASE_AUTH_EMULATOR_TRUSTED=1 needs a demo- FIREBASE_PROJECT_ID, not {FIREBASE_PROJECT_ID!r}: the "
        "emulator may only stand in for a demo project."
    )
if FIREBASE_AUTH_EMULATOR_HOST and not FIREBASE_AUTH_EMULATOR_TRUSTED:
    raise ImproperlyConfigured(
        "FIREBASE_AUTH_EMULATOR_HOST is set but FIREBASE_AUTH_EMULATOR_TRUSTED is not: the Auth emulator's "
        "unsigned tokens would let anyone sign in as anyone. Unset FIREBASE_AUTH_EMULATOR_HOST in production; in "
        "development set FIREBASE_AUTH_EMULATOR_TRUSTED=1 with DJANGO_DEBUG=1."
    )
FIREBASE_CREDENTIALS_FILE = env_str("FIREBASE_CREDENTIALS_FILE")
FIREBASE_API_KEY = env_str("FIREBASE_API_KEY", "demo-api-key")
FIREBASE_AUTH_DOMAIN = env_str("FIREBASE_AUTH_DOMAIN", f"{FIREBASE_PROJECT_ID}.firebaseapp.com")
# Show "Sign in with Google" on the sign-in page (the provider must be enabled in the Firebase project).
FIREBASE_GOOGLE_SIGN_IN = env_bool("FIREBASE_GOOGLE_SIGN_IN", False)
# Revoked tokens and disabled users are rechecked against Firebase at least this often.
FIREBASE_REVOCATION_CHECK_SECONDS = env_int("FIREBASE_REVOCATION_CHECK_SECONDS", 300, minimum=1)
# The sign-in providers the lab uses (Firebase's names: password, google.com, microsoft.com, ...). Tokens
# from any other (anonymous, custom, phone) and from Identity Platform tenants are refused.
FIREBASE_SIGN_IN_PROVIDERS = env_list("FIREBASE_SIGN_IN_PROVIDERS", "password,google.com")
# A page session is only opened for a sign-in this recent (the token's auth_time): a stolen token or a
# browser's long-lived Firebase sign-in cannot be exchanged for a session later.
FIREBASE_RECENT_SIGN_IN_SECONDS = env_int("FIREBASE_RECENT_SIGN_IN_SECONDS", 300, minimum=30)

# Celery: Redis when configured, else a filesystem broker in var/ that needs no server.
REDIS_BROKER_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=1)}
FILESYSTEM_BROKER_OPTIONS = {
    "data_folder_in": str(VAR_DIR / "broker"),
    "data_folder_out": str(VAR_DIR / "broker"),
    "processed_folder": str(VAR_DIR / "broker-processed"),
    "control_folder": str(VAR_DIR / "broker-control"),
    "store_processed": False,
}
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_BROKER_OPTIONS if REDIS_URL else FILESYSTEM_BROKER_OPTIONS
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The soft limit comes 30 s before the hard one, so the hard one must leave room for it.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=31)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "cells")
# Cells per classification task: many cells per model call, small enough that a lost task costs little.
CLASSIFY_CHUNK_SIZE = env_int("CLASSIFY_CHUNK_SIZE", 100, minimum=1)
# Images left in 'processing' longer than this (a worker died) are put back in the queue by the sweeper.
PROCESSING_TIMEOUT_SECONDS = env_int("PROCESSING_TIMEOUT_SECONDS", 120, minimum=1)
# Images queued this long without being classified have their message sent again (lost by the broker).
QUEUED_RESEND_SECONDS = env_int("QUEUED_RESEND_SECONDS", 900, minimum=1)
# Images whose message never reached the broker (it was down at upload) are sent this soon after.
QUEUED_NEVER_SENT_SECONDS = env_int("QUEUED_NEVER_SENT_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-stalled-cell-images": {
        "task": "worker.tasks.sweep_stalled_cell_images",
        "schedule": env_float("SWEEP_INTERVAL_SECONDS", 30.0, minimum=0.1),
    },
    # Webhook deliveries whose message never reached the broker (the outbox's relay: docs/webhooks.md).
    "resend-webhook-deliveries": {
        "task": "worker.tasks.resend_webhook_deliveries",
        "schedule": env_float("SWEEP_INTERVAL_SECONDS", 30.0, minimum=0.1),
    },
}

# Webhooks (docs/webhooks.md): events POSTed to a lab's receivers from a queue of their own, consumed by
# workers of their own (docker-compose.yml's notifier), so a slow or dead receiver never holds up cells.
WEBHOOK_QUEUE = env_str("WEBHOOK_QUEUE", "notifications")
CELERY_TASK_ROUTES = {"worker.tasks.deliver_webhook": {"queue": WEBHOOK_QUEUE}}
# Attempts per delivery, and Celery's exponential back-off between them: factor, 2 x factor, ... up to the cap.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_RETRY_BACKOFF_SECONDS = env_int("WEBHOOK_RETRY_BACKOFF_SECONDS", 30, minimum=1)
WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = env_int("WEBHOOK_RETRY_BACKOFF_MAX_SECONDS", 3600, minimum=1)
# Connect and read timeouts of one delivery, seconds: a receiver must answer quickly (and queue its own work).
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# Networks a receiver may be on although they are private or local (an operator's own receiver on the lab's
# network, e.g. 10.20.0.0/24). Empty: only public addresses. Every other address of a host is still checked.
WEBHOOK_ALLOWED_NETWORKS = env_networks("WEBHOOK_ALLOWED_NETWORKS")
# Certificate authorities an https receiver's certificate is checked against: a PEM file, for a lab whose
# receiver has a certificate from its own CA. Empty: the public CAs (certifi). A file that is not there stops
# start-up rather than failing every delivery.
WEBHOOK_CA_BUNDLE = env_str("WEBHOOK_CA_BUNDLE")
if WEBHOOK_CA_BUNDLE and not Path(WEBHOOK_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"WEBHOOK_CA_BUNDLE={WEBHOOK_CA_BUNDLE!r} is not a file")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Pages link to nothing that needs our URLs; other sites get the origin at most.
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): our own scripts, styles and images only, no plugins, no framing. The
# one inline style is a field page's `style="--natural-width: ..."` attribute, hence style-src-attr. The
# sign-in page adds Firebase's endpoints (accounts.views.FIREBASE_CSP); the API docs page its inline code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if not DEBUG:
    # HTTPS only: redirect plain HTTP and tell browsers never to try it (HSTS). Off in development (DEBUG).
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_PROXY") else None
