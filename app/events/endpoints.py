"""``POST /v1/events``: behaviour events in, the customers they moved out (scope ``assign``).

The body is read raw (after the key is checked) and checked by ``validation``; the published
request schema is ``EventsRequest``.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from app.deps import ModelQuery
from app.events.schemas import EventsRequest, EventsResponse
from app.events.service import ingest
from app.models import one_model, state_for
from app.problems import problem_responses
from app.query import unknown_parameters
from app.security import SCOPE_KEY, authorize, presented_key_raw

router = APIRouter(prefix="/v1", tags=["events"])
REQUEST_SCHEMAS = (EventsRequest,)


@router.post(
    "/events",
    summary="Apply up to 10,000 behaviour events; re-assign the customers they change",
    response_model=EventsResponse,
    responses=problem_responses(400, 404, 409, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/EventsRequest"}}
            },
        },
        SCOPE_KEY: "assign",
    },
)
async def post_events(request: Request, model: ModelQuery = None) -> Response:
    await authorize(request.app.state, presented_key_raw(request.scope["headers"]), "assign")
    unknown_parameters(request.query_params.keys(), ("model",))  # (?modle=: another model)
    # the raw query, not ``model`` (FastAPI's last value): ``?model=a&model=b`` is a 422
    state = state_for(request.app.state, one_model(request.query_params.getlist("model")))
    try:
        body = await request.body()
    except ClientDisconnect:  # gone before its body came: nothing to answer, no server error
        return Response(status_code=499)
    doc = await ingest(state, body)
    return Response(orjson.dumps(doc), media_type="application/json")
