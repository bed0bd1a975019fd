"""`make screenshots`: a PNG of every page, at desktop and phone width, for review (not part of `make test`).

pytest tests/screenshot_pages.py   (SCREENSHOT_DIR, default out/screenshots)

Also the first page of a sample's PDF report, at 60 dpi, in REPORT_IMAGE (default docs/images/report.png, which
the README shows).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.stored_cells import add_cells
from tests.test_browser import browser, sign_in  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.django_db(transaction=True)
OUT = Path(os.environ.get("SCREENSHOT_DIR", "out/screenshots"))
WIDTHS = {"desktop": (1280, 900), "phone": (375, 800)}
REPORT_IMAGE = Path(os.environ.get("REPORT_IMAGE", "docs/images/report.png"))


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


def report_picture(lab, clinician, reviewer):
    """The first page of a reviewed sample's PDF report, as the sample page's "PDF report" button downloads it:
    500 red cells, 12 parasitized and 4 uncertain, shown as real NIH cells when the shared set is here."""
    from diagnostics.models import CellImageStatus, Label, Patient
    from diagnostics.services import sample_refresh
    from tests.cells import SHARED_CELLS, as_png, cell_png
    from tests.factories import CellImageFactory, PredictionFactory, ReviewFactory, new_sample
    from tests.page_sessions import page_client

    patient = Patient.objects.create(lab=lab, identifier="MRN-0042", name="A. Example", sex="female", birth_year=1990)
    sample = new_sample(patient.pk, created_by=clinician.user)
    shared = {label: sorted((SHARED_CELLS / label).glob("*.*"))[:16] for label in ("Parasitized", "Uninfected")}
    calls = [(Label.PARASITIZED, 0.99 - n * 0.01, False) for n in range(12)]
    calls += [(Label.PARASITIZED, 0.62, True), (Label.UNINFECTED, 0.41, True), (Label.UNINFECTED, 0.3, True)]
    calls += [(Label.UNINFECTED, 0.2, True)] + [(Label.UNINFECTED, 0.02, False)] * 484
    for number, (label, probability, uncertain) in enumerate(calls):
        folder = shared["Parasitized" if number < 14 else "Uninfected"]
        png = as_png(folder[number % len(folder)]) if number < 16 and folder else cell_png()
        image = CellImageFactory(sample=sample, png=png, status=CellImageStatus.CLASSIFIED)
        PredictionFactory(image=image, label=label, probability=probability, uncertain=uncertain)
    ReviewFactory(sample=sample, reviewer=reviewer.user, result="positive", comment="Ring forms seen; agree.")
    sample_refresh(sample_id=sample.pk)  # counts, results and the final result (the review's)
    response = page_client(clinician).get(f"/samples/{sample.pk}/report.pdf")
    assert response.status_code == 200, response.status_code
    pdf = OUT / "report.pdf"
    pdf.write_bytes(response.content)
    REPORT_IMAGE.parent.mkdir(parents=True, exist_ok=True)
    first_page = ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"]
    subprocess.run([*first_page, str(pdf), str(REPORT_IMAGE.with_suffix(""))], check=True)


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


def webhook_with_deliveries(lab, reviewer, sample_id: int):
    """A receiver of the lab's information system, one delivery done and one waiting for its retry (made
    directly: registering one through the service would resolve its host name)."""
    import datetime as dt

    from django.utils import timezone

    from diagnostics.models import DeliveryStatus, Webhook, WebhookDelivery

    webhook = Webhook.objects.create(
        lab=lab,
        url="https://lis.example.org/hooks/malaria",
        description="The lab's information system",
        secret="screenshot-secret-not-a-real-one",
        created_by=reviewer.user,
    )
    payload = {"data": {"sample": {"id": sample_id}}}
    now = timezone.now()
    WebhookDelivery.objects.create(
        webhook=webhook,
        event_type="sample.classified",
        payload=payload,
        status=DeliveryStatus.DELIVERED,
        attempts=1,
        last_response_code=204,
        delivered_at=now,
    )
    WebhookDelivery.objects.create(
        webhook=webhook,
        event_type="sample.reviewed",
        payload=payload,
        attempts=2,
        last_error="The receiver did not answer within 5 s.",
        next_attempt_at=now + dt.timedelta(seconds=60),
    )


def test_screenshots(browser, live_server, clinician, reviewer, pending_user, patient, sample):  # noqa: F811
    from diagnostics.models import CellImage, Patient

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
    webhook_with_deliveries(Patient.objects.get(pk=pid).lab, reviewer, sid)  # the reviewer has signed in by now
    shoot(browser, base, reviewer.email, {"webhooks": "/webhooks"})
    shoot(browser, base, pending_user.email, {"access-pending": "/"})
    report_picture(Patient.objects.get(pk=pid).lab, clinician, reviewer)
    assert len(list(OUT.glob("*.png"))) >= 2 * 19
