"""Field photographs segmented by the worker's service: each red cell becomes a cell image of the sample."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from diagnostics import segmentation
from diagnostics.models import CellImage, CellImageStatus, Field, FieldStatus, Prediction, Sample
from diagnostics.services import sample_refresh
from tests.factories import FieldFactory
from tests.test_field_detection import drawn_field
from worker.serving.engine import get_classifier
from worker.serving.field_engine import classify_field
from worker.serving.fields import analyse_field

pytestmark = pytest.mark.django_db

# 12 whole cells and one cut by the right edge.
WHOLE = [(x, y) for y in (150, 450, 750) for x in (150, 450, 750, 1050)]
CUT = (1262, 300)


def as_png(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def field(stored_sample):
    field = FieldFactory(sample=stored_sample, original_filename="smear-1.png", png=as_png(drawn_field([*WHOLE, CUT])))
    sample_refresh(sample_id=stored_sample.pk)
    return field


def test_a_field_keeps_its_sample_processing_until_segmented(field):
    sample = Sample.objects.get(pk=field.sample_id)
    assert sample.status == "processing"
    assert (sample.total_count, sample.queued_count) == (1, 1)


def test_each_red_cell_becomes_a_cell_image_with_its_box(field):
    assert segmentation.fields_segment(field_ids=[field.pk]) == 1
    field.refresh_from_db()
    assert field.status == FieldStatus.SEGMENTED
    assert field.quality == []
    assert 68 <= field.cell_diameter <= 80
    cells = list(CellImage.objects.filter(field=field))
    counted = [c for c in cells if c.counted]
    edge = [c for c in cells if not c.counted]
    assert len(counted) == len(WHOLE) and len(edge) == 1
    for x, y in WHOLE:
        assert sum(c.box[0] <= x < c.box[2] and c.box[1] <= y < c.box[3] for c in counted) == 1
    assert edge[0].box[2] >= 1270, "the cut cell reaches the right edge"
    assert {c.status for c in cells} == {CellImageStatus.CLASSIFIED}, "classified while segmenting"
    assert all(c.original_filename.startswith("smear-1.png#") for c in cells)
    chip = Image.open(default_storage.open(counted[0].file.name))
    assert chip.format == "PNG" and chip.size == (counted[0].width, counted[0].height)
    assert chip.getpixel((0, 0)) == (0, 0, 0), "outside the cell is black, as in the NIH crops"
    sample = Sample.objects.get(pk=field.sample_id)
    assert sample.total_count == sample.classified_count == len(WHOLE), "the cut cell is classified, not counted"
    assert sample.status == "complete"


def test_each_cell_is_classified_from_its_chip_at_the_field_threshold(field):
    from worker.serving.engine import get_classifier

    segmentation.fields_segment(field_ids=[field.pk])
    cells = list(CellImage.objects.filter(field=field).select_related("prediction").order_by("id"))
    classifier = get_classifier()
    stored = [default_storage.open(c.file.name).read() for c in cells]
    again = classifier.classify(stored, from_field=[True] * len(stored))
    for cell, verdict in zip(cells, again, strict=True):
        assert cell.prediction.probability == pytest.approx(verdict.probability, abs=1e-6), "same pixels, same call"
        assert (cell.prediction.label, cell.prediction.uncertain) == (verdict.label, verdict.uncertain)
        assert cell.prediction.model_version == classifier.card.version


def test_segmenting_twice_does_nothing_the_second_time(field):
    segmentation.fields_segment(field_ids=[field.pk])
    before = CellImage.objects.count()
    assert segmentation.fields_segment(field_ids=[field.pk]) == 0
    assert CellImage.objects.count() == before


def test_a_photograph_that_cannot_be_decoded_fails_with_a_reason(stored_sample):
    broken = FieldFactory(sample=stored_sample)
    with default_storage.open(broken.file.name, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\nnot really")
    assert segmentation.fields_segment(field_ids=[broken.pk]) == 1
    broken.refresh_from_db()
    assert broken.status == FieldStatus.FAILED
    assert "not a readable image" in broken.error
    assert not CellImage.objects.filter(field=broken).exists()
    assert Sample.objects.get(pk=stored_sample.pk).failed_count == 1


def test_a_field_without_cells_is_segmented_and_flagged(stored_sample):
    blank = FieldFactory(sample=stored_sample)
    segmentation.fields_segment(field_ids=[blank.pk])
    blank.refresh_from_db()
    assert blank.status == FieldStatus.SEGMENTED
    assert "no cells" in blank.quality
    assert not CellImage.objects.filter(field=blank).exists()


def test_sample_counts_leave_out_cells_cut_by_the_edge(field):
    segmentation.fields_segment(field_ids=[field.pk])
    # Every cell parasitized, the cut one too: only the 12 whole cells may count.
    Prediction.objects.filter(image__field=field).update(label="parasitized", probability=0.97, uncertain=False)
    sample = sample_refresh(sample_id=field.sample_id)
    assert sample.status == "complete"
    assert sample.total_count == sample.classified_count == sample.parasitized_count == len(WHOLE)
    assert sample.parasitemia == 1.0


def test_a_stalled_field_is_put_back_in_the_queue(field):
    token, claimed = segmentation.fields_claim(field_ids=[field.pk])
    assert [c.id for c in claimed] == [field.pk]
    assert segmentation.fields_sweep_stalled(older_than_seconds=-1) == [field.pk]
    field.refresh_from_db()
    assert field.status == FieldStatus.QUEUED
    # The old claim no longer holds: its outcome is dropped.
    rgb = drawn_field(WHOLE)
    analysis, cells = classify_field(rgb, analyse_field(rgb), get_classifier())
    assert segmentation.field_cells_record(token=token, field_id=field.pk, analysis=analysis, cells=cells) == 0
    assert not CellImage.objects.filter(field=field).exists()
    assert Field.objects.get(pk=field.pk).status == FieldStatus.QUEUED


def test_the_overlay_shows_each_cell_by_the_models_label(field):
    from worker.serving.field_overlay import COLOURS

    segmentation.fields_segment(field_ids=[field.pk])
    cells = list(CellImage.objects.filter(field=field, counted=True).order_by("id"))
    Prediction.objects.filter(image=cells[0]).update(label="parasitized", probability=0.97, uncertain=False)
    Prediction.objects.filter(image=cells[1]).delete()
    CellImage.objects.filter(pk=cells[1].pk).update(status=CellImageStatus.QUEUED)
    field.refresh_from_db()
    overlay = Image.open(io.BytesIO(segmentation.field_overlay(field, CellImage.objects.filter(field=field))))
    assert overlay.size == (1280, 960)
    x0, y0, x1, _ = cells[0].box
    assert overlay.getpixel(((x0 + x1) // 2, y0)) == COLOURS["parasitized"]
    x0, y0, x1, _ = cells[1].box
    assert overlay.getpixel(((x0 + x1) // 2, y0)) == COLOURS["pending"], "not yet classified"


def test_a_sample_of_field_cells_is_judged_at_the_served_models_field_rates(field):
    from diagnostics.served_model import served_model
    from worker.serving.results import CellTally, sample_result

    segmentation.fields_segment(field_ids=[field.pk])
    Prediction.objects.filter(image__field=field).update(label="parasitized", probability=0.99, uncertain=False)
    sample = sample_refresh(sample_id=field.sample_id)
    assert sample.status == "complete"
    counted = len(WHOLE)
    expected = sample_result(
        CellTally(counted, counted, 0, counted, 0, field_cells=counted), served_model().card.rule_rates
    )
    assert (sample.result, sample.result_reason) == (expected.result, expected.reason)
    assert sample.result == "positive"
    assert sample.parasitemia == 1.0


def test_a_photograph_that_crashes_the_detector_is_tried_again_then_fails_with_a_reason(field, monkeypatch):
    """A bug the photograph triggers must not loop between the worker and the sweeper for ever."""

    def crash(rgb):
        raise ZeroDivisionError("a detector bug")

    monkeypatch.setattr(segmentation, "analyse_field", crash)
    for attempt in (1, 2):
        with pytest.raises(ZeroDivisionError):
            segmentation.fields_segment(field_ids=[field.pk])
        field.refresh_from_db()
        assert (field.status, field.attempts) == (FieldStatus.QUEUED, attempt), "queued again for the sweeper to send"
    with pytest.raises(ZeroDivisionError):
        segmentation.fields_segment(field_ids=[field.pk])
    field.refresh_from_db()
    assert (field.status, field.attempts) == (FieldStatus.FAILED, 3)
    assert field.error == ("segmentation failed on 3 attempts with an internal error; the error is logged for the team")
    assert Sample.objects.get(pk=field.sample_id).status == "complete"
    assert segmentation.fields_sweep_stalled(older_than_seconds=0) == [], "nothing left to send"


def test_a_database_outage_never_fails_a_field(field, monkeypatch):
    from django.db import OperationalError

    def outage(rgb):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(segmentation, "analyse_field", outage)
    for attempt in (1, 2, 3, 4):
        with pytest.raises(OperationalError):
            segmentation.fields_segment(field_ids=[field.pk])
        field.refresh_from_db()
        assert (field.status, field.attempts) == (FieldStatus.QUEUED, attempt)


def test_a_white_cell_look_alike_is_settled_by_the_classifier_while_segmenting(stored_sample):
    from worker.serving.engine import PARASITIZED, get_classifier
    from worker.serving.field_engine import chips_of
    from worker.serving.preprocessing import to_network_input

    rgb = drawn_field(WHOLE[:6], white_cells=[(1050, 750)])
    analysis = analyse_field(rgb)
    [look_alike] = analysis.look_alikes
    classifier = get_classifier()
    [probability] = classifier.probabilities(to_network_input(chips_of(rgb, analysis, [look_alike], 48)))
    parasitized = classifier.verdict(probability, from_field=True).label == PARASITIZED

    field = FieldFactory(sample=stored_sample, png=as_png(rgb))
    assert segmentation.fields_segment(field_ids=[field.pk]) == 1
    field.refresh_from_db()
    assert field.status == FieldStatus.SEGMENTED
    cells = CellImage.objects.filter(field=field)
    assert cells.count() == 6 + parasitized
    assert [s["kind"] for s in field.skipped] == ([] if parasitized else ["white cell"])
