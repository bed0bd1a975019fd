"""The signed-in person's lab and role, for the page header."""

from __future__ import annotations

from accounts.models import Role
from accounts.selectors import membership_for_user


def membership(request) -> dict:
    member = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if member is None and user is not None and user.is_authenticated:
        member = membership_for_user(user)  # pages outside lab_member_required: errors, the model card
    return {"membership": member, "is_reviewer": member is not None and member.role == Role.REVIEWER}
