"""Firebase ID tokens: verifying them, and refusing the emulator's unsigned tokens unless trusted.

Signature, expiry, issuer and audience are checked by firebase-admin. Revocation and disabled accounts
need a round trip to Firebase, so the answer is cached per user for FIREBASE_REVOCATION_CHECK_SECONDS
(default 5 minutes): a revoked or disabled user is locked out within that time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import firebase_admin
import google.auth.exceptions
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from firebase_admin import auth, credentials

from accounts.models import canonical_email

APP_NAME = "malaria-detect"
logger = logging.getLogger(__name__)


class TokenRejected(Exception):
    """The token is not acceptable: the caller is not signed in (HTTP 401)."""


class AuthServiceUnavailable(Exception):
    """Firebase (its certificates or user records) could not be reached: try again later (HTTP 503)."""


@dataclass(frozen=True)
class FirebaseIdentity:
    uid: str
    email: str  # canonical (accounts.models.canonical_email)
    issued_at: int
    auth_time: int = 0  # when the person last entered their credentials (not when the token was refreshed)
    provider: str = ""


def emulator_host() -> str:
    return os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", "") or settings.FIREBASE_AUTH_EMULATOR_HOST


def refuse_untrusted_emulator() -> None:
    """The emulator's tokens are unsigned: accepting them in production would let anyone sign in as anyone.

    Only a process whose settings decided at start-up to trust it (FIREBASE_AUTH_EMULATOR_TRUSTED=1, which
    needs DJANGO_DEBUG=1 and a demo- project) may use it. Checked at start-up and before every token, since
    firebase-admin follows FIREBASE_AUTH_EMULATOR_HOST wherever in the process it gets set.
    """
    host = emulator_host()
    if not host:
        return
    if not settings.FIREBASE_AUTH_EMULATOR_TRUSTED:
        raise ImproperlyConfigured(
            "FIREBASE_AUTH_EMULATOR_HOST is set but FIREBASE_AUTH_EMULATOR_TRUSTED is not: the Auth emulator's "
            "unsigned tokens are only accepted by a development process (DJANGO_DEBUG=1) that trusts it. "
            "Unset FIREBASE_AUTH_EMULATOR_HOST in production."
        )
    if not settings.FIREBASE_PROJECT_ID.startswith("demo-"):
        raise ImproperlyConfigured(
            f"FIREBASE_AUTH_EMULATOR_HOST is set but FIREBASE_PROJECT_ID {settings.FIREBASE_PROJECT_ID!r} is not a "
            "demo- project: the emulator may only stand in for a demo project."
        )
    # firebase-admin reads the variable from the environment itself.
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = host


def firebase_app() -> firebase_admin.App:
    try:
        return firebase_admin.get_app(APP_NAME)
    except ValueError:
        pass
    if settings.FIREBASE_CREDENTIALS_FILE:
        credential = credentials.Certificate(settings.FIREBASE_CREDENTIALS_FILE)
    else:
        # Looked up lazily; with the emulator, firebase-admin uses its own emulator credentials instead.
        credential = credentials.ApplicationDefault()
    app = firebase_admin.initialize_app(credential, {"projectId": settings.FIREBASE_PROJECT_ID}, name=APP_NAME)
    try:
        auth._get_client(app)  # noqa: SLF001 (loads the credential now, so a missing one is a clear error)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        firebase_admin.delete_app(app)
        raise ImproperlyConfigured(
            "No Firebase credentials: set FIREBASE_CREDENTIALS_FILE to a service-account JSON file (or provide "
            "Google application default credentials), or FIREBASE_AUTH_EMULATOR_HOST in development."
        ) from exc
    return app


def verify_id_token(token: str) -> FirebaseIdentity:
    """Check a Firebase ID token; raise TokenRejected or AuthServiceUnavailable (ImproperlyConfigured: see above)."""
    refuse_untrusted_emulator()
    app = firebase_app()
    try:
        claims = auth.verify_id_token(token, app=app, check_revoked=False, clock_skew_seconds=10)
    except auth.ExpiredIdTokenError as exc:
        raise TokenRejected("The sign-in token has expired: sign in again.") from exc
    except auth.CertificateFetchError as exc:
        raise AuthServiceUnavailable("The sign-in service cannot be reached; try again shortly.") from exc
    except (auth.InvalidIdTokenError, ValueError) as exc:
        raise TokenRejected(f"The sign-in token is not valid: {exc}") from exc
    sign_in = claims.get("firebase") or {}
    if sign_in.get("tenant"):
        raise TokenRejected("Tokens of a Firebase tenant are not accepted here.")
    provider = str(sign_in.get("sign_in_provider") or "")
    if provider not in settings.FIREBASE_SIGN_IN_PROVIDERS:
        accepted = ", ".join(settings.FIREBASE_SIGN_IN_PROVIDERS)
        raise TokenRejected(f"Signing in with {provider or 'this method'} is not accepted here (accepted: {accepted}).")
    email = canonical_email(claims.get("email") or "")
    if not email:
        raise TokenRejected("The sign-in token carries no email address.")
    if not claims.get("email_verified", False):
        # Lab membership is granted by email, so an unverified address must not be trusted.
        raise TokenRejected("The email address of this account is not verified.")
    identity = FirebaseIdentity(
        uid=claims["uid"],
        email=email,
        issued_at=int(claims["iat"]),
        auth_time=int(claims.get("auth_time") or 0),
        provider=provider,
    )
    ensure_not_revoked(identity, app)
    return identity


def user_state_key(uid: str) -> str:
    """Cache key of a user's disabled/revoked state (deleted at sign-out so every session rechecks)."""
    return f"firebase-user-state:{uid}"


def _cached(operation, *args):
    """The cache is a shortcut, not a dependency: with Redis down, users are checked against Firebase itself."""
    try:
        return operation(*args)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("the cache cannot be reached: checking the Firebase user without it")
        return None


def ensure_not_revoked(identity: FirebaseIdentity, app: firebase_admin.App) -> None:
    key = user_state_key(identity.uid)
    state = _cached(cache.get, key)
    if state is None:
        try:
            record = auth.get_user(identity.uid, app=app)
        except auth.UserNotFoundError as exc:
            raise TokenRejected("This account no longer exists.") from exc
        except (firebase_admin.exceptions.UnavailableError, firebase_admin.exceptions.UnknownError) as exc:
            raise AuthServiceUnavailable("The sign-in service cannot be reached; try again shortly.") from exc
        except firebase_admin.exceptions.FirebaseError as exc:
            if exc.http_response is None:  # a transport failure, not an answer
                raise AuthServiceUnavailable("The sign-in service cannot be reached; try again shortly.") from exc
            raise
        state = {"disabled": record.disabled, "valid_after_ms": record.tokens_valid_after_timestamp or 0}
        _cached(cache.set, key, state, settings.FIREBASE_REVOCATION_CHECK_SECONDS)
    if state["disabled"]:
        raise TokenRejected("This account is disabled.")
    if identity.issued_at * 1000 < state["valid_after_ms"]:
        raise TokenRejected("The sign-in token has been revoked: sign in again.")
