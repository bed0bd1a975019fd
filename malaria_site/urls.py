from django.contrib import admin
from django.urls import include, path

from diagnostics.urls import api_v1
from malaria_site.operations import operations

urlpatterns = [
    path("admin/operations", operations, name="admin-operations"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("", include("accounts.urls")),
    path("", include("diagnostics.page_urls")),
]

# A database or Redis outage is 503 with Retry-After, JSON on the API (malaria_site/errors.py).
handler500 = "malaria_site.errors.server_error"
handler404 = "malaria_site.errors.not_found"
