"""The published OpenAPI document (``openapi/openapi.json`` is generated from it).

FastAPI documents its own validation errors as ``HTTPValidationError``; this service answers
every error with a problem body, so the document says so. Request bodies that are read raw
on the hot path have their schemas registered here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.problems import PROBLEM_JSON, ProblemBody, problem_responses
from app.security import SCOPE_KEY


def operation_id(route: APIRoute) -> str:
    """Stable operation ids: the endpoint function's name."""
    return route.name


def build_openapi(app: FastAPI, extra_schemas: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    models: tuple[type[BaseModel], ...] = (ProblemBody, *extra_schemas)
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Invalid request: the problem's errors name each bad field",
                    "content": problem,
                }
            if "requestBody" in operation:  # any body may be malformed or too large
                for status, entry in problem_responses(400, 413).items():
                    responses.setdefault(str(status), entry)
    doc["components"]["securitySchemes"] = {
        "BearerAuth": {"type": "http", "scheme": "bearer"},
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            scope = operation.get(SCOPE_KEY)
            if scope:
                operation["security"] = [{"BearerAuth": [scope]}, {"ApiKeyHeader": [scope]}]
                operation["responses"].update(
                    {str(k): v for k, v in problem_responses(401, 403, 429).items()}
                )
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    app.openapi_schema = doc
    return doc
