"""`make screenshots`: a PNG of every page, at desktop and phone width, for review (not part of `make test`).

pytest tests/screenshot_pages.py   (SCREENSHOT_DIR, default out/screenshots)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.stored_cells import add_cells
from tests.test_browser import browser, sign_in  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.django_db(transaction=True)
OUT = Path(os.environ.get("SCREENSHOT_DIR", "out/screenshots"))
WIDTHS = {"desktop": (1280, 900), "phone": (375, 800)}


def shoot(browser, base, email, pages: dict[str, str]):  # noqa: F811
    for device, (width, height) in WIDTHS.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        if email:
            sign_in(page, base, email)
        for name, path in pages.items():
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"{name}-{device}.png"), full_page=True)
        context.close()


def test_screenshots(browser, live_server, clinician, reviewer, pending_user, patient, sample):  # noqa: F811
    from diagnostics.models import CellImage

    OUT.mkdir(parents=True, exist_ok=True)
    add_cells(sample["id"], ["parasitized"] * 6 + ["uninfected"] * 20)
    add_cells(sample["id"], ["parasitized"] * 2, uncertain=True)
    cell = CellImage.objects.filter(sample_id=sample["id"]).first()
    base = live_server.url
    sid, pid = sample["id"], patient["id"]
    shoot(browser, base, None, {"signin": "/signin", "model-card": "/model"})
    shoot(
        browser,
        base,
        clinician.email,
        {
            "dashboard": "/",
            "patients": "/patients",
            "patient-new": "/patients/new",
            "patient": f"/patients/{pid}",
            "patient-edit": f"/patients/{pid}/edit",
            "sample-new": f"/patients/{pid}/samples/new",
            "sample-upload": f"/samples/{sid}/upload",
            "sample": f"/samples/{sid}",
            "sample-uncertain": f"/samples/{sid}?show=uncertain",
            "cell": f"/images/{cell.pk}",
            "not-found": "/samples/999999",
        },
    )
    shoot(browser, base, reviewer.email, {"review-queue": "/reviews", "review": f"/samples/{sid}/review"})
    shoot(browser, base, pending_user.email, {"access-pending": "/"})
    assert len(list(OUT.glob("*.png"))) >= 2 * 16
