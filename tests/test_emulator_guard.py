"""The Auth emulator's unsigned tokens can never be accepted in production: the app refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_django(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIREBASE_", "MALARIA_"))}
    clean.update(
        PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="malaria_site.settings", DATABASE_URL="sqlite:///:memory:"
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_emulator_in_production_is_refused():
    result = start_django(DJANGO_SECRET_KEY="x" * 50, FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099")
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_HOST is set but DJANGO_DEBUG is off" in result.stderr


def test_emulator_for_a_real_project_is_refused_even_in_debug():
    result = start_django(
        DJANGO_DEBUG="1", FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099", FIREBASE_PROJECT_ID="malaria-production"
    )
    assert result.returncode != 0
    assert "is not a demo- project" in result.stderr


def test_emulator_with_a_demo_project_in_debug_starts():
    result = start_django(DJANGO_DEBUG="1", FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099")
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_production_without_a_secret_key_is_refused():
    result = start_django()
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_without_the_emulator_starts():
    result = start_django(DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
