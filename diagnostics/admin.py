from django.contrib import admin

from diagnostics.models import (
    CellImage,
    CellRelabel,
    Field,
    Patient,
    Prediction,
    Review,
    Sample,
    Webhook,
    WebhookDelivery,
)


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["identifier", "name", "lab", "sex", "birth_year", "created_at"]
    list_filter = ["lab", "sex"]
    search_fields = ["identifier", "name"]


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "patient",
        "lab",
        "collected_at",
        "status",
        "total_count",
        "parasitemia",
        "result",
        "final_result",
    ]
    list_filter = ["lab", "status", "result", "final_result"]
    search_fields = ["patient__identifier", "patient__name", "id"]
    date_hierarchy = "collected_at"
    readonly_fields = [
        "total_count",
        "queued_count",
        "processing_count",
        "classified_count",
        "failed_count",
        "parasitized_count",
        "uninfected_count",
        "uncertain_count",
        "parasitemia",
        "result",
        "final_result",
        "status",
    ]


@admin.register(CellImage)
class CellImageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "original_filename",
        "sample",
        "status",
        "format",
        "width",
        "height",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "format", "sample__lab"]
    search_fields = ["original_filename", "sha256", "sample__id"]
    readonly_fields = ["sha256", "claim_token", "claimed_at", "enqueued_at", "attempts", "field", "box", "counted"]


@admin.register(Field)
class FieldAdmin(admin.ModelAdmin):
    list_display = ["id", "original_filename", "sample", "status", "width", "height", "attempts", "created_at"]
    list_filter = ["status", "format", "sample__lab"]
    search_fields = ["original_filename", "sha256", "sample__id"]
    readonly_fields = [
        "sha256",
        "claim_token",
        "claimed_at",
        "enqueued_at",
        "attempts",
        "quality",
        "cell_diameter",
        "skipped",
    ]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["image", "label", "probability", "uncertain", "model_version", "created_at"]
    list_filter = ["label", "uncertain", "model_version"]
    search_fields = ["image__original_filename", "image__sample__id"]


class CellRelabelInline(admin.TabularInline):
    model = CellRelabel
    extra = 0


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["sample", "reviewer", "decision", "result", "created_at"]
    list_filter = ["decision", "result", "sample__lab"]
    search_fields = ["sample__id", "reviewer__email", "comment"]
    inlines = [CellRelabelInline]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """Site administrators may pause a lab's receiver (active); the lab's reviewers add and remove them.
    The URL is read-only here: it is checked against SSRF only by diagnostics.webhooks.webhook_create."""

    list_display = ["url", "lab", "active", "created_by", "created_at"]
    list_filter = ["lab", "active"]
    fields = ["lab", "url", "description", "active", "created_by", "created_at"]
    readonly_fields = ["lab", "url", "created_by", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "webhook", "event_type", "status", "attempts", "last_response_code", "created_at"]
    list_filter = ["status", "event_type", "webhook__lab"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
