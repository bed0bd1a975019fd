"""The Auth emulator's unsigned tokens are accepted only by a development process that was told to trust them.

Trust is FIREBASE_AUTH_EMULATOR_TRUSTED=1, which only a process started with DJANGO_DEBUG=1 and a demo-
project may turn on; a production-like process (debug off) refuses the emulator whatever else is set.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.environments import bare_environment

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = "127.0.0.1:9099"
TRUSTING = {"DJANGO_DEBUG": "1", "FIREBASE_AUTH_EMULATOR_TRUSTED": "1", "FIREBASE_AUTH_EMULATOR_HOST": EMULATOR}


def production_environment(**env: str) -> dict[str, str]:
    return bare_environment(DJANGO_SETTINGS_MODULE="malaria_site.settings", DATABASE_URL="sqlite:///:memory:", **env)


def start_django(**env: str) -> subprocess.CompletedProcess:
    return run_python("import django; django.setup(); print('started')", **env)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_emulator_in_production_is_refused():
    result = start_django(DJANGO_SECRET_KEY="x" * 50, FIREBASE_AUTH_EMULATOR_HOST=EMULATOR)
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_HOST is set but FIREBASE_AUTH_EMULATOR_TRUSTED is not" in result.stderr


def test_trusting_the_emulator_with_debug_off_is_refused():
    result = start_django(**{**TRUSTING, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50})
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_TRUSTED=1 needs DJANGO_DEBUG=1" in result.stderr


def test_manage_py_check_refuses_the_emulator_with_debug_off():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=production_environment(**{**TRUSTING, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: FIREBASE_AUTH_EMULATOR_TRUSTED=1 needs DJANGO_DEBUG=1" in result.stderr


def test_the_emulator_in_debug_without_the_switch_is_refused():
    result = start_django(DJANGO_DEBUG="1", FIREBASE_AUTH_EMULATOR_HOST=EMULATOR)
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_HOST is set but FIREBASE_AUTH_EMULATOR_TRUSTED is not" in result.stderr


def test_emulator_for_a_real_project_is_refused_even_in_debug():
    result = start_django(**TRUSTING, FIREBASE_PROJECT_ID="malaria-production")
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_TRUSTED=1 needs a demo- FIREBASE_PROJECT_ID, not 'malaria-production'" in (
        result.stderr
    )


def test_emulator_with_a_demo_project_in_debug_with_the_switch_starts():
    result = start_django(**TRUSTING)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_misspelt_switch_stops_start_up():
    result = start_django(**{**TRUSTING, "FIREBASE_AUTH_EMULATOR_TRUSTED": "ture"})
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_TRUSTED='ture' is not a boolean" in result.stderr


def test_production_without_a_secret_key_is_refused():
    result = start_django()
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_without_the_emulator_starts_with_secure_cookies():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.FIREBASE_AUTH_EMULATOR_TRUSTED)",
        DJANGO_SECRET_KEY="x" * 50,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False"]


def test_a_production_process_refuses_an_emulator_token_even_if_the_emulator_is_set_at_run_time(clinician):
    """Started debug off, then pointed at the emulator by code: the token is still refused, not accepted."""
    script = textwrap.dedent(
        f"""
        import os, django
        django.setup()
        from django.conf import settings
        from accounts.firebase import verify_id_token
        os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = {clinician.emulator.host!r}
        settings.FIREBASE_AUTH_EMULATOR_HOST = {clinician.emulator.host!r}
        settings.DEBUG = True
        try:
            verify_id_token({clinician.token!r})
        except Exception as exc:
            print("refused: " + type(exc).__name__ + ": " + str(exc))
        else:
            print("ACCEPTED")
        """
    )
    result = run_python(script, DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused: ImproperlyConfigured: FIREBASE_AUTH_EMULATOR_HOST is set but"), (
        result.stdout
    )


def test_an_untrusting_process_refuses_emulator_tokens_after_it_accepted_some(clinician, settings):
    """The check runs for every token, not once when firebase-admin's app is made."""
    from accounts.firebase import verify_id_token

    assert verify_id_token(clinician.token).email == clinician.email
    settings.FIREBASE_AUTH_EMULATOR_TRUSTED = False
    with pytest.raises(ImproperlyConfigured, match="FIREBASE_AUTH_EMULATOR_TRUSTED is not"):
        verify_id_token(clinician.token)


def test_production_settings_send_https_only_headers_and_development_does_not():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, "
        "s.SECURE_REFERRER_POLICY]))"
    )
    production = run_python(code, DJANGO_SECRET_KEY="x" * 50)
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip() == '[true, 31536000, true, "same-origin"]'
    development = run_python(code, DJANGO_DEBUG="1")
    assert development.stdout.strip() == '[false, 0, false, "same-origin"]'
