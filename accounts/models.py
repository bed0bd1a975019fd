"""Who is who: users (from Firebase), labs (the tenancy boundary), memberships (a role in a lab), audit."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


def canonical_email(email: str) -> str:
    """The one form an email is stored and compared in: NFC, trimmed, lower-cased by Python.

    Compared with `=`, never `iexact`: PostgreSQL's UPPER() folds the dotless ı of "alıce" to I, which would
    match alice's membership. Python's lower() leaves distinct letters distinct (no case folding of ß or ı).
    """
    return unicodedata.normalize("NFC", email.strip()).lower()


class User(AbstractUser):
    """A person signed in through Firebase; created on their first valid ID token."""

    firebase_uid = models.CharField(max_length=128, unique=True, null=True, blank=True)
    email = models.EmailField(unique=True)

    def save(self, *args, **kwargs):
        self.email = canonical_email(self.email or "")
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email or self.username


class Lab(models.Model):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    REVIEWER = "reviewer", "Reviewer"


class Membership(models.Model):
    """A role in one lab, granted by email so it can be set before the person first signs in."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="memberships")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="one_lab_per_email")]

    def save(self, *args, **kwargs):
        self.email = canonical_email(self.email)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.email}: {self.role} of {self.lab}"


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Written by accounts.audit; never edited."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_email = models.EmailField(blank=True)
    lab = models.ForeignKey(Lab, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    action = models.CharField(max_length=50, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email} {self.action} {self.object_type} {self.object_id}"
