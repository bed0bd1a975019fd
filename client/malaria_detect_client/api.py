"""Calls to Malaria Detect's REST API (v1): a fresh ID token on each, the server's JSON errors in words, and
patience when the server says so (429 and 503 are retried after their Retry-After)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO
from urllib.parse import urlsplit

import requests

from malaria_detect_client import __version__
from malaria_detect_client.auth import TokenSource
from malaria_detect_client.errors import AuthError, ClientError, RefusedError

RETRY_STATUSES = (429, 503)
MAX_ATTEMPTS = 6
# A Retry-After longer than this is waited for no longer: the run should end with a message, not hang.
MAX_RETRY_WAIT_SECONDS = 120
# Connect quickly; an upload of tens of megabytes on a slow line may take minutes to be answered.
TIMEOUT = (10, 600)


def user_agent() -> str:
    return f"malaria-detect-client/{__version__} {requests.utils.default_user_agent()}"


def error_text(response: requests.Response) -> str:
    """The server's JSON error ({"detail": ...} or field errors) as one line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} {response.reason or ''}".strip()
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str) and len(body) == 1:
            return body["detail"]
        parts = []
        for field, messages in body.items():
            text = " ".join(messages) if isinstance(messages, list) else str(messages)
            parts.append(text if field == "detail" else f"{field}: {text}")
        if parts:
            return "; ".join(parts)
    return f"HTTP {response.status_code}"


def retry_after_seconds(response: requests.Response, attempt: int) -> float:
    """Retry-After as seconds or an HTTP date; without one, 1, 2, 4 ... seconds."""
    value = response.headers.get("Retry-After", "").strip()
    seconds: float = 2.0**attempt
    if value.isdigit():
        seconds = float(value)
    elif value:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = (when - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            pass
    return min(max(seconds, 0.0), MAX_RETRY_WAIT_SECONDS)


class Api:
    def __init__(
        self,
        server: str,
        tokens: TokenSource | None,
        session: requests.Session,
        *,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.server, self.tokens, self.session, self.say, self.sleep = server, tokens, session, say, sleep
        self.session.headers["User-Agent"] = user_agent()

    def url(self, path: str) -> str:
        return f"{self.server}/api/v1/{path.lstrip('/')}"

    def page_url(self, path: str) -> str:
        return f"{self.server}/{path.lstrip('/')}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 202),
        body: IO[bytes] | None = None,
        rewind: Callable[[], None] | None = None,
        **kwargs,
    ) -> requests.Response:
        """One API call, retried on 429/503 (honouring Retry-After) and once with a new token on 401.

        A body is a seekable stream; `rewind` puts it (and its progress bar) back to the start for a retry.
        Only reads are retried after a lost connection: an upload that may have arrived is not sent twice.
        """
        url = path if path.startswith("http") else self.url(path)
        fresh_token_tried = False
        extra_headers = kwargs.pop("headers", {})
        for attempt in range(MAX_ATTEMPTS):
            if attempt and rewind is not None:
                rewind()
            headers = {"Accept": "application/json", **extra_headers}
            if self.tokens is not None:
                headers["Authorization"] = f"Bearer {self.tokens.id_token(fresh=fresh_token_tried)}"
            try:
                response = self.session.request(method, url, headers=headers, data=body, timeout=TIMEOUT, **kwargs)
            except requests.RequestException as exc:
                if method == "GET" and attempt + 1 < MAX_ATTEMPTS:
                    wait = 2.0**attempt
                    self.say(f"The server cannot be reached ({exc.__class__.__name__}); trying again in {wait:g} s.")
                    self.sleep(wait)
                    continue
                raise ClientError(f"The server {self.server} cannot be reached: {exc}") from None
            if response.status_code in ok:
                return response
            if response.status_code == 401 and self.tokens is not None and not fresh_token_tried:
                fresh_token_tried = True
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < MAX_ATTEMPTS:
                wait = retry_after_seconds(response, attempt)
                self.say(f"The server is busy ({error_text(response)}); trying again in {wait:g} s.")
                self.sleep(wait)
                continue
            raise self.refusal(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def refusal(self, response: requests.Response) -> ClientError:
        text = error_text(response)
        status = response.status_code
        if status in (401, 403):
            return AuthError(f"The server refused access (HTTP {status}): {text}")
        if status in (400, 404, 409, 413, 415, 422):
            return RefusedError(f"The server refused the request (HTTP {status}): {text}")
        return ClientError(f"The server failed (HTTP {status}): {text}")

    def get_json(self, path: str, **kwargs):
        response = self.get(path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"The server answered {path} with something other than JSON.") from None

    def pages(self, path: str, params: dict | None = None):
        """Every item of a paginated list, following `next`."""
        body = self.get_json(path, params=params)
        while True:
            yield from body["results"]
            if not body.get("next"):
                return
            # Only the path and query of `next` are followed: the server builds it from the Host it was asked
            # for, which behind a proxy may be plain http, and the token must go nowhere but --server.
            link, server = urlsplit(body["next"]), urlsplit(self.server)
            body = self.get_json(f"{server.scheme}://{server.netloc}{link.path}?{link.query}")
