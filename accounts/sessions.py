"""Page sessions bound to a Firebase sign-in: what the session remembers, and how revocation ends it."""

from __future__ import annotations

import logging

import firebase_admin
from django.contrib.auth import logout
from django.core.cache import cache
from firebase_admin import auth

from accounts.firebase import FirebaseIdentity, ensure_not_revoked, firebase_app, user_state_key

SESSION_UID = "firebase_uid"
SESSION_ISSUED_AT = "firebase_issued_at"

logger = logging.getLogger(__name__)


def session_bind(request, identity: FirebaseIdentity) -> None:
    """Remember which Firebase sign-in the session came from, so revoking it ends the session too."""
    request.session[SESSION_UID] = identity.uid
    request.session[SESSION_ISSUED_AT] = identity.issued_at


def session_identity(request) -> FirebaseIdentity | None:
    uid = request.session.get(SESSION_UID)
    if not uid:
        return None
    return FirebaseIdentity(uid=uid, email=request.user.email, issued_at=int(request.session.get(SESSION_ISSUED_AT, 0)))


def session_check(request) -> None:
    """Raise TokenRejected (revoked, disabled, deleted) or AuthServiceUnavailable; cached like API tokens."""
    identity = session_identity(request)
    if identity is not None:
        ensure_not_revoked(identity, firebase_app())


def session_end(request, *, revoke: bool) -> None:
    """Log out; with revoke, also revoke the user's Firebase refresh tokens (every device signs in again)."""
    uid = request.session.get(SESSION_UID) or getattr(request.user, "firebase_uid", None)
    logout(request)
    if not (revoke and uid):
        return
    try:
        auth.revoke_refresh_tokens(uid, app=firebase_app())
    except firebase_admin.exceptions.FirebaseError:
        # The local session is gone either way; other devices then end within the recheck interval.
        logger.warning("could not revoke the Firebase refresh tokens of %s", uid, exc_info=True)
        return
    # Other sessions of this user are rechecked on their next request, not after the cache expires.
    cache.delete(user_state_key(uid))
