"""A query parameter given twice, or a name repeated in a routed endpoint's JSON body, is a 422
naming it, not its last value taken silently."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import Request

from app.assignment.unique_names import RECHECK_BYTES, REPEATED, reparse, repeated
from app.problems import MAX_ERRORS, Problem, invalid, shown
from app.words import did_you_mean


async def single_query_params(request: Request) -> None:
    """Refuse a parameter the route reads given more than once (``?limit=5&limit=500``): which
    one was meant cannot be told, and FastAPI takes the last. Run after the route's key check
    (``app.security.scoped``); ``model`` has its own message (``app.models.one_model``). A
    parameter a reading route (GET) does not read is ignored, repeated or not; one a changing
    route does not read is refused, naming what it reads (``unknown_parameters``)."""
    params = request.query_params
    if not params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    if request.method in WRITES:
        unknown_parameters(params.keys(), _query_names(dependant))
    items = params.multi_items()
    if len(items) == len(params):  # (as many items as keys: none repeated)
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
    if not body:
        return
    if len(body) > RECHECK_BYTES:
        # no valid body of these routes comes near it (their fields are bounded far below):
        # unchecked, a name repeated past the bound was taken last-wins; refused here, FastAPI
        # does not validate it either (a million names' errors: seconds of CPU)
        raise Problem(
            413,
            "Body too large",
            f"request body is larger than {RECHECK_BYTES:,} bytes, more than any valid body "
            "of this endpoint",
            type_="/problems/body-too-large",
            errors=[{"field": "body", "message": f"larger than {RECHECK_BYTES:,} bytes"}],
        )
    names = repeated(reparse(body))
    if names:
        listed = [{"field": name, "message": REPEATED} for name in names[:MAX_ERRORS]]
        raise invalid(listed, len(names) - len(listed))


WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def unknown_parameters(given: Iterable[str], read: Iterable[str]) -> None:
    """A 422 naming each of the ``given`` query parameters an endpoint that changes something
    does not read (``read``), with the one it may be meant for: ``?rescor=true`` promoted
    without the rescore asked for, ``?modle=rfm`` recorded an assignment in the default model,
    ``?since=`` on a rescore rescored every customer, each without a word."""
    read = tuple(read)
    unknown = [name for name in given if name not in read]
    if not unknown:
        return
    known, unknown = sorted(read), list(dict.fromkeys(unknown))
    options = ", ".join(f"?{name}=" for name in known) or "none"
    listed = []
    for name in unknown[:MAX_ERRORS]:
        message = (
            f"unknown query parameter{did_you_mean(name, known)} (this endpoint reads {options})"
        )
        listed.append({"field": shown(name), "message": message})
    raise invalid(listed, len(unknown) - len(listed))


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
