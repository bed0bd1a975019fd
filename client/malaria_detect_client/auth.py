"""Signing in with Firebase (email and password) and keeping only the refresh token.

The password goes to Firebase's Identity Toolkit once, at `login`, and is never written anywhere. What is
kept is the refresh token (it lets this client, and only it, get fresh ID tokens), the server's address, the
Firebase web API key and the emulator's address when signing in to a development server, in
$XDG_CONFIG_HOME/malaria-detect/credentials.json: a 0700 folder, a 0600 file written atomically, refused when
it is readable by others (as ssh refuses a private key). Every command exchanges the refresh token for an ID
token, which lives only in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from malaria_detect_client.errors import AuthError, ClientError, UsageError

IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com"
SECURE_TOKEN = "https://securetoken.googleapis.com"
TIMEOUT = (10, 30)
# Firebase ID tokens last an hour; a fresh one is fetched a little before, so a long upload never carries a
# token that expires on the way.
ID_TOKEN_SECONDS = 50 * 60

# Firebase's error codes (signInWithPassword and token refresh) in words a person can act on.
FIREBASE_MESSAGES = {
    "INVALID_LOGIN_CREDENTIALS": "The email or password is not right.",
    "INVALID_PASSWORD": "The email or password is not right.",
    "EMAIL_NOT_FOUND": "The email or password is not right.",
    "INVALID_EMAIL": "That is not a valid email address.",
    "MISSING_PASSWORD": "Enter your password.",
    "USER_DISABLED": "This account is disabled. Ask your lab administrator.",
    "TOO_MANY_ATTEMPTS_TRY_LATER": "Too many attempts. Wait a few minutes and try again.",
    "TOKEN_EXPIRED": "Your sign-in has expired: run `malaria-detect login` again.",
    "INVALID_REFRESH_TOKEN": "Your sign-in is no longer valid: run `malaria-detect login` again.",
    "USER_NOT_FOUND": "This account no longer exists: run `malaria-detect login` with another.",
    "API_KEY_INVALID": "The Firebase API key is not valid for this project (see --api-key).",
}
_FIREBASE_CONFIG = re.compile(r'<script id="firebase-config" type="application/json">(.*?)</script>', re.DOTALL)


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "malaria-detect"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


@dataclass
class Credentials:
    server: str
    email: str
    api_key: str
    refresh_token: str
    emulator: str = ""  # host:port of the Firebase Auth emulator (development servers only)


def credentials_save(credentials: Credentials, path: Path | None = None) -> Path:
    """Written to a 0600 temporary file in the 0700 folder, then renamed over the old one: never half-written,
    never readable by others, even for a moment."""
    path = path or credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)  # mkdir's mode is masked by the umask, and an existing folder keeps its own
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".json")  # 0600
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(asdict(credentials), file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def credentials_load(path: Path | None = None) -> Credentials:
    path = path or credentials_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AuthError("You are not signed in: run `malaria-detect login --server URL --email EMAIL`.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(
            f"{path} can be read by other users of this machine, so it is not used: remove it with "
            "`malaria-detect logout` and sign in again."
        )
    try:
        return Credentials(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise AuthError(f"{path} is damaged ({exc}): run `malaria-detect logout` and sign in again.") from None


def credentials_remove(path: Path | None = None) -> bool:
    path = path or credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def firebase_api_key(server: str, session: requests.Session) -> tuple[str, str]:
    """The Firebase web API key (public, as in every web app) from the server's sign-in page, and the Auth
    emulator the server trusts, if any (only development servers do)."""
    try:
        response = session.get(f"{server}/signin", timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise ClientError(f"The server {server} cannot be reached: {exc}") from None
    match = _FIREBASE_CONFIG.search(response.text) if response.ok else None
    if match is None:
        raise ClientError(
            f"{server}/signin does not look like Malaria Detect's sign-in page (HTTP {response.status_code}): check "
            "--server, or give the Firebase web API key with --api-key."
        )
    config = json.loads(match.group(1))
    emulator = (config.get("emulatorUrl") or "").removeprefix("http://")
    return config["apiKey"], emulator


class TokenSource:
    """ID tokens for the API, exchanged from the kept refresh token when the last one is near its end."""

    def __init__(
        self, credentials: Credentials, session: requests.Session, *, path: Path | None = None, id_token: str = ""
    ):
        """`id_token`: one just given by signing in, used until it is near its end."""
        self.credentials, self.session, self.path = credentials, session, path
        self._token, self._fetched_at = id_token, time.monotonic()

    def id_token(self, *, fresh: bool = False) -> str:
        if fresh or not self._token or time.monotonic() - self._fetched_at > ID_TOKEN_SECONDS:
            body = firebase_post(
                self.session,
                secure_token_url(self.credentials),
                data={"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token},
            )
            self._token, self._fetched_at = body["id_token"], time.monotonic()
            if body.get("refresh_token") and body["refresh_token"] != self.credentials.refresh_token:
                self.credentials.refresh_token = body["refresh_token"]  # Firebase may rotate it: keep the new one
                credentials_save(self.credentials, self.path)
        return self._token


def sign_in(*, email: str, password: str, api_key: str, emulator: str, session: requests.Session) -> dict:
    """Firebase's signInWithPassword: {idToken, refreshToken, ...}. The password is sent there and nowhere else."""
    base = f"http://{emulator}/identitytoolkit.googleapis.com" if emulator else IDENTITY_TOOLKIT
    return firebase_post(
        session,
        f"{base}/v1/accounts:signInWithPassword?key={api_key}",
        json={"email": email, "password": password, "returnSecureToken": True},
    )


def secure_token_url(credentials: Credentials) -> str:
    base = f"http://{credentials.emulator}/securetoken.googleapis.com" if credentials.emulator else SECURE_TOKEN
    return f"{base}/v1/token?key={credentials.api_key}"


def firebase_post(session: requests.Session, url: str, **kwargs) -> dict:
    try:
        response = session.post(url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        where = url.split("?")[0]
        raise ClientError(f"The sign-in service cannot be reached ({where}): {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.ok and isinstance(body, dict):
        return body
    code = str((body.get("error") or {}).get("message", "")) if isinstance(body, dict) else ""
    # Codes may carry a detail after " : " (e.g. "TOO_MANY_ATTEMPTS_TRY_LATER : Access to this account ...").
    message = FIREBASE_MESSAGES.get(code.split(" ")[0])
    if message is None:
        message = f"Signing in failed: {code or f'HTTP {response.status_code}'}."
    raise AuthError(message)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def check_server_url(server: str) -> str:
    server = server.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", server):
        raise UsageError(f"The server must be an http(s) URL such as https://malaria.example.org, not {server!r}.")
    if server.startswith("http://") and urlsplit(server).hostname not in LOOPBACK_HOSTS:
        # Every request carries a sign-in token (and patients' results come back): never in clear over a network.
        raise UsageError(f"Use https:// for {server}: plain http is only for a server on this machine (localhost).")
    return server
