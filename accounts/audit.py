"""Writing audit events: every create, upload, review, export and role change goes through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import AuditEvent, Lab, User

USER_AGENT_MAX_LENGTH = 300  # AuditEvent.user_agent's length


@dataclass(frozen=True)
class AuditContext:
    """Where an action came from, as plain values: what an audit event keeps of the HTTP request.

    Services take one of these, never the request.
    """

    ip_address: str | None = None
    user_agent: str = ""


NO_REQUEST = AuditContext()  # a management command or a test acting without an HTTP request


def audit_context(request) -> AuditContext:
    """Built once per request, by the view that calls a service."""
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy strips it.
    return AuditContext(
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH],
    )


def audit_record(
    *,
    action: str,
    context: AuditContext,
    target: Any = None,
    actor: User | None = None,
    lab: Lab | None = None,
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
        ip_address=context.ip_address,
        user_agent=context.user_agent,
    )
