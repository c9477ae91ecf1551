"""Error answers in the OpenAPI document: every 4xx and 5xx as ``application/problem+json``.

FastAPI documents only 422, with its own ``HTTPValidationError`` shape that the suite never
sends. ``document_problems`` rewrites a generated document so each operation lists the
statuses it can answer, each with the ``Problem`` schema: the ones a route declares in
``responses=`` (404, 409, ...), 422 (and 400 for a body that is not JSON) where the
operation takes input, 500, and 503 while the service's database is out of reach.
"""

from __future__ import annotations

from typing import Any

from shared.web.errors import PROBLEM_MEDIA_TYPE, Problem

_REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF_TEMPLATE.format(model="Problem")}}}
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM_CONTENT}


def problem_schemas() -> dict[str, Any]:
    """``Problem`` and ``FieldError`` as components (pydantic puts the nested model under ``$defs``)."""
    schema = Problem.model_json_schema(ref_template=_REF_TEMPLATE)
    definitions = schema.pop("$defs", {})
    return {"Problem": schema, **definitions}


def document_problems(document: dict[str, Any], extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Rewrites ``document`` in place; ``extra`` adds statuses to every operation (the gateway's own)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ONLY:
        schemas.pop(name, None)
    schemas.update(problem_schemas())
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _document_operation(operation, extra or {})
    return document


def _document_operation(operation: dict[str, Any], extra: dict[str, dict[str, Any]]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("requestBody"):
        responses.setdefault("400", {"description": "The body is not JSON"})
    if operation.get("requestBody") or operation.get("parameters"):
        responses["422"] = {"description": "A value does not validate: `errors` names each field and rule"}
    responses.setdefault("500", {"description": "An unexpected failure inside the service"})
    responses.setdefault("503", {"description": "The service's database is unavailable for the moment; see Retry-After"})
    for status, response in extra.items():
        responses.setdefault(status, dict(response))
    for status, response in responses.items():
        if status[:1] in ("4", "5"):
            response["content"] = PROBLEM_CONTENT
    operation["responses"] = dict(sorted(responses.items()))
