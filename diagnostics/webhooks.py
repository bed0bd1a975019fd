"""Webhooks: a lab's receivers, the events written for them with the change that caused them, and each delivery.

An event is written as one WebhookDelivery per active receiver of the sample's lab, in the transaction of the
change itself (an outbox: no event without its change, no change without its events), and sent once that
commits, by a task on a queue of its own (worker/tasks.py deliver_webhook). Celery retries a delivery with
back-off; each attempt and its outcome is stored for the lab to see. The body is signed (HMAC-SHA256 over
"<timestamp>.<body>") so a receiver can check it came from here and is fresh (docs/webhooks.md).

Events carry no patient data (no name, no identifier, no review comment): only ids, statuses and results.
A receiver that needs more asks the API with its own credentials.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.audit import AuditContext, audit_record
from accounts.models import Membership, Role, User
from diagnostics import selectors
from diagnostics.models import DeliveryStatus, Sample, Webhook, WebhookDelivery
from diagnostics.webhook_transport import ReceiverRefused, ReceiverUnreachable, receiver_post, receiver_resolve

DELIVER_TASK = "worker.tasks.deliver_webhook"
SIGNATURE_HEADER = "Malaria-Detect-Signature"
SAMPLE_CLASSIFIED = "sample.classified"
SAMPLE_REVIEWED = "sample.reviewed"
EVENT_TYPES = (SAMPLE_CLASSIFIED, SAMPLE_REVIEWED)
ONLY_REVIEWERS = "Only a reviewer of this lab may manage webhooks."

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """An attempt failed and another will follow (the task's autoretry_for)."""


def webhooks_manage_refusal(membership: Membership) -> str | None:
    """Why this member may not add or remove the lab's webhooks, or None (the services enforce it, pages ask)."""
    return None if membership.role == Role.REVIEWER else ONLY_REVIEWERS


# -- receivers -------------------------------------------------------------------------------------------


def webhook_create(
    *, actor: User, membership: Membership, audit: AuditContext, url: str, description: str = ""
) -> Webhook:
    """Register a receiver for the lab's events; its URL must be http(s) and resolve to public addresses only."""
    refusal = webhooks_manage_refusal(membership)
    if refusal:
        raise PermissionDenied(refusal)
    webhook = Webhook(lab=membership.lab, url=url.strip(), description=description.strip(), created_by=actor)
    webhook.full_clean()
    try:
        receiver_resolve(webhook.url, allowed=settings.WEBHOOK_ALLOWED_NETWORKS)
    except ReceiverRefused as refused:
        raise ValidationError({"url": str(refused)}) from None
    with transaction.atomic():
        webhook.save()
        audit_record(
            action="webhook.create",
            context=audit,
            target=webhook,
            actor=actor,
            lab=membership.lab,
            detail={"url": webhook.url},
        )
    return webhook


def webhook_delete(*, webhook: Webhook, actor: User, membership: Membership, audit: AuditContext) -> None:
    """Remove a receiver and its deliveries (the audit event keeps its URL); deliveries in flight are dropped."""
    if webhook.lab_id != membership.lab_id:
        raise ValidationError("This webhook is not in your lab.")
    refusal = webhooks_manage_refusal(membership)
    if refusal:
        raise PermissionDenied(refusal)
    with transaction.atomic():
        audit_record(
            action="webhook.delete",
            context=audit,
            target=webhook,
            actor=actor,
            lab=membership.lab,
            detail={"url": webhook.url, "deliveries": webhook.deliveries.count()},
        )
        webhook.delete()


# -- events ----------------------------------------------------------------------------------------------


def sample_event(sample: Sample, event_type: str) -> dict:
    """An event's body: ids, statuses and results only, never patient data (docs/webhooks.md, "Payload")."""
    data: dict = {
        "sample": {
            "id": sample.pk,
            "url": f"/api/v1/samples/{sample.pk}",
            "status": sample.status,
            "result": sample.result or None,
            "result_reason": sample.result_reason,
            "final_result": sample.final_result or None,
            "parasitemia": sample.parasitemia,
            "parasitemia_low": sample.parasitemia_low,
            "parasitemia_high": sample.parasitemia_high,
            "cells": {
                "total": sample.total_count,
                "classified": sample.classified_count,
                "failed": sample.failed_count,
                "parasitized": sample.parasitized_count,
                "uncertain": sample.uncertain_count,
            },
        }
    }
    if event_type == SAMPLE_REVIEWED:
        review = selectors.latest_review(sample)
        if review is not None:
            # Not the comment (free text may name the patient) nor the reviewer (staff are people too).
            data["review"] = {
                "id": review.pk,
                "decision": review.decision,
                "result": review.result,
                "created": review.created_at.isoformat(),
            }
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "created": timezone.now().isoformat(),
        "lab": sample.lab_id,
        "data": data,
    }


def sample_event_record(*, sample: Sample, event_type: str) -> list[WebhookDelivery]:
    """Write the event's deliveries in the caller's transaction; they are sent once it commits."""
    webhooks = list(Webhook.objects.filter(lab_id=sample.lab_id, active=True))
    if not webhooks:
        return []
    event = sample_event(sample, event_type)
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(webhook=webhook, event_id=event["id"], event_type=event_type, payload=event)
            for webhook in webhooks
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    # robust: the change is committed by then; a broker that is down must not fail it (the relay re-sends).
    transaction.on_commit(lambda: deliveries_enqueue(delivery_ids=ids), robust=True)
    return deliveries


def deliveries_enqueue(*, delivery_ids: Sequence[int]) -> None:
    from malaria_site.celery import app

    for delivery_id in delivery_ids:
        app.send_task(DELIVER_TASK, args=[delivery_id])  # routed to WEBHOOK_QUEUE (CELERY_TASK_ROUTES)
        WebhookDelivery.objects.filter(pk=delivery_id).update(enqueued_at=timezone.now())


def deliveries_resend_unsent(*, broker_emptied: bool = False) -> list[int]:
    """The outbox's relay: pending deliveries whose task never reached the broker (it was down when the event
    was written), or was lost there, are sent again: at once when the broker is known to have lost its messages
    (work_queue.broker_emptied; a retry waiting for its time is lost with them), else after QUEUED_RESEND_SECONDS.
    A delivery may so arrive twice: receivers dedupe by id."""
    now = timezone.now()
    never_sent = now - dt.timedelta(seconds=settings.QUEUED_NEVER_SENT_SECONDS)
    lost = now - dt.timedelta(seconds=settings.QUEUED_RESEND_SECONDS)
    unsent = (
        Q(enqueued_at__isnull=True, created_at__lt=never_sent)
        | Q(attempts=0, enqueued_at__lt=lost)
        | Q(next_attempt_at__lt=lost)
    )
    if broker_emptied:
        unsent |= Q(enqueued_at__isnull=False)
    ids = list(WebhookDelivery.objects.filter(unsent, status=DeliveryStatus.PENDING).values_list("id", flat=True))
    if ids:
        deliveries_enqueue(delivery_ids=ids)
    return ids


# -- signing and sending ---------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret, in hex (docs/webhooks.md)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def delivery_send(*, delivery_id: int, retry_in: float | None) -> str:
    """One attempt at a delivery; returns its status. `retry_in`: seconds until the task's next attempt, None
    when this is its last. A failed attempt with attempts left raises DeliveryFailed (the task retries)."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone"  # its webhook was removed
    if delivery.status != DeliveryStatus.PENDING:
        return delivery.status  # done by an earlier run of this task (tasks may run twice)
    webhook = delivery.webhook
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "MalariaDetect-Webhooks/1",
        "Malaria-Detect-Event": delivery.event_type,
        "Malaria-Detect-Event-Id": str(delivery.event_id),
        SIGNATURE_HEADER: signature_header(webhook.secret, int(time.time()), body),
    }
    code, error, retryable = None, "", True
    if not webhook.active:
        error, retryable = "The webhook was deactivated.", False
    else:
        try:
            # Checked again at each attempt: the name's addresses may have changed since it was registered.
            receiver = receiver_resolve(webhook.url, allowed=settings.WEBHOOK_ALLOWED_NETWORKS)
            code = receiver_post(
                receiver,
                body=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                ca_bundle=settings.WEBHOOK_CA_BUNDLE or None,
            )
        except ReceiverRefused as refused:
            error, retryable = str(refused), False  # the URL is not allowed: trying again changes nothing
        except ReceiverUnreachable as unreachable:
            error = str(unreachable)
        else:
            if 300 <= code < 400:
                error = f"The receiver answered {code}: redirects are not followed."
            elif not 200 <= code < 300:
                error = f"The receiver answered {code}."
    now = timezone.now()
    last = retry_in is None or not retryable or delivery.attempts + 1 >= settings.WEBHOOK_MAX_ATTEMPTS
    status = DeliveryStatus.DELIVERED if not error else DeliveryStatus.FAILED if last else DeliveryStatus.PENDING
    # Conditional on still pending: a concurrent run of the same task that already finished it wins.
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
        status=status,
        attempts=F("attempts") + 1,
        last_response_code=code,
        last_error=error[:200],
        delivered_at=now if not error else None,
        next_attempt_at=None if status != DeliveryStatus.PENDING else now + dt.timedelta(seconds=retry_in or 0),
    )
    if status == DeliveryStatus.PENDING:
        raise DeliveryFailed(error)
    if status == DeliveryStatus.FAILED:
        logger.warning("webhook delivery %s failed for good: %s", delivery.pk, error)
    return status
