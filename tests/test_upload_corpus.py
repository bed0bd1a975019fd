"""Hostile and broken uploads through the API (issue 10): each is refused with its reason, nothing is
stored, and nothing answers 5xx. The corpus is worker/tools/upload_corpus.py, also sent by `make bench-uploads`."""

from __future__ import annotations

import pytest
from django.conf import settings

from diagnostics.models import CellImage
from tests.cells import named
from worker.tools.upload_corpus import hostile_uploads

pytestmark = pytest.mark.django_db
CORPUS = hostile_uploads()


def stored_files() -> set[str]:
    root = settings.MEDIA_ROOT
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} if root.exists() else set()


@pytest.mark.parametrize("hostile", CORPUS, ids=[h.name for h in CORPUS])
def test_each_hostile_upload_is_refused_with_its_reason_and_nothing_is_stored(clinician, sample, hostile):
    before = stored_files()
    response = clinician.client().post(
        f"/api/v1/samples/{sample['id']}/images",
        {hostile.field: named(hostile.filename, hostile.data)},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["accepted"] == []
    assert len(body["rejected"]) >= 1
    assert hostile.reason.lower() in " ".join(r["error"] for r in body["rejected"]).lower()
    assert not CellImage.objects.filter(sample_id=sample["id"]).exists()
    assert stored_files() == before


def test_a_request_that_would_decode_too_many_pixels_stops_at_its_budget(clinician, sample, settings):
    """150 megapixels per request: the cells after the budget are refused unread, those before it kept."""
    from PIL import Image

    from diagnostics import uploads

    def megapixel_png(shade: int) -> bytes:
        import io

        buffer = io.BytesIO()
        Image.new("RGB", (1024, 1024), (shade, 100, 100)).save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()

    n = uploads.UploadLimits().max_request_pixels // (1024 * 1024) + 3
    files = [named(f"cell-{i}.png", megapixel_png(i)) for i in range(n)]
    response = clinician.client().post(f"/api/v1/samples/{sample['id']}/images", {"images": files}, format="multipart")
    assert response.status_code == 202
    body = response.json()
    assert len(body["accepted"]) == n - 3  # 143 whole megapixels fit in 150,000,000 pixels
    assert all("megapixels of images" in r["error"] for r in body["rejected"])
