"""DRF authentication: `Authorization: Bearer <Firebase ID token>`."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.firebase import AuthServiceUnavailable, TokenRejected, verify_id_token
from accounts.services import PrivilegedAccountUnbound, user_sign_in

DEACTIVATED = "This account has been deactivated by a site administrator."


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The sign-in service cannot be reached; try again shortly."
    default_code = "auth_service_unavailable"


class FirebaseAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <Firebase ID token>'.")
        try:
            identity = verify_id_token(parts[1].decode("ascii", errors="replace"))
        except TokenRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        except AuthServiceUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc
        try:
            user = user_sign_in(identity=identity)
        except PrivilegedAccountUnbound as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        if not user.is_active:  # checked on every request, so a deactivation takes effect at once
            raise exceptions.AuthenticationFailed(DEACTIVATED)
        return user, identity

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return 'Bearer realm="api"'
