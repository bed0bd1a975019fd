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


def segmented_field(sample_id: int):
    """A drawn 1280 x 960 field with boxed cells of every kind: parasitized, uninfected, uncertain, cut by the edge,
    not yet classified, and objects left out."""
    import io

    from PIL import Image

    from diagnostics.models import FieldStatus, Label, Sample
    from tests.factories import CellImageFactory, FieldFactory, PredictionFactory
    from tests.test_field_detection import drawn_field

    centres = [(x, y) for y in (200, 500, 800) for x in (200, 500, 800, 1100)] + [(1262, 350)]
    buffer = io.BytesIO()
    Image.fromarray(drawn_field(centres, white_cells=[(650, 350)])).save(buffer, format="PNG")
    sample = Sample.objects.get(pk=sample_id)
    field = FieldFactory(
        sample=sample,
        png=buffer.getvalue(),
        original_filename="smear-01.png",
        status=FieldStatus.SEGMENTED,
        quality=["out of focus"],
        skipped=[{"box": [603, 303, 697, 397], "kind": "white cell"}],
    )
    calls = [(Label.PARASITIZED, False), (Label.UNINFECTED, False), (Label.PARASITIZED, True), None]
    for number, (x, y) in enumerate(centres):
        edge = x + 36 >= 1280
        image = CellImageFactory(
            sample=sample, field=field, box=[x - 37, y - 37, min(x + 37, 1280), y + 37], counted=not edge
        )
        call = calls[number % 4] if number < 11 else (Label.UNINFECTED, False)
        if call:
            PredictionFactory(image=image, label=call[0], uncertain=call[1])
    return field


def test_screenshots(browser, live_server, clinician, reviewer, pending_user, patient, sample):  # noqa: F811
    from diagnostics.models import CellImage

    OUT.mkdir(parents=True, exist_ok=True)
    add_cells(sample["id"], ["parasitized"] * 6 + ["uninfected"] * 20)
    add_cells(sample["id"], ["parasitized"] * 2, uncertain=True)
    cell = CellImage.objects.filter(sample_id=sample["id"]).first()
    field = segmented_field(sample["id"])
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
            "sample-upload-fields": f"/samples/{sid}/upload?kind=fields",
            "field": f"/fields/{field.pk}",
            "not-found": "/samples/999999",
        },
    )
    shoot(browser, base, reviewer.email, {"review-queue": "/reviews", "review": f"/samples/{sid}/review"})
    shoot(browser, base, pending_user.email, {"access-pending": "/"})
    assert len(list(OUT.glob("*.png"))) >= 2 * 18
