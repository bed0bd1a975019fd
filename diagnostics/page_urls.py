"""The pages (the REST API is in diagnostics.urls)."""

from django.urls import path

from diagnostics import views, webhook_views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patients", views.patient_list, name="patients"),
    path("patients/new", views.patient_create, name="patient-new"),
    path("patients/<int:patient_id>", views.patient_detail, name="patient"),
    path("patients/<int:patient_id>/edit", views.patient_edit, name="patient-edit"),
    path("patients/<int:patient_id>/samples/new", views.sample_create, name="sample-new"),
    path("samples/<int:sample_id>", views.sample_detail, name="sample"),
    path("samples/<int:sample_id>/upload", views.sample_upload, name="sample-upload"),
    path("samples/<int:sample_id>/cells.csv", views.sample_cells_csv, name="sample-cells-csv"),
    path("samples/<int:sample_id>/report.pdf", views.sample_report_pdf, name="sample-report-pdf"),
    path("samples/<int:sample_id>/review", views.sample_review, name="sample-review"),
    path("images/<int:image_id>", views.cell_detail, name="cell"),
    path("fields/<int:field_id>", views.field_detail, name="field"),
    path("reviews", views.review_queue, name="review-queue"),
    path("model", views.model_card, name="model-card"),
    path("webhooks", webhook_views.webhook_list, name="webhooks"),
    path("webhooks/<int:webhook_id>/delete", webhook_views.webhook_delete, name="webhook-delete"),
]
