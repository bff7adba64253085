"""The webhook API's request and response bodies (separate from ``store.Subscription``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from app.segments.schemas import SegmentDescription
from app.webhooks.store import EVENT_TYPES, DeliveryStatus, Subscription

EventType = Literal["segment.entered", "segment.exited"]
SegmentId = str  # checked against the stored versions by app/webhooks/filters.py
# printable ASCII (an international name goes in its xn-- form), no credentials ('@' in the
# authority); what the settings allow is checked by safety.py
URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+([/?#][!-~]*)?$"
Url = Field(
    min_length=8,
    max_length=2048,
    pattern=URL_PATTERN,
    examples=["https://hooks.example.com/segments"],
    description="https (http only to allow-listed hosts); an address inside the network is "
    "refused (403) unless the service allows it",
)
Segments = Field(
    None,
    min_length=1,
    max_length=1000,
    description="only events of these segment ids (entered: the new one; exited: the one left); "
    "omit or null for all (an empty list, which would match nothing, is refused). Each must "
    "be in some stored version of the filtered models (of any "
    "model without a model filter): an unknown id is a 422 listing the known ones. Ids are a "
    "model's own: without a model filter, the subscription keeps the model that has these "
    "ids (its `models` names it; a later change of `segments` without `models` keeps the new "
    "ids' model, and null drops it), and ids several models have, or ids of different "
    "models, are a 422 naming them",
)

ModelName = Annotated[str, Field(min_length=1, max_length=100)]
Models = Field(
    None,
    min_length=1,
    max_length=100,
    description="only events of these models (`?model=` names; every event carries its model); "
    "omit or null for every served model, those served later included (with a `segments` "
    "filter: the model that has its ids) (an empty list, which "
    "would match nothing, is refused). Each must be in the "
    "model store or served: an unknown model is a 422 listing the known ones",
)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Url
    events: list[EventType] = Field(default_factory=lambda: list(EVENT_TYPES), min_length=1)
    segments: list[SegmentId] | None = Segments
    models: list[ModelName] | None = Models
    description: SegmentDescription = ""  # type: ignore[valid-type]


class WebhookPatch(BaseModel):
    """Pause or resume (resuming re-enables a disabled endpoint), change the filters, the URL
    or the description. At least one field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    url: (
        Annotated[str, Field(min_length=8, max_length=2048, pattern=URL_PATTERN)]
        | (SkipJsonSchema[None])
    ) = None
    events: Annotated[list[EventType], Field(min_length=1)] | SkipJsonSchema[None] = None
    segments: list[SegmentId] | None = Segments
    models: list[ModelName] | None = Models
    description: SegmentDescription | SkipJsonSchema[None] = None  # type: ignore[valid-type]
    paused: StrictBool | SkipJsonSchema[None] = None


class StatusOut(BaseModel):
    state: Literal["active", "paused", "disabled"]
    disabled_reason: str | None
    backlog: int = Field(description="events waiting for the endpoint")
    dead_letters: int = Field(description="events in the dead-letter list (replay re-sends)")
    delivered: int
    dropped: int = Field(description="events dropped because the queue was full")
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_failure_status: int | None = Field(description="HTTP status; null: no answer")
    last_failure_error: str | None


class WebhookOut(BaseModel):
    id: str = Field(examples=["wh_3f2a9c0d1e4b5a6c"])
    url: str
    events: list[str]
    segments: list[str] | None
    models: list[str] | None = Field(description="null: every served model")
    description: str
    paused: bool
    created_at: datetime
    status: StatusOut | None = None
    secret: str | None = Field(
        None,
        description="the signing secret: only in the answer to POST /v1/webhooks and to "
        "POST /v1/webhooks/{id}/rotate-secret",
    )
    previous_secret_expires_at: datetime | None = Field(
        None,
        description="after a rotation: until then each delivery carries a second signature, "
        "made with the secret the rotation replaced",
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    at: datetime
    message_id: str
    events: int
    ok: bool
    status: int | None
    error: str | None
    duration_ms: float


class AttemptList(BaseModel):
    attempts: list[AttemptOut]


class ReplayOut(BaseModel):
    replayed: int = Field(description="events queued again")
    re_enabled: bool = Field(description="the endpoint was disabled and is active again")


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def webhook_out(
    sub: Subscription, status: DeliveryStatus | None = None, secret: bool = False
) -> WebhookOut:
    out = WebhookOut(
        id=sub.id,
        url=sub.url,
        events=sub.events,
        segments=sub.segments,
        models=sub.models,
        description=sub.description,
        paused=sub.paused,
        created_at=_time(sub.created_at) or datetime.now(UTC),
        secret=sub.secret if secret else None,
        previous_secret_expires_at=_time(sub.previous_until)
        if sub.previous_until and sub.previous_until > time.time() * 1000
        else None,
    )
    if status is not None:
        state = "disabled" if status.disabled_at else "paused" if sub.paused else "active"
        out.status = StatusOut(
            state=state,
            disabled_reason=status.disabled_reason,
            backlog=status.backlog,
            dead_letters=status.dead_letters,
            delivered=status.delivered,
            dropped=status.dropped,
            consecutive_failures=status.consecutive_failures,
            last_success_at=_time(status.last_success_at),
            last_failure_at=_time(status.last_failure_at),
            last_failure_status=status.last_failure_status,
            last_failure_error=status.last_failure_error,
        )
    return out
