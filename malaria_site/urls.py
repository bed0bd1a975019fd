from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from diagnostics.urls import api_v1
from malaria_site.errors import not_found
from malaria_site.operations import operations

urlpatterns = [
    path("admin/operations", operations, name="admin-operations"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    # Any other /api/ URL: JSON 404 even under DEBUG, where Django would answer with its HTML debug page.
    # CSRF-exempt: it changes nothing, and a PATCH with a session cookie must still hear 404, not a CSRF page.
    re_path(r"^api/", csrf_exempt(not_found)),
    path("", include("accounts.urls")),
    path("", include("diagnostics.page_urls")),
]

# A database or Redis outage is 503 with Retry-After, JSON on the API (malaria_site/errors.py).
handler500 = "malaria_site.errors.server_error"
handler404 = "malaria_site.errors.not_found"
