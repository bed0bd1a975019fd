"""Signing in to the API with Firebase ID tokens from the Auth emulator."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_me_for_a_clinician(clinician, lab_a):
    response = clinician.client().get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "email": clinician.email,
        "role": "clinician",
        "lab": {"id": lab_a.id, "name": lab_a.name},
    }


def test_first_valid_token_creates_the_user(clinician):
    clinician.client().get("/api/v1/me")
    assert clinician.user.firebase_uid == clinician.uid


def test_no_token_is_401_with_detail():
    response = APIClient().get("/api/v1/me")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer not-a-jwt", "Token abc"])
def test_malformed_tokens_are_401(auth_emulator, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_signed_in_user_without_a_lab_gets_access_pending(pending_user):
    response = pending_user.client().get("/api/v1/me")
    assert response.status_code == 403
    assert "pending" in response.json()["detail"]


def test_unverified_email_is_refused(auth_emulator, lab_a):
    from accounts.services import membership_set

    auth_emulator.create_account("unverified@example.org", verified=False)
    membership_set(lab=lab_a, email="unverified@example.org", role="reviewer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_emulator.sign_in('unverified@example.org')}")
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "not verified" in response.json()["detail"]


def test_disabled_user_is_locked_out_after_the_recheck(clinician, auth_emulator):
    from django.core.cache import cache

    client = clinician.client()
    assert client.get("/api/v1/me").status_code == 200
    auth_emulator.update(clinician.uid, disableUser=True)
    cache.clear()  # the recheck interval (5 minutes) has passed
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]


def test_revoked_tokens_are_refused_after_the_recheck(clinician, auth_emulator):
    import time

    from django.core.cache import cache
    from firebase_admin import auth

    from accounts.firebase import firebase_app

    client = clinician.client()
    assert client.get("/api/v1/me").status_code == 200
    time.sleep(1.1)  # revocation is to the second: tokens issued before it are refused
    auth.revoke_refresh_tokens(clinician.uid, app=firebase_app())
    cache.clear()
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_revocation_is_cached_for_at_most_the_recheck_interval(clinician, auth_emulator, settings):
    from django.core.cache import cache

    assert settings.FIREBASE_REVOCATION_CHECK_SECONDS <= 300
    clinician.client().get("/api/v1/me")
    key = f"firebase-user-state:{clinician.uid}"
    assert cache.get(key) is not None
    import redis

    seconds_left = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).ttl(cache.make_key(key))
    assert 0 < seconds_left <= 300


def test_a_user_deactivated_in_the_admin_is_refused_by_the_api_at_once(clinician):
    client = clinician.client()
    assert client.get("/api/v1/me").status_code == 200
    user = clinician.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = client.get("/api/v1/me")  # the same, still valid Firebase token
    assert response.status_code == 401
    assert "deactivated" in response.json()["detail"]
    assert client.post("/api/v1/patients", {"identifier": "MRN-X"}, format="json").status_code == 401


def test_emails_are_compared_in_one_canonical_form_not_by_postgresql_upper(auth_emulator, lab_a):
    """'alıce' (dotless i) upper-cases to ALICE in PostgreSQL; it must not inherit alice's membership."""
    from accounts.models import Membership, canonical_email
    from accounts.services import membership_set

    membership_set(lab=lab_a, email="  Alice@Lab.example ", role="reviewer")
    assert Membership.objects.get(lab=lab_a).email == "alice@lab.example"
    assert canonical_email("Alice@Lab.example") == "alice@lab.example"
    assert canonical_email("alıce@lab.example") != "alice@lab.example"
    auth_emulator.create_account("alıce@lab.example")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_emulator.sign_in('alıce@lab.example')}")
    response = client.get("/api/v1/me")
    assert response.status_code == 403
    assert "pending" in response.json()["detail"]
