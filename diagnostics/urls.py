from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from diagnostics import api, api_fhir, webhook_api

api_v1 = [
    path("me", api.MeApi.as_view(), name="me"),
    path("patients", api.PatientListApi.as_view(), name="patients"),
    path("patients/<int:patient_id>", api.PatientDetailApi.as_view(), name="patient"),
    path("patients/<int:patient_id>/samples", api.PatientSamplesApi.as_view(), name="patient-samples"),
    path("patients/<int:patient_id>/history.csv", api.PatientHistoryCsvApi.as_view(), name="patient-history-csv"),
    path("samples", api.SampleListApi.as_view(), name="samples"),
    path("samples/<int:sample_id>", api.SampleDetailApi.as_view(), name="sample"),
    path("samples/<int:sample_id>/images", api.SampleImagesApi.as_view(), name="sample-images"),
    path("samples/<int:sample_id>/fields", api.SampleFieldsApi.as_view(), name="sample-fields"),
    path("samples/<int:sample_id>/report.pdf", api.SampleReportApi.as_view(), name="sample-report"),
    path("fields/<int:field_id>", api.FieldDetailApi.as_view(), name="field"),
    path("fields/<int:field_id>/file", api.FieldFileApi.as_view(), name="field-file"),
    path("fields/<int:field_id>/overlay.png", api.FieldOverlayApi.as_view(), name="field-overlay"),
    path("samples/<int:sample_id>/reviews", api.SampleReviewsApi.as_view(), name="sample-reviews"),
    path("samples/<int:sample_id>/fhir", api_fhir.SampleFhirApi.as_view(), name="sample-fhir"),
    path("images/<int:image_id>", api.CellImageDetailApi.as_view(), name="image"),
    path("images/<int:image_id>/file", api.CellImageFileApi.as_view(), name="image-file"),
    path("images/<int:image_id>/heatmap", api.CellImageHeatmapApi.as_view(), name="image-heatmap"),
    path("export/samples.csv", api.SamplesCsvApi.as_view(), name="export-samples-csv"),
    path("webhooks", webhook_api.WebhookListApi.as_view(), name="webhooks"),
    path("webhooks/<int:webhook_id>", webhook_api.WebhookDetailApi.as_view(), name="webhook"),
    path("webhooks/<int:webhook_id>/deliveries", webhook_api.WebhookDeliveriesApi.as_view(), name="webhook-deliveries"),
    path("schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "docs",
        # Swagger UI's page starts itself with inline code; it carries no patient data.
        csp_update({"script-src": ["'unsafe-inline'"], "style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerView.as_view(url_name="api:schema", authentication_classes=[], permission_classes=[])
        ),
        name="docs",
    ),
]
