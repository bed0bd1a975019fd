"""Sign-in pages: a Firebase ID token from the browser is exchanged once for a Django session."""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.contrib.auth import login
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_context, audit_record
from accounts.authentication import DEACTIVATED
from accounts.firebase import AuthServiceUnavailable, TokenRejected, emulator_host, verify_id_token
from accounts.selectors import membership_for_user
from accounts.services import PrivilegedAccountUnbound, user_sign_in
from accounts.sessions import session_bind, session_end

NO_TOKEN = "No sign-in token was sent. Signing in needs JavaScript: turn it on and try again."
SIGN_IN_NOT_RECENT = "This sign-in is too old to open a session: enter your email and password again."


def safe_next(request, candidate: str | None) -> str:
    """Where to go after signing in: a path on this site, never another host."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return "/"


def firebase_config() -> dict:
    """What the browser's Firebase SDK needs (all of it public)."""
    host = emulator_host() if settings.FIREBASE_AUTH_EMULATOR_TRUSTED else ""
    return {
        "apiKey": settings.FIREBASE_API_KEY,
        "projectId": settings.FIREBASE_PROJECT_ID,
        "authDomain": settings.FIREBASE_AUTH_DOMAIN,
        "emulatorUrl": f"http://{host}" if host else None,
        "googleSignIn": settings.FIREBASE_GOOGLE_SIGN_IN,
    }


def firebase_csp(config: dict) -> dict:
    """What the sign-in page's Firebase SDK reaches: the Auth REST endpoints (or the emulator in development)
    and, for Google's pop-up, the project's auth domain in a frame."""
    connect = ["https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com"]
    if config["emulatorUrl"]:
        connect.append(config["emulatorUrl"])
    # Google's pop-up sign-in loads Google's API script and shows the project's auth domain in a frame.
    return {
        "connect-src": connect,
        "script-src": ["https://apis.google.com"],
        "frame-src": [f"https://{config['authDomain']}"],
    }


def signin_page_response(request, *, next_url: str, error: str = "", status: int = 200):
    config = firebase_config()
    context = {
        "next": next_url,
        "error": error,
        "firebase_config": config,
        "google_sign_in": settings.FIREBASE_GOOGLE_SIGN_IN,
    }
    response = render(request, "accounts/signin.html", context, status=status)
    response._csp_update = firebase_csp(config)  # read by django-csp's middleware
    return response


@require_GET
@ensure_csrf_cookie
def signin(request):
    next_url = safe_next(request, request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    return signin_page_response(request, next_url=next_url)


@require_POST
def session_create(request):
    """POST an ID token (form field or JSON `id_token`) with the CSRF token; answers JSON to JSON requests."""
    wants_json = request.content_type == "application/json"
    if wants_json:
        try:
            body = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        body = body if isinstance(body, dict) else {}
    else:
        body = request.POST
    token = str(body.get("id_token") or "").strip()
    next_url = safe_next(request, body.get("next"))

    def refuse(message: str, status: int):
        if wants_json:
            return JsonResponse({"detail": message}, status=status)
        return signin_page_response(request, next_url=next_url, error=message, status=status)

    if not token:
        return refuse(NO_TOKEN, 401)
    try:
        identity = verify_id_token(token)
    except TokenRejected as exc:
        return refuse(str(exc), 401)
    except AuthServiceUnavailable as exc:
        return refuse(str(exc), 503)
    if time.time() - identity.auth_time > settings.FIREBASE_RECENT_SIGN_IN_SECONDS:
        return refuse(SIGN_IN_NOT_RECENT, 401)
    try:
        user = user_sign_in(identity=identity)
    except PrivilegedAccountUnbound as exc:
        return refuse(str(exc), 403)
    if not user.is_active:
        return refuse(DEACTIVATED, 401)
    login(request, user)  # a new session key and CSRF token: nothing from before signing in carries over
    session_bind(request, identity)
    membership = membership_for_user(user)
    audit_record(
        action="session.signin",
        context=audit_context(request),
        target=user,
        actor=user,
        lab=membership.lab if membership else None,
    )
    if wants_json:
        return JsonResponse({"redirect": next_url, "email": user.email})
    return redirect(next_url)


@require_POST
def signout(request):
    """Ends this session and revokes the user's Firebase refresh tokens (other devices sign in again too)."""
    user = request.user
    if user.is_authenticated:
        membership = membership_for_user(user)
        audit_record(
            action="session.signout",
            context=audit_context(request),
            target=user,
            actor=user,
            lab=membership.lab if membership else None,
        )
        session_end(request, revoke=True)
    return redirect(settings.LOGIN_URL)
