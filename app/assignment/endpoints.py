"""``POST /v1/assign`` and ``POST /v1/assign/batch``.

The bodies are read raw and checked by ``validation`` against the serving model's features
(the published request schemas are in the OpenAPI document), and responses are serialised
with orjson: this is the hot path, and FastAPI's generic body and response handling would
cost more than the assignment itself.

``assign_payload`` and ``assign_batch_payload`` do the whole work of each endpoint
(validation, assignment, recording, metrics) from the app state, the body and the query
string; both callers check the API key first, before reading the body.
Two ways reach them: the FastAPI routes below (which also publish the operations in the
OpenAPI document), and ``AssignFastPath``, a pure ASGI layer that answers these two POSTs
before FastAPI's router and dependency machinery, which would otherwise cost more per request
than everything else put together. Both give the same answers: the code is the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.routing import APIRoute
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.assignment.schemas import AssignRequest, AssignResponse, BatchRequest, BatchResponse
from app.assignment.service import answer_batch, answer_valid, record_one, render
from app.assignment.validation import (
    decode_valid_batch,
    parse_batch,
    parse_flag,
    parse_single,
)
from app.deps import current_serving
from app.history import HistoryService
from app.observability import ASSIGNMENTS, child
from app.problems import PROBLEM_RESPONSES, as_problem, problem_response
from app.security import SCOPE_KEY, authorize, presented_key, presented_key_raw
from app.settings import Settings

router = APIRouter(prefix="/v1", tags=["assignment"])
REQUEST_SCHEMAS: tuple[type[Any], ...] = (AssignRequest, BatchRequest)


def _body(model: type[Any]) -> dict[str, Any]:
    """Publish a request body read raw (its schema is added to components by create_app)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
        SCOPE_KEY: "assign",
    }


async def assign_payload(state: State, body: bytes, query: bytes) -> bytes:
    """The JSON answer of ``POST /v1/assign`` (the key was checked); raises ``Problem``.

    ``query`` is unused: the signature is every handler's (``Handler``)."""
    serving = current_serving(state)
    settings: Settings = state.settings
    customer_id, features = parse_single(body, serving.feature_kinds, settings.max_id_length)
    doc = render(serving, customer_id, serving.assign_one(features))
    history: HistoryService | None = state.history
    if history is not None:
        await record_one(history, serving, doc, features)
    child(ASSIGNMENTS, doc["segment_id"]).inc()
    return orjson.dumps(doc)


async def assign_batch_payload(state: State, body: bytes, query: bytes) -> bytes:
    """The JSON answer of ``POST /v1/assign/batch`` (the key was checked); raises ``Problem``."""
    serving = current_serving(state)
    settings: Settings = state.settings
    explain = parse_flag(query, "explain", default=False)
    kinds, max_id, max_batch = serving.feature_kinds, settings.max_id_length, settings.max_batch
    history: HistoryService | None = state.history
    valid = decode_valid_batch(body, kinds, max_id, max_batch)
    if valid is not None:
        doc = await answer_valid(serving, history, *valid, explain)
    else:  # some item is not valid (or the body is not a batch): check and word it all
        items = parse_batch(body, max_batch)
        doc = await answer_batch(serving, history, items, max_id, explain)
    segments = Counter(r["segment_id"] for r in doc["results"] if r["status"] == "ok")
    for segment, count in segments.items():
        child(ASSIGNMENTS, segment).inc(count)
    return orjson.dumps(doc)


@router.post(
    "/assign",
    operation_id="assign",
    summary="Assign one customer to a segment",
    response_model=AssignResponse,
    responses=PROBLEM_RESPONSES,
    openapi_extra=_body(AssignRequest),
)
async def assign(request: Request) -> Response:
    state = request.app.state
    await authorize(state, presented_key(request), "assign")  # before the body
    payload = await assign_payload(state, await request.body(), b"")
    return Response(payload, media_type="application/json")


@router.post(
    "/assign/batch",
    operation_id="assign_batch",
    summary="Assign up to 10,000 customers; a bad item is reported in place",
    response_model=BatchResponse,
    responses=PROBLEM_RESPONSES,
    openapi_extra=_body(BatchRequest),
)
async def assign_many(
    request: Request,
    explain: Annotated[  # read by assign_batch_payload; declared here for the contract
        bool, Query(description="add each result's explanation (most of the response's bytes)")
    ] = False,
) -> Response:
    state, scope = request.app.state, request.scope
    await authorize(state, presented_key(request), "assign")  # before the body
    body = await request.body()
    payload = await assign_batch_payload(state, body, scope["query_string"])
    return Response(payload, media_type="application/json")


Handler = Callable[[State, bytes, bytes], Awaitable[bytes]]
HANDLERS: dict[str, Handler] = {
    "/v1/assign": assign_payload,
    "/v1/assign/batch": assign_batch_payload,
}
_ROUTES = {  # what the router would leave in the scope, for the metrics' route label
    r.path: r
    for r in router.routes
    if isinstance(r, APIRoute) and r.path in HANDLERS and "POST" in (r.methods or ())
}
_JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


class AssignFastPath:
    """Answer ``POST /v1/assign`` and ``/v1/assign/batch`` without FastAPI's router.

    Everything else, including these paths with another method or under a ``root_path``,
    goes on to the app. The matched route is left in the scope (as the router does), so the
    metrics and access log label these requests like any other. A ``Problem`` becomes its
    problem body here; any other exception propagates to the app's 500 handler.
    """

    def __init__(self, app: ASGIApp, service: FastAPI) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = HANDLERS.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTES.get(scope["path"])
        state, query = self.service.state, scope["query_string"]
        try:
            # the key first: a client without one gets its 401 before its body is read
            await authorize(state, presented_key_raw(scope["headers"]), "assign")
            try:
                body = await _read_body(receive)
            except ClientGone:
                return
            payload = await handler(state, body, query)
        except Exception as exc:
            problem = as_problem(exc)
            if problem is None:
                raise
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
