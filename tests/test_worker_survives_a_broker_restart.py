"""The worker outlives its broker: Redis restarted empty under a running worker, which reconnects, notices the
lost messages at its next sweep and takes up what was waiting; and it outlives a restart with a task in hand.

A Redis of the test's own (the suite's serves every other test). Celery 5.7.0's worker exited on a broker loss
under the fault suite's load ("Unrecoverable error: AttributeError ... hostname", see pyproject.toml); this test
passes with 5.7.0 too (one chunk in hand is not enough to trigger it), so `make test-faults` is the check that
an upgrade of Celery must pass.
"""

from __future__ import annotations

import time

import pytest

from malaria_site.auth_emulator import free_port
from tests.celery_worker import CeleryWorker, purge_queue
from tests.cells import generated_cells, upload
from worker.tools.faults import Redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def own_redis():
    redis = Redis(free_port())  # the fault suite's: no persistence, so a kill loses every message
    redis.start()
    yield redis
    if redis.process.poll() is None:
        redis.kill()


def restart(redis: Redis) -> None:
    redis.kill()
    time.sleep(1)
    redis.start()


def test_a_worker_reconnects_after_redis_restarts_empty_and_its_sweep_resends_the_lost_work(
    own_redis, clinician, sample
):
    # The worker holds the first chunk it claims (tests/celery_app.py): a task in hand when Redis goes next.
    worker = CeleryWorker(
        pause_after_claim=True, TEST_REDIS_BROKER_URL=f"redis://127.0.0.1:{own_redis.port}/0", SWEEP_INTERVAL_SECONDS=1
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while "sweep_stalled_cell_images" not in worker.log() or " succeeded " not in worker.log():
            assert time.monotonic() < deadline, f"no sweep ran:\n{worker.log()[-3000:]}"
            time.sleep(0.2)  # the first sweep has marked this broker as holding its messages
        # Sent to the suite's broker, which this worker does not read: to this worker the messages are as good
        # as sent and then lost with the broker below. Only the sweep's re-send can bring them here.
        response = upload(clinician.client(), sample["id"], generated_cells(5))
        assert response.status_code == 202, response.content
        accepted = sorted(image["id"] for image in response.json()["accepted"])

        restart(own_redis)
        assert sorted(worker.paused_claim(timeout=60)) == accepted, "the lost work was sent again and taken"

        restart(own_redis)  # now with a task in hand, its message unacknowledged
        time.sleep(5)
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()[-3000:]}"
        assert worker.log().count("Connection to broker lost") == 2, "the broker went away under the worker twice"
    finally:
        worker.kill()
        purge_queue()  # the messages the suite's broker got, for no worker
