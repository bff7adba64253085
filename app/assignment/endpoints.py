"""``POST /v1/assign`` and ``POST /v1/assign/batch``: one definition each, served two ways.

The bodies are read raw and checked by ``validation`` against the serving model's features
(the published request schemas are in the OpenAPI document), and responses are serialised
with orjson: this is the hot path, and FastAPI's generic body and response handling would
cost more than the assignment itself.

Each endpoint is one ``Endpoint``: path, scope, summary, request and response schemas, query
flags and the handler that does the whole work (validation, assignment, recording, metrics)
from the app state, the body and the query string. ``answer`` runs it: the key first, then
the body, then the handler. Two things are built from ``ENDPOINTS`` and nothing else:

- the FastAPI routes, which publish the operations in the OpenAPI document and answer any
  request the fast path leaves to the app (none of these POSTs, in practice);
- ``AssignFastPath``, a pure ASGI layer that answers these POSTs before FastAPI's router and
  dependency machinery, which would otherwise cost more per request than everything else
  put together.

Behind a proxy that mounts the service under a prefix (``root_path``, e.g. uvicorn
``--root-path /api``), the fast path strips the prefix from the path as Starlette's router
does, so ``/api/v1/assign`` is answered by the fast path too: production and the routes
behave the same there as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote_plus

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.assignment.by_id import assign_by_id, assign_merged
from app.assignment.profiles import FROM_PROFILE, FROM_REQUEST, complete_one, is_complete
from app.assignment.schemas import AssignRequest, AssignResponse, BatchRequest, BatchResponse
from app.assignment.service import (
    SETTLE_ROUNDS,
    answer_batch,
    answer_valid,
    record_one,
    recorded_after,
    render,
)
from app.assignment.validation import decode_valid_batch, parse_batch, parse_flag, parse_single
from app.deps import current_serving
from app.drift.live import LIVE
from app.events.service import Derived, live_features, live_features_many, log_spec
from app.history import HistoryService
from app.history.records import now_ms
from app.models import MAX_MODEL_NAME, MODEL_PARAMETER, Models, state_for_query
from app.observability import ASSIGNMENTS, child
from app.problems import Problem, as_problem, problem_response, problem_responses
from app.query import unknown_parameters
from app.security import SCOPE_KEY, authorize, presented_key_raw
from app.security import Scope as KeyScope
from app.serving import ServingModel
from app.settings import Settings

Handler = Callable[[State, bytes, bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class Flag:
    """A boolean query parameter: read by the handler, published in the contract."""

    name: str
    description: str
    default: bool = False

    def read(self, query: bytes) -> bool:
        return parse_flag(query, self.name, self.default)

    def parameter(self) -> dict[str, Any]:
        """The OpenAPI parameter, as FastAPI writes a ``Query(description=...)`` bool."""
        schema = {"type": "boolean", "default": self.default, "description": self.description}
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            "description": self.description,
            "schema": {**schema, "title": self.name.replace("_", " ").title()},
        }


@dataclass(frozen=True)
class Endpoint:
    """One assignment endpoint: everything both its route and the fast path serve it by."""

    path: str  # under the router's prefix
    operation_id: str
    summary: str
    scope: KeyScope
    request: type[BaseModel]
    response: type[BaseModel]
    handler: Handler
    problems: tuple[int, ...]  # the problem statuses it answers (besides 401/403/429)
    flags: tuple[Flag, ...] = ()

    @property
    def query_names(self) -> tuple[str, ...]:
        """The query parameters it reads: the model and the flags (``explain`` on both: a
        single assignment is always explained, and clients send it all the same)."""
        names = (MODEL_PARAMETER, EXPLAIN.name, *(flag.name for flag in self.flags))
        return tuple(dict.fromkeys(names))

    def openapi_extra(self) -> dict[str, Any]:
        """The raw-read request body and the flags (FastAPI sees neither), and the scope."""
        ref = {"$ref": f"#/components/schemas/{self.request.__name__}"}
        extra: dict[str, Any] = {
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
            SCOPE_KEY: self.scope,
        }
        extra["parameters"] = [MODEL_QUERY, *(flag.parameter() for flag in self.flags)]
        return extra


MODEL_QUERY: dict[str, Any] = {  # as FastAPI publishes app.deps.ModelQuery
    "name": MODEL_PARAMETER,
    "in": "query",
    "required": False,
    "description": "the model (segmentation) to use; default: the service's "
    "SEGMENTS_MODEL_NAME. An unknown model is a 404 listing the known ones",
    "schema": {
        "anyOf": [{"type": "string", "maxLength": MAX_MODEL_NAME}, {"type": "null"}],
        "title": "Model",
        "description": "the model (segmentation) to use; default: the service's "
        "SEGMENTS_MODEL_NAME. An unknown model is a 404 listing the known ones",
    },
}


EXPLAIN = Flag("explain", "add each result's explanation (most of the response's bytes)")


async def assign_payload(state: State, body: bytes, query: bytes) -> bytes:
    """The JSON answer of ``POST /v1/assign`` (the key was checked); raises ``Problem``.

    ``query`` may name the model (``?model=``)."""
    state = state_for_query(state, query)
    serving = current_serving(state)
    settings: Settings = state.settings
    history: HistoryService | None = state.history
    kinds, max_id = serving.feature_kinds, settings.max_id_length
    try:
        customer_id, features = parse_single(
            body,
            kinds,
            max_id,
            partial=history is not None,
            missing=serving.missing_markers,
            feature_markers=serving.feature_markers,
        )
    except Problem as problem:
        raise with_model_hint(state, serving, problem) from None
    if not features and history is not None and log_spec(serving) is None:
        # by id: from the stored profile, cached in this process (recorded, with a check)
        doc, features = await assign_by_id(history, serving, customer_id, max_id)
        source = FROM_PROFILE
    elif not is_complete(features, kinds) and history is not None:
        # the rest comes from the stored profile (a transactions model's customer: derived as
        # of now from their behaviour)
        read_at = now_ms()  # before the behaviour is read: a forget landing after it wins
        live = await live_features(state, serving, customer_id, features)
        if live is None:
            doc, features, source = await assign_merged(
                history, serving, customer_id, features, max_id
            )
        else:
            doc, features, source = await _derived(
                state, history, serving, customer_id, features, live, read_at
            )
    else:  # every feature sent
        if not is_complete(features, kinds):  # recording off: raises the 422 naming them
            await complete_one(history, kinds, customer_id, features, max_id)
        source = FROM_REQUEST
        doc = render(serving, customer_id, serving.assign_one(features), features)
        if history is not None:
            await record_one(history, serving, doc, features)
    LIVE.observe_one(serving, features, doc["segment_id"])  # in process (app/drift/live.py)
    doc["features_from"] = source
    child(ASSIGNMENTS, serving.manifest.model_name, doc["segment_id"]).inc()
    return orjson.dumps(doc)


def with_model_hint(state: State, serving: ServingModel, problem: Problem) -> Problem:
    """``problem``, naming the served model whose features the unknown ones are where one
    has them all: a user who trained their own model beside the default one sent its
    features without ``?model=`` and was told only "unknown feature", once per feature."""
    unknown = unknown_features(problem.errors or [], "features.")
    name = model_having(state, serving, unknown)
    if name is not None:
        problem.detail += (
            f"; {'it is a feature' if len(unknown) == 1 else 'they are features'} of "
            f"model {name!r}, not of {serving.manifest.model_name!r}, which answered: "
            f"send {'it' if len(unknown) == 1 else 'them'} with ?model={name}"
        )
    return problem


def unknown_features(errors: Iterable[Mapping[str, str]], prefix: str) -> set[str]:
    """The features ``errors`` call unknown, their fields after ``prefix`` (``features.`` of
    one request, ``items.<i>.features.`` of a batch item: each item's index told apart)."""
    unknown = set()
    for e in errors:
        field = e["field"]
        if e["message"].startswith("unknown feature") and field.startswith(prefix):
            unknown.add(field.removeprefix(prefix))
    return unknown


def model_having(state: State, serving: ServingModel, unknown: set[str]) -> str | None:
    """The served model, other than ``serving``'s, that has every one of ``unknown``."""
    models: Models | None = getattr(state, "models", None)
    if not unknown or models is None:
        return None
    for name in models.names:
        other = models.holder(name).current
        own = name == serving.manifest.model_name
        if not own and other is not None and unknown <= other.feature_kinds.keys():
            return name
    return None


def batch_model_hint(state: State, serving: ServingModel, results: list[Any]) -> str | None:
    """The batch's hint, once: the items' unknown features (those its answer lists, at most
    ``BATCH_MAX_ERRORS``) are all another served model's. Each item's errors are its own
    (``items.<i>.features.plan``)."""
    unknown: set[str] = set()
    for r in results:
        if r.get("status") == "error":
            prefix = f"items.{r['index']}.features."
            unknown |= unknown_features(r.get("errors") or [], prefix)
    name = model_having(state, serving, unknown)
    if name is None:
        return None
    one = len(unknown) == 1
    return (
        f"the items' unknown {'feature is a feature' if one else 'features are features'} of "
        f"model {name!r}, not of {serving.manifest.model_name!r}, which answered: send "
        f"{'it' if one else 'them'} with ?model={name}"
    )


async def _derived(
    state: State,
    history: HistoryService,
    serving: ServingModel,
    customer_id: str,
    sent: dict[str, Any],
    live: Derived,
    read_at: int,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The recorded answer for a log model's customer derived from their aggregates as read
    (``live``, read at ``read_at``), the features assigned and where they came from.

    The record is stamped as of the read (as an events batch's records are): Redis ignores
    it after a forget that came in between. An events request stamped before that read may
    apply its events after it, and record and settle before this record lands: this record,
    newer and derived without them, would stand. So once it is recorded the aggregates are
    read again (stamped before that read) and, if they moved, the customer is derived and
    recorded anew from them, as an events request settles (``SETTLE_ROUNDS`` at most)."""
    doc: dict[str, Any] | None = None
    for _ in range(1 + SETTLE_ROUNDS):
        features, source, as_of, used = live
        made = render(serving, customer_id, serving.assign_one(features), features)
        made["features_as_of"] = as_of
        await record_one(history, serving, made, features, assigned_at=read_at)
        doc = made if doc is None else recorded_after(doc, made)
        if not made["recorded"]:  # superseded (its writer settles), forgotten or spooled
            break
        read_at = now_ms()
        again = await live_features(state, serving, customer_id, sent)
        if again is None or again[3] == used:
            break
        live = again
    assert doc is not None
    return doc, features, source


async def assign_batch_payload(state: State, body: bytes, query: bytes) -> bytes:
    """The JSON answer of ``POST /v1/assign/batch`` (the key was checked); raises ``Problem``."""
    state = state_for_query(state, query)
    serving = current_serving(state)
    settings: Settings = state.settings
    explain = EXPLAIN.read(query)
    kinds, max_id, max_batch = serving.feature_kinds, settings.max_id_length, settings.max_batch
    history: HistoryService | None = state.history
    valid = decode_valid_batch(
        body, kinds, max_id, max_batch, serving.missing_markers, serving.feature_markers
    )
    if valid is not None:
        doc = await answer_valid(serving, history, *valid, explain)
    else:  # some item is not valid (or the body is not a batch): check and word it all
        items = parse_batch(body, max_batch)
        live = partial(live_features_many, state, serving)
        doc = await answer_batch(serving, history, items, max_id, explain, live)
        hint = batch_model_hint(state, serving, doc["results"])
        if hint is not None:
            doc["hint"] = hint
    segments = Counter(r["segment_id"] for r in doc["results"] if r["status"] == "ok")
    for segment, count in segments.items():
        child(ASSIGNMENTS, serving.manifest.model_name, segment).inc(count)
    return orjson.dumps(doc)


ENDPOINTS = (
    Endpoint(
        "/assign",
        operation_id="assign",
        summary="Assign one customer to a segment",
        scope="assign",
        request=AssignRequest,
        response=AssignResponse,
        handler=assign_payload,
        problems=(400, 404, 413, 415, 422, 503),
    ),
    Endpoint(
        "/assign/batch",
        operation_id="assign_batch",
        summary="Assign up to 10,000 customers; a bad item is reported in place",
        scope="assign",
        request=BatchRequest,
        response=BatchResponse,
        handler=assign_batch_payload,
        problems=(400, 404, 413, 415, 422, 503),
        flags=(EXPLAIN,),
    ),
)
REQUEST_SCHEMAS: tuple[type[Any], ...] = tuple(e.request for e in ENDPOINTS)


async def answer(
    endpoint: Endpoint,
    state: State,
    headers: list[tuple[bytes, bytes]],
    read_body: Callable[[], Awaitable[bytes]],
    query: bytes,
) -> bytes:
    """The endpoint's answer; raises ``Problem``. The key is checked before the body is read:
    a client without one gets its 401 without sending its body."""
    await authorize(state, presented_key_raw(headers), endpoint.scope)
    if query:  # (?modle=rfm recorded the assignment in the default model, without a word)
        unknown_parameters(query_names(query), endpoint.query_names)
    return await endpoint.handler(state, await read_body(), query)


def _route(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        scope = request.scope
        payload = await answer(
            endpoint, request.app.state, scope["headers"], request.body, scope["query_string"]
        )
        return Response(payload, media_type="application/json")

    return route


router = APIRouter(prefix="/v1", tags=["assignment"])
for _endpoint in ENDPOINTS:
    router.add_api_route(
        _endpoint.path,
        _route(_endpoint),
        methods=["POST"],
        name=_endpoint.operation_id,
        operation_id=_endpoint.operation_id,
        summary=_endpoint.summary,
        response_model=_endpoint.response,
        responses=problem_responses(*_endpoint.problems),
        openapi_extra=_endpoint.openapi_extra(),
    )
# the fast path's table: each endpoint with the route the router would leave in the scope
# (for the metrics' route label)
FAST_PATHS: dict[str, tuple[Endpoint, APIRoute]] = {
    route.path: (endpoint, route)
    for endpoint, route in zip(ENDPOINTS, router.routes, strict=True)
    if isinstance(route, APIRoute)
}
_JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


class AssignFastPath:
    """Answer the ``ENDPOINTS`` POSTs without FastAPI's router.

    Everything else, including these paths with another method, goes on to the app. The
    path is matched as the router matches it (``root_path`` stripped). The matched route is
    left in the scope (as the router does), so the metrics and access log label these
    requests like any other. A ``Problem`` becomes its problem body here; any other exception
    propagates to the app's 500 handler.
    """

    def __init__(self, app: ASGIApp, service: FastAPI) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = FAST_PATHS.get(route_path(scope)) if scope["type"] == "http" else None
        if found is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        endpoint, scope["route"] = found

        async def read_body() -> bytes:
            return await _read_body(receive)

        try:
            state, headers, query = self.service.state, scope["headers"], scope["query_string"]
            payload = await answer(endpoint, state, headers, read_body, query)
        except ClientGone:
            return
        except Exception as exc:
            problem = as_problem(exc)
            if problem is None:
                raise
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def query_names(query: bytes) -> list[str]:
    """The names a raw query string gives (``parse_qsl``'s, at a third of its cost: only
    an escaped name is unquoted)."""
    names = []
    for part in query.split(b"&"):
        name = part.partition(b"=")[0].decode("latin-1")
        if name:
            names.append(unquote_plus(name) if "%" in name or "+" in name else name)
    return names


def route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path`` prefix, if it has it
    (Starlette's ``get_route_path``)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path) :]
    return rest if rest[:1] in ("", "/") else path


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
