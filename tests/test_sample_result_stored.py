"""A sample's automatic result is stored with its reason and the parasitemia's 95 % interval, and the sample API
gives them; the same rule holds for a sample of single cells as for one of fields (docs/results.md)."""

from __future__ import annotations

import pytest

from tests.stored_cells import add_cells
from worker.serving.results import MIN_CELLS_FOR_NEGATIVE, wilson_interval

pytestmark = pytest.mark.django_db


def sample_of(person, sample_id: int) -> dict:
    return person.client().get(f"/api/v1/samples/{sample_id}").json()


def test_a_positive_sample_has_its_reason_and_interval_in_the_api(clinician, sample):
    add_cells(sample["id"], ["parasitized"] * 3 + ["uninfected"] * 17)
    body = sample_of(clinician, sample["id"])
    assert (body["result"], body["parasitemia"]) == ("positive", 0.15)
    assert body["result_reason"].startswith("3 of 20 red cells confidently parasitized")
    assert (body["parasitemia_low"], body["parasitemia_high"]) == pytest.approx(wilson_interval(3, 20))
    listed = clinician.client().get("/api/v1/samples").json()["results"]
    assert [(s["result_reason"], s["parasitemia_low"]) for s in listed] == [
        (body["result_reason"], body["parasitemia_low"])
    ]


def test_a_single_cell_sample_of_clean_cells_is_indeterminate_not_negative(clinician, sample):
    add_cells(sample["id"], ["uninfected"] * 70)
    body = sample_of(clinician, sample["id"])
    assert (body["result"], body["final_result"]) == ("indeterminate", "indeterminate")
    assert body["result_reason"] == "only 70 red cells examined; at least 500 are needed to call a sample negative"
    assert body["parasitemia"] == 0.0
    assert body["parasitemia_low"] == 0.0 and body["parasitemia_high"] == pytest.approx(wilson_interval(0, 70)[1])


def test_enough_clean_cells_are_negative(clinician, sample):
    add_cells(sample["id"], ["uninfected"] * MIN_CELLS_FOR_NEGATIVE)
    body = sample_of(clinician, sample["id"])
    assert body["result"] == "negative"
    assert body["result_reason"].startswith("500 red cells examined; 0 parasitized or uncertain")


def test_an_empty_sample_has_no_result_reason_or_interval(clinician, sample):
    body = sample_of(clinician, sample["id"])
    assert (body["result"], body["result_reason"], body["parasitemia_low"], body["parasitemia_high"]) == (
        "",
        "",
        None,
        None,
    )
