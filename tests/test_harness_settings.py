"""The suite's services come from the harness (TEST_* variables), never from what production reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.environments import bare_environment

ROOT = Path(__file__).resolve().parents[1]
SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({
    "engine": database["ENGINE"], "name": database["NAME"], "options": database.get("OPTIONS", {}),
    "cache": settings.CACHES["default"].get("LOCATION", ""), "broker": settings.CELERY_BROKER_URL,
    "media": str(settings.MEDIA_ROOT), "debug": settings.DEBUG, "trusted": settings.FIREBASE_AUTH_EMULATOR_TRUSTED,
    "secure_cookies": settings.SESSION_COOKIE_SECURE,
}))
"""


def settings_of(module: str, **env: str) -> subprocess.CompletedProcess:
    clean = bare_environment(DJANGO_SETTINGS_MODULE=module, **env)
    return subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_a_database_or_redis_exported_in_the_shell_does_not_move_the_suite():
    result = settings_of(
        "tests.settings",
        DATABASE_URL="sqlite:///elsewhere.sqlite3",
        REDIS_URL="redis://127.0.0.1:6379/3",
        MEDIA_ROOT="/tmp/elsewhere",
        DJANGO_DEBUG="0",
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["engine"], seen["name"]) == ("django.db.backends.postgresql", "malaria")
    assert seen["cache"] == "redis://127.0.0.1:6379/15"
    assert seen["broker"] == "redis://127.0.0.1:6379/14"
    assert seen["media"] == str(ROOT / "var" / "test-media")
    assert (seen["debug"], seen["trusted"], seen["secure_cookies"]) == (False, True, False)


def test_the_harness_variables_choose_the_services():
    result = settings_of(
        "tests.settings",
        TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/malaria_other",
        TEST_REDIS_CACHE_URL="redis://127.0.0.1:6379/9",
        TEST_REDIS_BROKER_URL="redis://127.0.0.1:6379/8",
        TEST_MEDIA_ROOT="/tmp/test-media-other",
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["name"], seen["cache"], seen["broker"], seen["media"]) == (
        "malaria_other",
        "redis://127.0.0.1:6379/9",
        "redis://127.0.0.1:6379/8",
        "/tmp/test-media-other",
    )


def test_the_suite_refuses_a_database_that_is_not_postgresql():
    result = settings_of("tests.settings", TEST_DATABASE_URL="sqlite:///tests.sqlite3")
    assert result.returncode != 0
    assert "TEST_DATABASE_URL must be a PostgreSQL database" in result.stderr


def test_the_cache_and_the_broker_never_share_a_redis_database():
    result = settings_of(
        "tests.settings",
        TEST_REDIS_CACHE_URL="redis://127.0.0.1:6379/9",
        TEST_REDIS_BROKER_URL="redis://127.0.0.1:6379/9",
    )
    assert result.returncode != 0
    assert "TEST_REDIS_BROKER_URL and TEST_REDIS_CACHE_URL must differ" in result.stderr


def test_production_settings_read_no_test_variable():
    result = settings_of(
        "malaria_site.settings",
        DJANGO_DEBUG="1",
        MALARIA_VAR_DIR="/tmp/malaria-var",
        TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/malaria",
        TEST_REDIS_CACHE_URL="redis://127.0.0.1:6379/15",
        TEST_MEDIA_ROOT="/tmp/test-media",
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["engine"], seen["name"]) == ("django.db.backends.sqlite3", "/tmp/malaria-var/malaria.sqlite3")
    assert (seen["cache"], seen["broker"], seen["media"]) == ("", "filesystem://", "/tmp/malaria-var/media")
    assert seen["trusted"] is False


def test_the_embedded_database_takes_concurrent_writers():
    """SQLite (make run's default): WAL, a busy timeout, and a write lock taken when a transaction starts."""
    result = settings_of("malaria_site.settings", DJANGO_DEBUG="1", MALARIA_VAR_DIR="/tmp/malaria-var")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["options"] == {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
