"""Errors as ``application/problem+json`` (RFC 9457), rendered by one set of handlers.

Services raise ``Problem`` (or a ``SegmentsError``, mapped here); endpoints never build error
responses by hand. Every problem names what was wrong; validation problems list each bad
field in ``errors`` as ``{"field": "features.age", "message": "..."}``. Unexpected exceptions
become a bare 500 problem without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, get_args

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from app.errors import IntegrityError, SegmentsError, StoreError, StoreWriteError
from app.words import counted, nearest_key

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(examples=["features.monetary"])
    message: str = Field(examples=["must be a finite number"])


class ProblemBody(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field("about:blank", examples=["/problems/invalid-request"])
    title: str = Field(examples=["Invalid request"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["features.monetary: must be a finite number"])
    instance: str | None = None
    errors: list[FieldError] | None = None


_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}
_DESCRIPTIONS = {
    400: "Malformed request",
    401: "No valid API key",
    403: "The key lacks the scope this endpoint needs",
    404: "Not found",
    409: "Conflict with the current state (an artefact refused, a name taken): see the detail",
    413: "Request body or batch too large",
    415: "The body is not JSON (Content-Type) or is encoded (Content-Encoding)",
    429: "Rate limit of the key exceeded; see Retry-After",
    422: "Invalid request: the problem's errors name each bad field",
    503: "No model version is loaded",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem bodies of the given statuses."""
    return {s: {"description": _DESCRIPTIONS[s], "content": _PROBLEM_CONTENT} for s in statuses}


# An error answer is bounded whatever the input: at most MAX_ERRORS field errors (then one
# "and K more"), and what is echoed back (a field name, a message, the detail) is clipped.
# With these a problem body stays far under 64 KB.
MAX_ERRORS = 20
MAX_ECHO = 64
MAX_MESSAGE = 200
MAX_DETAIL = 2000


class Problem(Exception):
    """An error with its HTTP status, rendered as a problem body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str = "about:blank",
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.type, self.errors, self.headers = type_, errors, headers


def clipped(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters (marked with an ellipsis), as an answer echoes it."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def shown(name: str) -> str:
    """A client's name (a field, a feature) as an error echoes it: escaped and clipped."""
    return clipped(escaped(name))


def unknown_field(name: str, valid: Iterable[str]) -> str:
    """ "unknown field", and the field of ``valid`` it most likely means (``customerid``:
    ``customer_id``; ``app.words.nearest_key``, which compares no over-long name)."""
    near = nearest_key(name, valid) if isinstance(name, str) else ""
    return f"unknown field; did you mean {near!r}?" if near else "unknown field"


def bounded(
    errors: list[dict[str, str]], omitted: int = 0, where: str = "body"
) -> list[dict[str, str]]:
    """At most ``MAX_ERRORS`` of ``errors`` (fields and messages clipped), then one entry at
    ``where`` counting the rest (``omitted``: errors found but never listed)."""
    listed = [
        {
            "field": clipped(str(e["field"]), 2 * MAX_ECHO),
            "message": clipped(str(e["message"]), MAX_MESSAGE),
        }
        for e in errors[:MAX_ERRORS]
    ]
    rest = len(errors) - len(listed) + omitted
    if rest:
        listed.append({"field": where, "message": f"and {rest} more"})
    return listed


def invalid(errors: list[dict[str, str]], omitted: int = 0) -> Problem:
    errors = bounded(errors, omitted)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
    return Problem(422, "Invalid request", detail, type_="/problems/invalid-request", errors=errors)


MAX_BATCH_CEILING = 100_000  # the most SEGMENTS_MAX_BATCH may be set to


def too_many(field: str, count: int, limit: int, noun: str) -> Problem:
    """413 for a body whose ``field`` holds ``count`` of ``noun`` (``customer``, ``event``),
    more than ``limit`` (``SEGMENTS_MAX_BATCH``): one wording for every batch endpoint; the
    advice to raise the setting only where it can go higher."""
    most = counted(limit, noun)
    advice = (
        f"; send fewer per request, or raise SEGMENTS_MAX_BATCH (at most {MAX_BATCH_CEILING:,})"
        if limit < MAX_BATCH_CEILING
        else ", the most SEGMENTS_MAX_BATCH allows: send fewer per request"
    )
    return Problem(
        413,
        "Batch too large",
        f"{field}: {counted(count, noun)}, more than the limit of {most} per request{advice}",
        type_="/problems/batch-too-large",
        errors=[{"field": field, "message": f"at most {most} per request"}],
    )


def malformed_json(reason: object) -> Problem:
    """400 for a body that is not JSON (``reason``: the parser's message)."""
    return Problem(
        400,
        "Malformed JSON",
        f"request body is not valid JSON: {reason}",
        type_="/problems/malformed-json",
        errors=[{"field": "body", "message": str(reason)}],
    )


def redis_unavailable(detail: str, retry_after: int = 2) -> Problem:
    """503 for a store in Redis that cannot be reached now (``detail``: what, and what to do)."""
    return Problem(
        503,
        "Redis unavailable",
        detail,
        type_="/problems/redis-unavailable",
        headers={"Retry-After": str(retry_after)},
    )


def escaped(text: str) -> str:
    """``text`` as JSON can hold it: a lone surrogate (a client can send one as ``\\ud800``)
    as its backslash escape; valid text unchanged."""
    return text.encode("utf-8", "backslashreplace").decode()


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": clipped(problem.detail, MAX_DETAIL),
    }
    if instance:
        body["instance"] = clipped(instance, MAX_DETAIL)
    if problem.errors is not None:
        body["errors"] = problem.errors
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # e.g. a client's lone surrogate in a field name or detail
        content = orjson.dumps(_encodable(body))
    return Response(
        content,
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _encodable(value: Any) -> Any:
    """``value`` with what JSON cannot hold made text: a lone surrogate as its ``\\uXXXX``
    escape, an integer beyond 64 bits or any other object as its ``str``."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {_encodable(str(k)): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    return _encodable(str(value))


def _location(loc: tuple[Any, ...]) -> str:
    parts = [shown(str(p)) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _segments_problem(exc: SegmentsError) -> Problem:
    if isinstance(exc, IntegrityError):
        return Problem(409, "Artefact refused", str(exc), type_="/problems/integrity")
    if isinstance(exc, StoreWriteError):
        return Problem(503, "Model store not writable", str(exc), type_="/problems/store-write")
    if isinstance(exc, StoreError):
        return Problem(404, "Not found", str(exc), type_="/problems/not-found")
    return Problem(400, "Bad request", str(exc))


def as_problem(exc: Exception) -> Problem | None:
    """The problem the handlers below render for ``exc``; None for an unexpected error."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, SegmentsError):
        return _segments_problem(exc)
    return None


def _without_slash_exists(request: Request) -> bool:
    """Does the request's path, which ends in a slash, name a route without it?"""
    path = request.scope["path"]
    raw = request.scope.get("raw_path") or path.encode()
    if len(path) < 2 or not path.endswith("/") or not raw.endswith(b"/"):
        return False  # (an escaped slash, '%2F', ends a segment's own value: not a slash)
    scope = {**request.scope, "path": path.rstrip("/")}
    return any(route.matches(scope)[0] != Match.NONE for route in request.app.router.routes)


def _methods_of(request: Request) -> list[str]:
    """Every method some route takes at the request's path, in a fixed order (none when
    it cannot be told)."""
    methods: set[str] = set()
    for route in _matching(request.app.router.routes, request.scope):
        methods |= getattr(route, "methods", None) or set()
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def _matching(routes: Sequence[Any], scope: Scope) -> list[Any]:
    """The routes whose path matches ``scope``'s, those of an included router's among them
    (FastAPI keeps an included router as one route of the app's)."""
    found = []
    for route in routes:
        if route.matches(scope)[0] == Match.NONE:
            continue
        inner = getattr(route, "original_router", None)
        found += _matching(inner.routes, scope) if inner is not None else [route]
    return found


def _without_union_branches(found: Sequence[Any]) -> list[Any]:
    """The errors of a field that may be omitted (``X | None``, where pydantic sees a union)
    at the field: pydantic names each branch it tried (``paused.bool: Input should be a valid
    boolean``, ``paused.none: Input should be None``), which tells a client nothing."""
    optional = {
        tuple(e["loc"][:-1]) for e in found if e["loc"] and e.get("type") == "none_required"
    }
    if not optional:
        return list(found)
    out = []
    for error in found:
        loc = tuple(error["loc"])
        if loc[:-1] in optional and error.get("type") == "none_required":
            continue
        cut = next((n for n in range(len(loc)) if loc[:n] in optional), None)
        out.append({**error, "loc": loc if cut is None else loc[:cut] + loc[cut + 1 :]})
    return out


def _json_reason(error: Any) -> str:
    """What the parser said and where (FastAPI's own message is only 'JSON decode error')."""
    reason = str((error.get("ctx") or {}).get("error") or error["msg"])
    where = error.get("loc", ())[1:]
    if not where or not isinstance(where[0], int):
        return reason
    # ("Unterminated string starting at": the position completes it)
    return f"{reason.removesuffix(' at')} at character {where[0]}"


# what a value of these fields must look like, said instead of their regular expression
PATTERN_WORDS = {
    "cursor": "not a cursor: send a page's next_cursor as it was given",
    "webhook_id": "not a subscription id (wh_ and hex digits, as created)",
    "url": "not an http(s) URL of printable ASCII without credentials (an international "
    "name in its xn-- form)",
}


def _message(error: Any, request: Request) -> str:
    """The error's message; a value not matching a field's pattern says what the field holds
    (the pattern itself, a regular expression, tells a caller little); a field the body may
    not hold names the one it may be meant for (pydantic said "Extra inputs are not
    permitted")."""
    loc = error.get("loc", ())
    if error.get("type") == "extra_forbidden" and loc:
        return unknown_field(str(loc[-1]), _fields_at(request, tuple(loc)))
    if error.get("type") == "string_pattern_mismatch" and loc and loc[-1] in PATTERN_WORDS:
        return PATTERN_WORDS[str(loc[-1])]
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "value_error" and reason is not None:
        return str(reason)  # a validator's own words, without pydantic's "Value error, "
    return str(error["msg"])


def _fields_at(request: Request, loc: tuple[Any, ...]) -> list[str]:
    """The fields the routed body's model allows where ``loc`` (``body``, ..., the field)
    points; none when it cannot be told."""
    body = getattr(request.scope.get("route"), "body_field", None)
    model = _model_in(getattr(getattr(body, "field_info", None), "annotation", None))
    if loc[:1] != ("body",):
        return []
    for part in loc[1:-1]:
        if model is None:
            return []
        if isinstance(part, int):  # an item of a list: the list's model, found already
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation is or holds (``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


_HUGE_INT = "integer string conversion"  # (Python's words for an over-long integer)


async def _unauthorised(request: Request) -> Response | None:
    """The 401 or 403 a routed endpoint's key check gives, or None. FastAPI parses a
    declared body (``PATCH /v1/segments/{id}``, ``POST /v1/webhooks``) before the route's
    dependencies run, so a body it cannot parse would answer a caller without a key (or
    with another scope's) before the key is checked: the check comes first here too."""
    from app.security import AUTHORIZED, SCOPE_KEY, authorize, presented_key  # (it imports this)

    if request.scope.get(AUTHORIZED):  # checked already (and counted by the rate limit)
        return None
    route = request.scope.get("route")
    scope = (getattr(route, "openapi_extra", None) or {}).get(SCOPE_KEY)
    if scope is None:
        return None
    try:
        await authorize(request.app.state, presented_key(request), scope)
    except Problem as exc:
        return problem_response(exc, request.url.path)
    return None


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # the key first, whatever was invalid: a route that checks its key in its own body
        # (POST /v1/events) answered a caller without one its ?model= rules
        if refused := await _unauthorised(request):
            return refused
        found = exc.errors()
        malformed = next((e for e in found if e.get("type") == "json_invalid"), None)
        if malformed is not None:  # as the assign endpoints answer it (loc is a position)
            return problem_response(malformed_json(_json_reason(malformed)), request.url.path)
        found = _without_union_branches(found)
        # a parameter that several of a route's dependencies read (``?model=``) is reported
        # by each of them: one error of a field is listed once
        found = list({(tuple(e["loc"]), e["msg"]): e for e in found}.values())
        listed = found[:MAX_ERRORS]  # (a body with a million unknown keys has that many)
        errors = [{"field": _location(e["loc"]), "message": _message(e, request)} for e in listed]
        return problem_response(invalid(errors, len(found) - len(listed)), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own parse of a routed endpoint's body failed other than as a decode error
        # ("There was an error parsing the body"): say why, as the assign endpoints do
        cause = exc.__cause__
        if exc.status_code == 400 and (refused := await _unauthorised(request)):
            return refused
        if exc.status_code == 400 and isinstance(cause, Problem):
            # the body refused as it was read (its type or size: app/limits.py), the key
            # checked just above
            return problem_response(cause, request.url.path)
        if exc.status_code == 400 and isinstance(cause, RecursionError):
            return problem_response(malformed_json("nested too deeply"), request.url.path)
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
            reason = f"not UTF-8 ({cause.reason} at byte {cause.start})"
            return problem_response(malformed_json(reason), request.url.path)
        if exc.status_code == 400 and isinstance(cause, ValueError) and _HUGE_INT in str(cause):
            # valid JSON whose integer has more digits than Python converts (4,300): no value
            # of any field is one, so a 422 saying what, not "an error parsing the body"
            huge = {"field": "body", "message": "holds an integer of more than 4,300 digits"}
            return problem_response(invalid([huge]), request.url.path)
        titles = {400: "Malformed request", 404: "Not found", 405: "Method not allowed"}
        title = titles.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        detail = str(exc.detail)
        if exc.status_code == 404 and _without_slash_exists(request):
            detail = (
                f"no such path; without the trailing slash it is {request.url.path.rstrip('/')!r}"
            )
        if exc.status_code == 405 and (methods := _methods_of(request)):
            # Starlette's Allow names the first matching route's methods only: GET alone for
            # /v1/segments/{id}, whose PATCH is another route
            headers = {**(headers or {}), "Allow": ", ".join(methods)}
            shown = " or ".join(m for m in methods if m != "HEAD")
            detail = f"{request.method} is not allowed on this path: it takes {shown}"
        problem = Problem(exc.status_code, title, detail, headers=headers)
        return problem_response(problem, request.url.path)

    @app.exception_handler(SegmentsError)
    async def _segments(request: Request, exc: SegmentsError) -> Response:
        return problem_response(_segments_problem(exc), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        problem = Problem(500, "Internal error", "an unexpected error occurred; it was logged")
        return problem_response(problem, request.url.path)
