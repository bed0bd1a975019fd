"""Ends page sessions whose Firebase account was revoked, disabled or deleted (rechecked every few minutes)."""

from __future__ import annotations

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import render

from accounts.firebase import AuthServiceUnavailable, TokenRejected
from accounts.sessions import SESSION_UID, session_check, session_end


class FirebaseSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.session.get(SESSION_UID) and request.user.is_authenticated:
            try:
                session_check(request)
            except TokenRejected as exc:
                session_end(request, revoke=False)
                messages.warning(request, f"You have been signed out. {exc}")
            except AuthServiceUnavailable as exc:
                # The session cannot be vouched for; refuse rather than serve a possibly revoked user.
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": str(exc)}, status=503)
                return render(request, "503.html", {"message": str(exc)}, status=503)
        return self.get_response(request)
