"""Writes about users, labs and roles.

Like diagnostics.services: keyword-only, typed, the acting user as `actor` and the request's facts as an
`AuditContext`. Both are optional here because management commands act with no person and no request.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.audit import NO_REQUEST, AuditContext, audit_record
from accounts.firebase import FirebaseIdentity
from accounts.models import Lab, Membership, Role, User, canonical_email


class PrivilegedAccountUnbound(Exception):
    """A first sign-in whose email is that of a staff or superuser account not yet linked to Firebase."""


def user_sign_in(*, identity: FirebaseIdentity) -> User:
    """The user for a verified token, created on first sign-in; the email follows Firebase's."""
    user = User.objects.filter(firebase_uid=identity.uid).first()
    if user is None:
        # A user added by an administrator before first sign-in is matched by email, but never a staff or
        # superuser account: whoever controls a mailbox (or an identity provider) must not inherit admin rights.
        user = User.objects.filter(
            email=identity.email, firebase_uid__isnull=True, is_staff=False, is_superuser=False
        ).first()
        if user is None and User.objects.filter(email=identity.email, firebase_uid__isnull=True).exists():
            raise PrivilegedAccountUnbound(
                "This email belongs to a site administrator's account, which is not opened by email alone: "
                "an administrator must link it (set its Firebase UID in the admin)."
            )
    if user is None:
        try:
            with transaction.atomic():
                return User.objects.create(username=identity.uid[:150], firebase_uid=identity.uid, email=identity.email)
        except IntegrityError:  # two first requests at once
            return User.objects.get(firebase_uid=identity.uid)
    changed = []
    if user.firebase_uid != identity.uid:
        user.firebase_uid, changed = identity.uid, [*changed, "firebase_uid"]
    if user.email != identity.email:
        user.email, changed = identity.email, [*changed, "email"]
    if changed:
        user.save(update_fields=changed)
    return user


def lab_create(*, name: str, actor: User | None = None, audit: AuditContext = NO_REQUEST) -> Lab:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "a lab needs a name"})
    try:
        with transaction.atomic():  # a duplicate name must not spoil a surrounding transaction
            lab = Lab.objects.create(name=name)
            audit_record(action="lab.create", context=audit, target=lab, actor=actor, lab=lab, detail={"name": name})
    except IntegrityError as exc:
        raise ValidationError({"name": f"a lab named {name!r} already exists"}) from exc
    return lab


def membership_set(
    *, lab: Lab, email: str, role: str, actor: User | None = None, audit: AuditContext = NO_REQUEST
) -> Membership:
    """Give the person with this email a role in a lab (one lab per person)."""
    email = canonical_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"role must be one of {', '.join(Role.values)}"})
    with transaction.atomic():
        existing = Membership.objects.select_for_update().filter(email=email).first()
        if existing and existing.lab_id != lab.id:
            raise ValidationError({"email": f"{email} is already a member of {existing.lab.name}"})
        previous = existing.role if existing else None
        if existing:
            existing.role = role
            existing.save(update_fields=["role"])
            membership = existing
        else:
            membership = Membership.objects.create(lab=lab, email=email, role=role)
        audit_record(
            action="membership.role_change",
            context=audit,
            target=membership,
            actor=actor,
            lab=lab,
            detail={"email": email, "from": previous, "to": role},
        )
    return membership
