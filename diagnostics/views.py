"""Pages: thin views over the same selectors and services as the API (diagnostics.api).

Each view finds its objects through the selectors (another lab's object is a 404), validates with a model form
(the models' field rules, as the API's model serializers apply them) and calls one service. A service's
`ValidationError` is shown on the form, which is re-rendered with status 400; its `PermissionDenied` is the 403
page.
"""

from __future__ import annotations

import copy

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import lab_member_required, require_reviewer
from accounts.audit import audit_context
from accounts.models import Role
from diagnostics import exports, reports, selectors, services
from diagnostics.charts import parasitemia_chart
from diagnostics.forms import PatientForm, ReviewForm, SampleForm
from diagnostics.models import FieldStatus, Sample, SampleStatus
from diagnostics.served_model import served_model
from diagnostics.throttles import ReportThrottle, UploadThrottle, page_wait
from diagnostics.uploads import FIELD_LIMITS
from worker.serving.results import MIN_CELLS_FOR_NEGATIVE

PATIENTS_PER_PAGE = 25
CELLS_PER_PAGE = 120
QUEUE_PER_PAGE = 50
CELL_FILTER_LABELS = {"all": "All", "parasitized": "Parasitized", "uncertain": "Uncertain", "failed": "Failed"}
# The upload page's target for field photographs: the red cells a negative result needs (the result rule's
# figure, WHO's lower count), against the sample's classified (counted) red cells so far.
RED_CELLS_NEEDED = MIN_CELLS_FOR_NEGATIVE
# How the field page names what a skipped object was (worker.serving.fields' kinds, and "duplicate").
SKIPPED_KINDS = {"white cell": "White cell", "clump": "Clump", "small": "Debris or platelet", "duplicate": "Duplicate"}


def form_status(form) -> int:
    return 400 if form.is_bound and form.errors else 200


# -- dashboard -------------------------------------------------------------------------------------------


@lab_member_required
@require_GET
def dashboard(request):
    membership = request.membership
    awaiting = None
    if membership.role == Role.REVIEWER:
        awaiting = selectors.samples_awaiting_review(membership, reviewer=request.user).count()
    context = {
        "section": "dashboard",
        "recent": selectors.samples_recent(membership),
        "in_progress": selectors.samples_in_progress(membership),
        "awaiting_review": awaiting,
    }
    return render(request, "diagnostics/dashboard.html", context)


# -- patients --------------------------------------------------------------------------------------------


@lab_member_required
@require_GET
def patient_list(request):
    query = request.GET.get("q", "").strip()
    patients = selectors.patients_for(request.membership, search=query)
    page = Paginator(patients, PATIENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "diagnostics/patient_list.html", {"section": "patients", "q": query, "page": page})


@lab_member_required
@require_http_methods(["GET", "POST"])
def patient_create(request):
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_create(
                actor=request.user, membership=request.membership, audit=audit_context(request), **form.cleaned_data
            )
        except ValidationError as refused:
            form.add_refusal(refused)
        else:
            messages.success(request, f"Patient {patient.identifier} added.")
            return redirect("patient", patient_id=patient.pk)
    context = {"section": "patients", "form": form, "patient": None}
    return render(request, "diagnostics/patient_form.html", context, status=form_status(form))


@lab_member_required
@require_http_methods(["GET", "POST"])
def patient_edit(request, patient_id: int):
    patient = selectors.patient_get(request.membership, patient_id)
    # The form edits a copy: a refused save must not leave the page's heading showing the refused values.
    form = PatientForm(request.POST or None, instance=copy.copy(patient))
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.patient_update(
                patient=form.instance,
                actor=request.user,
                membership=request.membership,
                audit=audit_context(request),
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
        except ValidationError as refused:
            form.add_refusal(refused)
        else:
            messages.success(request, f"Patient {saved.identifier} saved.")
            return redirect("patient", patient_id=saved.pk)
    context = {"section": "patients", "form": form, "patient": patient}
    return render(request, "diagnostics/patient_form.html", context, status=form_status(form))


@lab_member_required
@require_GET
def patient_detail(request, patient_id: int):
    membership = request.membership
    patient = selectors.patient_get(membership, patient_id)
    series = list(selectors.parasitemia_series(membership, patient=patient))
    context = {
        "section": "patients",
        "patient": patient,
        "samples": selectors.samples_for(membership, patient_id=patient.pk),
        "series": series,
        "chart": parasitemia_chart(series),
    }
    return render(request, "diagnostics/patient_detail.html", context)


# -- samples and uploads ---------------------------------------------------------------------------------


@lab_member_required
@require_http_methods(["GET", "POST"])
def sample_create(request, patient_id: int):
    patient = selectors.patient_get(request.membership, patient_id)
    form = SampleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sample = services.sample_create(
                patient=patient,
                actor=request.user,
                membership=request.membership,
                audit=audit_context(request),
                collected_at=form.cleaned_data["collected_at"],
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as refused:
            form.add_refusal(refused)
        else:
            messages.success(request, f"Sample {sample.pk} created: now upload its cell images.")
            return redirect("sample-upload", sample_id=sample.pk)
    context = {"section": "patients", "form": form, "patient": patient}
    return render(request, "diagnostics/sample_form.html", context, status=form_status(form))


@lab_member_required
@require_http_methods(["GET", "POST"])
def sample_upload(request, sample_id: int):
    """The upload page: cell images, or field photographs (`?kind=fields`, or a form with `kind=fields`). Both
    forms also work without JavaScript (posted here, checked and stored by the same services as the API's)."""
    sample = selectors.sample_get(request.membership, sample_id)
    kind = "fields" if request.POST.get("kind", request.GET.get("kind")) == "fields" else "cells"
    context = {
        "section": "patients",
        "sample": sample,
        "kind": kind,
        "limits": services.upload_limits(),
        "field_limits": FIELD_LIMITS,
        "max_request_mb": settings.UPLOAD_MAX_REQUEST_BYTES // (1024 * 1024),
        "red_cells_needed": RED_CELLS_NEEDED,
        "outcome": None,
        "error": "",
    }
    if request.method == "GET":
        return render(request, "diagnostics/sample_upload.html", context)
    wait = page_wait(request, UploadThrottle)
    if wait is not None:
        context["error"] = f"Too many uploads in a short time: wait {wait} seconds, then send these again."
        response = render(request, "diagnostics/sample_upload.html", context, status=429)
        response["Retry-After"] = str(wait)
        return response
    archive = request.FILES.get("archive")
    files = request.FILES.getlist("fields" if kind == "fields" else "images")
    if not files and archive is None:
        what = "field photographs" if kind == "fields" else "cell images"
        context["error"] = f"Choose {what}, or a ZIP archive of them, to upload."
        return render(request, "diagnostics/sample_upload.html", context, status=400)
    facts = {"sample": sample, "actor": request.user, "membership": request.membership, "audit": audit_context(request)}
    if kind == "fields":
        outcome = services.fields_receive(**facts, fields=files, archive=archive)
    else:
        outcome = services.cell_images_receive(**facts, images=files, archive=archive)
    context["outcome"] = outcome
    context["sample"] = selectors.sample_get(request.membership, sample_id)
    return render(request, "diagnostics/sample_upload.html", context, status=200 if outcome.accepted else 400)


def sample_context(request, sample: Sample) -> dict:
    """What the sample page and the review page both show: the result, counts and the grid of cells."""
    show = request.GET.get("show", "all")
    if show not in selectors.CELL_FILTERS:
        show = "all"
    images = selectors.cell_images_for(request.membership, sample=sample, show=show)
    counts = {
        "all": sample.total_count,
        "parasitized": sample.parasitized_count,
        "uncertain": sample.uncertain_count,
        "failed": sample.failed_count,
    }
    return {
        "section": "patients",
        "sample": sample,
        "show": show,
        "filters": [(key, label, counts[key]) for key, label in CELL_FILTER_LABELS.items()],
        "cells": Paginator(images, CELLS_PER_PAGE).get_page(request.GET.get("page")),
        "model_versions": selectors.sample_model_versions(sample),
        "latest_review": selectors.latest_review(sample),
        "reviews": selectors.reviews_of(sample),
        "processing": sample.status == SampleStatus.PROCESSING,
        "is_reviewer": request.membership.role == Role.REVIEWER,
    }


@lab_member_required
@require_GET
def sample_detail(request, sample_id: int):
    sample = selectors.sample_get(request.membership, sample_id)
    context = {**sample_context(request, sample), "fields": selectors.fields_for(request.membership, sample=sample)}
    return render(request, "diagnostics/sample_detail.html", context)


@lab_member_required
@require_GET
def sample_cells_csv(request, sample_id: int):
    sample = selectors.sample_get(request.membership, sample_id)
    return exports.csv_response(
        table=exports.cells_table(selectors.cell_images_for(request.membership, sample=sample)),
        filename=f"sample-{sample.pk}-cells.csv",
        actor=request.user,
        membership=request.membership,
        audit=audit_context(request),
        query=request.GET.dict(),
    )


@lab_member_required
@require_GET
def sample_report_pdf(request, sample_id: int):
    sample = selectors.sample_get(request.membership, sample_id)
    wait = page_wait(request, ReportThrottle)
    if wait is not None:
        response = render(
            request,
            "429.html",
            {
                "message": f"Too many reports in a short time: wait {wait} seconds, then ask again.",
                "back_url": reverse("sample", args=[sample.pk]),
                "back_label": f"Back to sample {sample.pk}",
            },
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
    return reports.pdf_response(
        sample=sample, actor=request.user, membership=request.membership, audit=audit_context(request)
    )


@lab_member_required
@require_GET
def cell_detail(request, image_id: int):
    image = selectors.cell_image_get(request.membership, image_id)
    context = {
        "section": "patients",
        "image": image,
        "sample": image.sample,
        "prediction": getattr(image, "prediction", None),
    }
    return render(request, "diagnostics/cell_detail.html", context)


@lab_member_required
@require_GET
def field_detail(request, field_id: int):
    """A field photograph with a box on every object found: its red cells (links to their cell pages, coloured by
    the model's label) and the objects left out, drawn as SVG in the photograph's own pixels."""
    field = selectors.field_get(request.membership, field_id)
    cells = list(selectors.field_cells(request.membership, field))
    boxes = [cell_box(number, cell) for number, cell in enumerate(cells, start=1) if cell.box]
    skipped = [
        {"box": box_geometry(item["box"]), "kind": SKIPPED_KINDS.get(item.get("kind"), str(item.get("kind", "")))}
        for item in field.skipped or []
        if isinstance(item, dict) and item.get("box")
    ]
    legend = {state: 0 for state in ("uninfected", "parasitized", "uncertain", "pending", "failed")}
    for box in boxes:
        legend[box["state"]] += 1
    context = {
        "section": "patients",
        "field": field,
        "sample": field.sample,
        "boxes": boxes,
        "skipped": skipped,
        "legend": legend,
        "edge_count": sum(not box["counted"] for box in boxes),
        # Followed live (progress.js reloads the page once the sample is no longer processing).
        "in_progress": field.sample.status == SampleStatus.PROCESSING
        and (field.status in (FieldStatus.QUEUED, FieldStatus.PROCESSING) or legend["pending"] > 0),
    }
    return render(request, "diagnostics/field_detail.html", context)


def box_geometry(box) -> dict:
    x0, y0, x1, y1 = (int(v) for v in box)
    return {"x": x0, "y": y0, "width": max(x1 - x0, 1), "height": max(y1 - y0, 1)}


def cell_box(number: int, cell) -> dict:
    """One red cell's box on the field page: where, its state (the legend's colour) and its accessible name."""
    prediction = getattr(cell, "prediction", None)
    if prediction is not None and prediction.uncertain:
        state = "uncertain"
    elif prediction is not None:
        state = prediction.label
    elif cell.status == "failed":
        state = "failed"
    else:
        state = "pending"
    if prediction is not None:
        said = f"{prediction.get_label_display().lower()}, {prediction.probability:.2f}"
        if prediction.uncertain:
            said += ", uncertain"
    else:
        said = cell.get_status_display().lower()
    if not cell.counted:
        said += ", cut by the edge, not counted"
    if cell.reviewed_label:
        said += f", reviewer: {cell.reviewed_label}"
    return {
        **box_geometry(cell.box),
        "id": cell.pk,
        "number": number,
        "state": state,
        "counted": cell.counted,
        "label": f"cell {number}: {said}",
    }


# -- reviews ---------------------------------------------------------------------------------------------


@lab_member_required
@require_GET
def review_queue(request):
    require_reviewer(request)
    samples = selectors.samples_awaiting_review(request.membership, reviewer=request.user)
    page = Paginator(samples, QUEUE_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "diagnostics/review_queue.html", {"section": "reviews", "page": page})


@lab_member_required
@require_http_methods(["GET", "POST"])
def sample_review(request, sample_id: int):
    membership = request.membership
    sample = selectors.sample_get(membership, sample_id)
    require_reviewer(request)
    refusal = sample.review_refusal(request.user)
    form = ReviewForm(request.POST or None, initial={"decision": "confirm"})
    if request.method == "POST":
        if refusal:
            raise PermissionDenied(refusal)
        if form.is_valid():
            try:
                review = services.review_create(
                    sample=sample,
                    actor=request.user,
                    membership=membership,
                    audit=audit_context(request),
                    decision=form.cleaned_data["decision"],
                    result=form.cleaned_data["result"] or None,
                    comment=form.cleaned_data["comment"],
                    cells=form.relabels(),
                )
            except ValidationError as refused:
                form.add_refusal(refused)
            else:
                done = "confirmed" if review.decision == "confirm" else "overridden"
                messages.success(request, f"Review saved: result {done} as {review.get_result_display().lower()}.")
                return redirect("sample", sample_id=sample.pk)
    context = {
        **sample_context(request, sample),
        "section": "reviews",
        "form": form,
        "refusal": refusal,
        "reviewable": sample.status == SampleStatus.COMPLETE and not refusal,
        "relabel_choices": ReviewForm.CELL_CHOICES,
        "audit_events": selectors.audit_events_for(membership, object_type="sample", object_id=sample.pk),
    }
    if form.is_bound:  # a refused review keeps the relabels chosen on this page
        chosen = dict(form.relabels())
        page = context["cells"]
        page.object_list = list(page.object_list)
        for image in page.object_list:
            image.chosen_label = chosen.get(image.pk, "")
    return render(request, "diagnostics/sample_review.html", context, status=form_status(form))


# -- the model -------------------------------------------------------------------------------------------


@require_GET
def model_card(request):
    """Public: what the served model is and how well it did on patients it never saw. No lab data."""
    served = served_model()
    card = served.card.data if served.card else None
    # The shares of surest cells the card was measured at ('0.9': the surest 90 %), as the card records them.
    shares = sorted(((card or {}).get("metrics", {}).get("test", {}).get("accuracy_at_coverage") or {}), key=float)
    context = {
        "section": "model",
        "served": served,
        "card": card,
        "coverages": [(share, f"{float(share) * 100:g} %") for share in shares],
    }
    return render(request, "diagnostics/model_card.html", context, status=200 if served.card else 503)
