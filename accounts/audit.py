"""Writing audit events: every create, upload, review, export and role change goes through here."""

from __future__ import annotations

from typing import Any

from accounts.models import AuditEvent, Lab, User


def client_address(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy strips it.
    return request.META.get("REMOTE_ADDR") if request is not None else None


def audit_record(
    *,
    action: str,
    target: Any = None,
    actor: User | None = None,
    lab: Lab | None = None,
    request=None,
    detail: dict | None = None,
    object_type: str = "",
    object_id: str = "",
) -> AuditEvent:
    if target is not None:
        object_type = object_type or target._meta.model_name
        object_id = object_id or str(target.pk)
    return AuditEvent.objects.create(
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        lab=lab,
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=detail or {},
        ip_address=client_address(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
    )
