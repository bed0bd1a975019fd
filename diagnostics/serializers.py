"""Request parsing and response shapes for the v1 API. No rules here: field rules are the models' (picked up by
the model serializers), workflow rules the services'; review state comes from diagnostics.selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from diagnostics import selectors
from diagnostics.models import (
    FIRST_BIRTH_YEAR,
    CellImage,
    Field,
    Label,
    Patient,
    Review,
    Sample,
    Webhook,
    WebhookDelivery,
)


class LabSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.CharField()
    lab = LabSerializer()


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "identifier", "name", "sex", "birth_year", "notes", "created_at", "updated_at"]
        # The lower bound of the model's validator, shown in the OpenAPI description; the upper one (this year)
        # moves, so the model's validator alone enforces it.
        extra_kwargs = {"birth_year": {"min_value": FIRST_BIRTH_YEAR}}
        read_only_fields = ["id", "created_at", "updated_at"]


class SampleCreateSerializer(serializers.ModelSerializer):
    # An id, looked up in the caller's lab by the view: another lab's patient is "no such patient".
    patient = serializers.IntegerField()

    class Meta:
        model = Sample
        fields = ["patient", "collected_at", "notes"]


class CellLabelSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    label = serializers.ChoiceField(choices=Label.choices)


class ReviewCreateSerializer(serializers.ModelSerializer):
    cells = CellLabelSerializer(many=True, required=False, default=list)

    class Meta:
        model = Review
        fields = ["decision", "result", "comment", "cells"]
        extra_kwargs = {"result": {"required": False}}  # confirming keeps the automatic result


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.EmailField(source="reviewer.email", read_only=True)
    cells = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = ["id", "decision", "result", "comment", "reviewer", "created_at", "stale_at", "cells"]

    def get_cells(self, review) -> list[dict]:
        return [{"image": relabel.image_id, "label": relabel.label} for relabel in review.cell_labels.all()]


class SampleSerializer(serializers.ModelSerializer):
    patient_identifier = serializers.CharField(source="patient.identifier", read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)
    counts = serializers.SerializerMethodField()
    parasitized = serializers.IntegerField(source="parasitized_count")
    uninfected = serializers.IntegerField(source="uninfected_count")
    uncertain = serializers.IntegerField(source="uncertain_count")
    field_count = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = [
            "id",
            "patient",
            "patient_identifier",
            "collected_at",
            "notes",
            "created_by",
            "created_at",
            "status",
            "counts",
            "parasitized",
            "uninfected",
            "uncertain",
            "parasitemia",
            "result",
            "final_result",
            "field_count",
            "result_reason",
            "parasitemia_low",
            "parasitemia_high",
        ]
        read_only_fields = ["result_reason", "parasitemia_low", "parasitemia_high"]

    def get_field_count(self, sample) -> int:
        # Annotated by selectors.samples_for; a sample just created has none.
        return getattr(sample, "field_count", None) or sample.fields.count()

    def get_counts(self, sample) -> dict[str, int]:
        return {
            "total": sample.total_count,
            "queued": sample.queued_count,
            "processing": sample.processing_count,
            "classified": sample.classified_count,
            "failed": sample.failed_count,
        }


class SampleDetailSerializer(SampleSerializer):
    reviews = serializers.SerializerMethodField()

    class Meta(SampleSerializer.Meta):
        fields = [*SampleSerializer.Meta.fields, "reviews"]

    @extend_schema_field(ReviewSerializer(many=True))
    def get_reviews(self, sample) -> list[dict]:
        return ReviewSerializer(selectors.reviews_of(sample), many=True).data


class CellImageSerializer(serializers.ModelSerializer):
    filename = serializers.CharField(source="original_filename")
    prediction = serializers.SerializerMethodField()
    reviewed_label = serializers.SerializerMethodField()

    class Meta:
        model = CellImage
        fields = [
            "id",
            "sample",
            "filename",
            "status",
            "error",
            "width",
            "height",
            "format",
            "sha256",
            "prediction",
            "reviewed_label",
        ]

    def get_prediction(self, image) -> dict | None:
        prediction = getattr(image, "prediction", None)
        if prediction is None:
            return None
        return {
            "label": prediction.label,
            "probability": prediction.probability,
            "uncertain": prediction.uncertain,
            "model_version": prediction.model_version,
        }

    def get_reviewed_label(self, image) -> str | None:
        return image.reviewed_label  # annotated by selectors.cell_images_for


class FieldCountsSerializer(serializers.Serializer):
    red_cells = serializers.IntegerField()
    counted = serializers.IntegerField()
    parasitized = serializers.IntegerField()
    uncertain = serializers.IntegerField()


class FieldSerializer(serializers.ModelSerializer):
    filename = serializers.CharField(source="original_filename")
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Field
        fields = ["id", "sample", "filename", "status", "error", "width", "height", "quality", "counts"]

    @extend_schema_field(FieldCountsSerializer)
    def get_counts(self, field) -> dict[str, int]:
        # Annotated by selectors.fields_for.
        return {
            "red_cells": field.red_cells,
            "counted": field.counted_cells,
            "parasitized": field.parasitized_cells,
            "uncertain": field.uncertain_cells,
        }


class FieldCellSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="prediction.label", default=None)
    probability = serializers.FloatField(source="prediction.probability", default=None)
    uncertain = serializers.BooleanField(source="prediction.uncertain", default=None)
    box = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4)

    class Meta:
        model = CellImage
        fields = ["id", "box", "counted", "status", "label", "probability", "uncertain"]


class SkippedObjectSerializer(serializers.Serializer):
    box = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4)
    kind = serializers.CharField()


class FieldDetailSerializer(FieldSerializer):
    skipped = SkippedObjectSerializer(many=True)
    cells = serializers.SerializerMethodField()

    class Meta(FieldSerializer.Meta):
        fields = [*FieldSerializer.Meta.fields, "cell_diameter", "skipped", "cells"]

    @extend_schema_field(FieldCellSerializer(many=True))
    def get_cells(self, field) -> list[dict]:
        return FieldCellSerializer(self.context["cells"], many=True).data


class UploadResultSerializer(serializers.Serializer):
    accepted = serializers.ListField(child=serializers.DictField())
    rejected = serializers.ListField(child=serializers.DictField())


class WebhookCreateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["url", "description"]


class WebhookSerializer(serializers.ModelSerializer):
    # Shown to the lab's reviewers (the only ones who see webhooks): their receiver needs it to check signatures.
    secret = serializers.CharField(read_only=True, help_text="HMAC-SHA256 key of the signatures (docs/webhooks.md).")
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Webhook
        fields = ["id", "url", "description", "active", "secret", "created_by", "created_at"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_response_code",
            "last_error",
            "created_at",
            "delivered_at",
            "next_attempt_at",
            "payload",
        ]
        read_only_fields = fields
