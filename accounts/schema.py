"""OpenAPI description of the API's authentication (read by drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class FirebaseAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.FirebaseAuthentication"
    name = "FirebaseIdToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Firebase ID token of a lab member: `Authorization: Bearer <token>`.",
        }
