"""CSV exports: samples (the register, a patient's history) and the cells of one sample. Every export is audited."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from accounts.audit import AuditContext, audit_record
from accounts.models import Membership, User
from diagnostics import selectors
from diagnostics.models import CellImage, Sample

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


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: Iterable[list[str]]  # streamed: read once, while the response is sent
    count: int


class _Echo:
    def write(self, value):
        return value


def safe_cell(value) -> str:
    """Text that a spreadsheet would run as a formula is prefixed with a quote (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def sample_row(sample: Sample) -> list[str]:
    review = selectors.latest_review(sample)
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


def samples_table(samples: QuerySet[Sample]) -> Table:
    """One row per sample: counts, both results and the latest review."""
    rows = (sample_row(sample) for sample in selectors.with_reviews(samples).iterator(chunk_size=500))
    return Table(header=COLUMNS, rows=rows, count=samples.count())


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
    return [
        safe_cell(v)
        for v in [
            image.pk,
            image.original_filename,
            image.status,
            prediction.label if prediction else "",
            f"{prediction.probability:.4f}" if prediction else "",
            ("yes" if prediction.uncertain else "no") if prediction else "",
            image.reviewed_label or "",
            prediction.model_version if prediction else "",
            image.error,
        ]
    ]


def cells_table(images: QuerySet[CellImage]) -> Table:
    """One row per cell image of a sample (from selectors.cell_images_for): the model's call and the reviewer's."""
    rows = (cell_row(image) for image in images.iterator(chunk_size=500))
    return Table(header=CELL_COLUMNS, rows=rows, count=images.count())


def csv_response(
    *,
    table: Table,
    filename: str,
    actor: User,
    membership: Membership,
    audit: AuditContext,
    query: dict[str, str],
) -> StreamingHttpResponse:
    """A streamed CSV download, audited as an export (with the query that chose its rows)."""
    writer = csv.writer(_Echo())
    audit_record(
        action="export.csv",
        context=audit,
        actor=actor,
        lab=membership.lab,
        object_type="export",
        object_id=filename,
        detail={"rows": table.count, "query": query},
    )

    def lines():
        yield writer.writerow(table.header)
        for row in table.rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
