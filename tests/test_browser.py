"""The pages in a real browser: headless Chromium (Debian's) driven by Playwright, against a live server,
the Firebase Auth emulator and a real Celery worker with the real model."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from diagnostics.models import Sample
from tests.celery_worker import CeleryWorker, purge_queue
from tests.cells import generated_cells
from tests.stored_cells import add_cells

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "correct-horse-battery"  # malaria_site.auth_emulator's default
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page whose every Content-Security-Policy violation fails the test (the policy is on, as in production)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    violations: list[str] = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    yield page
    context.close()
    assert violations == [], "the pages broke their Content-Security-Policy"


def sign_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/signin")
    page.fill("#signin-email", email)
    page.fill("#signin-password", PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/")


def test_clinician_signs_in_creates_a_patient_uploads_cells_and_opens_a_heatmap(page, live_server, clinician):
    purge_queue()
    worker = CeleryWorker().start()
    try:
        base = live_server.url
        sign_in(page, base, clinician.email)
        assert clinician.email in page.content()

        page.goto(f"{base}/patients/new")
        page.get_by_label(re.compile("Identifier")).fill("BROWSER-001")
        page.get_by_label(re.compile("Name")).fill("Grace Hopper")
        page.get_by_role("button", name="Add patient").click()
        page.wait_for_url(re.compile(r"/patients/\d+$"))
        page.get_by_role("link", name="New sample").first.click()
        page.get_by_role("button", name="Create sample and upload cells").click()
        page.wait_for_url(re.compile(r"/samples/\d+/upload$"))

        files = [{"name": name, "mimeType": "image/png", "buffer": data} for name, data in generated_cells(6)]
        page.set_input_files("#upload-images", files)
        assert page.locator("#previews li").count() == 6
        page.get_by_role("button", name=f"Remove {files[0]['name']}").click()
        assert page.locator("#previews li").count() == 5
        page.click("#upload-confirm")
        page.get_by_text("Classification complete.").wait_for(timeout=60_000)

        page.get_by_role("link", name="See the sample's results").click()
        page.wait_for_url(re.compile(r"/samples/\d+$"))
        assert page.locator("ul.cell-grid > li").count() == 5
        sample = Sample.objects.get(patient__identifier="BROWSER-001")
        assert sample.classified_count == 5
        assert sample.result in page.content().lower()

        page.locator("ul.cell-grid > li a").first.click()
        page.wait_for_url(re.compile(r"/images/\d+$"))
        heatmap = page.locator("img[src*='heatmap']")
        heatmap.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=heatmap.element_handle())
    finally:
        worker.stop()


def test_reviewer_overrides_a_result(page, live_server, clinician, reviewer, sample):
    add_cells(sample["id"], ["parasitized"] * 10 + ["uninfected"] * 30)
    automatic = Sample.objects.get(pk=sample["id"]).result
    assert automatic == "positive"
    base = live_server.url
    sign_in(page, base, reviewer.email)

    page.goto(f"{base}/reviews")
    page.locator(f"a[href='/samples/{sample['id']}/review']").first.click()
    page.wait_for_url(f"{base}/samples/{sample['id']}/review")
    page.get_by_label(re.compile("^Override")).check()
    page.get_by_label("Result (for an override)").select_option("indeterminate")
    page.get_by_label(re.compile("Comment")).fill("Stain artefacts, not rings: needs a thick film.")
    page.get_by_role("button", name="Save review").click()
    page.wait_for_load_state()

    reviewed = Sample.objects.get(pk=sample["id"])
    assert reviewed.result == "positive"
    assert reviewed.final_result == "indeterminate"
    page.goto(f"{base}/samples/{sample['id']}")
    assert "Stain artefacts" in page.content()


def test_clinician_of_another_lab_gets_404(page, live_server, patient, sample, other_lab_clinician):
    base = live_server.url
    sign_in(page, base, other_lab_clinician.email)
    for path in [f"/samples/{sample['id']}", f"/patients/{patient['id']}", f"/samples/{sample['id']}/upload"]:
        response = page.goto(f"{base}{path}")
        assert response.status == 404, path
        assert patient["identifier"] not in page.content(), path
        assert patient["name"] not in page.content(), path


def test_signing_in_works_from_the_keyboard_alone(page, live_server, clinician):
    base = live_server.url
    page.goto(f"{base}/signin")
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "signin-email":
            break
    else:
        raise AssertionError("the email field cannot be reached with Tab")
    page.keyboard.type(clinician.email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "signin-password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    page.keyboard.press("Tab")
    first = page.evaluate("[document.activeElement.tagName, document.activeElement.textContent.trim()]")
    assert first[0] == "A" and "skip" in first[1].lower(), f"the first Tab stop is {first}, not the skip link"


def test_no_page_is_wider_than_a_phone(page, live_server, clinician, reviewer, patient, sample):
    """Tables scroll inside their frame; nothing widens the page itself (a hidden header once did, on the
    webhooks page)."""
    from diagnostics.models import Webhook

    add_cells(sample["id"], ["parasitized"] * 2 + ["uninfected"] * 5)
    lab = Sample.objects.get(pk=sample["id"]).lab
    Webhook.objects.create(lab=lab, url="https://lis.example.org/hooks/" + "long-path/" * 8, description="LIS")
    page.set_viewport_size({"width": 375, "height": 800})
    base, sid, pid = live_server.url, sample["id"], patient["id"]
    for person, paths in (
        (clinician, ["/", "/patients", f"/patients/{pid}", f"/samples/{sid}", f"/samples/{sid}/upload", "/model"]),
        (reviewer, ["/reviews", f"/samples/{sid}/review", "/webhooks"]),
    ):
        page.context.clear_cookies()
        sign_in(page, base, person.email)
        for path in paths:
            page.goto(f"{base}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} is {width} px wide on a 375 px phone"
