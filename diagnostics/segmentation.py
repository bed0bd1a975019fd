"""The worker's side of field photographs: claim queued fields, find their red cells, store each as a cell image.

A field's red cells become ordinary cell images of its sample (with the field, their box there, and whether
they count), classified while the field is segmented, from the chips' own pixels, with the same engine and
the field threshold; their predictions are written with them. Claims, release and the sweeper follow the cells'
(docs/decisions.md, "Lost work"): a conditional UPDATE with a claim token, outcomes written only while the
claim still holds, and stalled or lost fields sent again. worker/tasks.py calls fields_segment and
fields_sweep_stalled, nothing else.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from diagnostics import services, work_queue
from diagnostics.models import CellImage, CellImageStatus, Field, FieldStatus, Prediction
from diagnostics.uploads import FIELD_MAX_PIXELS
from worker.serving import field_engine
from worker.serving import field_overlay as field_overlay_module
from worker.serving.engine import CellClassification, get_classifier
from worker.serving.field_engine import FieldCell
from worker.serving.fields import COUNTED, EDGE, FieldAnalysis, analyse_field

logger = logging.getLogger(__name__)


class FieldUnreadable(Exception):
    """The stored photograph cannot be decoded (the reason is the message)."""


def fields_segment(*, field_ids: Sequence[int], run: str | None = None) -> int:
    """Segment queued fields end to end; returns how many were finished (segmented or failed).

    Fields already claimed or done are skipped. On an unexpected error the claim is released (a retry or the
    sweeper segments them later) and the error propagates for the task's retry policy.
    """
    token, claimed = fields_claim(field_ids=field_ids, run=run)
    done = 0
    try:
        for field in claimed:
            try:
                rgb = decode_field(_read_stored(field.file_name))
            except (OSError, FieldUnreadable) as exc:
                done += field_fail(token=token, field_id=field.id, error=str(exc))
                continue
            analysis, cells = field_engine.classify_field(rgb, analyse_field(rgb), get_classifier())
            done += field_cells_record(token=token, field_id=field.id, analysis=analysis, cells=cells)
    except BaseException as exc:
        fields_release(token=token, error=exc)
        raise
    return done


def _read_stored(name: str) -> bytes:
    try:
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    except OSError as exc:
        # The reason (a storage path, a provider's message) is for the log, not for the lab.
        logger.exception("stored photograph %s cannot be read", name)
        raise FieldUnreadable("the stored photograph cannot be read") from exc


def decode_field(data: bytes) -> np.ndarray:
    """RGB pixels of a photograph, upright as its EXIF says, under the upload's pixel limit."""
    try:
        return field_engine.decode_field(data, max_pixels=FIELD_MAX_PIXELS)
    except field_engine.FieldImageError as exc:
        raise FieldUnreadable(str(exc)) from exc


@dataclass(frozen=True)
class ClaimedField:
    id: int
    file_name: str


def fields_claim(*, field_ids: Iterable[int], run: str | None = None) -> tuple[uuid.UUID, list[ClaimedField]]:
    """Claim queued fields for one task run; fields already claimed or done are skipped (tasks may run twice)."""
    token = work_queue.claim(Field, list(field_ids), run)
    rows = list(Field.objects.filter(claim_token=token).values_list("id", "file", "sample_id"))
    if not rows:
        return token, []
    for sample_id in {row[2] for row in rows}:
        services.sample_refresh(sample_id=sample_id)
    return token, [ClaimedField(id=row[0], file_name=row[1]) for row in rows]


def _held(token: uuid.UUID, field_id: int) -> Field | None:
    """The field, locked, if this claim still holds it (a swept-and-reclaimed field is someone else's now)."""
    return (
        Field.objects.select_for_update(of=("self",))
        .select_related("sample")
        .filter(pk=field_id, claim_token=token, status=FieldStatus.PROCESSING)
        .first()
    )


def field_fail(*, token: uuid.UUID, field_id: int, error: str) -> int:
    with transaction.atomic():
        field = _held(token, field_id)
        if field is None:
            return 0
        Field.objects.filter(pk=field_id).update(status=FieldStatus.FAILED, claim_token=None, error=error[:300])
        services.sample_refresh(sample_id=field.sample_id)
    return 1


def _png(chip: np.ndarray) -> bytes:
    # zlib level 1: 0.39 ms a chip instead of 1.1 ms at Pillow's default 6, for files 17 % larger (6.7 KB);
    # at about 140 chips a field, encoding was the largest cost of segmenting one.
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def field_cells_record(
    *, token: uuid.UUID, field_id: int, analysis: FieldAnalysis, cells: Sequence[tuple[FieldCell, np.ndarray]]
) -> int:
    """While the claim holds, in one transaction: each red cell as a PNG cell image with its prediction, the
    field segmented.

    The worker classifies a field's cells from the chips' pixels while it segments (field_engine.classify_field):
    no second task decodes the PNGs again, and the field, its cells and their predictions land together. The
    chips are encoded and written on two threads before the transaction (Pillow's zlib and file writes release
    the GIL), so the rows stay locked only for the inserts; files of a claim that no longer holds, of
    duplicates and of a failed transaction are removed again.
    """
    field = Field.objects.select_related("sample").filter(pk=field_id, claim_token=token).first()
    if field is None:
        return 0
    stem = field.original_filename

    def stored(numbered: tuple[int, tuple[FieldCell, np.ndarray]]) -> tuple[CellImage, CellClassification]:
        number, (classified, chip) = numbered
        png = _png(chip)
        width, height = png_size(png)
        row = CellImage(
            sample=field.sample,
            field=field,
            box=list(classified.found.box),
            counted=classified.found.kind == COUNTED,
            original_filename=f"{stem}#{number}.png"[-255:],
            sha256=hashlib.sha256(png).hexdigest(),
            width=width,
            height=height,
            format="PNG",
            byte_size=len(png),
            uploaded_by_id=field.uploaded_by_id,  # ids only: the threads must not query the database
            status=CellImageStatus.CLASSIFIED,
        )
        row.file.save(row.original_filename, ContentFile(png), save=False)
        return row, classified.classification

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="chips") as pool:
        prepared = list(pool.map(stored, enumerate(cells, start=1)))
    kept: set[str] = set()
    try:
        with transaction.atomic():
            if _held(token, field_id) is None:
                return 0
            existing = set(CellImage.objects.filter(sample_id=field.sample_id).values_list("sha256", flat=True))
            skipped = [{"box": list(o.box), "kind": o.kind} for o in analysis.objects if o.kind not in (COUNTED, EDGE)]
            rows: list[CellImage] = []
            verdicts: list[CellClassification] = []
            for row, verdict in prepared:
                if row.sha256 in existing:  # the very same pixels already in the sample: one row per image
                    skipped.append({"box": row.box, "kind": "duplicate"})
                    continue
                existing.add(row.sha256)
                rows.append(row)
                verdicts.append(verdict)
            CellImage.objects.bulk_create(rows)
            Prediction.objects.bulk_create(
                Prediction.of(row.pk, verdict) for row, verdict in zip(rows, verdicts, strict=True)
            )
            Field.objects.filter(pk=field_id).update(
                status=FieldStatus.SEGMENTED,
                claim_token=None,
                error="",
                quality=list(analysis.quality),
                cell_diameter=analysis.cell_diameter or None,
                skipped=skipped,
            )
            services.sample_refresh(sample_id=field.sample_id)
        kept = {row.file.name for row in rows}
    finally:
        storage = CellImage._meta.get_field("file").storage
        for row, _ in prepared:
            if row.file.name not in kept:
                storage.delete(row.file.name)
    return 1


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def fields_release(*, token: uuid.UUID, error: BaseException | None = None) -> list[int]:
    """Put a claim's unfinished fields back in the queue, or fail those tried too often; returns the ids queued."""
    return work_queue.claim_release(Field, token=token, error=error, work="segmentation")


def fields_sweep_stalled(
    *,
    older_than_seconds: int | None = None,
    max_attempts: int = work_queue.MAX_ATTEMPTS,
    broker_emptied: bool = False,
) -> list[int]:
    """Fields stuck in 'processing' go back to the queue (or fail after max_attempts); lost ones are sent again."""
    return work_queue.sweep_stalled(
        Field,
        enqueue=lambda ids: services.fields_enqueue(field_ids=ids),
        work="segmentation",
        older_than_seconds=older_than_seconds,
        max_attempts=max_attempts,
        broker_emptied=broker_emptied,
    )


def field_overlay(field: Field, cells: Iterable[CellImage]) -> bytes:
    """The photograph with every cell found (by the model's label) and every object left out, as a PNG."""
    rgb = decode_field(_read_stored(field.file.name))
    boxes = [
        field_overlay_module.OverlayBox(box=tuple(cell.box), category=_overlay_category(cell), counted=cell.counted)
        for cell in cells
        if cell.box
    ]
    boxes += [field_overlay_module.OverlayBox(box=tuple(o["box"]), category="left out") for o in field.skipped]
    return field_overlay_module.field_overlay_png(rgb, boxes)


def _overlay_category(cell: CellImage) -> str:
    prediction = getattr(cell, "prediction", None)
    if cell.status == "failed":
        return "failed"
    if prediction is None:
        return "pending"
    return "uncertain" if prediction.uncertain else prediction.label
