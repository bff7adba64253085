"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import HolderDep, model_error_in_words, no_model_detail, served_others, unpromoted
from app.history import HistoryService
from app.limits import pending_body_problem
from app.observability import REDIS_UP, SPOOL_DEPTH, SPOOL_DROPPED, render_metrics
from app.problems import Problem
from app.security import KeyRing, authorize, presented_key

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/metrics", operation_id="metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (a 'read' key is needed when SEGMENTS_METRICS_REQUIRE_KEY is set,
    and then counted by the key's rate limit, as any keyed request is; open, it has no key to
    count by)."""
    if request.app.state.settings.metrics_require_key:
        await authorize(request.app.state, presented_key(request), "read")
        pending_body_problem(request.scope)
    await history_check(request.app.state.history)  # the Redis and spool gauges, now
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


async def history_check(history: HistoryService | None) -> dict[str, Any]:
    """Redis and the spool as readiness shows them; sets their gauges on the way (also run
    every few seconds by each worker, so that a worker no scrape reaches is not stale)."""
    if history is None:
        return {"ok": True, "recording": False}
    status = await history.status()
    ok = status.redis_up and status.reachable
    SPOOL_DEPTH.set(status.spool_depth)
    SPOOL_DROPPED.set(status.spool_dropped)
    REDIS_UP.set(int(ok))
    note = None
    if not status.reachable:
        note = (
            "Redis unreachable: assignments are answered from the model and spooled to disk "
            "until it returns"
        )
    elif not ok and status.refusal is not None:
        # it answers pings but takes no record (maxmemory reached): nothing is replayed
        note = (
            f"Redis answers but refused the last write ({status.refusal}): assignments are "
            "answered from the model and spooled to disk until it takes writes again"
        )
    elif not ok:
        note = "Redis is back: the spool is being replayed before records go to it directly"
    if status.spool_dropped:
        note = (note + "; " if note else "") + (
            f"{status.spool_dropped} record(s) were dropped because the spool was full: "
            "their migrations are lost"
        )
    return {
        "ok": ok,
        "recording": True,
        "reachable": status.reachable,
        "mode": "direct" if status.redis_up else "spooling",
        "spool_depth": status.spool_depth,
        "spool_dropped": status.spool_dropped,
        "replayed": status.replayed,
        "note": note,
    }


def may_see_details(keys: KeyRing, request: Request) -> bool:
    """A valid 'read' key was sent (or authentication is off): the probe may name paths."""
    try:
        keys.check(presented_key(request), "read")
    except Problem:
        return False
    return True


def keys_check(keys: KeyRing) -> dict[str, Any]:
    """The API keys file as the last check found it (its problems name no path)."""
    problems = list(keys.problems)
    return {"ok": not problems, "file": keys.path is not None, "problems": problems}


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={
        404: {"description": "Unknown model (`?model=`): the known ones are listed"},
        503: {"description": "Not ready: no model"},
    },
)
async def readyz(request: Request, holder: HolderDep) -> Response:
    """Ready (200) when a model version is loaded: the default model's, or (``degraded``, with
    ``checks.model.hint`` saying what to do) another served model's while the default has no
    promoted version (a store holding only ``--model NAME``; ``checks.models`` lists the
    others' versions, asked for with ``?model=NAME``). Without Redis the service is ``degraded``
    but still 200: it answers every assignment from the model and spools the records, and
    every replica shares the same Redis, so failing readiness would take all of them out of a
    load balancer for no gain. ``checks.redis`` says what is wrong; 503 only without a model
    to serve, or without Redis when ``SEGMENTS_READYZ_REQUIRES_REDIS`` is set. A keys file that is
    missing, unreadable or has a malformed line is ``degraded`` too (``checks.api_keys``), as
    is a model that ``SEGMENTS_MODELS`` names and that is not served (``checks.named_models``:
    each with why, such as a typo's did-you-mean; it is served once promoted, no restart).

    No key is needed, so the answer names no server path; sent with a valid ``read`` key it
    also carries the model's full error (with paths), as the log does."""
    current = holder.current
    state = request.app.state
    details = may_see_details(state.keys, request)
    checks: dict[str, Any] = {
        "model": {
            "ok": current is not None,
            "name": holder.model_name,
            "version": current.version if current else None,
            "compiled": current.assigner is not None if current else None,
            "error": holder.last_error if details else model_error_in_words(holder.last_error),
            # what to do: the models served here, and the setting that names the default
            "hint": no_model_detail(state) if current is None and holder is state.holder else None,
        },
        "redis": await history_check(state.history),
        "api_keys": keys_check(state.keys),
    }
    models = getattr(state, "models", None)
    if holder is state.holder and models is not None and models.only:
        # SEGMENTS_MODELS (serve --model) names models; one not served (a typo, or not yet
        # trained or promoted) is named with why, and keeps the service degraded
        missing = dict(models.not_served)
        checks["named_models"] = {"ok": not missing, "not_served": missing}
    others = served_others(state) if holder is state.holder else {}
    if others:
        checks["models"] = others
    # the default model has no promoted version (never trained or promoted) while others
    # are served: the service answers them (?model=NAME), so it stays ready, degraded,
    # and checks.model says why and what to do
    # (the store's pointer is a file: read off the event loop, as the reloader reads it)
    ready = checks["model"]["ok"] or (bool(others) and await asyncio.to_thread(unpromoted, holder))
    healthy = checks["redis"]["ok"] and checks["api_keys"]["ok"]
    healthy = healthy and checks["model"]["ok"] and checks.get("named_models", {}).get("ok", True)
    status = "not ready" if not ready else "ready" if healthy else "degraded"
    if not checks["redis"]["ok"] and ready and state.settings.readyz_requires_redis:
        ready, status = False, "not ready"
    body = {"status": status, "checks": checks}
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )


# Probes that ask with HEAD (some load balancers and uptime checkers do) get the GET's status
# and headers; the contract lists the GETs only.
router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)
