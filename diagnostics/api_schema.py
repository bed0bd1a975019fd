"""What the OpenAPI description adds to every operation: the error answers a batch client must handle.

drf-spectacular documents each operation's success; the errors come from one place (diagnostics.api_errors,
malaria_site.errors, the middleware and the throttles), so they are documented here, once, by a
postprocessing hook, in the one shape they all share: `{"detail": "..."}`, or field errors keyed by field.
"""

from __future__ import annotations

ERROR_RESPONSES = {
    "400": "The request is not valid: `detail`, or a list of messages per field.",
    "401": "No valid Firebase ID token (`Authorization: Bearer <token>`), or the account is deactivated.",
    "403": "Signed in, but not allowed: no lab yet, or the wrong role.",
    "404": "No such object in your lab (another lab's objects are not found either).",
    "413": "The request body is over its limit (uploads: UPLOAD_MAX_REQUEST_BYTES; anything else: 1 MB).",
    "429": "Too many requests of this kind: wait the seconds given by the `Retry-After` header.",
    "503": "A service the product needs (database, queue, sign-in) cannot be reached: retry after `Retry-After`.",
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: `detail` says what went wrong; validation errors list messages under each field.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


def document_errors(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                if code == "401" and path.endswith(("/schema", "/docs")):
                    continue
                responses.setdefault(code, {"description": description, "content": error})
    return result
