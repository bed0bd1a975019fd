"""CSV exports: samples (the register, a patient's history) and the cells of one sample. Every export is audited."""

from __future__ import annotations

import csv

from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse

from accounts.audit import audit_record
from accounts.models import Membership
from diagnostics.models import CellImage, Review, Sample

COLUMNS = [
    "sample_id",
    "patient_identifier",
    "collected_at",
    "status",
    "total",
    "classified",
    "failed",
    "parasitized",
    "uninfected",
    "uncertain",
    "parasitemia",
    "automatic_result",
    "final_result",
    "reviewer",
    "reviewed_at",
    "created_by",
]


class _Echo:
    def write(self, value):
        return value


def safe_cell(value) -> str:
    """Text that a spreadsheet would run as a formula is prefixed with a quote (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def sample_row(sample: Sample) -> list[str]:
    reviews = sample.reviews.all()  # prefetched newest first
    review = reviews[0] if reviews else None
    return [
        safe_cell(v)
        for v in [
            sample.pk,
            sample.patient.identifier,
            sample.collected_at.isoformat(),
            sample.status,
            sample.total_count,
            sample.classified_count,
            sample.failed_count,
            sample.parasitized_count,
            sample.uninfected_count,
            sample.uncertain_count,
            "" if sample.parasitemia is None else f"{sample.parasitemia:.4f}",
            sample.result,
            sample.final_result,
            review.reviewer.email if review else "",
            review.created_at.isoformat() if review else "",
            sample.created_by.email if sample.created_by else "",
        ]
    ]


def samples_csv_response(
    *, samples: QuerySet[Sample], filename: str, membership: Membership, request
) -> StreamingHttpResponse:
    latest_first = Review.objects.select_related("reviewer").order_by("-created_at", "-id")
    rows = (
        sample_row(sample)
        for sample in samples.prefetch_related(Prefetch("reviews", queryset=latest_first)).iterator(chunk_size=500)
    )
    return csv_response(
        header=COLUMNS, rows=rows, count=samples.count(), filename=filename, membership=membership, request=request
    )


CELL_COLUMNS = [
    "image_id",
    "filename",
    "status",
    "label",
    "probability_parasitized",
    "uncertain",
    "reviewed_label",
    "model_version",
    "error",
]


def cell_row(image: CellImage) -> list[str]:
    prediction = getattr(image, "prediction", None)
    relabels = image.relabels.all()  # prefetched, the latest review's first
    return [
        safe_cell(v)
        for v in [
            image.pk,
            image.original_filename,
            image.status,
            prediction.label if prediction else "",
            f"{prediction.probability:.4f}" if prediction else "",
            ("yes" if prediction.uncertain else "no") if prediction else "",
            relabels[0].label if relabels else "",
            prediction.model_version if prediction else "",
            image.error,
        ]
    ]


def cells_csv_response(
    *, images: QuerySet[CellImage], filename: str, membership: Membership, request
) -> StreamingHttpResponse:
    """One row per cell image of a sample: the model's call and the reviewer's label."""
    rows = (cell_row(image) for image in images.iterator(chunk_size=500))
    return csv_response(
        header=CELL_COLUMNS, rows=rows, count=images.count(), filename=filename, membership=membership, request=request
    )


def csv_response(*, header, rows, count: int, filename: str, membership: Membership, request) -> StreamingHttpResponse:
    """A streamed CSV download, audited as an export."""
    writer = csv.writer(_Echo())
    audit_record(
        action="export.csv",
        actor=request.user,
        lab=membership.lab,
        request=request,
        object_type="export",
        object_id=filename,
        detail={"rows": count, "query": request.GET.dict()},
    )

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
