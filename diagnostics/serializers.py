"""Request validation and response shapes for the v1 API. No business rules here: those are in services."""

from __future__ import annotations

from collections import Counter

from django.utils import timezone
from rest_framework import serializers

from diagnostics.models import CellImage, Decision, Label, Patient, Result, Review, Sample


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
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_identifier(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("An identifier is required.")
        return value

    def validate_birth_year(self, value):
        if value is not None and not (1900 <= value <= timezone.localdate().year):
            raise serializers.ValidationError(f"Birth year must be between 1900 and {timezone.localdate().year}.")
        return value


class SampleCreateSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    collected_at = serializers.DateField(required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")

    def validate_collected_at(self, value):
        if value > timezone.localdate():
            raise serializers.ValidationError("The collection date cannot be in the future.")
        return value


class CellLabelSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    label = serializers.ChoiceField(choices=Label.choices)


class ReviewCreateSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    result = serializers.ChoiceField(choices=Result.choices, required=False)
    comment = serializers.CharField(max_length=5000)
    cells = CellLabelSerializer(many=True, required=False, default=list)

    def validate_cells(self, value: list[dict]) -> list[dict]:
        counts = Counter(cell["image"] for cell in value)
        repeated = sorted(i for i, n in counts.items() if n > 1)
        if repeated:
            raise serializers.ValidationError(f"Each cell once per review: {', '.join(map(str, repeated))} repeated.")
        return value


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.EmailField(source="reviewer.email", read_only=True)
    cells = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = ["id", "decision", "result", "comment", "reviewer", "created_at", "cells"]

    def get_cells(self, review) -> list[dict]:
        return [{"image": relabel.image_id, "label": relabel.label} for relabel in review.cell_labels.all()]


class SampleSerializer(serializers.ModelSerializer):
    patient_identifier = serializers.CharField(source="patient.identifier", read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)
    counts = serializers.SerializerMethodField()
    parasitized = serializers.IntegerField(source="parasitized_count")
    uninfected = serializers.IntegerField(source="uninfected_count")
    uncertain = serializers.IntegerField(source="uncertain_count")

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
        ]

    def get_counts(self, sample) -> dict[str, int]:
        return {
            "total": sample.total_count,
            "queued": sample.queued_count,
            "processing": sample.processing_count,
            "classified": sample.classified_count,
            "failed": sample.failed_count,
        }


class SampleDetailSerializer(SampleSerializer):
    reviews = ReviewSerializer(many=True, read_only=True)

    class Meta(SampleSerializer.Meta):
        fields = [*SampleSerializer.Meta.fields, "reviews"]


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
        relabels = list(image.relabels.all())
        return relabels[0].label if relabels else None


class UploadResultSerializer(serializers.Serializer):
    accepted = serializers.ListField(child=serializers.DictField())
    rejected = serializers.ListField(child=serializers.DictField())
