"""The site administrator's operations page: the work queue's depth and age, and the workers answering."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.celery_worker import CeleryWorker, purge_queue
from tests.factories import CellImageFactory, UserFactory
from tests.page_sessions import text_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_queue_depth_and_workers_are_shown_to_a_site_administrator(admin_client, stored_sample):
    purge_queue()
    CellImageFactory.create_batch(3, sample=stored_sample)  # queued, never sent: no worker will take them
    page = text_of(admin_client.get("/admin/operations"))
    assert "Cell images 3 0 0" in page
    assert "Workers answering (0)" in page and "nothing is being classified" in page
    worker = CeleryWorker().start()
    try:
        page = text_of(admin_client.get("/admin/operations"))
        assert "Workers answering (1)" in page
    finally:
        worker.stop()
    assert "Operations: work queue and workers" in text_of(admin_client.get("/admin/"))


def test_lab_members_are_sent_to_the_admin_sign_in():
    client = Client()
    client.force_login(UserFactory())  # a lab member: not staff
    response = client.get("/admin/operations")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
