"""GET /api/v1/samples/{id}/fhir: a sample's result as a FHIR R4 Bundle for the lab's information system.

The facts are read here through the selectors (already scoped to the caller's lab: another lab's sample is a
404); the bundle itself is built by the pure diagnostics.fhir. Every export is audited, as the CSV exports are.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db.models import Max
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.audit import AuditContext, audit_context, audit_record
from accounts.models import Membership, User
from diagnostics import fhir, selectors
from diagnostics.api_errors import FirstRendererAlways
from diagnostics.models import Prediction, Sample

FHIR_JSON = "application/fhir+json"


def sample_facts(sample: Sample) -> fhir.SampleFacts:
    """What the bundle says about a sample (from selectors.sample_get, so of the caller's lab)."""
    review = selectors.latest_review(sample)
    reviews = selectors.reviews_of(sample)  # latest first
    earlier = reviews[reviews.index(review) + 1 :] if review else []
    classified_at = Prediction.objects.filter(image__sample=sample).aggregate(last=Max("created_at"))["last"]
    patient = sample.patient
    return fhir.SampleFacts(
        system_base=settings.FHIR_SYSTEM_BASE,
        lab_id=sample.lab_id,
        lab_name=sample.lab.name,
        patient_id=patient.pk,
        patient_identifier=patient.identifier,
        patient_name=patient.name,
        patient_sex=patient.sex,
        patient_birth_year=patient.birth_year,
        sample_id=sample.pk,
        collected_at=sample.collected_at,
        sample_status=sample.status,
        automatic_result=sample.result,
        result_reason=sample.result_reason,
        final_result=sample.final_result,
        cells_counted=sample.parasitized_count + sample.uninfected_count,
        parasitized=sample.parasitized_count,
        uncertain=sample.uncertain_count,
        parasitemia=sample.parasitemia,
        parasitemia_low=sample.parasitemia_low,
        parasitemia_high=sample.parasitemia_high,
        classified_at=classified_at,
        model_versions=tuple(selectors.sample_model_versions(sample)),
        review=fhir.ReviewFacts(
            result=review.result,
            decision=review.decision,
            reviewer=review.reviewer.email,
            at=review.created_at,
            comment=review.comment,
        )
        if review
        else None,
        earlier_results=tuple(r.result for r in earlier),
        stale_reviews=sum(1 for r in reviews if r.stale_at is not None),
        generated_at=timezone.now(),
    )


def sample_fhir_export(*, sample: Sample, actor: User, membership: Membership, audit: AuditContext) -> dict:
    """The bundle of one sample, audited as an export (with the status it was sent with)."""
    facts = sample_facts(sample)
    bundle = fhir.sample_bundle(facts)
    audit_record(
        action="sample.fhir_export",
        context=audit,
        target=sample,
        actor=actor,
        lab=membership.lab,
        detail={"report_status": fhir.report_status(facts), "final_result": sample.final_result},
    )
    return bundle


class SampleFhirApi(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererAlways

    @extend_schema(
        operation_id="samples_fhir",
        summary="The sample's result as a FHIR R4 Bundle",
        description=(
            "A Bundle of type collection: DiagnosticReport (LOINC 32700-7; status registered, partial, "
            "preliminary until a reviewer decides, final, or amended after a later review changed the result), "
            "Patient, Organization (the lab), Specimen, Observations for Plasmodium presence (LOINC 51587-4, "
            "SNOMED CT positive/negative/indeterminate) and parasitemia (LOINC 101343-2, percent, with the 95 % "
            "interval and the red cells counted as components), and the classifier model as a Device. "
            "See docs/fhir.md."
        ),
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Shape", value={"resourceType": "Bundle", "type": "collection", "entry": []})],
    )
    def get(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        bundle = sample_fhir_export(
            sample=sample, actor=request.user, membership=request.membership, audit=audit_context(request)
        )
        return HttpResponse(json.dumps(bundle), content_type=FHIR_JSON)
