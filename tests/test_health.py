"""Health endpoints for orchestrators: liveness, and readiness that names the dependency that is down."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_live_answers_whatever_the_host_header():
    response = Client().get("/health/live", HTTP_HOST="127.0.0.1:8000")  # a container healthcheck's request
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_ready_checks_database_redis_storage_and_model():
    response = Client().get("/health/ready", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "storage", "model"}
    assert all(check["ok"] for check in body["checks"].values())


def test_ready_is_503_naming_what_is_down_without_its_address(settings):
    settings.REDIS_URL = "redis://:secret-password@127.0.0.1:9/0"  # nothing listens on port 9
    response = Client().get("/health/ready")
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == {"ok": False}
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in response.content.decode() and "secret" not in response.content.decode()


def test_ready_is_503_when_the_model_card_is_missing(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("MALARIA_MODEL_DIR", str(tmp_path))
    response = Client().get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == {"ok": False}
