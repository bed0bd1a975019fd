"""Signing in to the pages: a Firebase ID token is exchanged once for a session, with CSRF protection;
sign-out ends it and revokes the Firebase refresh tokens; revoked or disabled users lose their session."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import AuditEvent
from tests import test_signed_tokens as signed_tokens
from tests.page_sessions import text_of

# The production-like Firebase set-up of the signed-token tests: a local signing key and certificate server.
signing_key, service_account, member = signed_tokens.signing_key, signed_tokens.service_account, signed_tokens.member

pytestmark = pytest.mark.django_db


def csrf_client() -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.get("/signin").status_code == 200  # sets the csrftoken cookie, as the page does
    return client


def post_token(client: Client, token: str, **extra):
    return client.post(
        "/session",
        json.dumps({"id_token": token, **extra}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def signed_in(person) -> Client:
    client = csrf_client()
    response = post_token(client, person.token)
    assert response.status_code == 200, response.content
    return client


def test_the_signin_page_has_labelled_fields_and_the_firebase_config(auth_emulator):
    response = Client().get("/signin?next=/patients")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="signin-email">Email</label>' in html
    assert '<label for="signin-password">Password</label>' in html
    assert 'type="module" src="/static/build/signin.js"' in html
    assert "<noscript>" in html and "needs JavaScript" in html
    config = json.loads(html.split('id="firebase-config" type="application/json">')[1].split("</script>")[0])
    assert config == {
        "apiKey": "demo-api-key",
        "projectId": "demo-malaria-detect",
        "authDomain": "demo-malaria-detect.firebaseapp.com",
        "emulatorUrl": f"http://{auth_emulator.host}",
        "googleSignIn": False,
    }
    assert 'data-next="/patients"' in html
    assert "Sign in with Google" not in html
    assert 'name="password"' not in html, "the password must never be posted to this site"


def test_google_sign_in_is_offered_when_configured(auth_emulator, settings):
    settings.FIREBASE_GOOGLE_SIGN_IN = True
    assert "Sign in with Google" in Client().get("/signin").content.decode()


def test_a_valid_id_token_makes_a_session(clinician, lab_a):
    client = csrf_client()
    response = post_token(client, clinician.token, next="/patients")
    assert response.status_code == 200
    assert response.json() == {"redirect": "/patients", "email": clinician.email}
    assert client.session["firebase_uid"] == clinician.uid
    assert client.session["firebase_issued_at"] > 0

    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert lab_a.name in text_of(dashboard) and "Clinician" in text_of(dashboard)
    me = client.get("/api/v1/me")  # the pages' scripts call the API with the session cookie
    assert me.status_code == 200 and me.json()["email"] == clinician.email
    event = AuditEvent.objects.get(action="session.signin")
    assert (event.actor_email, event.lab_id) == (clinician.email, lab_a.id)


def test_a_form_post_redirects_to_next_on_this_site_only(clinician):
    client = csrf_client()
    csrf = client.cookies["csrftoken"].value
    response = client.post("/session", {"id_token": clinician.token, "next": "/patients", "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and response["Location"] == "/patients"

    client = csrf_client()
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        "/session", {"id_token": clinician.token, "next": "https://evil.example/", "csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.e30."])
def test_a_bad_token_is_401_and_makes_no_session(auth_emulator, token):
    client = csrf_client()
    response = post_token(client, token)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert client.get("/")["Location"] == "/signin?next=/"


def test_a_bad_token_from_a_form_shows_the_signin_page_with_the_reason(auth_emulator):
    client = csrf_client()
    response = client.post("/session", {"id_token": "", "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 401
    assert "needs JavaScript" in text_of(response)
    assert '<form id="signin-form"' in response.content.decode()


def test_csrf_is_enforced(clinician):
    client = csrf_client()
    response = client.post("/session", json.dumps({"id_token": clinician.token}), content_type="application/json")
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    assert client.get("/")["Location"] == "/signin?next=/"


def test_session_calls_to_the_api_need_the_csrf_header(clinician):
    client = signed_in(clinician)
    body = json.dumps({"identifier": "P-CSRF"})
    refused = client.post("/api/v1/patients", body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    accepted = client.post(
        "/api/v1/patients", body, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )
    assert accepted.status_code == 201


def test_the_api_without_credentials_is_still_401_with_a_bearer_challenge():
    response = Client().get("/api/v1/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_pages_send_anonymous_visitors_to_signin_and_back():
    response = Client().get("/patients?q=x")
    assert response.status_code == 302
    assert response["Location"] == "/signin?next=/patients%3Fq%3Dx"


def test_the_signin_page_sends_a_signed_in_user_on(clinician):
    client = signed_in(clinician)
    response = client.get("/signin?next=/patients")
    assert response.status_code == 302 and response["Location"] == "/patients"


def test_signout_ends_the_session_and_revokes_the_refresh_tokens(clinician, lab_a):
    client = signed_in(clinician)
    time.sleep(1.1)  # revocation is to the second: tokens issued before it are refused
    response = client.post("/signout", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 302 and response["Location"] == "/signin"
    assert client.get("/")["Location"] == "/signin?next=/"
    event = AuditEvent.objects.get(action="session.signout")
    assert (event.actor_email, event.lab_id) == (clinician.email, lab_a.id)

    cache.clear()
    again = post_token(csrf_client(), clinician.token)
    assert again.status_code == 401
    assert "revoked" in again.json()["detail"]
    api = clinician.client().get("/api/v1/me")
    assert api.status_code == 401, "the old ID token no longer works on the API either"


def test_signout_is_post_only(clinician):
    client = signed_in(clinician)
    assert client.get("/signout").status_code == 405
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("change", ["revoke", "disable"])
def test_a_revoked_or_disabled_user_loses_the_session_after_the_recheck(clinician, auth_emulator, change):
    from firebase_admin import auth

    from accounts.firebase import firebase_app

    client = signed_in(clinician)
    assert client.get("/").status_code == 200
    if change == "revoke":
        time.sleep(1.1)
        auth.revoke_refresh_tokens(clinician.uid, app=firebase_app())
    else:
        auth_emulator.update(clinician.uid, disableUser=True)
    assert client.get("/").status_code == 200, "within the recheck interval the cached state is used"
    cache.clear()  # the recheck interval (5 minutes) has passed
    response = client.get("/", follow=True)
    assert response.redirect_chain[0] == ("/signin?next=/", 302)
    assert "You have been signed out" in text_of(response)
    assert client.get("/api/v1/me").status_code == 401


def test_a_user_without_a_lab_can_sign_in_and_sees_access_pending(pending_user):
    client = signed_in(pending_user)
    for url in ["/", "/patients", "/reviews"]:
        response = client.get(url)
        assert response.status_code == 403
        assert "Access pending" in text_of(response)
        assert pending_user.email in text_of(response)
    assert client.get("/model").status_code == 200, "the model card is public"


def test_sign_in_answers_503_when_firebase_cannot_be_reached(monkeypatch, signing_key, service_account, member):
    from firebase_admin import _token_gen

    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    dead = signed_tokens.CertificateServer({})
    url = dead.url
    dead.close()  # nothing answers there now
    monkeypatch.setattr(_token_gen, "ID_TOKEN_CERT_URI", url)
    signed_tokens._drop_app()
    try:
        client = csrf_client()
        response = post_token(client, signed_tokens.token(signing_key[0]))
    finally:
        signed_tokens._drop_app()
    assert response.status_code == 503
    assert "try again" in response.json()["detail"]


def test_a_page_answers_503_when_the_session_cannot_be_rechecked(clinician, monkeypatch):
    """The recheck of a signed-in session finds Firebase unreachable: refuse rather than serve a revoked user."""
    from malaria_site.auth_emulator import free_port

    client = signed_in(clinician)
    assert client.get("/").status_code == 200
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing answers there
    signed_tokens._drop_app()  # firebase-admin reads the address when its app is made
    try:
        cache.clear()  # the recheck interval has passed
        page = client.get("/patients")
        api = client.get("/api/v1/me")
    finally:
        signed_tokens._drop_app()
    assert page.status_code == 503
    assert "try again" in text_of(page)
    assert "_auth_user_id" in client.session, "the session is kept: Firebase may be back on the next request"
    assert api.status_code == 503
    assert "try again" in api.json()["detail"]


def test_pages_send_a_content_security_policy_that_the_signin_page_widens_for_firebase_only(auth_emulator):
    signin = Client().get("/signin")["Content-Security-Policy"]
    page = Client().get("/model")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in page.split(";") if part.strip())
    assert directives["script-src"] == directives["style-src"] == directives["connect-src"] == "'self'"
    assert (directives["object-src"], directives["frame-ancestors"]) == ("'none'", "'none'")
    assert f"http://{auth_emulator.host}" in signin and "https://identitytoolkit.googleapis.com" in signin
