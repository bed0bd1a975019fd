"""Signed-token checks as in production: a locally generated RSA key stands in for Google's, and Google's
certificate URL is answered by a local HTTP server. Revocation and disabled accounts are covered with the
emulator in test_api_auth.py (the same code path after signature checks)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import threading
import time

import firebase_admin
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from rest_framework.test import APIClient

from accounts.firebase import APP_NAME

pytestmark = pytest.mark.django_db
PROJECT = "demo-malaria-detect"
KEY_ID = "local-test-key"


def make_key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.local.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


class CertificateServer:
    """Answers like https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com."""

    def __init__(self, certificates: dict[str, str]):
        body = json.dumps(certificates).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def signing_key():
    return make_key_and_cert()


@pytest.fixture
def service_account(tmp_path, settings, signing_key):
    """A service-account file with a local key, as production would configure FIREBASE_CREDENTIALS_FILE."""
    key, _ = signing_key
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "local",
                "private_key": pem,
                "client_email": f"firebase-adminsdk@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "http://127.0.0.1:9/token",
            }
        )
    )
    settings.FIREBASE_CREDENTIALS_FILE = str(path)
    return path


@pytest.fixture
def production_firebase(monkeypatch, signing_key, service_account):
    """firebase-admin as in production (no emulator), its certificate URL pointed at a local server."""
    from firebase_admin import _token_gen

    key, cert = signing_key
    server = CertificateServer({KEY_ID: cert})
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(_token_gen, "ID_TOKEN_CERT_URI", server.url)
    _drop_app()
    yield server
    server.close()
    _drop_app()


def _drop_app():
    with contextlib.suppress(ValueError):
        firebase_admin.delete_app(firebase_admin.get_app(APP_NAME))


def token(key, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "uid-signed-1",
        "user_id": "uid-signed-1",
        "iat": now - 10,
        "exp": now + 3600,
        "auth_time": now - 10,
        "email": "signed@example.org",
        "email_verified": True,
        "firebase": {"sign_in_provider": "password"},
    }
    claims.update(overrides)
    headers = {"kid": overrides.pop("kid", KEY_ID)} if "kid" not in overrides else {"kid": claims.pop("kid")}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


@pytest.fixture
def member(lab_a):
    """A lab member whose Firebase record is known to be active (cached, as after a recent check)."""
    from django.core.cache import cache

    from accounts.services import membership_set

    membership_set(lab=lab_a, email="signed@example.org", role="clinician")
    cache.set("firebase-user-state:uid-signed-1", {"disabled": False, "valid_after_ms": 0}, 300)


def call(bearer: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer}")
    return client.get("/api/v1/me")


def test_a_correctly_signed_token_signs_in(production_firebase, signing_key, member):
    response = call(token(signing_key[0]))
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "signed@example.org"


def test_token_signed_by_another_key_is_401(production_firebase, member):
    other_key, _ = make_key_and_cert()
    response = call(token(other_key))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_expired_token_is_401(production_firebase, signing_key, member):
    past = int(time.time()) - 7200
    response = call(token(signing_key[0], iat=past, auth_time=past, exp=past + 3600))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_wrong_issuer_is_401(production_firebase, signing_key, member):
    response = call(token(signing_key[0], iss="https://securetoken.google.com/someone-else"))
    assert response.status_code == 401


def test_wrong_project_audience_is_401(production_firebase, signing_key, member):
    response = call(token(signing_key[0], aud="another-project"))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_unknown_key_id_is_401(production_firebase, signing_key, member):
    response = call(token(signing_key[0], kid="some-other-kid"))
    assert response.status_code == 401


def test_revoked_user_is_401(production_firebase, signing_key, member):
    from django.core.cache import cache

    cache.set("firebase-user-state:uid-signed-1", {"disabled": False, "valid_after_ms": int(time.time() * 1000)}, 300)
    response = call(token(signing_key[0]))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_certificate_endpoint_down_is_503(monkeypatch, signing_key, service_account, member):
    from firebase_admin import _token_gen

    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    dead = CertificateServer({})
    url = dead.url
    dead.close()  # nothing answers there now
    monkeypatch.setattr(_token_gen, "ID_TOKEN_CERT_URI", url)
    _drop_app()
    try:
        response = call(token(signing_key[0]))
    finally:
        _drop_app()
    assert response.status_code == 503
    assert "try again" in response.json()["detail"]


# -- which sign-ins are accepted (issue 10: providers, tenants, a recent sign-in for a session) -----------


@pytest.mark.parametrize("provider", ["anonymous", "custom", "phone"])
def test_providers_the_lab_does_not_use_are_401(production_firebase, signing_key, member, provider):
    response = call(token(signing_key[0], firebase={"sign_in_provider": provider}))
    assert response.status_code == 401
    assert f"Signing in with {provider} is not accepted" in response.json()["detail"]


def test_google_sign_in_is_accepted_and_the_provider_list_is_a_setting(
    production_firebase, signing_key, member, settings
):
    google = token(signing_key[0], firebase={"sign_in_provider": "google.com"})
    assert call(google).status_code == 200
    settings.FIREBASE_SIGN_IN_PROVIDERS = ["password"]
    response = call(google)
    assert response.status_code == 401
    assert "accepted: password" in response.json()["detail"]


def test_tenant_tokens_are_401(production_firebase, signing_key, member):
    response = call(token(signing_key[0], firebase={"sign_in_provider": "password", "tenant": "lab-tenant-1"}))
    assert response.status_code == 401
    assert "tenant" in response.json()["detail"]


def test_a_session_needs_a_recent_sign_in_but_the_api_takes_refreshed_tokens(
    production_firebase, signing_key, member, settings
):
    from django.test import Client

    old_sign_in = int(time.time()) - settings.FIREBASE_RECENT_SIGN_IN_SECONDS - 60
    refreshed = token(signing_key[0], auth_time=old_sign_in)  # issued just now, by a refresh token
    assert call(refreshed).status_code == 200

    client = Client()
    response = client.post("/session", json.dumps({"id_token": refreshed}), content_type="application/json")
    assert response.status_code == 401
    assert "too old" in response.json()["detail"]
    assert "_auth_user_id" not in client.session
    fresh = client.post("/session", json.dumps({"id_token": token(signing_key[0])}), content_type="application/json")
    assert fresh.status_code == 200, fresh.content


def test_a_staff_account_is_never_opened_by_email_alone(production_firebase, signing_key, member):
    from accounts.models import User

    User.objects.create(username="site-admin", email="signed@example.org", is_staff=True)
    response = call(token(signing_key[0]))
    assert response.status_code == 403
    assert "administrator" in response.json()["detail"]
    assert User.objects.get(username="site-admin").firebase_uid is None
