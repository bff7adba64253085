"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import HolderDep
from app.history import HistoryService
from app.observability import SPOOL_DEPTH, render_metrics
from app.security import presented_key

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/metrics", operation_id="metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (a 'read' key is needed when SEGMENTS_METRICS_REQUIRE_KEY is set)."""
    if request.app.state.settings.metrics_require_key:
        request.app.state.keys.check(presented_key(request), "read")
    await _history_check(request)  # refresh the spool depth gauge
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


async def _history_check(request: Request) -> dict[str, Any]:
    history: HistoryService | None = request.app.state.history
    if history is None:
        return {"ok": True, "recording": False}
    status = await history.status()
    SPOOL_DEPTH.set(status.spool_depth)
    return {
        "ok": status.redis_up,
        "recording": True,
        "spool_depth": status.spool_depth,
        "spool_dropped": status.spool_dropped,
        "replayed": status.replayed,
        "note": None
        if status.redis_up
        else "Redis unreachable: assignments are answered "
        "from the model and spooled to disk until it returns",
    }


@router.get("/readyz", operation_id="readyz", responses={503: {"description": "Not ready"}})
async def readyz(request: Request, holder: HolderDep) -> Response:
    """Ready when a model version is loaded and Redis is reachable (degraded otherwise)."""
    current = holder.current
    checks: dict[str, Any] = {
        "model": {
            "ok": current is not None,
            "name": holder.model_name,
            "version": current.version if current else None,
            "compiled": current.assigner is not None if current else None,
            "error": holder.last_error,
        },
        "redis": await _history_check(request),
    }
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )
