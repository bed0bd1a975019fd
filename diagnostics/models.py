"""Patients, their samples (blood smears), the cell images of a sample, predictions and reviews.

Every row belongs to one lab, directly (patient, sample) or through its sample; selectors scope every
read by the requesting user's lab.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Lab


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Patient(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="patients")
    identifier = models.CharField(max_length=64, help_text="The lab's record number for this patient.")
    name = models.CharField(max_length=200, blank=True)
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["identifier"]
        constraints = [models.UniqueConstraint(fields=["lab", "identifier"], name="patient_identifier_unique_in_lab")]

    def __str__(self) -> str:
        return self.identifier


class Result(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEGATIVE = "negative", "Negative"
    INDETERMINATE = "indeterminate", "Indeterminate"


class SampleStatus(models.TextChoices):
    AWAITING_IMAGES = "awaiting_images", "Awaiting images"
    PROCESSING = "processing", "Processing"
    COMPLETE = "complete", "Complete"


def today() -> dt.date:
    return timezone.localdate()


class Sample(models.Model):
    """One blood smear of a patient. Counts and results are kept up to date by diagnostics.services."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="samples")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="samples")
    collected_at = models.DateField(default=today)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=20, choices=SampleStatus.choices, default=SampleStatus.AWAITING_IMAGES)
    total_count = models.PositiveIntegerField(default=0)
    queued_count = models.PositiveIntegerField(default=0)
    processing_count = models.PositiveIntegerField(default=0)
    classified_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    parasitized_count = models.PositiveIntegerField(default=0)
    uninfected_count = models.PositiveIntegerField(default=0)
    uncertain_count = models.PositiveIntegerField(default=0)
    parasitemia = models.FloatField(null=True, blank=True, help_text="Parasitized / classified cells.")
    result = models.CharField(max_length=20, choices=Result.choices, blank=True, help_text="Automatic result.")
    final_result = models.CharField(
        max_length=20,
        choices=Result.choices,
        blank=True,
        help_text="The latest review's result, else the automatic one.",
    )

    class Meta:
        ordering = ["-collected_at", "-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "-created_at"]), models.Index(fields=["patient", "-collected_at"])]

    def __str__(self) -> str:
        return f"Sample {self.pk} of {self.patient}"


class CellImageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    CLASSIFIED = "classified", "Classified"
    FAILED = "failed", "Failed"


def cell_image_path(instance: CellImage, filename: str) -> str:
    # Stored under a random name: the original file name is kept in a field, never trusted as a path.
    return (
        f"cells/lab-{instance.sample.lab_id}/sample-{instance.sample_id}/{uuid.uuid4().hex}.{instance.format.lower()}"
    )


class CellImage(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=cell_image_path, max_length=300)
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    byte_size = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=CellImageStatus.choices, default=CellImageStatus.QUEUED)
    error = models.CharField(max_length=300, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["sample", "sha256"], name="cell_image_unique_in_sample")]
        indexes = [models.Index(fields=["status", "claimed_at"])]

    def __str__(self) -> str:
        return self.original_filename


class Label(models.TextChoices):
    PARASITIZED = "parasitized", "Parasitized"
    UNINFECTED = "uninfected", "Uninfected"


class Prediction(models.Model):
    image = models.OneToOneField(CellImage, on_delete=models.CASCADE, related_name="prediction")
    label = models.CharField(max_length=20, choices=Label.choices)
    probability = models.FloatField(help_text="Calibrated probability that the cell is parasitized.")
    uncertain = models.BooleanField(default=False)
    model_version = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.label} ({self.probability:.2f})"


class Decision(models.TextChoices):
    CONFIRM = "confirm", "Confirm"
    OVERRIDE = "override", "Override"


class Review(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    result = models.CharField(max_length=20, choices=Result.choices)
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.decision} {self.result} on sample {self.sample_id}"


class CellRelabel(models.Model):
    """A reviewer's label for one cell, overriding the model's for that cell."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="cell_labels")
    image = models.ForeignKey(CellImage, on_delete=models.CASCADE, related_name="relabels")
    label = models.CharField(max_length=20, choices=Label.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "image"], name="one_relabel_per_cell_per_review")]
