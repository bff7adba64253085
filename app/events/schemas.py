"""API schemas of ``POST /v1/events`` (the body is checked by ``validation``; these publish it)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.assignment.validation import INT_LIMIT
from app.problems import FieldError
from app.training.config import REFUND_VALUES

# (validation checks it: these publish it; 2^63 - 512, exact for an integer and a float alike:
# an integer from it on is 2^63 as a 64-bit float)
_LIMIT = INT_LIMIT
# order, refund and the default refund words, any case, trimmed (``event_type``; a model's
# own refund_values are taken too): spelt as ECMA-262 and Python patterns read alike
_TYPES = (
    r"^\s*(?:"
    + "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" for c in word) for word in ("order", *REFUND_VALUES)
    )
    + r")\s*$"
)


class EventIn(BaseModel):
    """One behaviour event. The amount is ``amount``, or ``quantity`` × ``unit_price`` when
    the model's training log declared those (then send those two instead)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        min_length=1, max_length=128, description="unique per event: a repeat changes nothing"
    )
    customer_id: str = Field(min_length=1, max_length=128)
    type: str = Field(
        pattern=_TYPES,
        description="order or refund, in any case (a refund subtracts its amount); the words "
        "of a refund in the model's training log (refund_values: by default refunded, return, "
        "returned) are a refund too",
    )
    at: datetime = Field(
        description="ISO 8601; without an offset, UTC; from 1970-01-01T00:00:00Z on, and at "
        "most 5 minutes ahead of the service's clock"
    )
    amount: float | None = Field(
        None, ge=0, lt=_LIMIT, description="non-negative, below 2^63; a refund's too"
    )
    quantity: float | None = Field(None, ge=0, lt=_LIMIT)
    unit_price: float | None = Field(
        None, ge=0, lt=_LIMIT, description="quantity x unit_price below 2^63 too"
    )
    order_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="lines of one order count as one order; without it an event is its own",
    )


class EventsRequest(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class CustomerResult(BaseModel):
    customer_id: str
    segment_id: str
    segment_name: str | None
    confidence: float
    features_as_of: datetime = Field(
        description="the time the customer's features were derived as of from the stored "
        "behaviour with these events (recency and tenure are measured to it), the same for "
        "the whole batch, as the by-id assign answer says it",
        examples=["2026-12-01T10:00:00.000000Z"],
    )
    previous_segment_id: str | None = Field(None, description="segment before these events")
    changed: bool | None = Field(None, description="null when not recorded")
    recorded: bool


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None
    errors: list[FieldError]


class LateEvent(BaseModel):
    index: int
    event_id: str


class EventsResponse(BaseModel):
    model_version: str
    accepted: int = Field(description="events applied")
    duplicate: int = Field(description="events whose id was applied before: nothing changed")
    late: int = Field(
        description="events older than the customer's last nightly seeding: not applied (that "
        "run's log covers the period; the next run reads them from the log)"
    )
    rejected: int = Field(description="invalid events, each in errors")
    customers: list[CustomerResult] = Field(
        description="each customer an accepted event changed, and each customer of a "
        "duplicate event (a re-send, which finishes a batch answered 503): re-assigned as of now"
    )
    errors: list[RejectedEvent]
    late_events: list[LateEvent] = Field(
        description="each late event (counted in late), by its index in the batch and its id: "
        "not applied; the next nightly run reads it from the log if the log has it"
    )
