"""A query parameter given twice, or a name repeated in a routed endpoint's JSON body, is a 422
naming it, not its last value taken silently."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from fastapi import Request

from app.assignment.unique_names import RECHECK_BYTES, REPEATED, reparse, repeated
from app.problems import MAX_ERRORS, invalid


async def single_query_params(request: Request) -> None:
    """Refuse a parameter the route reads given more than once (``?limit=5&limit=500``): which
    one was meant cannot be told, and FastAPI takes the last. Run after the route's key check
    (``app.security.scoped``); a parameter the route does not read is ignored, repeated or not,
    and ``model`` has its own message (``app.models.one_model``)."""
    params = request.query_params
    items = params.multi_items()
    if len(items) == len(params):  # (as many items as keys: none repeated)
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    read = _query_names(dependant) - {"model"}
    counts = Counter(key for key, _ in items)
    repeated = [(key, n) for key, n in counts.items() if n > 1 and key in read]
    if repeated:
        raise invalid([given_twice(key, n) for key, n in repeated])


async def single_body_names(request: Request) -> None:
    """Refuse a JSON body of a routed endpoint (a segment's edit, a webhook's subscription or
    edit) that writes a name twice in one object (``{"url": a, "url": b}``): FastAPI's parse
    keeps the last, so which was meant cannot be told, as the assignment and events endpoints
    answer (``unique_names``). Run after the route's key check; a body that is not JSON is left
    to the route's own parse, which names that. A route that reads no body refuses one that
    says something (more than ``{}`` or ``null``), naming its query parameters."""
    if request.method not in ("POST", "PATCH", "PUT", "DELETE"):
        return
    body = await request.body()
    route = request.scope.get("route")
    if route is not None and getattr(route, "body_field", False) is None and body.strip():
        # (promote, rescore, replay: ``{"rescore": true}`` was dropped unread, and the
        # promotion made without the rescore asked for)
        if _says_nothing(body):
            return
        options = ", ".join(f"?{name}=" for name in sorted(_query_names(route.dependant)))
        said = f"its options are query parameters ({options})" if options else "it has no options"
        raise invalid([{"field": "body", "message": f"this endpoint reads no body: {said}"}])
    if not body or len(body) > RECHECK_BYTES:
        return
    names = repeated(reparse(body))
    if names:
        listed = [{"field": name, "message": REPEATED} for name in names[:MAX_ERRORS]]
        raise invalid(listed, len(names) - len(listed))


def _says_nothing(body: bytes) -> bool:
    """Whether a body is empty, ``{}`` or ``null`` (what some clients send with every POST)."""
    text = body.strip()
    if len(text) > 16:
        return False
    try:
        return json.loads(text or b"null") in ({}, None)
    except ValueError:
        return False


def given_twice(key: str, times: int) -> dict[str, str]:
    """The error of a query parameter given ``times`` times."""
    return {"field": key, "message": f"given {times} times: give it once"}


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route (its ``Dependant``) reads, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
