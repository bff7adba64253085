"""Metrics (Prometheus), request ids and JSON logs.

Metric names are listed in the README. With several uvicorn workers, ``segments serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` so that ``/metrics`` (answered by any worker) aggregates all of
them. Logs are one JSON object per line carrying the request id, which is also returned in
the ``X-Request-ID`` header; customer features and API keys are never logged.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("segments.access")

REQUESTS = Counter("segments_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "segments_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ASSIGNMENTS = Counter("segments_assignments_total", "Customers assigned", ["segment"])
MIGRATIONS = Counter("segments_migrations_total", "Recorded segment changes", ["source", "target"])
MODEL_INFO = Gauge(
    "segments_model_info",
    "The serving model version (1)",
    ["model", "version"],
    multiprocess_mode="liveall",
)
REDIS_ERRORS = Counter("segments_redis_errors_total", "Failed Redis calls", ["operation"])
REDIS_LATENCY = Histogram(
    "segments_redis_latency_seconds",
    "Redis round-trip latency",
    ["operation"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
# the spool is one database shared by a host's workers: each reads the same figures (max)
SPOOL_DEPTH = Gauge(
    "segments_spool_depth", "Records waiting on disk for Redis", multiprocess_mode="livemax"
)
SPOOL_DROPPED = Gauge(
    "segments_spool_dropped_records",
    "Records dropped because the spool was full, since the spool was created (lost migrations)",
    multiprocess_mode="livemax",
)
REDIS_UP = Gauge(
    "segments_redis_up",
    "1 when Redis answers and records go straight to it; 0 while they go to the spool",
    multiprocess_mode="livemin",
)


_CHILDREN: dict[tuple[object, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered: ``labels`` takes a lock and builds a key on
    every call, a cost the per-request metrics would pay several times a request."""
    key = (metric, labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def set_model_version(model: str, version: str) -> None:
    MODEL_INFO.clear()
    MODEL_INFO.labels(model, version).set(1)


class ObservabilityMiddleware:
    """Request id, latency and count per route template and status, one JSON access line."""

    def __init__(self, app: ASGIApp, access: bool = True) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        # 128 random bits as 32 hex digits, as uuid4().hex without building a UUID object
        rid = incoming if _SAFE_ID.match(incoming) else os.urandom(16).hex()
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            # the router leaves the matched route in the scope: label by its template
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            child(REQUESTS, scope["method"], route, str(status)).inc()
            child(LATENCY, scope["method"], route).observe(elapsed)
            if self.access and access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 3),
                    },
                )
            request_id.reset(token)


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def log_config(level: str = "info") -> dict[str, Any]:
    """``logging.dictConfig`` for uvicorn and every worker: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.observability.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
