"""The cast: two labs, a clinician in each, a reviewer, a second reviewer, a user without a lab, an admin.

Every person has a real account in the Firebase Auth emulator and signs in with a real ID token. Rows that
need no person signing in come from tests/factories.py (`stored_sample` here is one).
"""

from __future__ import annotations

import itertools
import os

import pytest
from rest_framework.test import APIClient

from malaria_site.auth_emulator import AuthEmulator

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def auth_emulator():
    emulator = AuthEmulator()
    previous = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = emulator.host
    yield emulator
    emulator.stop()
    if previous is None:
        os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    else:
        os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def _real_services():
    """A test that needs the services runs only on those tests/settings.py names, and they must answer."""
    import redis
    from django.conf import settings
    from django.db import connection

    if settings.SETTINGS_MODULE != "tests.settings":
        pytest.exit(f"the tests run with tests.settings, not {settings.SETTINGS_MODULE} (unset DJANGO_SETTINGS_MODULE)")
    if connection.vendor != "postgresql":
        pytest.exit(f"the tests run on PostgreSQL, not {connection.vendor}")
    for name, url in (
        ("TEST_REDIS_CACHE_URL", settings.CACHES["default"]["LOCATION"]),
        ("TEST_REDIS_BROKER_URL", settings.CELERY_BROKER_URL),
    ):
        try:
            redis.Redis.from_url(url, socket_timeout=5).ping()
        except redis.RedisError as exc:
            pytest.exit(f"Redis does not answer at {url} ({name}): {exc}")


@pytest.fixture(scope="session")
def django_db_setup(_real_services, django_db_setup):
    """pytest-django's test database, created once the real services have answered."""


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    if request.node.get_closest_marker("pure") is None:  # pure tests must pass with Redis unreachable
        from django.core.cache import cache

        request.getfixturevalue("_real_services")
        cache.clear()
    yield


class Person:
    def __init__(self, emulator: AuthEmulator, email: str):
        self.email = email
        self.uid = emulator.create_account(email)
        self.token = emulator.sign_in(email)
        self.emulator = emulator

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client

    @property
    def user(self):
        from accounts.models import User

        return User.objects.get(email=self.email)


def unique_email(role: str) -> str:
    return f"{role}-{os.getpid()}-{next(_numbers)}@example.org"


@pytest.fixture
def make_person(auth_emulator):
    def make(role: str, lab=None) -> Person:
        from tests.factories import MembershipFactory

        person = Person(auth_emulator, unique_email(role))
        if lab is not None:
            MembershipFactory(lab=lab, email=person.email, role=role)
        return person

    return make


@pytest.fixture
def lab_a(db):
    from tests.factories import LabFactory

    return LabFactory(name=f"Lab A {next(_numbers)}")


@pytest.fixture
def lab_b(db):
    from tests.factories import LabFactory

    return LabFactory(name=f"Lab B {next(_numbers)}")


@pytest.fixture
def clinician(make_person, lab_a) -> Person:
    return make_person("clinician", lab_a)


@pytest.fixture
def other_lab_clinician(make_person, lab_b) -> Person:
    return make_person("clinician", lab_b)


@pytest.fixture
def reviewer(make_person, lab_a) -> Person:
    return make_person("reviewer", lab_a)


@pytest.fixture
def pending_user(make_person) -> Person:
    return make_person("clinician")


@pytest.fixture
def patient(clinician):
    response = clinician.client().post(
        "/api/v1/patients", {"identifier": f"P-{next(_numbers)}", "name": "Ada"}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def sample(clinician, patient):
    response = clinician.client().post("/api/v1/samples", {"patient": patient["id"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def stored_sample(lab_a):
    """A sample of a patient of lab A, as rows (factories): for tests that need one but not the API."""
    from tests.factories import SampleFactory

    return SampleFactory(patient__lab=lab_a)


@pytest.fixture(scope="session", autouse=True)
def _celery_queue_of_this_session():
    from tests.celery_worker import use_session_queue

    use_session_queue()


def pytest_sessionfinish(session, exitstatus):
    """Workers are stopped, and cell files and heatmaps written by the tests are not kept."""
    import shutil

    from django.conf import settings

    from tests.celery_worker import stop_all

    stop_all()
    if "test-media" in str(settings.MEDIA_ROOT):
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
