"""Environments for the processes that tests start: the harness's, or a bare one for production settings."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What configures the app (see .env.example): dropped, so that a test states every setting it relies on.
CONFIGURATION_PREFIXES = ("DJANGO_", "FIREBASE_", "MALARIA_", "TEST_", "CELERY_", "S3_", "WEBHOOK_")
CONFIGURATION_NAMES = ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT")


def bare_environment(**env: str) -> dict[str, str]:
    """This machine's environment less the app's configuration, plus `env`."""
    bare = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(CONFIGURATION_PREFIXES) and key not in CONFIGURATION_NAMES
    }
    return {**bare, "PYTHONPATH": str(ROOT), **env}
