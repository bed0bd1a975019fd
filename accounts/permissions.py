"""Who may call the API: signed-in members of a lab; reviewers for reviews."""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.models import Role
from accounts.selectors import membership_for_user

ACCESS_PENDING = "Your account is signed in but has no lab yet: access is pending until a lab administrator adds you."


class IsLabMember(BasePermission):
    """Authenticated and a member of a lab; sets request.membership for views and selectors."""

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated("Sign in: send 'Authorization: Bearer <Firebase ID token>'.")
        membership = membership_for_user(request.user)
        if membership is None:
            raise PermissionDenied(ACCESS_PENDING)
        request.membership = membership
        return True


class IsReviewer(IsLabMember):
    """Checked on the object (view.check_object_permissions), so another lab's object is a 404 first, never a 403."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.membership.role != Role.REVIEWER:
            raise PermissionDenied("Only a reviewer of this lab may do this.")
        return True
