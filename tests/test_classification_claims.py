"""The worker's side of "every cell classified exactly once", one function at a time (diagnostics/classification.py):
a claim is a conditional UPDATE, a released claim goes back to the queue, a stale claim's outcomes are ignored,
and the sweeper puts back what a dead worker held, fails what keeps failing and re-sends what the broker lost."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from django.utils import timezone

from diagnostics.classification import (
    CellOutcome,
    cell_images_claim,
    cell_images_release,
    cell_images_sweep_stalled,
    cell_outcomes_record,
)
from diagnostics.models import CellImage, Prediction, Sample
from tests.celery_worker import purge_queue, queued_tasks
from tests.factories import CellImageFactory, PredictionFactory

pytestmark = pytest.mark.django_db

CLASSIFY = "worker.tasks.classify_cell_images"


def classified(image_id: int, label: str = "parasitized") -> CellOutcome:
    return CellOutcome(image_id=image_id, label=label, probability=0.9, model_version="test-model")


def statuses(images) -> list[str]:
    return [CellImage.objects.get(pk=image.pk).status for image in images]


@pytest.fixture
def queued(stored_sample):
    """Three queued cell images of one sample."""
    return CellImageFactory.create_batch(3, sample=stored_sample)


def test_a_claim_takes_queued_images_and_marks_them_processing(queued, stored_sample):
    token, claimed = cell_images_claim(image_ids=[image.pk for image in queued])
    assert sorted(image.id for image in claimed) == [image.pk for image in queued]
    assert {image.file_name for image in claimed} == {image.file.name for image in queued}
    rows = CellImage.objects.filter(pk__in=[image.pk for image in queued])
    assert {(row.status, row.claim_token, row.attempts) for row in rows} == {("processing", token, 1)}
    assert all(row.claimed_at is not None for row in rows)
    sample = Sample.objects.get(pk=stored_sample.pk)
    assert (sample.status, sample.processing_count, sample.queued_count) == ("processing", 3, 0)


def test_a_second_claim_of_the_same_images_gets_nothing(queued):
    ids = [image.pk for image in queued]
    first, _ = cell_images_claim(image_ids=ids)
    second, claimed = cell_images_claim(image_ids=ids)
    assert claimed == []
    assert second != first
    assert set(CellImage.objects.filter(pk__in=ids).values_list("claim_token", "attempts")) == {(first, 1)}


def test_a_claim_skips_images_already_classified_or_failed(stored_sample):
    done = PredictionFactory(image__sample=stored_sample).image
    failed = CellImageFactory(sample=stored_sample, status="failed", error="not a readable image")
    waiting = CellImageFactory(sample=stored_sample)
    _, claimed = cell_images_claim(image_ids=[done.pk, failed.pk, waiting.pk])
    assert [image.id for image in claimed] == [waiting.pk]
    assert statuses([done, failed]) == ["classified", "failed"]


def test_recording_outcomes_writes_predictions_and_failures_and_recounts_the_sample(queued, stored_sample):
    token, _ = cell_images_claim(image_ids=[image.pk for image in queued])
    recorded = cell_outcomes_record(
        token=token,
        outcomes=[
            classified(queued[0].pk, "parasitized"),
            classified(queued[1].pk, "uninfected"),
            CellOutcome(image_id=queued[2].pk, error="not a readable image"),
        ],
    )
    assert recorded == 3
    assert statuses(queued) == ["classified", "classified", "failed"]
    assert CellImage.objects.get(pk=queued[2].pk).error == "not a readable image"
    assert sorted(Prediction.objects.values_list("label", flat=True)) == ["parasitized", "uninfected"]
    assert not CellImage.objects.filter(claim_token=token).exists()
    sample = Sample.objects.get(pk=stored_sample.pk)
    assert (sample.status, sample.classified_count, sample.failed_count) == ("complete", 2, 1)
    assert (sample.parasitized_count, sample.uninfected_count) == (1, 1)


def test_release_puts_the_unfinished_images_of_a_claim_back_in_the_queue(queued, stored_sample):
    token, _ = cell_images_claim(image_ids=[image.pk for image in queued])
    cell_outcomes_record(token=token, outcomes=[classified(queued[0].pk)])
    released = cell_images_release(token=token)
    assert sorted(released) == [queued[1].pk, queued[2].pk]
    assert statuses(queued) == ["classified", "queued", "queued"]
    rows = CellImage.objects.filter(pk__in=released)
    assert set(rows.values_list("claim_token", "claimed_at")) == {(None, None)}
    assert Sample.objects.get(pk=stored_sample.pk).queued_count == 2
    _, again = cell_images_claim(image_ids=released)
    assert sorted(image.id for image in again) == sorted(released), "released images can be claimed again"


def test_releasing_an_unknown_claim_changes_nothing(queued):
    token, _ = cell_images_claim(image_ids=[image.pk for image in queued])
    assert cell_images_release(token=uuid.uuid4()) == []
    assert statuses(queued) == ["processing"] * 3


def test_outcomes_of_a_stale_claim_are_ignored_after_a_sweep_and_a_new_claim(queued):
    """A worker thought dead (swept) finishes late: its outcomes must not land on images claimed again since."""
    ids = [image.pk for image in queued]
    stale, _ = cell_images_claim(image_ids=ids)
    assert sorted(cell_images_sweep_stalled(older_than_seconds=0)) == ids
    fresh, claimed = cell_images_claim(image_ids=ids)
    assert len(claimed) == 3

    assert cell_outcomes_record(token=stale, outcomes=[classified(image_id) for image_id in ids]) == 0
    assert cell_images_release(token=stale) == []
    assert not Prediction.objects.exists()
    assert statuses(queued) == ["processing"] * 3

    assert cell_outcomes_record(token=fresh, outcomes=[classified(i, "uninfected") for i in ids]) == 3
    assert list(Prediction.objects.values_list("label", flat=True)) == ["uninfected"] * 3
    assert set(CellImage.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {2}


def test_the_sweeper_leaves_recent_claims_alone(queued, settings):
    settings.PROCESSING_TIMEOUT_SECONDS = 120
    cell_images_claim(image_ids=[image.pk for image in queued])
    assert cell_images_sweep_stalled() == []
    assert statuses(queued) == ["processing"] * 3


def test_the_sweeper_requeues_stalled_claims_and_sends_them_again(
    queued, stored_sample, settings, django_capture_on_commit_callbacks
):
    settings.PROCESSING_TIMEOUT_SECONDS = 120
    ids = [image.pk for image in queued]
    cell_images_claim(image_ids=ids)
    CellImage.objects.filter(pk__in=ids).update(claimed_at=timezone.now() - dt.timedelta(seconds=121))
    purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(cell_images_sweep_stalled()) == ids
    assert statuses(queued) == ["queued"] * 3
    assert set(CellImage.objects.filter(pk__in=ids).values_list("claim_token", "claimed_at")) == {(None, None)}
    assert Sample.objects.get(pk=stored_sample.pk).queued_count == 3
    assert queued_tasks() == [(CLASSIFY, [ids])]


def test_the_sweeper_fails_images_after_max_attempts(queued, stored_sample):
    ids = [image.pk for image in queued]
    cell_images_claim(image_ids=ids)
    CellImage.objects.filter(pk=ids[0]).update(attempts=3)
    purge_queue()
    swept = cell_images_sweep_stalled(older_than_seconds=0, max_attempts=3)
    assert sorted(swept) == ids[1:], "the third attempt was the last"
    assert statuses(queued) == ["failed", "queued", "queued"]
    assert CellImage.objects.get(pk=ids[0]).error == "classification did not finish after 3 attempts"
    assert Sample.objects.get(pk=stored_sample.pk).failed_count == 1


def test_the_sweeper_resends_images_queued_for_too_long(stored_sample, settings, django_capture_on_commit_callbacks):
    """A broker that restarted empty lost the messages: images left queued are sent to the workers again."""
    settings.QUEUED_RESEND_SECONDS = 900
    lost = CellImageFactory(sample=stored_sample, enqueued_at=timezone.now() - dt.timedelta(seconds=901))
    recent = CellImageFactory(sample=stored_sample, enqueued_at=timezone.now() - dt.timedelta(seconds=60))
    purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        assert cell_images_sweep_stalled() == [lost.pk]
    assert queued_tasks() == [(CLASSIFY, [[lost.pk]])]
    assert CellImage.objects.get(pk=lost.pk).enqueued_at > recent.enqueued_at, "sent again now"
    assert statuses([lost, recent]) == ["queued", "queued"]


def test_the_sweeper_sends_images_that_were_never_sent(stored_sample, settings, django_capture_on_commit_callbacks):
    """The web process died between the upload's commit and its enqueue: the images are queued but never sent."""
    settings.QUEUED_RESEND_SECONDS = 900
    never_sent = CellImageFactory(sample=stored_sample, enqueued_at=None)
    just_uploaded = CellImageFactory(sample=stored_sample, enqueued_at=None)
    CellImage.objects.filter(pk=never_sent.pk).update(created_at=timezone.now() - dt.timedelta(seconds=901))
    purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        assert cell_images_sweep_stalled() == [never_sent.pk]
    assert queued_tasks() == [(CLASSIFY, [[never_sent.pk]])]
    assert CellImage.objects.get(pk=never_sent.pk).enqueued_at is not None
    assert CellImage.objects.get(pk=just_uploaded.pk).enqueued_at is None


def test_images_that_keep_crashing_the_engine_fail_on_the_third_attempt(queued, stored_sample):
    ids = [image.pk for image in queued]
    for _ in (1, 2):
        token, _ = cell_images_claim(image_ids=ids)
        assert sorted(cell_images_release(token=token, error=RuntimeError("interpreter crashed"))) == ids
        assert statuses(queued) == ["queued"] * 3
    token, _ = cell_images_claim(image_ids=ids)
    assert cell_images_release(token=token, error=RuntimeError("interpreter crashed")) == []
    assert statuses(queued) == ["failed"] * 3
    assert CellImage.objects.get(pk=ids[0]).error.startswith("classification failed on 3 attempts")
    assert Sample.objects.get(pk=stored_sample.pk).failed_count == 3


def test_a_stored_file_that_cannot_be_read_fails_the_cell_without_telling_the_lab_where_it_was(queued, caplog):
    from django.core.files.storage import default_storage

    from diagnostics.classification import cell_images_classify

    lost = queued[0]
    default_storage.delete(lost.file.name)
    cell_images_classify(image_ids=[lost.pk])
    lost.refresh_from_db()
    assert (lost.status, lost.error) == ("failed", "the stored image cannot be read")
    assert lost.file.name in caplog.text, "the path is in the log, for the team"


def test_a_redelivered_task_takes_over_a_claim_whose_process_is_gone(queued, stored_sample):
    """A pool child killed mid-chunk: Celery redelivers its message at once (reject on worker lost), and the new
    run takes the cells over instead of leaving them to the sweeper's two minutes."""
    import socket
    import subprocess
    import sys

    from diagnostics.classification import cell_images_claim

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = f"{socket.gethostname()}:{ended.stdout.strip()}", f"{socket.gethostname()}:{os.getppid()}"
    dead_claim, live_claim, other_host = queued
    for image, holder in ((dead_claim, dead), (live_claim, alive), (other_host, "another-host:1")):
        CellImage.objects.filter(pk=image.pk).update(
            status="processing", claim_token=uuid.uuid4(), claimed_at=timezone.now(), claimed_by=holder, attempts=1
        )
    token, claimed = cell_images_claim(image_ids=[image.pk for image in queued])
    assert [image.id for image in claimed] == [dead_claim.pk], "only the claim of a process that is gone"
    taken = CellImage.objects.get(pk=dead_claim.pk)
    assert (taken.claim_token, taken.attempts) == (token, 2)
    assert taken.claimed_by.endswith(f":{os.getpid()}")
    assert statuses([live_claim, other_host]) == ["processing", "processing"]


def test_a_retried_task_takes_back_what_its_earlier_try_could_not_release(queued, stored_sample):
    """PostgreSQL went away mid-task: the try could not release its claim, and its process lives on. The retry
    (same task id) takes the cells back at once instead of leaving them to the sweeper's two minutes; a claim
    of another task held by the same live process is left alone."""
    import socket

    from diagnostics.classification import cell_images_claim

    alive = f"{socket.gethostname()}:{os.getppid()}"
    earlier_try, other_task = queued[0], queued[1]
    for image, holder in ((earlier_try, f"{alive}/task-1"), (other_task, f"{alive}/task-2")):
        CellImage.objects.filter(pk=image.pk).update(
            status="processing", claim_token=uuid.uuid4(), claimed_at=timezone.now(), claimed_by=holder, attempts=1
        )
    token, claimed = cell_images_claim(image_ids=[earlier_try.pk, other_task.pk], run="task-1")
    assert [image.id for image in claimed] == [earlier_try.pk]
    assert CellImage.objects.get(pk=earlier_try.pk).claimed_by == f"{socket.gethostname()}:{os.getpid()}/task-1"
    assert statuses([other_task]) == ["processing"]


def test_a_broker_that_lost_its_messages_is_noticed_once_and_its_queued_images_are_sent_again(
    stored_sample, settings, django_capture_on_commit_callbacks
):
    """Redis restarted empty: the key kept beside the messages is gone too, so the next sweep re-sends every
    image still queued, without waiting QUEUED_RESEND_SECONDS."""
    import redis

    from diagnostics.work_queue import BROKER_SENTINEL, broker_emptied

    settings.QUEUED_RESEND_SECONDS = 900
    sent = CellImageFactory(sample=stored_sample, enqueued_at=timezone.now() - dt.timedelta(seconds=60))
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(BROKER_SENTINEL)
    assert broker_emptied() is True
    assert broker_emptied() is False, "one loss is reported once"
    purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        assert cell_images_sweep_stalled() == [], "a broker that kept its messages: nothing is sent twice"
    broker.delete(BROKER_SENTINEL)  # a restart without persistence: the messages and the key are gone
    assert broker_emptied() is True
    with django_capture_on_commit_callbacks(execute=True):
        assert cell_images_sweep_stalled(broker_emptied=True) == [sent.pk]
    assert queued_tasks() == [(CLASSIFY, [[sent.pk]])]


def test_the_sweeper_puts_back_at_once_what_a_dead_process_of_this_host_held(
    queued, stored_sample, django_capture_on_commit_callbacks
):
    """The whole worker killed: its messages come back only after the broker's visibility timeout, so the sweep
    (every 30 s) puts its rows back without waiting PROCESSING_TIMEOUT_SECONDS."""
    import socket
    import subprocess
    import sys

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan, live = queued[0], queued[1]
    for image, holder in (
        (orphan, f"{socket.gethostname()}:{ended.stdout.strip()}"),
        (live, f"{socket.gethostname()}:{os.getppid()}"),
    ):
        CellImage.objects.filter(pk=image.pk).update(
            status="processing", claim_token=uuid.uuid4(), claimed_at=timezone.now(), claimed_by=holder, attempts=1
        )
    purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        swept = cell_images_sweep_stalled()
    assert orphan.pk in swept and live.pk not in swept
    assert statuses([orphan, live]) == ["queued", "processing"]
