"""Who may open the pages: signed-in members of a lab (request.membership is set); reviewers for reviews."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.models import Role
from accounts.permissions import ACCESS_PENDING
from accounts.selectors import membership_for_user


def lab_member_required(view):
    """Anonymous users go to the sign-in page; a user without a lab gets the "access pending" page (403)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        membership = membership_for_user(request.user)
        if membership is None:
            return render(request, "accounts/access_pending.html", {"message": ACCESS_PENDING}, status=403)
        request.membership = membership
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def require_reviewer(request) -> None:
    """Called once the object is found, so another lab's object is a 404 before it is a 403."""
    if request.membership.role != Role.REVIEWER:
        raise PermissionDenied("Only a reviewer of this lab may review samples.")
