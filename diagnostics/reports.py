"""A sample's report as a PDF: what the lab prints or attaches to the patient's record (issue 11).

`report_context` gathers what the report shows from one sample, through the lab-scoped selectors; `render_pdf`
turns the HTML of templates/diagnostics/report.html into PDF bytes with WeasyPrint; `pdf_response` is the audited
download that the API and the page both return. Every image in the report is a `data:` URI made here from the
stored file, small and bounded, and WeasyPrint may fetch nothing else (`DataOnlyFetcher`).
"""

from __future__ import annotations

import base64
import io
import logging
import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from PIL import Image, ImageFile, UnidentifiedImageError

from accounts.audit import AuditContext, audit_record
from accounts.models import Membership, User
from diagnostics import selectors
from diagnostics.models import Label, Sample
from diagnostics.served_model import served_model
from diagnostics.uploads import FIELD_MAX_PIXELS

# WeasyPrint logs each of its rendering steps at INFO: ten lines per report in the web process's log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

# Bounds: a report of a sample with thousands of cells stays a few pages and a few hundred kilobytes, and renders
# in about a second. The reader wants the cells behind the result: the confidently parasitized and the uncertain.
MOSAIC_MAX_PARASITIZED = 30
MOSAIC_MAX_UNCERTAIN = 30
CHIP_PX = 128  # a stored chip is about 100 px; printed 17 mm wide
FIELDS_MAX = 6
FIELD_THUMB_PX = 640  # longest side; printed about 85 mm wide
# A stored image was checked at upload; this guards the report against a file changed in storage since.
IMAGE_MAX_PIXELS = FIELD_MAX_PIXELS
# Characters kept from a patient's identifier in the download's file name (the rest become "-").
FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Chip:
    uri: str | None  # None: the stored file could not be read
    label: str
    probability: float
    uncertain: bool
    reviewed_label: str | None


@dataclass(frozen=True)
class Mosaic:
    title: str
    chips: list[Chip]
    total: int

    @property
    def shown(self) -> int:
        return len(self.chips)


@dataclass(frozen=True)
class FieldThumb:
    uri: str | None
    name: str
    counted: int
    parasitized: int
    uncertain: int
    quality: list[str]


def report_context(*, membership: Membership, sample: Sample, actor: User) -> dict:
    """What the report shows, read through the selectors (so scoped to the member's lab)."""
    cells = selectors.cell_images_for(membership, sample=sample).filter(counted=True)
    parasitized = cells.filter(prediction__label=Label.PARASITIZED, prediction__uncertain=False)
    uncertain = cells.filter(prediction__uncertain=True)
    fields = selectors.fields_for(membership, sample=sample)
    reviews = selectors.reviews_of(sample)
    latest = selectors.latest_review(sample)
    served = served_model()
    return {
        "lab": sample.lab,
        "sample": sample,
        "patient": sample.patient,
        "review": latest,
        # A review that stands is one not made stale by images added after it (selectors.latest_review).
        "stale_reviews": [review for review in reviews if review.stale_at is not None] if latest is None else [],
        "mosaics": [
            mosaic(
                "Confidently parasitized",
                parasitized.order_by("-prediction__probability", "id"),
                MOSAIC_MAX_PARASITIZED,
            ),
            mosaic("Uncertain", uncertain.order_by("-prediction__probability", "id"), MOSAIC_MAX_UNCERTAIN),
        ],
        "fields": [field_thumb(field) for field in fields[:FIELDS_MAX]],
        "field_total": fields.count(),
        "model_versions": selectors.sample_model_versions(sample),
        "served_model_version": served.version,
        "intended_use": served.intended_use,
        "generated_at": timezone.localtime(),
        "generated_by": actor.email,
    }


def mosaic(title: str, images, limit: int) -> Mosaic:
    chips = [
        Chip(
            uri=image_data_uri(image.file.name, CHIP_PX, "PNG"),
            label=image.prediction.label,
            probability=image.prediction.probability,
            uncertain=image.prediction.uncertain,
            reviewed_label=image.reviewed_label,
        )
        for image in images[:limit]
    ]
    return Mosaic(title=title, chips=chips, total=images.count())


def field_thumb(field) -> FieldThumb:
    return FieldThumb(
        uri=image_data_uri(field.file.name, FIELD_THUMB_PX, "JPEG"),
        name=field.original_filename,
        counted=field.counted_cells,
        parasitized=field.parasitized_cells,
        uncertain=field.uncertain_cells,
        quality=list(field.quality or []),
    )


def image_data_uri(name: str, longest_side: int, image_format: str) -> str | None:
    """A stored image, shrunk to `longest_side`, as a data: URI; None if the file cannot be read as an image (the
    report says so on its tile rather than failing whole)."""
    try:
        with default_storage.open(name, "rb") as handle, Image.open(handle) as image:
            if image.width * image.height > IMAGE_MAX_PIXELS:
                return None
            image.draft("RGB", (longest_side, longest_side))  # JPEG: decode at a smaller scale, much faster
            image = image.convert("RGB")
            image.thumbnail((longest_side, longest_side))
            buffer = io.BytesIO()
            image.save(buffer, format=image_format, **({"quality": 85} if image_format == "JPEG" else {}))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/{image_format.lower()};base64,{encoded}"


def render_pdf(html: str) -> bytes:
    """PDF bytes from a report's HTML. WeasyPrint is imported here: it needs Pango, and only reports need it."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # cffi could not load Pango: a deployment without the Debian libraries
        raise ImproperlyConfigured(
            f"PDF reports need Pango: install Debian's libpango-1.0-0 and libpangoft2-1.0-0 ({exc})"
        ) from exc
    finally:
        # WeasyPrint's import sets Pillow's process-wide LOAD_TRUNCATED_IMAGES; uploads in this same web process
        # must keep refusing truncated files (diagnostics.uploads). The report's own images are whole.
        ImageFile.LOAD_TRUNCATED_IMAGES = False

    return HTML(string=html, base_url=None, url_fetcher=data_only_fetcher()).write_pdf()


def data_only_fetcher():
    """WeasyPrint's URL fetcher, refusing every URL but data:.

    The report holds patient data and is rendered in the web process: a URL in it (a stylesheet, an image, a
    font, or text a user typed that ever reached the HTML) must not make the server call the network (server-side
    request forgery, a leak to a third party) nor read its own files (file:///). Everything the report needs is
    inline: its styles in the template, its images as data: URIs made by `image_data_uri`.
    """
    from weasyprint.urls import URLFetcher

    class DataOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if not url.lower().startswith("data:"):
                raise ValueError(f"The report fetches no URL but data: ({url[:80]} refused).")
            return super().fetch(url, headers)

    return DataOnlyFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def report_filename(sample: Sample) -> str:
    """`report-sample-12-MRN-1.pdf`: the sample's number and the patient's identifier reduced to safe characters."""
    identifier = FILENAME_UNSAFE.sub("-", sample.patient.identifier).strip("-")[:40]
    return f"report-sample-{sample.pk}" + (f"-{identifier}" if identifier else "") + ".pdf"


def pdf_response(*, sample: Sample, actor: User, membership: Membership, audit: AuditContext) -> HttpResponse:
    """The report as a download, audited as an export (once rendered: a report that failed left nothing)."""
    context = report_context(membership=membership, sample=sample, actor=actor)
    pdf = render_pdf(render_to_string("diagnostics/report.html", context))
    filename = report_filename(sample)
    audit_record(
        action="sample.report_pdf",
        context=audit,
        actor=actor,
        lab=membership.lab,
        target=sample,
        detail={
            "filename": filename,
            "bytes": len(pdf),
            "review": context["review"].pk if context["review"] else None,
            "model_versions": context["model_versions"],
        },
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
