"""``POST /v1/assign`` and ``POST /v1/assign/batch``.

The bodies are read raw and checked by ``validation`` against the serving model's features
(the published request schemas are in the OpenAPI document), and responses are serialised
with orjson: this is the hot path, and FastAPI's generic body and response handling would
cost more than the assignment itself. For the same reason the serving model and the settings
are read with plain calls, not ``Depends``: FastAPI runs a sync dependency in the thread pool,
and two thread hops per request cost more than the assignment too.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from app.assignment.schemas import AssignRequest, AssignResponse, BatchRequest, BatchResponse
from app.assignment.service import assign_batch, record_batch, record_one, render
from app.assignment.validation import parse_batch, parse_single
from app.deps import get_serving
from app.history import HistoryService
from app.observability import ASSIGNMENTS
from app.problems import PROBLEM_RESPONSES
from app.security import SCOPE_KEY, require
from app.settings import Settings

router = APIRouter(prefix="/v1", tags=["assignment"], dependencies=[Depends(require("assign"))])


REQUEST_SCHEMAS: tuple[type[Any], ...] = (AssignRequest, BatchRequest)


def _body(model: type[Any]) -> dict[str, Any]:
    """Publish a request body read raw (its schema is added to components by create_app)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
        SCOPE_KEY: "assign",
    }


@router.post(
    "/assign",
    operation_id="assign",
    summary="Assign one customer to a segment",
    response_model=AssignResponse,
    responses=PROBLEM_RESPONSES,
    openapi_extra=_body(AssignRequest),
)
async def assign(request: Request) -> Response:
    serving = get_serving(request)
    settings: Settings = request.app.state.settings
    customer_id, features = parse_single(
        await request.body(), serving.feature_kinds, settings.max_id_length
    )
    doc = render(serving, customer_id, serving.assign_one(features))
    history: HistoryService | None = request.app.state.history
    if history is not None:
        await record_one(history, serving, doc)
    ASSIGNMENTS.labels(doc["segment_id"]).inc()
    return Response(orjson.dumps(doc), media_type="application/json")


@router.post(
    "/assign/batch",
    operation_id="assign_batch",
    summary="Assign up to 10,000 customers; a bad item is reported in place",
    response_model=BatchResponse,
    responses=PROBLEM_RESPONSES,
    openapi_extra=_body(BatchRequest),
)
async def assign_many(request: Request) -> Response:
    serving = get_serving(request)
    settings: Settings = request.app.state.settings
    items = parse_batch(await request.body(), settings.max_batch)
    doc = assign_batch(serving, items, settings.max_id_length)
    history: HistoryService | None = request.app.state.history
    if history is not None:
        await record_batch(history, serving, doc["results"])
    for segment, count in Counter(
        r["segment_id"] for r in doc["results"] if r["status"] == "ok"
    ).items():
        ASSIGNMENTS.labels(segment).inc(count)
    return Response(orjson.dumps(doc), media_type="application/json")
