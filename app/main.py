"""The application factory: ``create_app()`` builds the service; its lifespan opens and closes
everything it uses (model holder; the app's one Redis client, with an embedded server when
none is configured, handed to the history service with its spool and replayer and to the rate
limiter; the watchers). Importing this module loads nothing.

Run it with ``segments serve`` or ``uvicorn --factory app.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from app import __version__
from app.assignment.endpoints import REQUEST_SCHEMAS, AssignFastPath
from app.assignment.endpoints import router as assignment_router
from app.drift.endpoints import router as drift_router
from app.drift.service import start_live_drift
from app.events.endpoints import REQUEST_SCHEMAS as EVENT_SCHEMAS
from app.events.endpoints import router as events_router
from app.events.store import BATCH_DEADLINE_S, BehaviourStore
from app.health import history_check
from app.health import router as health_router
from app.history import HistoryService, Keys, open_history
from app.history.endpoints import router as history_router
from app.history.path_ids import CustomerPaths
from app.limits import BodyChecks
from app.models import Models, warn_if_recorded_elsewhere
from app.observability import ObservabilityMiddleware, forget_this_process
from app.openapi import build_openapi, operation_id
from app.problems import install_handlers
from app.ratelimit import RateLimiter
from app.redis_client import open_redis
from app.registry.endpoints import router as registry_router
from app.registry.store import ModelStore
from app.rescore.endpoints import router as rescore_router
from app.rescore.service import Rescores
from app.security import KeyRing
from app.segments.endpoints import router as segments_router
from app.serving import ModelHolder, every
from app.settings import Settings
from app.ui import FORM_PATHS, install_ui
from app.webhooks.dispatcher import Dispatcher, running
from app.webhooks.endpoints import router as webhooks_router
from app.webhooks.sources import model_sources
from app.webhooks.store import SubscriptionStore

log = logging.getLogger(__name__)
GC_THRESHOLD = 50_000
GAUGE_INTERVAL_S = 5.0
DESCRIPTION = """Real-time customer segmentation. Assign customers to the segments of the
promoted model version, read segment definitions, members and migration history, manage
versions. Errors are `application/problem+json` (RFC 9457)."""


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _refresh_gauges(history: HistoryService) -> None:
    """Keep this worker's Redis and spool gauges current (a scrape reaches one worker)."""
    while True:
        await asyncio.sleep(GAUGE_INTERVAL_S)
        try:
            await history_check(history)
        except Exception:  # never let it die
            log.exception("refreshing the Redis and spool gauges failed")


def _tune_gc() -> None:
    """Keep the cyclic GC off the request path.

    A batch answer builds tens of thousands of small dicts; with CPython's default threshold
    (700 allocations) the collector runs hundreds of times per batch and rescans the loaded
    model each time, which doubled the batch time in bench/api_bench.py. What is loaded at
    start is frozen out of the collector's view, and young collections run every 50,000
    allocations instead. Request data has no cycles, so memory use does not change.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_serving()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.dev_mode:
            log.warning(
                "DEVELOPMENT MODE: authentication is OFF; never run like this in production"
            )
        async with contextlib.AsyncExitStack() as stack:
            holder = ModelHolder(
                ModelStore(settings.model_store), settings.model_name, settings.reload_interval
            )
            await asyncio.to_thread(holder.refresh, True)
            if holder.current is None:
                log.warning("no model loaded (%s); /readyz reports not ready", holder.last_error)
            app.state.holder = holder
            app.state.history = app.state.rate_limiter = app.state.webhooks = None
            redis = await stack.enter_async_context(open_redis(settings))
            config = settings.history_config()
            if redis is not None:
                await warn_if_recorded_elsewhere(redis, config, settings.model_name)
            models = Models(
                app.state,
                holder.store,
                settings.model_name,
                settings.served_models(),
                settings.reload_interval,
            )
            if settings.record_assignments and redis is not None:
                app.state.history = await stack.enter_async_context(
                    open_history(config, client=redis)
                )
                gauges = asyncio.create_task(_refresh_gauges(app.state.history))
                stack.push_async_callback(_cancel, gauges)
            if redis is not None:  # the customers' behaviour aggregates (POST /v1/events)
                keys = Keys.from_config(config)
                deadline = max(config.batch_timeout_s, BATCH_DEADLINE_S)
                app.state.behaviour = BehaviourStore(redis, keys, deadline)
            limit = settings.rate_limit_per_minute
            if limit is not None and redis is not None:
                keys = Keys.from_config(config)
                app.state.rate_limiter = RateLimiter(redis, keys, limit, config.timeout_s)
            app.state.drift = start_live_drift(settings, redis, holder, stack)
            if redis is not None:  # webhooks: subscriptions, and the dispatcher (one works)
                sources = model_sources(models, config)  # every served model's streams
                app.state.webhooks = SubscriptionStore(redis, config.key_prefix, sources)
                if settings.webhook_dispatcher:
                    dispatcher = Dispatcher(app.state.webhooks, settings.webhook_config())
                    await stack.enter_async_context(running(dispatcher))
            stack.callback(forget_this_process)
            # the other models (?model=): each its own holder and recording (app/models.py)
            models.open_with(stack, redis, config, settings.record_assignments)
            await models.refresh()
            app.state.models = models
            interval = settings.reload_interval
            watchers = (
                models.watch(),  # every model's holder, and models added to the store
                every(interval, app.state.keys.reload, "keys watcher"),
            )
            for coroutine in watchers:
                watcher = asyncio.create_task(coroutine)
                stack.push_async_callback(_cancel, watcher)
            stack.push_async_callback(app.state.rescores.close)  # before Redis closes
            _tune_gc()
            yield

    options: dict[str, Any] = {}
    if not settings.opentelemetry and "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI >= 0.165 checks for OpenTelemetry providers on every request (~8 µs)
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="Segments",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Starlette's redirect to the path without its trailing slash is an absolute URL built
        # from the request's Host header (a client could point it anywhere, and a cache keep
        # that): such a path is a 404 that names the right one (``install_handlers``)
        redirect_slashes=False,
        **options,
    )
    app.state.settings = settings
    app.state.history = app.state.rate_limiter = None  # set by the lifespan when configured
    app.state.drift = app.state.behaviour = app.state.models = None  # likewise
    app.state.rescores = Rescores()  # this worker's background rescores (/v1/rescore)
    app.state.keys = KeyRing(
        settings.api_keys, settings.api_keys_file, enabled=not settings.dev_mode
    )
    install_handlers(app)
    # a customer id holding '/', sent as '%2F' (inside the fast path, which never sees it)
    app.add_middleware(CustomerPaths)
    app.add_middleware(AssignFastPath, service=app)  # innermost but the above: its docstring
    app.add_middleware(  # size, JSON (and the dashboard's HTML forms)
        BodyChecks, max_bytes=settings.max_body_bytes, form_paths=FORM_PATHS
    )
    app.add_middleware(ObservabilityMiddleware, access=settings.access_log)
    routers = (
        assignment_router,
        events_router,
        segments_router,
        history_router,
        registry_router,
        health_router,
        drift_router,
        webhooks_router,
        rescore_router,
    )
    for router in routers:
        app.include_router(router)
    install_ui(app)

    def openapi() -> dict[str, Any]:
        return build_openapi(app, (*REQUEST_SCHEMAS, *EVENT_SCHEMAS))

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def render_openapi() -> str:
    """The document as committed: sorted keys, two-space indent, trailing newline."""
    import orjson

    # (no keys: the environment's, if any, would refuse development mode)
    document = create_app(Settings(dev_mode=True, api_keys=None, api_keys_file=None)).openapi()
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
