"""Error pages in the product's look: 404, 403, an expired form (CSRF), and 500 without any request context."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client

from tests.page_sessions import page_client, text_of

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_a_404_in_the_products_look(clinician, lab_a):
    response = page_client(clinician).get("/no/such/page")
    assert response.status_code == 404
    page = text_of(response)
    assert "Malaria Detect" in page and lab_a.name in page and "Not found" in page
    assert "not a diagnosis" in page
    anonymous = Client().get("/no/such/page")
    assert anonymous.status_code == 404 and "Sign in" in text_of(anonymous)


def test_a_refusal_is_a_403_that_says_why(clinician):
    response = page_client(clinician).get("/reviews")
    assert response.status_code == 403
    assert "You cannot open this page" in text_of(response) and "Only a reviewer" in text_of(response)
    assert '<link rel="stylesheet" href="/static/css/site.css">' in response.content.decode()


def test_an_expired_form_explains_itself(clinician):
    client = page_client(clinician)
    client.handler.enforce_csrf_checks = True
    response = client.post("/patients/new", {"identifier": "P-1", "sex": "unknown"})
    assert response.status_code == 403
    assert "The form could not be sent" in text_of(response)


def test_the_500_page_needs_no_request_context():
    page = render_to_string("500.html")
    assert "Something went wrong on our side" in page
    assert 'href="/static/css/site.css"' in page


def test_a_server_error_shows_the_500_page(clinician, monkeypatch):
    from diagnostics import selectors

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "samples_recent", broken)
    client = page_client(clinician)
    client.raise_request_exception = False
    response = client.get("/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in text_of(response)
    assert "database went away" not in text_of(response)


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_url_is_a_json_404_with_or_without_debug(settings, debug):
    settings.DEBUG = debug
    for url in ("/api/v1/no/such/thing", "/api/v2/samples", "/api/"):
        response = Client().get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found."}
    cookie_client = Client(enforce_csrf_checks=True)
    cookie_client.cookies["sessionid"] = "anything"
    assert cookie_client.patch("/api/v1/patients/null,null", {}).json() == {"detail": "Not found."}
