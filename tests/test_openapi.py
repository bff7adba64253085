"""The committed OpenAPI document is the published contract: it must match the app."""

from __future__ import annotations

import re

import orjson

from app.main import render_openapi
from tests.conftest import ROOT

COMMITTED = ROOT / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.exists(), "run: .venv/bin/segments openapi --out openapi/openapi.json"
    assert COMMITTED.read_text() == render_openapi(), (
        "openapi/openapi.json is stale; regenerate it with "
        "`.venv/bin/segments openapi --out openapi/openapi.json` and review the diff"
    )


def test_contract_has_stable_operation_ids_and_problem_bodies() -> None:
    doc = orjson.loads(render_openapi())
    operations = {
        op["operationId"]: (path, method)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    assert {
        "assign",
        "assign_batch",
        "list_segments",
        "get_segment",
        "update_segment",
        "list_models",
        "get_model",
        "promote_model",
        "healthz",
        "readyz",
    } <= set(operations)
    assign = doc["paths"]["/v1/assign"]["post"]
    assert assign["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AssignRequest"
    )
    assert "application/problem+json" in assign["responses"]["422"]["content"]
    schemas = doc["components"]["schemas"]
    assert {"AssignRequest", "AssignResponse", "BatchRequest", "ProblemBody"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert schemas["AssignRequest"]["examples"]


def _documented_operations() -> set[tuple[str, str]]:
    """Each ``METHOD /path`` the README and docs/ name (``GET/DELETE /v1/customers/{id}``:
    both), the path's parameters written ``{}``; the dashboard's ``/ui/`` forms are pages,
    not the contract."""
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    found = set()
    for m in re.finditer(
        r"\b((?:GET|POST|PATCH|DELETE)(?:/(?:GET|POST|PATCH|DELETE))*) (/[\w/{}-]*)", text
    ):
        path = re.sub(r"\{[^}]*\}", "{}", m.group(2))
        if not path.startswith("/ui"):
            found |= {(method.lower(), path) for method in m.group(1).split("/")}
    return found


def test_every_documented_endpoint_is_in_the_contract_and_every_operation_is_documented() -> None:
    doc = orjson.loads(COMMITTED.read_text())
    operations = {
        (method, re.sub(r"\{[^}]*\}", "{}", path))
        for path, item in doc["paths"].items()
        for method in item
    }
    documented = _documented_operations()
    assert documented - operations == set(), "documented, not in openapi/openapi.json"
    assert operations - documented == set(), "in the contract, documented nowhere"
