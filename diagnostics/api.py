"""REST API v1: thin views. Validate, call one service or selector, serialize."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_context
from accounts.permissions import IsReviewer
from diagnostics import exports, reports, selectors, services
from diagnostics.api_errors import FirstRendererAlways
from diagnostics.models import CellImageStatus, Result, SampleStatus
from diagnostics.serializers import (
    CellImageSerializer,
    FieldDetailSerializer,
    FieldSerializer,
    MeSerializer,
    PatientSerializer,
    ReviewCreateSerializer,
    ReviewSerializer,
    SampleCreateSerializer,
    SampleDetailSerializer,
    SampleSerializer,
    UploadResultSerializer,
)
from diagnostics.throttles import HeatmapThrottle, ReportThrottle, UploadThrottle


class Pages(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class MeApi(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        membership = request.membership
        return Response(
            {
                "email": request.user.email,
                "role": membership.role,
                "lab": {"id": membership.lab_id, "name": membership.lab.name},
            }
        )


class PatientListApi(GenericAPIView):
    serializer_class = PatientSerializer
    pagination_class = Pages

    @extend_schema(
        operation_id="patients_list",
        parameters=[OpenApiParameter("search", str, description="Part of the identifier or name")],
        responses=PatientSerializer(many=True),
    )
    def get(self, request):
        patients = selectors.patients_for(request.membership, search=request.query_params.get("search", "").strip())
        page = self.paginate_queryset(patients)
        return self.get_paginated_response(PatientSerializer(page, many=True).data)

    @extend_schema(responses={201: PatientSerializer})
    def post(self, request):
        serializer = PatientSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_create(
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            **serializer.validated_data,
        )
        return Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)


class PatientDetailApi(GenericAPIView):
    serializer_class = PatientSerializer

    def get(self, request, patient_id: int):
        return Response(PatientSerializer(selectors.patient_get(request.membership, patient_id)).data)

    def patch(self, request, patient_id: int):
        patient = selectors.patient_get(request.membership, patient_id)
        serializer = PatientSerializer(patient, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_update(
            patient=patient,
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            changes=serializer.validated_data,
        )
        return Response(PatientSerializer(patient).data)


class PatientSamplesApi(GenericAPIView):
    serializer_class = SampleSerializer
    pagination_class = Pages

    @extend_schema(responses=SampleSerializer(many=True))
    def get(self, request, patient_id: int):
        patient = selectors.patient_get(request.membership, patient_id)
        page = self.paginate_queryset(selectors.samples_for(request.membership, patient_id=patient.pk))
        return self.get_paginated_response(SampleSerializer(page, many=True).data)


class SampleFilters(drf_serializers.Serializer):
    patient = drf_serializers.IntegerField(required=False)
    status = drf_serializers.ChoiceField(choices=SampleStatus.choices, required=False, allow_blank=True)
    result = drf_serializers.ChoiceField(choices=Result.choices, required=False, allow_blank=True)
    collected_from = drf_serializers.DateField(required=False)
    collected_to = drf_serializers.DateField(required=False)


class SampleListApi(GenericAPIView):
    serializer_class = SampleSerializer
    pagination_class = Pages

    @extend_schema(operation_id="samples_list", parameters=[SampleFilters], responses=SampleSerializer(many=True))
    def get(self, request):
        filters = SampleFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        samples = selectors.samples_for(request.membership, patient_id=values.pop("patient", None), **values)
        page = self.paginate_queryset(samples)
        return self.get_paginated_response(SampleSerializer(page, many=True).data)

    @extend_schema(request=SampleCreateSerializer, responses={201: SampleDetailSerializer})
    def post(self, request):
        serializer = SampleCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            patient = selectors.patient_get(request.membership, data["patient"])
        except Http404 as exc:
            raise ValidationError({"patient": ["No such patient in your lab."]}) from exc
        sample = services.sample_create(
            patient=patient,
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            collected_at=data.get("collected_at"),
            notes=data.get("notes", ""),
        )
        return Response(SampleDetailSerializer(sample).data, status=status.HTTP_201_CREATED)


class SampleDetailApi(GenericAPIView):
    serializer_class = SampleDetailSerializer

    def get(self, request, sample_id: int):
        return Response(SampleDetailSerializer(selectors.sample_get(request.membership, sample_id)).data)


def multipart_upload(files_field: str) -> dict:
    """The OpenAPI body of an upload: many files in `files_field` and/or one ZIP in `archive`."""
    binary = {"type": "string", "format": "binary"}
    return {
        "multipart/form-data": {
            "type": "object",
            "properties": {files_field: {"type": "array", "items": binary}, "archive": binary},
        }
    }


class SampleImagesApi(GenericAPIView):
    serializer_class = CellImageSerializer
    pagination_class = Pages
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UploadThrottle]

    @extend_schema(responses=CellImageSerializer(many=True))
    def get(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        page = self.paginate_queryset(selectors.cell_images_for(request.membership, sample=sample))
        return self.get_paginated_response(CellImageSerializer(page, many=True).data)

    @extend_schema(
        request=multipart_upload("images"), responses={202: UploadResultSerializer, 400: UploadResultSerializer}
    )
    def post(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        images, archive = request.FILES.getlist("images"), request.FILES.get("archive")
        if not images and archive is None:
            raise ValidationError({"detail": "Send cell images in the field 'images' or a ZIP in the field 'archive'."})
        outcome = services.cell_images_receive(
            sample=sample,
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            images=images,
            archive=archive,
        )
        status_code = status.HTTP_202_ACCEPTED if outcome.accepted else status.HTTP_400_BAD_REQUEST
        return Response(upload_body(outcome), status=status_code)


def upload_body(outcome) -> dict:
    return {
        "accepted": [{"id": i.pk, "filename": i.original_filename, "status": i.status} for i in outcome.accepted],
        "rejected": [{"filename": r.filename, "error": r.error} for r in outcome.rejected],
    }


class SampleReportApi(APIView):
    content_negotiation_class = FirstRendererAlways
    throttle_classes = [ReportThrottle]

    @extend_schema(
        operation_id="samples_report_pdf",
        description="The sample's report as a PDF (patient, result, parasitemia, cells, review), audited as an export.",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description="The report (A4), as an attachment named report-sample-<id>-<patient identifier>.pdf.",
            )
        },
    )
    def get(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        return reports.pdf_response(
            sample=sample, actor=request.user, membership=request.membership, audit=audit_context(request)
        )


class SampleFieldsApi(GenericAPIView):
    serializer_class = FieldSerializer
    pagination_class = Pages
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UploadThrottle]

    @extend_schema(responses=FieldSerializer(many=True))
    def get(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        page = self.paginate_queryset(selectors.fields_for(request.membership, sample=sample))
        return self.get_paginated_response(FieldSerializer(page, many=True).data)

    @extend_schema(
        operation_id="samples_fields_upload",
        request=multipart_upload("fields"),
        responses={202: UploadResultSerializer, 400: UploadResultSerializer},
    )
    def post(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        fields, archive = request.FILES.getlist("fields"), request.FILES.get("archive")
        if not fields and archive is None:
            raise ValidationError(
                {"detail": "Send field photographs in the field 'fields' or a ZIP in the field 'archive'."}
            )
        outcome = services.fields_receive(
            sample=sample,
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            fields=fields,
            archive=archive,
        )
        status_code = status.HTTP_202_ACCEPTED if outcome.accepted else status.HTTP_400_BAD_REQUEST
        return Response(upload_body(outcome), status=status_code)


class FieldDetailApi(GenericAPIView):
    serializer_class = FieldDetailSerializer

    def get(self, request, field_id: int):
        field = selectors.field_get(request.membership, field_id)
        cells = selectors.field_cells(request.membership, field)
        return Response(FieldDetailSerializer(field, context={"cells": cells}).data)


class FieldFileApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, field_id: int):
        field = selectors.field_get(request.membership, field_id)
        return stored_file_response(field.file.name, field.format, f"field-{field.pk}")


class FieldOverlayApi(APIView):
    @extend_schema(responses={(200, "image/png"): bytes})
    def get(self, request, field_id: int):
        from diagnostics.segmentation import field_overlay

        field = selectors.field_get(request.membership, field_id)
        return HttpResponse(
            field_overlay(field, selectors.field_cells(request.membership, field)), content_type="image/png"
        )


def stored_file_response(name: str, image_format: str, download_name: str) -> FileResponse:
    response = FileResponse(default_storage.open(name, "rb"), content_type=f"image/{image_format.lower()}")
    response["Content-Disposition"] = f'inline; filename="{download_name}.{image_format.lower()}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


class SampleReviewsApi(GenericAPIView):
    permission_classes = [IsReviewer]
    serializer_class = ReviewCreateSerializer

    @extend_schema(request=ReviewCreateSerializer, responses={201: ReviewSerializer})
    def post(self, request, sample_id: int):
        sample = selectors.sample_get(request.membership, sample_id)
        self.check_object_permissions(request, sample)
        serializer = ReviewCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        review = services.review_create(
            sample=sample,
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            decision=data["decision"],
            result=data.get("result"),
            comment=data["comment"],
            cells=[(cell["image"], cell["label"]) for cell in data["cells"]],
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class CellImageDetailApi(GenericAPIView):
    serializer_class = CellImageSerializer

    def get(self, request, image_id: int):
        return Response(CellImageSerializer(selectors.cell_image_get(request.membership, image_id)).data)


class CellImageFileApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, image_id: int):
        image = selectors.cell_image_get(request.membership, image_id)
        return stored_file_response(image.file.name, image.format, f"cell-{image.pk}")


class CellImageHeatmapApi(APIView):
    throttle_classes = [HeatmapThrottle]

    @extend_schema(responses={(200, "image/png"): bytes})
    def get(self, request, image_id: int):
        from diagnostics.heatmaps import heatmap_png

        image = selectors.cell_image_get(request.membership, image_id)
        if image.status == CellImageStatus.FAILED:
            raise ValidationError({"detail": f"This cell could not be classified: {image.error}"})
        return HttpResponse(heatmap_png(image), content_type="image/png")


class SamplesCsvApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="Collected on or after (YYYY-MM-DD)"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Collected on or before (YYYY-MM-DD)"),
        ],
        responses={(200, "text/csv"): str},
    )
    def get(self, request):
        collected_from, collected_to = (date_param(request, name) for name in ("from", "to"))
        samples = selectors.samples_for(request.membership, collected_from=collected_from, collected_to=collected_to)
        return exports.csv_response(
            table=exports.samples_table(samples),
            filename="samples.csv",
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            query=request.GET.dict(),
        )


def date_param(request, name: str):
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return drf_serializers.DateField().to_internal_value(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from exc


class PatientHistoryCsvApi(APIView):
    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, patient_id: int):
        patient = selectors.patient_get(request.membership, patient_id)
        samples = selectors.samples_for(request.membership, patient_id=patient.pk)
        return exports.csv_response(
            table=exports.samples_table(samples),
            filename=f"patient-{patient.pk}-history.csv",
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            query=request.GET.dict(),
        )
