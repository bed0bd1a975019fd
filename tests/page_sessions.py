"""Browser sessions for page tests: a person signs in once through the API, then the test client holds a session."""

from __future__ import annotations

import re

from django.test import Client


def page_client(person) -> Client:
    """A logged-in Django test client (the session the sign-in page would have made, without the JS)."""
    assert person.client().get("/api/v1/me").status_code in (200, 403)  # the first sign-in creates the user
    client = Client()
    client.force_login(person.user)
    return client


def text_of(response) -> str:
    """The page's text without tags and with whitespace collapsed, as a reader would see it."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".").strip()
