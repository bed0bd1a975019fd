"""A sample's result as a FHIR R4 Bundle (docs/fhir.md): plain facts in, a JSON-ready dict out.

Pure: no Django, no ORM, no FHIR library (the tests validate the output with fhir.resources). The view
gathers the facts through the selectors (diagnostics.api_fhir.sample_facts); everything about the bundle's
shape, codes and status rules lives here, once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

# LOINC codes of malaria smear microscopy (sources in docs/fhir.md).
SMEAR_REPORT = ("32700-7", "Microscopic observation [Identifier] in Blood by Malaria smear")
PLASMODIUM_PRESENCE = ("51587-4", "Plasmodium sp [Presence] in Blood by Light microscopy")
PARASITEMIA = ("101343-2", "Erythrocytes.parasite sp infected/cells in Blood")
BLOOD_SPECIMEN = ("119297000", "Blood specimen (specimen)")

# The product's results as SNOMED CT qualifier values (the positive/negative/indeterminate value set).
RESULT_CODES = {
    "positive": ("10828004", "Positive (qualifier value)"),
    "negative": ("260385009", "Negative (qualifier value)"),
    "indeterminate": ("82334004", "Indeterminate (qualifier value)"),
}
RESULT_WORDS = {"positive": "Positive", "negative": "Negative", "indeterminate": "Indeterminate"}

# Sample.Sex and FHIR's AdministrativeGender share their four codes; anything else is "unknown".
GENDERS = {"female", "male", "other", "unknown"}

# Counts and the interval have no LOINC code: they are coded in the product's own code system.
COUNT_CODES = {
    "red-cells-counted": "Red cells counted (classified)",
    "parasitized-cells": "Red cells called parasitized",
    "uncertain-cells": "Red cells in the uncertain band",
    "parasitemia-95ci-low": "Parasitemia, 95 % Wilson interval, lower limit",
    "parasitemia-95ci-high": "Parasitemia, 95 % Wilson interval, upper limit",
}

INTENDED_USE = "Screening aid for a trained microscopist, not a diagnosis."


@dataclass(frozen=True)
class ReviewFacts:
    result: str  # positive / negative / indeterminate
    decision: str  # confirm / override
    reviewer: str  # email
    at: dt.datetime
    comment: str


@dataclass(frozen=True)
class SampleFacts:
    """What the bundle says, as read for one sample of one lab (diagnostics.api_fhir.sample_facts)."""

    system_base: str  # settings.FHIR_SYSTEM_BASE: the namespace of this installation's identifiers
    lab_id: int
    lab_name: str
    patient_id: int
    patient_identifier: str
    patient_name: str
    patient_sex: str
    patient_birth_year: int | None
    sample_id: int
    collected_at: dt.date
    sample_status: str  # awaiting_images / processing / complete
    automatic_result: str  # "" until cells are classified
    result_reason: str
    final_result: str  # the standing review's result, else the automatic one
    cells_counted: int  # classified red cells (parasitized + uninfected calls): the parasitemia's denominator
    parasitized: int
    uncertain: int
    parasitemia: float | None  # a fraction, 0..1
    parasitemia_low: float | None
    parasitemia_high: float | None
    classified_at: dt.datetime | None  # the last cell's classification
    model_versions: tuple[str, ...]
    review: ReviewFacts | None  # the standing review: selectors.latest_review (stale reviews never stand)
    earlier_results: tuple[str, ...]  # results of the reviews saved before it, stale ones included
    stale_reviews: int  # reviews that no longer stand (images were added after them)
    generated_at: dt.datetime


def report_status(facts: SampleFacts) -> str:
    """DiagnosticReport.status: registered (no images), partial (classifying), preliminary (no standing review),
    final (reviewed), amended (reviewed, and the result differs from one an earlier review had released)."""
    if facts.sample_status == "awaiting_images":
        return "registered"
    if facts.sample_status != "complete":
        return "partial"
    if facts.review is None:
        return "preliminary"
    if any(result != facts.review.result for result in facts.earlier_results):
        return "amended"
    return "final"


def percent(fraction: float | None) -> float | None:
    # Four decimals of a percent: 0.15 is 15.0, not 15.000000000000002.
    return None if fraction is None else round(fraction * 100, 4)


def sample_bundle(facts: SampleFacts) -> dict:
    """The Bundle (type collection): DiagnosticReport first, then what it references."""
    status = report_status(facts)
    ids = _Ids(facts)
    organization = _organization(facts, ids)
    patient = _patient(facts, ids)
    specimen = _specimen(facts, ids)
    devices = [_device(version, ids) for version in facts.model_versions]
    observations = _observations(facts, ids, status) if status in ("preliminary", "final", "amended") else []
    report = _report(facts, ids, status, observations)
    resources = [report, patient, organization, specimen, *observations, *devices]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(facts.generated_at),
        "entry": [{"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource} for resource in resources],
    }


class _Ids:
    """Stable ids per object: the same sample gives the same fullUrls in every export (uuid5 of a URL)."""

    def __init__(self, facts: SampleFacts):
        self.base = facts.system_base.rstrip("/")
        self.lab = f"{self.base}/labs/{facts.lab_id}"
        self.sample = f"{self.lab}/samples/{facts.sample_id}"
        self.patient = self._id(f"{self.lab}/patients/{facts.patient_id}")
        self.organization = self._id(self.lab)
        self.specimen = self._id(f"{self.sample}#specimen")
        self.report = self._id(f"{self.sample}#report")
        self.presence = self._id(f"{self.sample}#plasmodium-presence")
        self.parasitemia = self._id(f"{self.sample}#parasitemia")

    def device(self, version: str) -> str:
        return self._id(f"{self.base}/models/{version}")

    @staticmethod
    def _id(url: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, url))


def ref(resource_id: str, display: str = "") -> dict:
    reference = {"reference": f"urn:uuid:{resource_id}"}
    return {**reference, "display": display} if display else reference


def coding(system: str, code_and_display: tuple[str, str]) -> dict:
    code, display = code_and_display
    return {"system": system, "code": code, "display": display}


def instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _organization(facts: SampleFacts, ids: _Ids) -> dict:
    return {
        "resourceType": "Organization",
        "id": ids.organization,
        "identifier": [{"system": f"{ids.base}/labs", "value": str(facts.lab_id)}],
        "active": True,
        "name": facts.lab_name,
    }


def _patient(facts: SampleFacts, ids: _Ids) -> dict:
    patient = {
        "resourceType": "Patient",
        "id": ids.patient,
        # The lab's record number, in a system of its own: two labs may both have an "MRN-1".
        "identifier": [{"use": "usual", "system": f"{ids.lab}/patients", "value": facts.patient_identifier}],
        "gender": facts.patient_sex if facts.patient_sex in GENDERS else "unknown",
        "managingOrganization": ref(ids.organization, facts.lab_name),
    }
    if facts.patient_name:
        patient["name"] = [{"text": facts.patient_name}]
    if facts.patient_birth_year:
        patient["birthDate"] = f"{facts.patient_birth_year:04d}"  # a FHIR date may be a year alone
    return patient


def _specimen(facts: SampleFacts, ids: _Ids) -> dict:
    return {
        "resourceType": "Specimen",
        "id": ids.specimen,
        "accessionIdentifier": {"system": f"{ids.lab}/samples", "value": str(facts.sample_id)},
        "status": "available",
        "type": {"coding": [coding(SNOMED, BLOOD_SPECIMEN)], "text": "Blood, Giemsa-stained thin film"},
        "subject": ref(ids.patient),
        "collection": {"collectedDateTime": facts.collected_at.isoformat()},
    }


def _device(version: str, ids: _Ids) -> dict:
    return {
        "resourceType": "Device",
        "id": ids.device(version),
        "deviceName": [{"name": "Malaria Detect red cell classifier", "type": "model-name"}],
        "type": {"text": "Software: convolutional network classifying red blood cells on smear photographs"},
        "version": [{"value": version}],
    }


def _issued(facts: SampleFacts) -> str | None:
    moment = facts.review.at if facts.review else facts.classified_at
    return instant(moment) if moment else None


def _common(facts: SampleFacts, ids: _Ids) -> dict:
    """What every Observation of the sample shares."""
    common = {
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "subject": ref(ids.patient),
        "effectiveDateTime": facts.collected_at.isoformat(),
        "performer": [ref(ids.organization, facts.lab_name)],
        "specimen": ref(ids.specimen),
        "method": {
            "text": "Photographs of the smear through a light microscope; each red cell classified by a "
            "convolutional network"
        },
    }
    issued = _issued(facts)
    if issued:
        common["issued"] = issued
    if len(facts.model_versions) == 1:  # Observation.device takes one; a mixed sample names its models in a note
        common["device"] = ref(ids.device(facts.model_versions[0]), facts.model_versions[0])
    return common


def _observations(facts: SampleFacts, ids: _Ids, status: str) -> list[dict]:
    return [_presence(facts, ids, status), _parasitemia(facts, ids, status)]


def _presence(facts: SampleFacts, ids: _Ids, status: str) -> dict:
    """Plasmodium seen or not: the sample's final result, which follows the reviews (amended when changed)."""
    notes = [f"Automatic result: {facts.automatic_result or 'none'}. {sentence(facts.result_reason)}".strip()]
    if facts.review:
        verb = "confirmed" if facts.review.decision == "confirm" else "set"
        notes.append(f"Result {verb} by {facts.review.reviewer} on {facts.review.at.date().isoformat()}.")
    if len(facts.model_versions) > 1:
        notes.append(f"Cells classified by the models {', '.join(facts.model_versions)}.")
    return {
        "resourceType": "Observation",
        "id": ids.presence,
        "status": status,
        **_loinc_code(PLASMODIUM_PRESENCE),
        **_common(facts, ids),
        "valueCodeableConcept": result_concept(facts.final_result),
        "note": [{"text": note} for note in notes],
    }


def _parasitemia(facts: SampleFacts, ids: _Ids, status: str) -> dict:
    """Parasitized / classified red cells in percent, its 95 % interval and the counts as components.

    The interval is not a referenceRange: a laboratory system reads referenceRange as the normal range and
    would flag every value outside it. The parasitemia is the model's count, which a review does not change,
    so it is final (never amended) once a reviewer has decided.
    """
    observation = {
        "resourceType": "Observation",
        "id": ids.parasitemia,
        "status": "preliminary" if status == "preliminary" else "final",
        **_loinc_code(PARASITEMIA),
        **_common(facts, ids),
    }
    value = percent(facts.parasitemia)
    if value is None or facts.cells_counted == 0:
        observation["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "not-performed", "display": "Not Performed"}],
            "text": "No red cell could be classified.",
        }
    else:
        observation["valueQuantity"] = percent_quantity(value)
    components = [
        _count(ids, "red-cells-counted", facts.cells_counted),
        _count(ids, "parasitized-cells", facts.parasitized),
        _count(ids, "uncertain-cells", facts.uncertain),
    ]
    if value is not None and facts.parasitemia_low is not None and facts.parasitemia_high is not None:
        components += [
            _component(ids, "parasitemia-95ci-low", percent_quantity(percent(facts.parasitemia_low))),
            _component(ids, "parasitemia-95ci-high", percent_quantity(percent(facts.parasitemia_high))),
        ]
    observation["component"] = components
    return observation


def percent_quantity(value: float) -> dict:
    return {"value": value, "unit": "%", "system": UCUM, "code": "%"}


def _count(ids: _Ids, code: str, cells: int) -> dict:
    return _component(ids, code, {"value": cells, "unit": "cells", "system": UCUM, "code": "{cells}"})


def _component(ids: _Ids, code: str, quantity: dict) -> dict:
    concept = {"coding": [coding(f"{ids.base}/CodeSystem/smear-counts", (code, COUNT_CODES[code]))]}
    return {"code": {**concept, "text": COUNT_CODES[code]}, "valueQuantity": quantity}


def _loinc_code(code: tuple[str, str]) -> dict:
    return {"code": {"coding": [coding(LOINC, code)], "text": code[1]}}


def result_concept(result: str) -> dict:
    return {"coding": [coding(SNOMED, RESULT_CODES[result])], "text": RESULT_WORDS[result]}


def _report(facts: SampleFacts, ids: _Ids, status: str, observations: list[dict]) -> dict:
    report = {
        "resourceType": "DiagnosticReport",
        "id": ids.report,
        "identifier": [{"system": f"{ids.lab}/samples", "value": str(facts.sample_id)}],
        "status": status,
        "category": [{"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}],
        "code": {"coding": [coding(LOINC, SMEAR_REPORT)], "text": "Malaria smear"},
        "subject": ref(ids.patient),
        "effectiveDateTime": facts.collected_at.isoformat(),
        "performer": [ref(ids.organization, facts.lab_name)],
        "specimen": [ref(ids.specimen)],
        "result": [ref(observation["id"]) for observation in observations],
        "conclusion": conclusion(facts, status),
    }
    issued = _issued(facts)
    if issued and status != "registered":
        report["issued"] = issued
    if facts.review:
        report["resultsInterpreter"] = [{"display": facts.review.reviewer}]
    if observations and facts.final_result:
        report["conclusionCode"] = [result_concept(facts.final_result)]
    return report


def conclusion(facts: SampleFacts, status: str) -> str:
    """The report in words, as a laboratory system shows it beside the coded values."""
    if status == "registered":
        return "No images received yet."
    if status == "partial":
        return "Classification in progress: no result yet."
    result = RESULT_WORDS[facts.final_result]
    if facts.review is None:
        parts = [f"{result} (automatic result, not yet reviewed: preliminary).", sentence(facts.result_reason)]
        if facts.stale_reviews:
            parts.append("An earlier review no longer stands: images were added after it.")
    else:
        how = "confirmed" if facts.review.decision == "confirm" else "set"
        parts = [f"{result}, {how} by {facts.review.reviewer} on {facts.review.at.date().isoformat()}."]
        if facts.review.comment:
            parts.append(sentence(f"Reviewer's comment: {facts.review.comment}"))
        if status == "amended":
            parts.append("Amended: an earlier review had released another result.")
        if facts.final_result != facts.automatic_result:
            parts.append(sentence(f"The automatic result was {facts.automatic_result}: {facts.result_reason}"))
    if facts.parasitemia is not None and facts.cells_counted:
        interval = ""
        if facts.parasitemia_low is not None and facts.parasitemia_high is not None:
            interval = f" (95 % interval {percent(facts.parasitemia_low):g}-{percent(facts.parasitemia_high):g} %)"
        parts.append(f"Parasitemia {percent(facts.parasitemia):g} %{interval} over {facts.cells_counted} red cells.")
    parts.append(INTENDED_USE)
    return " ".join(part.strip() for part in parts if part.strip())


def sentence(text: str) -> str:
    """Text ending as a sentence, so that the next one does not run into it."""
    text = text.strip()
    return text if not text or text.endswith((".", "!", "?")) else f"{text}."
