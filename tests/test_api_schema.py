"""The OpenAPI 3 description batch clients are written against: valid, without warnings, complete."""

import io

import pytest
import yaml
from django.core.management import call_command


def test_schema_is_valid_and_warning_free():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    paths = set(schema["paths"])
    for path in [
        "/api/v1/me",
        "/api/v1/patients",
        "/api/v1/patients/{patient_id}",
        "/api/v1/patients/{patient_id}/samples",
        "/api/v1/patients/{patient_id}/history.csv",
        "/api/v1/samples",
        "/api/v1/samples/{sample_id}",
        "/api/v1/samples/{sample_id}/images",
        "/api/v1/samples/{sample_id}/reviews",
        "/api/v1/samples/{sample_id}/report.pdf",
        "/api/v1/images/{image_id}",
        "/api/v1/images/{image_id}/file",
        "/api/v1/images/{image_id}/heatmap",
        "/api/v1/export/samples.csv",
    ]:
        assert path in paths
    assert schema["components"]["securitySchemes"]["FirebaseIdToken"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    assert client.get("/api/v1/schema").status_code == 200
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower(), "the docs page loads its assets from this server, not a CDN"
