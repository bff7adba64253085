"""Metrics (Prometheus), request ids and JSON logs.

Metric names are listed in docs/service.md (Observability). With several uvicorn workers,
``segments serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so that ``/metrics`` (answered by any
worker) aggregates all of them. Logs are one JSON object per line carrying the request id,
which is also returned in the ``X-Request-ID`` header; customer features and API keys are
never logged.
"""

from __future__ import annotations

import contextlib
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
# by model too: segment ids are a model's own (seg-001 of two models are two segments)
ASSIGNMENTS = Counter("segments_assignments_total", "Customers assigned", ["model", "segment"])
MIGRATIONS = Counter(
    "segments_migrations_total", "Recorded segment changes", ["model", "source", "target"]
)
MODEL_INFO = Gauge(
    "segments_model_info",
    "The serving model version (1)",
    ["model", "version"],
    multiprocess_mode="liveall",
)
SUPERSEDED = Counter(
    "segments_records_superseded_total",
    "Assignments not recorded: a newer one of the same customer was recorded first",
)
REDIS_ERRORS = Counter("segments_redis_errors_total", "Failed Redis calls", ["operation"])
PROFILE_CACHE = Counter(
    "segments_profile_cache_total",
    "Assignments by id: cached profile found (hit) or not (miss); found but changed in Redis "
    "(stale: read afresh)",
    ["result"],
)
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
API_KEYS_FILE_OK = Gauge(
    "segments_api_keys_file_ok",
    "1 when the API keys file (if any) was read whole; 0 while it is missing, unreadable or "
    "has a malformed line (its bad lines give no key)",
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


def forget_this_process() -> None:
    """With several workers, drop this process's live gauge files (``livemin``/``livemax``
    count only live processes, but know a process is gone only when told): called by a worker
    as it stops, and by ``segments serve``'s parent, which imports the metrics but serves
    none (its ``segments_redis_up`` of 0 would otherwise be the minimum for good)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


_SERVING: dict[str, str] = {}  # model -> the version this process set to 1


def set_model_version(model: str, version: str) -> None:
    """``segments_model_info{model, version}`` is 1 for the version served, 0 for earlier ones
    of the same model (another model's served version stays 1).

    Earlier versions are set to 0 rather than removed: with several workers (prometheus
    multi-process mode) a label set cannot be removed, and ``clear()`` does nothing there."""
    earlier = _SERVING.get(model)
    if earlier is not None and earlier != version:
        MODEL_INFO.labels(model, earlier).set(0)
    _SERVING[model] = version
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
        status, answered = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
            if not answered:  # the client left before its body came: no answer was sent,
                status = 499  # and it is not the server's error
        finally:
            elapsed = time.perf_counter() - start
            # the router leaves the matched route in the scope: label by its template
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            child(REQUESTS, scope["method"], route, str(status)).inc()
            child(LATENCY, scope["method"], route).observe(elapsed)
            if self.access and access_log.isEnabledFor(logging.INFO):
                fields = {
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 3),
                }
                write_access_line(fields)
            request_id.reset(token)


def write_access_line(fields: dict[str, Any]) -> None:
    """Log the access line ``request`` with ``fields`` at INFO on ``segments.access``.

    When logging is set up as ``log_config`` sets it up (the line goes to the root's one
    JSON stream handler, and nothing else would see it), the line is built by the same
    ``JsonFormatter.line`` and written to that handler's stream under its lock: what the
    handler would write, without a ``LogRecord``, the caller lookup and the handler walk
    (measured in-process: ~9 us per request instead of ~22 us through ``logger.info``, on an
    assignment of ~41 us without the line). Any other set-up, e.g. a
    filter, another handler, pytest's log capture, goes through ``logging`` itself.
    """
    handler = _direct_handler()
    if handler is None:
        access_log.handle(_access_record(fields))
        return
    formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
    line = formatter.line(time.time(), "info", access_log.name, "request", fields)
    try:
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:  # as StreamHandler.emit: reported by the handler, never raised
        handler.handleError(_access_record(fields))


def _access_record(fields: dict[str, Any]) -> logging.LogRecord:
    return access_log.makeRecord(
        access_log.name, logging.INFO, "", 0, "request", (), None, extra=fields
    )


def _direct_handler() -> logging.StreamHandler[Any] | None:
    """The root's JSON stream handler, if it is the only place an access line would go."""
    root = logging.root
    if (
        access_log.handlers
        or access_log.filters
        or not access_log.propagate
        or access_log.parent is not root
        or len(root.handlers) != 1
        or root.filters
        or logging.getLogRecordFactory() is not logging.LogRecord  # it may add fields
    ):
        return None
    handler = root.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or type(handler.formatter) is not JsonFormatter
        or handler.filters
        or handler.level > logging.INFO
    ):
        return None
    return handler


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return self.line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD},
            self.formatException(record.exc_info) if record.exc_info else None,
        )

    @staticmethod
    def line(
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, Any],
        exception: str | None = None,
    ) -> str:
        """One log line: the fixed fields, the request id, then ``fields``."""
        doc: dict[str, Any] = {
            "time": round(created, 3),
            "level": level,
            "logger": logger,
            "message": message,
            "request_id": request_id.get(),
        }
        doc.update(fields)
        if exception:
            doc["exception"] = exception
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
