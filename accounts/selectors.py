"""Reads about users, labs and roles."""

from __future__ import annotations

from accounts.models import Membership, User, canonical_email


def membership_for_user(user: User) -> Membership | None:
    if not user or not user.is_authenticated or not user.email:
        return None
    return Membership.objects.select_related("lab").filter(email=canonical_email(user.email)).first()
