"""Patients, their samples (blood smears), the cell images of a sample, predictions and reviews.

Every row belongs to one lab, directly (patient, sample) or through its sample; selectors scope every
read by the requesting user's lab.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, URLValidator
from django.db import models
from django.utils import timezone

from accounts.models import Lab, User, canonical_email

FIRST_BIRTH_YEAR = 1900
NOTES_MAX_LENGTH = 5000  # for a sample's notes and a review's comment


def validate_birth_year(value: int) -> None:
    this_year = timezone.localdate().year
    if not FIRST_BIRTH_YEAR <= value <= this_year:
        raise ValidationError(f"Birth year must be between {FIRST_BIRTH_YEAR} and {this_year}.", code="birth_year")


def validate_identifier(value: str) -> None:
    if not value.strip():
        raise ValidationError("An identifier is required.", code="required")


def validate_not_in_future(value: dt.date) -> None:
    if value > timezone.localdate():
        raise ValidationError("The collection date cannot be in the future.", code="future")


def limited_text(**kwargs) -> models.TextField:
    # A TextField's max_length only sizes form fields; the validator makes full_clean() enforce it too.
    return models.TextField(max_length=NOTES_MAX_LENGTH, validators=[MaxLengthValidator(NOTES_MAX_LENGTH)], **kwargs)


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Patient(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="patients")
    identifier = models.CharField(
        max_length=64, validators=[validate_identifier], help_text="The lab's record number for this patient."
    )
    name = models.CharField(max_length=200, blank=True)
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True, validators=[validate_birth_year])
    notes = limited_text(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["identifier"]
        constraints = [models.UniqueConstraint(fields=["lab", "identifier"], name="patient_identifier_unique_in_lab")]

    def __str__(self) -> str:
        return self.identifier

    def clean(self) -> None:
        # Surrounding spaces are never part of the lab's record number.
        self.identifier = self.identifier.strip()


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


class SampleQuerySet(models.QuerySet):
    def reviewable_by(self, reviewer: User) -> SampleQuerySet:
        """Sample.review_refusal as a filter: leaves out the samples this reviewer created or uploaded to."""
        return self.exclude(created_by=reviewer).exclude(contributors__email=canonical_email(reviewer.email))


class Sample(models.Model):
    """One blood smear of a patient. Counts and results are kept up to date by diagnostics.services."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="samples")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="samples")
    collected_at = models.DateField(default=today, validators=[validate_not_in_future])
    notes = limited_text(blank=True)
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
    result_reason = models.CharField(max_length=300, blank=True, help_text="Why the automatic result is what it is.")
    parasitemia_low = models.FloatField(null=True, blank=True, help_text="Parasitemia's 95 % Wilson interval, low.")
    parasitemia_high = models.FloatField(null=True, blank=True, help_text="Parasitemia's 95 % Wilson interval, high.")
    final_result = models.CharField(
        max_length=20,
        choices=Result.choices,
        blank=True,
        help_text="The latest review's result, else the automatic one.",
    )

    objects = SampleQuerySet.as_manager()

    class Meta:
        ordering = ["-collected_at", "-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "-created_at"]), models.Index(fields=["patient", "-collected_at"])]

    def __str__(self) -> str:
        return f"Sample {self.pk} of {self.patient}"

    def review_refusal(self, reviewer: User) -> str | None:
        """Why this person may not review this sample, or None. Four eyes: a reviewer never reviews a sample
        they created or uploaded cells or fields to (SampleContributor, kept by email after an account goes).

        review_create enforces it, the review page shows it, and the review queue leaves such samples out
        (SampleQuerySet.reviewable_by, the same rule as a filter).
        """
        if (self.created_by_id is not None and self.created_by_id == reviewer.pk) or self.contributors.filter(
            email=canonical_email(reviewer.email)
        ).exists():
            return "You created this sample or uploaded images to it, so another reviewer must review it."
        return None


class SampleContributor(models.Model):
    """Someone who created a sample or uploaded to it. By email, not by account: the four-eyes rule must
    still hold after the account is deleted (or deleted and made again for the same person)."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="contributors")
    email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "email"], name="one_contributor_row_per_email")]

    def __str__(self) -> str:
        return f"{self.email} on sample {self.sample_id}"


class QueuedUpload(models.Model):
    """An uploaded image that waits in a queue for a worker: a field photograph or a cell image.

    The claim fields make "every item processed exactly once" possible (docs/decisions.md, "Lost work";
    diagnostics/work_queue.py): a claim is a conditional UPDATE that sets claim_token and claimed_at.
    """

    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    byte_size = models.PositiveIntegerField()
    error = models.CharField(max_length=300, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # "host:pid" of the worker process holding the claim: a task redelivered after that process died (a pool
    # child killed) takes the claim over at once instead of waiting for the sweeper (work_queue.take_over).
    claimed_by = models.CharField(max_length=100, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class FieldStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    SEGMENTED = "segmented", "Segmented"
    FAILED = "failed", "Failed"


def field_path(instance: Field, filename: str) -> str:
    # Stored under a random name, as cell images are.
    return (
        f"fields/lab-{instance.sample.lab_id}/sample-{instance.sample_id}/{uuid.uuid4().hex}.{instance.format.lower()}"
    )


class Field(QueuedUpload):
    """A whole-field photograph of a sample's smear; its red cells become the sample's cell images once segmented."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="fields")
    file = models.FileField(upload_to=field_path, max_length=300)
    status = models.CharField(max_length=20, choices=FieldStatus.choices, default=FieldStatus.QUEUED)
    quality = models.JSONField(default=list, blank=True, help_text="Quality flags, e.g. 'out of focus'.")
    cell_diameter = models.FloatField(null=True, blank=True, help_text="Estimated red-cell diameter, pixels.")
    skipped = models.JSONField(default=list, blank=True, help_text="Objects left out: [{box: [x0, y0, x1, y1], kind}].")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["sample", "sha256"], name="field_unique_in_sample")]
        indexes = [models.Index(fields=["status", "claimed_at"])]

    def __str__(self) -> str:
        return self.original_filename


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


class CellImage(QueuedUpload):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=cell_image_path, max_length=300)
    status = models.CharField(max_length=20, choices=CellImageStatus.choices, default=CellImageStatus.QUEUED)
    # A cell found on a field photograph: the field, its box there, and whether it counts (cells cut by the
    # image edge are classified but not counted: docs/decisions.md, "Fields").
    field = models.ForeignKey(Field, null=True, blank=True, on_delete=models.CASCADE, related_name="cells")
    box = models.JSONField(null=True, blank=True, help_text="[x0, y0, x1, y1] in the field's pixels.")
    counted = models.BooleanField(default=True)

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

    @classmethod
    def of(cls, image_id: int, verdict) -> Prediction:
        """The prediction for an image from a verdict: anything with the engine's label, probability,
        uncertain and model_version (worker.serving.engine.CellClassification, classification.CellOutcome)."""
        return cls(
            image_id=image_id,
            label=verdict.label,
            probability=verdict.probability,
            uncertain=verdict.uncertain,
            model_version=verdict.model_version,
        )


class Decision(models.TextChoices):
    CONFIRM = "confirm", "Confirm"
    OVERRIDE = "override", "Override"


# A sample's latest review is the newest (the later one of two saved in the same instant): its result is the
# sample's final result. diagnostics.selectors reads review state in this order only.
LATEST_REVIEW_FIRST = ["-created_at", "-id"]


class Review(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    result = models.CharField(max_length=20, choices=Result.choices)
    comment = limited_text()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when cells or fields were added to the sample after this review: its decision was made without
    # them, so it no longer stands (the sample goes back to the review queue); kept for the record.
    stale_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = LATEST_REVIEW_FIRST

    def __str__(self) -> str:
        return f"{self.decision} {self.result} on sample {self.sample_id}"


class CellRelabel(models.Model):
    """A reviewer's label for one cell, overriding the model's for that cell."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="cell_labels")
    image = models.ForeignKey(CellImage, on_delete=models.CASCADE, related_name="relabels")
    label = models.CharField(max_length=20, choices=Label.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "image"], name="one_relabel_per_cell_per_review")]


# -- webhooks (docs/webhooks.md) ---------------------------------------------------------------------------

WEBHOOK_URL_MAX_LENGTH = 500


def webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """A lab's receiver: events about its samples are POSTed to `url`, signed with `secret` (HMAC-SHA256)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="webhooks")
    # The address rules (http(s) only, never a private or local address) are diagnostics.webhook_transport's:
    # they need DNS, so webhooks.webhook_create checks them, and each delivery checks them again.
    url = models.URLField(
        max_length=WEBHOOK_URL_MAX_LENGTH,
        validators=[URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// URL.")],
    )
    secret = models.CharField(max_length=100, default=webhook_secret, editable=False)
    description = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one receiver, written in the transaction of the event itself (an outbox) and sent once
    committed; its attempts and outcome are what the lab sees."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set once the broker took the task: a delivery still unsent after a while is sent again (the outbox relay).
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "enqueued_at"])]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event_id"], name="one_delivery_per_event_per_webhook")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} to webhook {self.webhook_id}"
