"""What cell images and field photographs share as queued work: releasing a claim and sweeping stalled work.

Both tables carry status (queued / processing / failed), claim_token, claimed_at, attempts, enqueued_at and
created_at (docs/decisions.md, "Lost work"). Claiming and recording differ (what a claim yields, what an
outcome writes) and stay with each kind; these two do not.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from diagnostics import services

QUEUED, PROCESSING, FAILED = "queued", "processing", "failed"
# A row is tried this many times (claims) before it fails for good: by the sweeper when its worker keeps dying,
# by claim_release when the work itself keeps raising.
MAX_ATTEMPTS = 3
# The database or the connection to it, not the work: the task retries these (worker/tasks.py) and a row
# is never failed for them.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

logger = logging.getLogger(__name__)


def this_process(run: str | None = None) -> str:
    """What a claim records of who holds it: host:pid, and the task run (its Celery task id) when known."""
    holder = f"{socket.gethostname()}:{os.getpid()}"
    # claimed_by holds 100 characters: a holder cut short is never taken over by its run (see take_over).
    return f"{holder}/{run}"[:CLAIMED_BY_LENGTH] if run else holder


CLAIMED_BY_LENGTH = 100  # the claimed_by column's length


def _gone(claimed_by: str) -> bool:
    """True only when the holder was a process of this host that no longer runs. Other hosts cannot be asked:
    their claims wait for the sweeper (PROCESSING_TIMEOUT_SECONDS), as do claims of a process whose pid a new
    process has taken since (it looks alive)."""
    host, _, pid = claimed_by.partition("/")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _earlier_try(claimed_by: str, run: str | None) -> bool:
    """True when the claim was made by an earlier try of the same task (same Celery task id): that try ended in
    an error it could not release its claim after (the database went away mid-task), and a task's tries never
    run at the same time. Were a message delivered twice at once, taking over stays safe: outcomes are
    recorded only under the claim token that claimed them, so the earlier holder records nothing."""
    return bool(run) and claimed_by.partition("/")[2] == run


def take_over(model: type[models.Model], ids: list[int], run: str | None = None) -> list[int]:
    """Put back in the queue the rows of `ids` whose claim is held by a process that is gone, or by an earlier
    try of this task run, so the claim that follows takes them (a redelivered task after its pool child was
    killed; a retried task after a database restart). Returns those ids."""
    held = model.objects.filter(pk__in=ids, status=PROCESSING).values_list("id", "claimed_by", "claim_token")
    orphaned = [
        (row_id, token) for row_id, holder, token in held if holder and (_gone(holder) or _earlier_try(holder, run))
    ]
    taken = []
    for row_id, token in orphaned:  # conditional on the same claim: two takers cannot both succeed
        if model.objects.filter(pk=row_id, claim_token=token, status=PROCESSING).update(
            status=QUEUED, claim_token=None, claimed_at=None
        ):
            taken.append(row_id)
    if taken:
        logger.warning("took over %d %s rows from a worker process or try that is gone", len(taken), model.__name__)
    return taken


def claim(model: type[models.Model], ids: list[int], run: str | None = None) -> uuid.UUID:
    """Claim the queued rows of `ids` for one task run (a conditional UPDATE: rows claimed or done are skipped,
    since tasks may run twice), after taking over the rows of a process or earlier try that is gone.
    Returns the token."""
    token = uuid.uuid4()
    take_over(model, ids, run)
    model.objects.filter(pk__in=ids, status=QUEUED).update(
        status=PROCESSING,
        claim_token=token,
        claimed_at=timezone.now(),
        claimed_by=this_process(run),
        attempts=F("attempts") + 1,
    )
    return token


def claim_release(
    model: type[models.Model], *, token: uuid.UUID, error: BaseException | None = None, work: str = "the work"
) -> list[int]:
    """Put a claim's unfinished rows back in the queue; returns the ids queued again.

    After an error that is not transient (a bug, or a file that crashes the detector or the interpreter), rows
    already claimed MAX_ATTEMPTS times fail with a message instead: one poisonous file must not travel between
    the worker and the sweeper for ever, holding its sample in "processing".
    """
    give_up_after = None if error is None or isinstance(error, TRANSIENT_ERRORS) else MAX_ATTEMPTS
    with transaction.atomic():
        rows = list(
            model.objects.filter(claim_token=token, status=PROCESSING).values_list("id", "sample_id", "attempts")
        )
        give_up = [row[0] for row in rows if give_up_after is not None and row[2] >= give_up_after]
        retry = [row[0] for row in rows if row[0] not in give_up]
        model.objects.filter(pk__in=retry).update(status=QUEUED, claim_token=None, claimed_at=None)
        if give_up:
            logger.error("%s failed %d times on %s %s", work, MAX_ATTEMPTS, model.__name__, give_up, exc_info=error)
            model.objects.filter(pk__in=give_up).update(
                status=FAILED,
                claim_token=None,
                error=f"{work} failed on {MAX_ATTEMPTS} attempts with an internal error; "
                "the error is logged for the team",
            )
        for sample_id in {row[1] for row in rows}:
            services.sample_refresh(sample_id=sample_id)
    return retry


BROKER_SENTINEL = "malaria-detect:broker-sentinel"


def broker_emptied() -> bool:
    """True when the broker has lost the messages it held (Redis restarted without them, failed over to an
    empty replica, or was flushed) since this was last asked: a key kept beside the messages is gone with them.
    The key is set again, so a loss is reported once. A new broker reports one at the first sweep too; what
    that re-sends is harmless, since a claim takes a row once however many messages name it."""
    from malaria_site.celery import app

    with app.connection_for_write() as connection:
        if connection.transport.driver_type != "redis":
            return False  # the filesystem broker of `make run` keeps its messages on disk
        return bool(connection.default_channel.client.set(BROKER_SENTINEL, timezone.now().isoformat(), nx=True))


def sweep_stalled(
    model: type[models.Model],
    *,
    enqueue: Callable[[list[int]], None],
    work: str,
    older_than_seconds: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    broker_emptied: bool = False,
) -> list[int]:
    """Rows stuck in 'processing' (their worker died) go back to the queue, or fail after max_attempts; queued
    rows whose message was lost (the broker restarted empty: at once when broker_emptied says so, else after
    QUEUED_RESEND_SECONDS) or never sent (the broker was down at upload, or the web process died between the
    upload's commit and its after-commit enqueue) are sent again. Returns the ids sent."""
    limit = older_than_seconds if older_than_seconds is not None else settings.PROCESSING_TIMEOUT_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=limit)
    # Claims of a process of this host that is gone need not wait for the timeout (a worker killed whole:
    # its messages come back only after the broker's visibility timeout).
    orphaned = [
        row_id
        for row_id, holder in model.objects.filter(status=PROCESSING).values_list("id", "claimed_by")
        if holder and _gone(holder)
    ]
    with transaction.atomic():
        stalled = model.objects.select_for_update(skip_locked=True).filter(
            Q(claimed_at__lt=cutoff) | Q(pk__in=orphaned), status=PROCESSING
        )
        rows = list(stalled.values_list("id", "attempts", "sample_id"))
        retry = [row[0] for row in rows if row[1] < max_attempts]
        give_up = [row[0] for row in rows if row[1] >= max_attempts]
        model.objects.filter(pk__in=retry).update(status=QUEUED, claim_token=None, claimed_at=None)
        model.objects.filter(pk__in=give_up).update(
            status=FAILED, claim_token=None, error=f"{work} did not finish after {max_attempts} attempts"
        )
        for sample_id in {row[2] for row in rows}:
            services.sample_refresh(sample_id=sample_id)
        resend_cutoff = timezone.now() - dt.timedelta(seconds=settings.QUEUED_RESEND_SECONDS)
        never_sent_cutoff = timezone.now() - dt.timedelta(seconds=settings.QUEUED_NEVER_SENT_SECONDS)
        lost_messages = Q(enqueued_at__lt=resend_cutoff) | Q(enqueued_at__isnull=True, created_at__lt=never_sent_cutoff)
        if broker_emptied:
            lost_messages |= Q(enqueued_at__isnull=False)
        lost = list(model.objects.filter(lost_messages, status=QUEUED).values_list("id", flat=True))
        if retry or lost:
            transaction.on_commit(lambda: enqueue(retry + lost))
    return retry + lost
