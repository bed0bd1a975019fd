"""A field photograph through the pages in a real browser (headless Chromium, the page's JavaScript, the API, and a
real Celery worker that segments the field and classifies its cells with the real model)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.celery_worker import CeleryWorker, purge_queue
from tests.test_browser import browser, page, sign_in  # noqa: F401 (fixtures)
from tests.test_field_detection import drawn_field

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CENTRES = [(x, y) for y in (200, 500, 800) for x in (200, 500, 800, 1100)]


def test_a_field_uploaded_with_javascript_shows_a_box_on_each_cell(page, live_server, clinician, sample):  # noqa: F811
    buffer = io.BytesIO()
    Image.fromarray(drawn_field([*CENTRES, (1262, 350)])).save(buffer, format="JPEG", quality=92)
    purge_queue()
    worker = CeleryWorker().start()
    try:
        base = live_server.url
        sign_in(page, base, clinician.email)
        page.goto(f"{base}/samples/{sample['id']}")
        page.get_by_role("link", name="Upload field photographs").click()
        page.wait_for_url(re.compile(r"/upload\?kind=fields$"))
        assert page.locator("#upload-camera").get_attribute("capture") == "environment"

        page.set_input_files(
            "#upload-fields", [{"name": "smear.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}]
        )
        assert page.locator("#previews li").count() == 1
        page.get_by_role("button", name="Upload 1 field photograph").click()
        page.get_by_text("Classification complete.").wait_for(timeout=90_000)
        assert page.locator("#red-cell-count [data-count='classified']").inner_text() == "12"

        page.get_by_role("link", name="Field smear.jpg").click()
        page.wait_for_url(re.compile(r"/fields/\d+$"))
        boxes = page.locator("svg.field-view a")
        assert boxes.count() == 13
        assert page.locator("svg.field-view rect.box-edge").count() == 1
        photograph = page.locator(".field-frame img")
        page.wait_for_function("img => img.complete && img.naturalWidth === 1280", arg=photograph.element_handle())
        label = boxes.first.get_attribute("aria-label")
        assert re.fullmatch(r"cell 1: (parasitized|uninfected), 0\.\d\d(, uncertain)?", label), label

        boxes.first.click()
        page.wait_for_url(re.compile(r"/images/\d+$"))
        page.locator("img[src*='heatmap']").wait_for()
    finally:
        worker.stop()
