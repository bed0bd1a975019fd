"""A cell's reviewed label is the one from the latest review that relabelled that cell: a later review that
leaves the cell alone does not undo it. The API, the cell grid's CSV and the sample's counts agree."""

from __future__ import annotations

import csv
import io

import pytest

from tests.page_sessions import page_client
from tests.stored_cells import add_cells

pytestmark = pytest.mark.django_db


def review(reviewer, sample_id: int, **cells: str) -> None:
    body = {
        "decision": "override",
        "result": "indeterminate",
        "comment": "Relabelled what I saw.",
        "cells": [{"image": int(image_id), "label": label} for image_id, label in cells.items()],
    }
    response = reviewer.client().post(f"/api/v1/samples/{sample_id}/reviews", body, format="json")
    assert response.status_code == 201, response.content


def reviewed_labels_in_the_api(person, sample_id: int) -> dict[int, str | None]:
    images = person.client().get(f"/api/v1/samples/{sample_id}/images", {"page_size": 50}).json()["results"]
    return {image["id"]: image["reviewed_label"] for image in images}


def reviewed_labels_in_the_csv(person, sample_id: int) -> dict[int, str | None]:
    response = page_client(person).get(f"/samples/{sample_id}/cells.csv")
    rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    return {int(row["image_id"]): row["reviewed_label"] or None for row in rows}


def test_relabels_add_up_across_reviews(clinician, reviewer, make_person, lab_a, stored_sample):
    second_reviewer = make_person("reviewer", lab_a)
    a, b, c, *_ = (image.pk for image in add_cells(stored_sample.pk, ["parasitized"] * 3 + ["uninfected"] * 17))

    review(reviewer, stored_sample.pk, **{str(a): "uninfected"})
    review(second_reviewer, stored_sample.pk, **{str(b): "uninfected"})  # leaves a alone
    expected = {a: "uninfected", b: "uninfected"}
    for labels in (
        reviewed_labels_in_the_api(clinician, stored_sample.pk),
        reviewed_labels_in_the_csv(clinician, stored_sample.pk),
    ):
        assert {k: v for k, v in labels.items() if v} == expected

    review(reviewer, stored_sample.pk, **{str(a): "parasitized", str(c): "uninfected"})  # a changed back
    expected = {a: "parasitized", b: "uninfected", c: "uninfected"}
    for labels in (
        reviewed_labels_in_the_api(clinician, stored_sample.pk),
        reviewed_labels_in_the_csv(clinician, stored_sample.pk),
    ):
        assert {k: v for k, v in labels.items() if v} == expected

    counts = clinician.client().get(f"/api/v1/samples/{stored_sample.pk}").json()
    assert (counts["parasitized"], counts["uninfected"]) == (3, 17), "the counts stay the model's"
