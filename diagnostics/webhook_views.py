"""The Webhooks page (reviewers): the lab's receivers with their secrets, add and remove, recent deliveries.

Thin, as the other pages: the selectors find (another lab's webhook is a 404 before the role is a 403), a
model form validates, diagnostics.webhooks decides and audits.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import lab_member_required
from accounts.audit import audit_context
from diagnostics import selectors, webhooks
from diagnostics.forms import WebhookForm

RECENT_DELIVERIES = 50


def require_webhook_manager(request) -> None:
    refusal = webhooks.webhooks_manage_refusal(request.membership)
    if refusal:
        raise PermissionDenied(refusal)


@lab_member_required
@require_http_methods(["GET", "POST"])
def webhook_list(request):
    require_webhook_manager(request)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = webhooks.webhook_create(
                actor=request.user,
                membership=request.membership,
                audit=audit_context(request),
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as refused:
            form.add_refusal(refused)
        else:
            messages.success(request, f"Webhook added: events now go to {webhook.url}.")
            return redirect("webhooks")
    context = {
        "section": "webhooks",
        "form": form,
        "webhooks": selectors.webhooks_for(request.membership),
        "deliveries": selectors.webhook_deliveries(request.membership)[:RECENT_DELIVERIES],
        "recent": RECENT_DELIVERIES,
    }
    return render(request, "diagnostics/webhooks.html", context, status=400 if form.errors else 200)


@lab_member_required
@require_POST
def webhook_delete(request, webhook_id: int):
    webhook = selectors.webhook_get(request.membership, webhook_id)
    require_webhook_manager(request)
    url = webhook.url
    webhooks.webhook_delete(
        webhook=webhook, actor=request.user, membership=request.membership, audit=audit_context(request)
    )
    messages.success(request, f"Webhook removed: no more events go to {url}.")
    return redirect("webhooks")
