"""REST API v1 for the lab's webhooks (docs/webhooks.md): thin views over diagnostics.webhooks and the selectors.

Reviewers only, for every operation: a webhook carries the secret its signatures are made with. Another lab's
webhook is a 404 before the role is a 403, as everywhere.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.audit import audit_context
from diagnostics import selectors, webhooks
from diagnostics.api import Pages
from diagnostics.serializers import WebhookCreateSerializer, WebhookDeliverySerializer, WebhookSerializer


def require_webhook_manager(request) -> None:
    refusal = webhooks.webhooks_manage_refusal(request.membership)
    if refusal:
        raise PermissionDenied(refusal)


def webhook_of_request(request, webhook_id: int):
    webhook = selectors.webhook_get(request.membership, webhook_id)
    require_webhook_manager(request)
    return webhook


class WebhookListApi(GenericAPIView):
    serializer_class = WebhookSerializer
    pagination_class = Pages

    @extend_schema(operation_id="webhooks_list", responses=WebhookSerializer(many=True))
    def get(self, request):
        require_webhook_manager(request)
        page = self.paginate_queryset(selectors.webhooks_for(request.membership))
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    @extend_schema(request=WebhookCreateSerializer, responses={201: WebhookSerializer})
    def post(self, request):
        require_webhook_manager(request)
        serializer = WebhookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = webhooks.webhook_create(
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
            url=serializer.validated_data["url"],
            description=serializer.validated_data.get("description", ""),
        )
        return Response(WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(GenericAPIView):
    serializer_class = WebhookSerializer

    def get(self, request, webhook_id: int):
        return Response(WebhookSerializer(webhook_of_request(request, webhook_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id: int):
        webhooks.webhook_delete(
            webhook=webhook_of_request(request, webhook_id),
            actor=request.user,
            membership=request.membership,
            audit=audit_context(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesApi(GenericAPIView):
    serializer_class = WebhookDeliverySerializer
    pagination_class = Pages

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    def get(self, request, webhook_id: int):
        webhook = webhook_of_request(request, webhook_id)
        page = self.paginate_queryset(selectors.webhook_deliveries(request.membership, webhook=webhook))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
