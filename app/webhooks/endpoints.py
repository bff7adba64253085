"""``/v1/webhooks``: subscriptions (admin scope), their status, delivery log and replay."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from redis.exceptions import RedisError

from app.problems import Problem, clipped, invalid, problem_responses, redis_unavailable
from app.security import scoped
from app.webhooks.config import WebhookConfig
from app.webhooks.filters import check_filters
from app.webhooks.safety import UnsafeTarget, check_target
from app.webhooks.schemas import (
    AttemptList,
    AttemptOut,
    ReplayOut,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    webhook_out,
)
from app.webhooks.store import Contended, Subscription, SubscriptionStore

router = APIRouter(prefix="/v1", tags=["webhooks"])
ERRORS = problem_responses(404, 422, 503)
WebhookId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^wh_[0-9a-f]{1,60}$")]


async def _store(request: Request) -> SubscriptionStore:
    store: SubscriptionStore | None = getattr(request.app.state, "webhooks", None)
    if store is None:
        raise Problem(
            404,
            "Webhooks are off",
            "webhooks keep their state in Redis, and this service has none "
            "(SEGMENTS_RECORD_ASSIGNMENTS=false)",
            type_="/problems/webhooks-off",
        )
    return store


async def _config(request: Request) -> WebhookConfig:
    config: WebhookConfig = request.app.state.settings.webhook_config()
    return config


StoreDep = Annotated[SubscriptionStore, Depends(_store)]
ConfigDep = Annotated[WebhookConfig, Depends(_config)]


def _unavailable(exc: Exception) -> Problem:
    return redis_unavailable(
        f"webhook subscriptions are not reachable right now: {type(exc).__name__}"
    )


def _busy(exc: Contended) -> Problem:
    return Problem(503, "Subscriptions busy", f"{exc}: retry", headers={"Retry-After": "1"})


def _unknown(sub_id: str) -> Problem:
    return Problem(
        404, "Unknown webhook", f"no webhook {sub_id!r}", type_="/problems/unknown-webhook"
    )


async def _checked_url(url: str, config: WebhookConfig) -> None:
    """A well-formed URL (the schema's pattern) that the safety settings refuse is a 403:
    the request is understood, the service will not send there."""
    try:
        await check_target(url, config)
    except UnsafeTarget as exc:
        message = clipped(str(exc), 300)
        raise Problem(
            403,
            "Target refused",
            f"url: {message}",
            type_="/problems/target-refused",
            errors=[{"field": "url", "message": message}],
        ) from None


async def _checked_filters(
    request: Request, models: list[str] | None, segments: list[str] | None
) -> list[str] | None:
    """422 when the filters name a model or segment id the store has never held; the models
    to keep (``check_filters``: a segments filter keeps the model of its ids)."""
    if models is None and not segments:
        return None
    state = request.app.state
    served = state.models.names if getattr(state, "models", None) else [state.settings.model_name]
    return await asyncio.to_thread(check_filters, state.holder.store, served, models, segments)


async def _found(store: SubscriptionStore, sub_id: str) -> Subscription:
    try:
        sub = await store.get(sub_id)
    except RedisError as exc:
        raise _unavailable(exc) from None
    if sub is None:
        raise _unknown(sub_id)
    return sub


@router.post(
    "/webhooks",
    operation_id="create_webhook",
    status_code=201,
    response_model=WebhookOut,
    responses=problem_responses(403, 415, 422, 503),
    **scoped("admin"),
)
async def create_webhook(
    request: Request, body: WebhookCreate, store: StoreDep, config: ConfigDep
) -> WebhookOut:
    """Subscribe a URL to segment events. The answer holds the signing secret, shown once.
    A filter naming a model or segment id that no stored version has is a 422."""
    await _checked_url(body.url, config)
    models = await _checked_filters(request, body.models, body.segments)
    try:
        sub = await store.create(
            body.url,
            list(body.events),
            body.segments,
            body.description,
            models,
            models_pinned=body.models is None,
        )
        return webhook_out(sub, await store.status(sub.id), secret=True)
    except RedisError as exc:
        raise _unavailable(exc) from None


@router.get(
    "/webhooks",
    operation_id="list_webhooks",
    response_model=WebhookList,
    responses=ERRORS,
    **scoped("admin"),
)
async def list_webhooks(store: StoreDep) -> WebhookList:
    """Every subscription with its delivery status (secrets are never shown again)."""
    try:
        subs = await store.all()
        return WebhookList(webhooks=[webhook_out(s, await store.status(s.id)) for s in subs])
    except RedisError as exc:
        raise _unavailable(exc) from None


@router.get(
    "/webhooks/{webhook_id}",
    operation_id="get_webhook",
    response_model=WebhookOut,
    responses=ERRORS,
    **scoped("admin"),
)
async def get_webhook(webhook_id: WebhookId, store: StoreDep) -> WebhookOut:
    """A subscription and its status: last success, last failure and its status code,
    consecutive failures, backlog, dead letters, disabled state."""
    sub = await _found(store, webhook_id)
    try:
        return webhook_out(sub, await store.status(sub.id))
    except RedisError as exc:
        raise _unavailable(exc) from None


@router.patch(
    "/webhooks/{webhook_id}",
    operation_id="update_webhook",
    response_model=WebhookOut,
    responses=problem_responses(403, 404, 415, 422, 503),
    **scoped("admin"),
)
async def update_webhook(
    request: Request,
    webhook_id: WebhookId,
    patch: WebhookPatch,
    store: StoreDep,
    config: ConfigDep,
) -> WebhookOut:
    """Pause (``paused: true``: events wait in the queue) or resume (``false``: also
    re-enables a disabled endpoint), change the filter, URL or description."""
    changes: dict[str, Any] = {k: getattr(patch, k) for k in patch.model_fields_set}
    if not changes:
        raise invalid([{"field": "body", "message": "give at least one field to change"}])
    for name in ("url", "events", "paused", "description"):
        if name in changes and changes[name] is None:
            raise invalid([{"field": name, "message": "must not be null"}])
    if "url" in changes:
        await _checked_url(changes["url"], config)
    current = await _found(store, webhook_id)
    if "models" in changes or "segments" in changes:  # the filters as they will be, together
        # models the segments filter pinned are its own: resolved again (or dropped)
        models = changes.get("models", None if current.models_pinned else current.models)
        segments = changes.get("segments", current.segments)
        kept = await _checked_filters(request, models, segments)
        changes["models"] = kept  # a segments filter without models keeps its ids' model
        changes["models_pinned"] = models is None and kept is not None
    try:
        sub = await store.update(webhook_id, changes)
        if sub is None:
            raise _unknown(webhook_id)
        return webhook_out(sub, await store.status(sub.id))
    except Contended as exc:
        raise _busy(exc) from None
    except RedisError as exc:
        raise _unavailable(exc) from None


@router.delete(
    "/webhooks/{webhook_id}",
    operation_id="delete_webhook",
    status_code=204,
    responses=ERRORS,
    **scoped("admin"),
)
async def delete_webhook(webhook_id: WebhookId, store: StoreDep) -> Response:
    """Unsubscribe; its queue, dead letters and log go with it."""
    try:
        removed = await store.delete(webhook_id)
    except RedisError as exc:
        raise _unavailable(exc) from None
    if not removed:
        raise _unknown(webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/attempts",
    operation_id="list_webhook_attempts",
    response_model=AttemptList,
    responses=ERRORS,
    **scoped("admin"),
)
async def list_attempts(
    webhook_id: WebhookId,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AttemptList:
    """The delivery log: the last attempts, newest first."""
    await _found(store, webhook_id)
    try:
        lines = await store.attempts(webhook_id, limit)
    except RedisError as exc:
        raise _unavailable(exc) from None
    for line in lines:
        line["at"] = line["at"] / 1000
    return AttemptList(attempts=[AttemptOut.model_validate(line) for line in lines])


KEEP_PREVIOUS = (
    "seconds the secret being replaced keeps signing deliveries, as a second signature, so "
    "that a receiver can switch secrets without refusing one (0: stop using it now, as "
    "after a leak; at most 7 days)"
)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    operation_id="rotate_webhook_secret",
    response_model=WebhookOut,
    responses=ERRORS,
    **scoped("admin"),
)
async def rotate_secret(
    webhook_id: WebhookId,
    store: StoreDep,
    keep_previous_s: Annotated[int, Query(ge=0, le=7 * 86_400, description=KEEP_PREVIOUS)] = 86_400,
) -> WebhookOut:
    """A new signing secret, shown in this answer only. Until ``previous_secret_expires_at``
    every delivery is signed with both secrets (``webhook-signature: v1,<new> v1,<old>``,
    as Standard Webhooks provides), so the receiver can be given the new one at leisure;
    the queue, dead letters and filters stay as they are. A second rotation within the
    overlap drops the oldest secret."""
    try:
        sub = await store.rotate(webhook_id, keep_previous_s * 1000)
        if sub is None:
            raise _unknown(webhook_id)
        return webhook_out(sub, await store.status(sub.id), secret=True)
    except Contended as exc:
        raise _busy(exc) from None
    except RedisError as exc:
        raise _unavailable(exc) from None


@router.post(
    "/webhooks/{webhook_id}/replay",
    operation_id="replay_webhook",
    response_model=ReplayOut,
    responses=ERRORS,
    **scoped("admin"),
)
async def replay_webhook(webhook_id: WebhookId, store: StoreDep) -> ReplayOut:
    """Send the dead letters again (after the events waiting now); re-enables a disabled
    endpoint."""
    await _found(store, webhook_id)
    try:
        replayed = await store.replay(webhook_id)
    except RedisError as exc:
        raise _unavailable(exc) from None
    if replayed is None:  # deleted since it was found
        raise _unknown(webhook_id)
    return ReplayOut(replayed=replayed[0], re_enabled=replayed[1])
