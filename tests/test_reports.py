"""A sample's PDF report (issue 11): what a lab prints or attaches to the patient's record.

The PDF is read back as a reader would: its text with poppler's `pdftotext`, its first page as pixels with
`pdftoppm`. WeasyPrint renders it for real, with its fetcher that refuses every URL but data:.
"""

from __future__ import annotations

import http.server
import io
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image, ImageDraw
from rest_framework.test import APIClient

from diagnostics.models import CellImageStatus, FieldStatus, Label, Review, Sample
from diagnostics.reports import MOSAIC_MAX_PARASITIZED, data_only_fetcher, render_pdf
from diagnostics.served_model import served_model
from diagnostics.services import sample_refresh
from diagnostics.templatetags.lab_format import percent
from tests.factories import CellImageFactory, FieldFactory, PredictionFactory, days_ago, new_sample
from tests.page_sessions import page_client
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db

PINK = (225, 150, 185)  # the generated cells' colour (tests.cells.cell_png)


def pdf_text(pdf: bytes) -> str:
    """The PDF's text, whitespace collapsed (pdftotext lays tables out with runs of spaces)."""
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return re.sub(r"\s+", " ", text)


def first_page(pdf: bytes, tmp_path: Path, dpi: int = 50) -> Image.Image:
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", str(source), str(tmp_path / "page")],
        check=True,
    )
    return Image.open(tmp_path / "page.png").convert("RGB")


def pixels_near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 30) -> int:
    difference = np.abs(np.asarray(image, dtype=np.int16) - np.array(colour, dtype=np.int16))
    return int(np.all(difference <= tolerance, axis=-1).sum())


def field_photo() -> bytes:
    """A field photograph: pale background with pink red cells."""
    image = Image.new("RGB", (800, 600), (235, 235, 225))
    draw = ImageDraw.Draw(image)
    for x in range(60, 800, 140):
        for y in range(60, 600, 140):
            draw.ellipse((x - 45, y - 45, x + 45, y + 45), fill=PINK)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def full_patient(clinician):
    response = clinician.client().post(
        "/api/v1/patients",
        {"identifier": "MRN-77/2026", "name": "Grace Hopper", "sex": "female", "birth_year": 1985},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def classified_sample(clinician, full_patient) -> Sample:
    """Positive by the model: 3 of 20 counted red cells parasitized and 2 uncertain, plus one segmented field
    photograph whose 2 red cells (1 parasitized) are among them."""
    sample = new_sample(full_patient["id"], collected_at=days_ago(1), created_by=clinician.user)
    add_cells(sample.pk, ["parasitized"] * 2 + ["uninfected"] * 15)
    add_cells(sample.pk, ["uninfected"] * 2, uncertain=True)
    field = FieldFactory(
        sample=sample, png=field_photo(), original_filename="smear-01.png", status=FieldStatus.SEGMENTED
    )
    for index, label in enumerate([Label.PARASITIZED, Label.UNINFECTED]):
        image = CellImageFactory(
            sample=sample, field=field, box=[index * 100, 0, index * 100 + 90, 90], status=CellImageStatus.CLASSIFIED
        )
        PredictionFactory(image=image, label=label)
    sample_refresh(sample_id=sample.pk)
    return Sample.objects.get(pk=sample.pk)


def report(person, sample_id: int, **headers):
    return person.client().get(f"/api/v1/samples/{sample_id}/report.pdf", **headers)


def test_the_report_says_what_the_lab_needs_and_is_preliminary_before_review(
    clinician, lab_a, classified_sample, tmp_path
):
    sample = classified_sample
    assert (sample.classified_count, sample.parasitized_count, sample.uncertain_count) == (21, 3, 2)
    response = report(clinician, sample.pk)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="report-sample-{sample.pk}-MRN-77-2026.pdf"'
    assert response["Cache-Control"] == "no-store"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    for expected in [
        lab_a.name,
        "Identifier MRN-77/2026",
        "Name Grace Hopper",
        "Sex Female",
        "Birth year 1985",
        f"Collected {days_ago(1)}",
        f"Created by {clinician.email}",
        "Final result Positive (preliminary)",
        f"Automatic result Positive: {sample.result_reason}",
        f"Parasitemia {percent(sample.parasitemia, 2)} (95 % interval {percent(sample.parasitemia_low, 2)} to "
        f"{percent(sample.parasitemia_high, 2)})",
        "Red cells counted 21",
        "Parasitized 3",
        "Uncertain 2",
        "Not yet reviewed: preliminary",
        "Confidently parasitized (showing 3 of 3)",
        "Uncertain (showing 2 of 2)",
        "Field photographs (showing 1 of 1)",
        "smear-01.png: 2 red cells counted, 1 parasitized, 0 uncertain",
        "Model test-model",
        served_model().intended_use,
    ]:
        assert expected in text, expected
    pages = re.search(r"Page 1 of (\d+)", text)
    assert pages and int(pages.group(1)) >= 2, "numbered pages, the last saying so"
    assert f"Page {pages.group(1)} of {pages.group(1)}" in text
    generated = re.search(r"Generated (\d{4}-\d\d-\d\d \d\d:\d\d) \S+ by " + re.escape(clinician.email), text)
    assert generated, "the report says when it was generated, and for whom"
    made = timezone.make_aware(timezone.datetime.strptime(generated.group(1), "%Y-%m-%d %H:%M"))
    assert abs((timezone.now() - made).total_seconds()) < 120
    # The mosaic's cells are on the first page, not blank boxes: their pink shows.
    assert pixels_near(first_page(response.content, tmp_path), PINK) > 2000


def test_a_review_is_on_the_report_and_a_stale_one_makes_it_preliminary_again(clinician, reviewer, classified_sample):
    posted = reviewer.client().post(
        f"/api/v1/samples/{classified_sample.pk}/reviews",
        {"decision": "override", "result": "negative", "comment": "Platelets on top of cells, not parasites."},
        format="json",
    )
    assert posted.status_code == 201, posted.content
    text = pdf_text(report(clinician, classified_sample.pk).content)
    assert f"Reviewed: overridden as negative by {reviewer.email}" in text
    assert f"Reviewer {reviewer.email}" in text
    assert "Decision Override: negative (automatic: positive)" in text
    assert "Comment Platelets on top of cells, not parasites." in text
    assert "Final result Negative" in text
    assert "preliminary" not in text.lower()

    # Images added after the review make it stale (services.cell_images_receive): it no longer stands.
    Review.objects.filter(sample=classified_sample).update(stale_at=timezone.now())
    text = pdf_text(report(clinician, classified_sample.pk).content)
    assert "Not yet reviewed: preliminary" in text
    assert f"A review by {reviewer.email}" in text and "no longer stands" in text
    assert "Decision Override" not in text


def test_the_mosaic_is_bounded_and_says_so(clinician, full_patient):
    sample = new_sample(full_patient["id"], created_by=clinician.user)
    add_cells(sample.pk, ["parasitized"] * (MOSAIC_MAX_PARASITIZED + 5) + ["uninfected"] * 500)
    text = pdf_text(report(clinician, sample.pk).content)
    shown = f"showing {MOSAIC_MAX_PARASITIZED} of {MOSAIC_MAX_PARASITIZED + 5}, the most probable first"
    assert f"Confidently parasitized ({shown})" in text
    assert "Uncertain (none)" in text


def test_a_sample_without_cells_has_a_report_too(clinician, full_patient):
    sample = new_sample(full_patient["id"], created_by=clinician.user)
    response = report(clinician, sample.pk)
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert "Status Awaiting images" in text and "Parasitemia —" in text and "Final result None" in text


def test_a_reviewer_gets_it_and_a_client_may_ask_for_a_pdf_by_its_accept_header(reviewer, classified_sample):
    response = report(reviewer, classified_sample.pk, HTTP_ACCEPT="application/pdf")
    assert (response.status_code, response["Content-Type"]) == (200, "application/pdf")
    missing = report(reviewer, 999999999, HTTP_ACCEPT="application/pdf")
    assert (missing.status_code, missing["Content-Type"]) == (404, "application/json")
    assert missing.json() == {"detail": "Not found."}


def test_every_report_is_audited(clinician, lab_a, classified_sample):
    from accounts.models import AuditEvent

    report(clinician, classified_sample.pk)
    page_client(clinician).get(f"/samples/{classified_sample.pk}/report.pdf")
    events = list(AuditEvent.objects.filter(action="sample.report_pdf").order_by("id"))
    assert len(events) == 2
    for event in events:
        assert (event.actor, event.lab_id, event.object_type, event.object_id) == (
            clinician.user,
            lab_a.id,
            "sample",
            str(classified_sample.pk),
        )
        assert event.ip_address == "127.0.0.1"
        assert event.detail["filename"] == f"report-sample-{classified_sample.pk}-MRN-77-2026.pdf"
        assert event.detail["review"] is None and event.detail["model_versions"] == ["test-model"]


def test_reports_past_the_rate_get_429_with_retry_after_on_the_api_and_the_page(clinician, classified_sample):
    """Each report costs about a second of the web process's CPU: one count per user, for the API and the page."""
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    from accounts.models import AuditEvent

    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "reports": "2/min"}
    browser = page_client(clinician)
    page_url = f"/samples/{classified_sample.pk}/report.pdf"
    try:
        assert report(clinician, classified_sample.pk).status_code == 200
        assert browser.get(page_url).status_code == 200
        refused = report(clinician, classified_sample.pk, HTTP_ACCEPT="application/pdf")
        assert (refused.status_code, refused["Content-Type"]) == (429, "application/json")
        assert 0 < int(refused["Retry-After"]) <= 60 and "throttled" in refused.json()["detail"]
        page = browser.get(page_url)
        assert page.status_code == 429 and 0 < int(page["Retry-After"]) <= 60
        assert b"Too many reports in a short time" in page.content
        assert f'href="/samples/{classified_sample.pk}"'.encode() in page.content, "a way back, not a dead end"
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert AuditEvent.objects.filter(action="sample.report_pdf").count() == 2


def test_another_lab_gets_404_and_nobody_signed_out_gets_it(other_lab_clinician, pending_user, classified_sample):
    from accounts.models import AuditEvent

    url = f"/api/v1/samples/{classified_sample.pk}/report.pdf"
    other = report(other_lab_clinician, classified_sample.pk)
    assert (other.status_code, other["Content-Type"]) == (404, "application/json")
    page = page_client(other_lab_clinician).get(f"/samples/{classified_sample.pk}/report.pdf")
    assert page.status_code == 404 and b"MRN-77" not in page.content
    assert APIClient().get(url).status_code == 401
    assert report(pending_user, classified_sample.pk).status_code == 403
    signed_out = page_client(other_lab_clinician)
    signed_out.logout()
    assert signed_out.get(f"/samples/{classified_sample.pk}/report.pdf").status_code == 302
    assert not AuditEvent.objects.filter(action="sample.report_pdf").exists()


def test_the_sample_page_links_the_report_and_the_link_downloads_it(clinician, classified_sample):
    browser = page_client(clinician)
    page = browser.get(f"/samples/{classified_sample.pk}").content.decode()
    link = re.search(r'<a class="button" href="([^"]+)" download>PDF report</a>', page)
    assert link and link.group(1) == f"/samples/{classified_sample.pk}/report.pdf"
    response = browser.get(link.group(1))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert "Identifier MRN-77/2026" in pdf_text(response.content)


def test_a_patient_identifier_cannot_break_the_download_name(clinician):
    client = clinician.client()
    patient = client.post("/api/v1/patients", {"identifier": '../"x;\r\ny é'}, format="json").json()
    sample = new_sample(patient["id"], created_by=clinician.user)
    response = report(clinician, sample.pk)
    assert response["Content-Disposition"] == f'attachment; filename="report-sample-{sample.pk}-x-y.pdf"'


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with a red PNG, and remembers it was asked."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Recorder.requests.append(self.path)
        body = red_png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png" if not self.path.endswith(".css") else "text/css")
        self.end_headers()
        self.wfile.write(body if not self.path.endswith(".css") else b"body { background: red; }")

    def log_message(self, *args):
        pass


def red_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 60), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_renderer_fetches_nothing_but_data_uris(web_server, tmp_path):
    """A URL in a report (image, stylesheet, font, CSS background) never reaches the network or the disk."""
    import base64

    on_disk = tmp_path / "red.png"
    on_disk.write_bytes(red_png())
    red_data = "data:image/png;base64," + base64.b64encode(red_png()).decode()
    box = 'style="width: 60mm; height: 60mm; display: block"'

    def page(*sources: str) -> str:
        return (
            f'<html><head><link rel="stylesheet" href="{web_server}/style.css">'
            f"<style>@import url({web_server}/more.css); @font-face {{ font-family: x; src: url({web_server}/f.ttf) }}"
            f"div {{ background: url({web_server}/bg.png) }}</style></head><body>"
            + "".join(f'<img {box} src="{source}">' for source in sources)
            + f"<div {box}></div></body></html>"
        )

    refused = render_pdf(page(f"{web_server}/cell.png", on_disk.as_uri(), "file:///etc/hostname"))
    assert Recorder.requests == []
    assert pixels_near(first_page(refused, tmp_path), (255, 0, 0)) == 0
    # The same page with the red image inline: it shows, so the check above could have failed.
    inline = render_pdf(page(red_data))
    assert pixels_near(first_page(inline, tmp_path), (255, 0, 0)) > 1000
    with pytest.raises(ValueError, match="fetches no URL but data:"):
        data_only_fetcher()(f"{web_server}/direct.png")
    assert Recorder.requests == []


def test_the_api_description_says_it_is_a_pdf():
    import yaml
    from django.core.management import call_command

    out = io.StringIO()
    call_command("spectacular", stdout=out)
    operation = yaml.safe_load(out.getvalue())["paths"]["/api/v1/samples/{sample_id}/report.pdf"]["get"]
    assert operation["responses"]["200"]["content"] == {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}
    }
    assert operation["responses"]["404"]["content"]["application/json"]


def test_a_stored_image_that_cannot_be_read_is_said_so_not_a_failed_report(clinician, classified_sample):
    from django.core.files.storage import default_storage

    chip = classified_sample.images.filter(prediction__label=Label.PARASITIZED).order_by("id").first()
    default_storage.delete(chip.file.name)
    response = report(clinician, classified_sample.pk)
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert "unreadable" in text and "Confidently parasitized (showing 3 of 3)" in text


def test_uploads_still_refuse_truncated_images_after_a_report(clinician, classified_sample):
    """WeasyPrint's import loosens a Pillow setting for the whole process; the web process's uploads must not be."""
    from PIL import ImageFile

    from tests.cells import cell_png, upload

    assert report(clinician, classified_sample.pk).status_code == 200
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    whole, cut = cell_png(), cell_png()[:-200]
    response = upload(clinician.client(), classified_sample.pk, [("whole.png", whole), ("cut.png", cut)])
    assert response.status_code == 202, response.content
    assert [row["filename"] for row in response.json()["accepted"]] == ["whole.png"]
    assert [row["filename"] for row in response.json()["rejected"]] == ["cut.png"]
