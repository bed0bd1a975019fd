"""When PostgreSQL or Redis cannot be reached: 503 with Retry-After where work cannot go on (JSON on the
API), and uploads kept while only Redis is down (issue 10's faults; the fault suite itself is not here)."""

from __future__ import annotations

import contextlib
from unittest import mock

import pytest
from django.db import connections
from rest_framework.test import APIClient

from diagnostics.models import CellImage
from malaria_site.auth_emulator import free_port
from tests.celery_worker import broker_unreachable, purge_queue
from tests.cells import generated_cells, upload
from tests.page_sessions import page_client

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_down():
    """Every new connection to PostgreSQL is refused, as while the server is stopped."""
    import psycopg

    wrapper = connections["default"]

    def refuse(*args, **kwargs):
        raise psycopg.OperationalError("connection refused (the test stopped the database)")

    wrapper.close()
    with mock.patch.object(wrapper, "get_new_connection", refuse):
        yield
    wrapper.close()


def test_the_api_answers_503_with_retry_after_while_the_database_is_down(clinician):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {clinician.token}")
    with database_down():
        response = client.get("/api/v1/me")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "cannot be reached just now" in response.json()["detail"]


def test_pages_answer_503_without_needing_the_database(clinician):
    client = page_client(clinician)
    client.raise_request_exception = False
    with database_down():
        response = client.get("/patients")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Temporarily unavailable" in response.content.decode()


def test_with_redis_down_members_still_sign_in_and_uploads_are_kept(clinician, sample, settings):
    """The revocation check and the throttles use the cache; without it they ask Firebase / let work through."""
    purge_queue()
    api = clinician.client()
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}}
    with broker_unreachable():
        assert api.get("/api/v1/me").status_code == 200
        response = upload(api, sample["id"], generated_cells(2))
    assert response.status_code == 202, response.content
    kept = CellImage.objects.filter(sample_id=sample["id"])
    assert kept.count() == 2 and set(kept.values_list("enqueued_at", flat=True)) == {None}, "sent by the sweeper"
