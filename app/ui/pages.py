"""The dashboard's pages that look: models and versions, segments, migrations, customers.

Each page reads through the same functions as the API's endpoints (``version_list``,
``get_migrations``, ``get_customer`` ...), so the dashboard and the API cannot disagree. The
model shown is the service's (``holder.model_name``, passed to every template as ``model``);
a ``?model=`` choice can be added here once the service serves several.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from app.assignment.customer_ids import id_problem
from app.deps import model_error_in_words
from app.errors import SegmentsError, StoreError
from app.history.endpoints import (
    MAX_PATH_ID,
    get_customer,
    get_customer_history,
    get_migrations,
    in_every_model,
)
from app.history.records import RedisUnavailable
from app.problems import Problem
from app.registry.endpoints import version_list
from app.registry.manifest import SegmentInfo
from app.registry.store import ModelStore
from app.rescore.endpoints import rescores, where
from app.serving import ServingModel
from app.ui.auth import PageError, looking
from app.ui.charts import heat_map, rare_of, sankey
from app.ui.drift import drift_status
from app.ui.render import holder_of, model_state, page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ui", include_in_schema=False)
T = TypeVar("T")
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
WINDOWS["30d"] = timedelta(days=30)
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


async def api(call: Awaitable[T]) -> T:
    """Run an endpoint's function; its problem becomes an error page with the same status."""
    try:
        return await call
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail) from None


def serving_of(request: Request) -> ServingModel:
    holder = holder_of(request)
    serving: ServingModel | None = holder.current
    if serving is None:  # a promoted version that fails to load (a refused artefact) says so
        why = model_error_in_words(holder.last_error) if holder.last_error else None
        raise PageError(503, "No model", why or "no promoted model version is loaded yet")
    return serving


def served_segment(serving: ServingModel, segment_id: str) -> SegmentInfo:
    """The served segment ``segment_id``; a 404 page when the version has no such segment."""
    seg = serving.segments.get(segment_id)
    if seg is None:
        raise PageError(404, "Unknown segment", f"segment {segment_id!r} is not served now")
    return seg


def labels_of(serving: ServingModel) -> dict[str, str]:
    """Each feature's label (the config's, else its name in words), for tables and charts."""
    return {f.name: f.label for f in serving.manifest.features}


@router.get("/")
async def models_page(
    request: Request, done: str | None = None, rescore: str | None = None
) -> Response:
    viewer = await looking(request)
    holder = holder_of(request)
    name = holder.model_name
    manifests, unreadable = await asyncio.to_thread(holder.store.listed, name)
    listing = await api(asyncio.to_thread(version_list, holder, manifests, unreadable))
    reports = {
        m.version: (holder.store.root / name / m.version / "report.html").is_file()
        for m in manifests
    }
    try:
        history = await asyncio.to_thread(holder.store.promotion_history, name)
    except StoreError as exc:  # a damaged pointer history: the versions are still listed
        log.warning("%s", exc)
        history = []
    return page(
        request,
        viewer,
        "models.html",
        listing=listing,
        manifests=list(reversed(manifests)),
        reports=reports,
        history=list(reversed(history))[:10],
        done=done if done in ("promoted", "rolled-back", "rescoring") else None,
        unmoved=rescore == "not-started",
        rescore=await last_rescore(request),
        recording=model_state(request).history is not None,
        others=[] if manifests else await asyncio.to_thread(_other_models, holder.store, name),
    )


def _other_models(store: ModelStore, name: str) -> list[str]:
    """The store's models besides ``name`` (its page, without a version, names them: a new
    user's store of five models and no 'customers' showed an empty 'Model customers')."""
    return [m for m in store.model_names() if m != name]


async def last_rescore(request: Request) -> dict[str, Any] | None:
    """The model's last rescore (``GET /v1/rescore``), or None: none ran, recording is off,
    or Redis does not answer (the page shows the rest)."""
    state = model_state(request)
    if state.history is None:
        return None
    try:
        return await rescores(state).status(where(state, state.history))
    except Problem:
        return None


@router.get("/models/{version}/report")
async def report(request: Request, version: str) -> Response:
    await looking(request)
    holder = holder_of(request)
    try:
        folder = holder.store.version_dir(holder.model_name, version)
    except SegmentsError as exc:
        raise PageError(404, "Unknown version", str(exc)) from None
    path = folder / "report.html"
    if not path.is_file():
        raise PageError(404, "No report", f"version {version} has no report.html")
    headers = {
        "Content-Security-Policy": REPORT_CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers)


async def live_counts(request: Request, segment_ids: list[str]) -> dict[str, int] | None:
    """Customers in each segment now (Redis membership); None when not known."""
    history = model_state(request).history
    if history is None:
        return None
    try:
        counts = await asyncio.gather(*(history.recorder.member_count(s) for s in segment_ids))
    except RedisUnavailable:
        return None
    return dict(zip(segment_ids, counts, strict=True))


@router.get("/segments")
async def segments_page(request: Request) -> Response:
    viewer = await looking(request)
    serving = serving_of(request)
    segments = list(serving.segments.values())
    live = await live_counts(request, [s.id for s in segments])
    live_total = sum(live.values()) if live else 0
    labels = labels_of(serving)
    return page(
        request,
        viewer,
        "segments.html",
        serving=serving,
        segments=segments,
        live=live,
        live_total=live_total,
        heat=heat_map(segments, labels, serving.manifest.features),
        labels=labels,
        rare=rare_of(serving.manifest.features),
        outcomes=serving.manifest.outcomes,
        drift=await drift_status(request.app.state, serving),
    )


@router.get("/segments/{segment_id}")
async def segment_page(request: Request, segment_id: str, saved: str = "") -> Response:
    # a plain string: a hand-typed ?saved=maybe is no reason for a JSON 422 instead of the page
    viewer = await looking(request)
    serving = serving_of(request)
    seg = served_segment(serving, segment_id)
    live = await live_counts(request, [seg.id])
    labels = labels_of(serving)
    return page(
        request,
        viewer,
        "segment.html",
        serving=serving,
        seg=seg,
        live=None if live is None else live[seg.id],
        labels=labels,
        rare=rare_of(serving.manifest.features),
        heat=heat_map([seg], labels, serving.manifest.features),
        outcomes={o.name: o for o in serving.manifest.outcomes},
        saved=saved == "true",
        errors={},
        form=None,
    )


def _moment(field: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PageError(
            422, "Invalid window", f"{field}: not a date and time such as 2026-01-31T00:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/migrations")
async def migrations_page(
    request: Request, window: str = "24h", since: str | None = None, until: str | None = None
) -> Response:
    viewer = await looking(request)
    history = model_state(request).history
    if history is None:
        raise PageError(404, "Recording is off", "this service does not record assignments")
    start, end = _moment("since", since), _moment("until", until)
    if start is not None and end is not None and start > end:
        raise PageError(422, "Invalid window", "until: must not be before since")
    if start is None and window in WINDOWS:
        try:
            start = (end or datetime.now(UTC)) - WINDOWS[window]
        except OverflowError:  # ?until=0001-01-01 minus a day is before datetime's range
            raise PageError(422, "Invalid window", "until: too early") from None
    form: dict[str, Any] = {
        "window": window if window in WINDOWS and not since else "",
        "since": since or "",
        "until": until or "",
        "windows": list(WINDOWS),
    }
    current = holder_of(request).current
    names = {s.id: s.name for s in current.segments.values()} if current else {}
    try:
        matrix = await get_migrations(history, start, end)
    except Problem as exc:
        if exc.status != 503:
            raise PageError(exc.status, exc.title, exc.detail) from None
        # Redis is down: the page (and its form) still renders, saying what is missing
        return page(
            request, viewer, "migrations.html", 503, matrix=None, unavailable=exc.detail, **form
        )
    flows = [(f.from_segment_id, f.to_segment_id, f.count) for f in matrix.flows]
    return page(
        request,
        viewer,
        "migrations.html",
        matrix=matrix,
        chart=sankey(flows, names),
        names=names,
        unavailable=None,
        **form,
    )


@router.get("/customers")
async def customer_page(request: Request, customer_id: str = "") -> Response:
    viewer = await looking(request)
    context: dict[str, Any] = {
        "customer_id": customer_id,
        "customer": None,
        "history": None,
        "unavailable": None,
    }
    if customer_id:
        # an id the API would refuse to record is bad input, not an unknown customer
        if problem := id_problem(customer_id, MAX_PATH_ID):
            raise PageError(422, "Invalid customer id", f"customer_id: {problem}")
        history = model_state(request).history
        if history is None:
            raise PageError(404, "Recording is off", "this service does not record assignments")
        holder = holder_of(request)
        try:
            context["customer"] = await get_customer(customer_id, history, holder, request)
            context["history"] = await get_customer_history(
                customer_id, history, holder, request, 50
            )
        except Problem as exc:
            if exc.status == 503:  # Redis is down: the page and its search form still render
                context["unavailable"] = exc.detail
                return page(request, viewer, "customer.html", 503, missing=False, **context)
            if exc.status != 404:
                raise PageError(exc.status, exc.title, exc.detail) from None
            try:  # known in another model served: say which, as the API's 404 does
                known = [m.model for m in await in_every_model(request, customer_id)]
            except RedisUnavailable:
                known = []
            return page(request, viewer, "customer.html", 404, missing=True, known=known, **context)
    return page(request, viewer, "customer.html", missing=False, **context)
