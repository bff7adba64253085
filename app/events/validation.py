"""Checking ``POST /v1/events`` bodies: each event valid, or rejected with each field named.

The body as a whole must be ``{"events": [...]}`` with 1 to ``max_batch`` events (else a
problem for the request); an event that is not valid is reported in place and the others are
applied. An event's amount is what the model's training log declares: ``amount``, or
``quantity`` and ``unit_price`` (their product); all are non-negative and below 2^63 (the bound
of any number the service takes: ``/v1/assign`` refuses a feature beyond it, and a running
sum must never become infinite, which no later event could repair), the product too, and a
refund's is subtracted (``type: "refund"``), as a refund line's negative amount is in the log.
An event's type is read as the training log's ``refund_column`` is (``event_type``): trimmed, in
any case, ``refund`` and the log's ``refund_values`` (by default refunded, return, returned)
are a refund; ``order`` is an order. Other text is refused, though the log reads it as a
purchase: an event cannot be taken back, and a misspelt refund would count as an order.
(The bound of the running sum, an event that would take a customer's net amount beyond it, is
checked where the sum is, in ``apply.lua``: the service reports such an event as rejected.)
An event's time is from 1970-01-01 (UTC) on, as the training log's lines are
(``app.training.data.read_events``), and at most 5 minutes ahead of the service's clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from app.assignment.customer_ids import id_refusal, readable_id
from app.assignment.number_limit import INT_LIMIT, out_of_range
from app.assignment.unique_names import REPEATED, Repeated, checked_items
from app.assignment.validation import (
    NUMBER_LIMIT,
    number_id,
    parse_json,
)
from app.events.derive import EARLIEST_US, to_us
from app.events.store import Event, order_key
from app.problems import MAX_ERRORS, invalid, shown, too_many, unknown_field
from app.training.config import REFUND_VALUES

TYPES = ("order", "refund")  # as the store takes them (``signed``), and the common spellings
FUTURE_SLACK_US = 300_000_000  # clocks disagree: up to 5 minutes ahead is taken as now
_LIMIT = float(NUMBER_LIMIT)  # (exact; a float compares fastest with a float)
_BEYOND = "must be below 2^63 (about 9.2e18), as any number the service takes"
_COMMON = frozenset({"event_id", "customer_id", "type", "at", "order_id"})
_AT = itemgetter("at")
_COMMON_AMOUNT = _COMMON | {"amount"}
_COMMON_PRODUCT = _COMMON | {"quantity", "unit_price"}


@dataclass(frozen=True)
class AmountFields:
    """Which fields carry an event's amount, and which words are refunds, as the model's
    training log declares."""

    product: bool  # quantity x unit_price (else: amount)
    # the log's words of a refund (``refund_values``), trimmed and casefolded as training
    # compares them (``marked_lines``)
    refund_words: frozenset[str] = frozenset(REFUND_VALUES)
    # the log's words of a line that is no sale (``exclude_values``, where ``exclude_column``
    # is declared): left out in training, an event of them is refused saying so
    excluded_words: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, product: bool, refund_values: Iterable[str], exclude_values: Iterable[str] = ()
    ) -> AmountFields:
        return cls(
            product,
            frozenset(v.strip().casefold() for v in refund_values),
            frozenset(v.strip().casefold() for v in exclude_values),
        )

    @property
    def names(self) -> tuple[str, ...]:
        return ("quantity", "unit_price") if self.product else ("amount",)


def parse_body(body: bytes, max_batch: int) -> list[Any]:
    """The events of a body; a ``Problem`` for a body that is not a batch of events."""
    # leniently where orjson refuses (NaN, 1e400, a lone surrogate): the event is named
    doc = parse_json(body)
    if doc.__class__ is dict and doc.get("events").__class__ is list:
        _check_size(len(doc["events"]), max_batch)  # before any recheck of its names
        sent = [event for event in doc["events"] if event.__class__ is dict]
        least = len(doc) + sum(map(len, sent))  # names, at least (an event holds no object)
        doc = checked_items(body, doc, "events", least, lambda: _texts(sent))
    if not isinstance(doc, dict):
        raise invalid([{"field": "body", "message": "must be an object with 'events'"}])
    unknown = [k for k in doc if k != "events"]
    if unknown:
        raise invalid(_unknown_fields(unknown, "", ("events",)))
    events = doc.get("events")
    if not isinstance(events, list) or not events:
        raise invalid([{"field": "events", "message": "must be a non-empty list of events"}])
    return events


def _check_size(count: int, max_batch: int) -> None:
    if count > max_batch:
        raise too_many("events", count, max_batch, "event")


def _texts(sent: list[dict[str, Any]]) -> Iterable[str]:
    """The events' strings for ``proven_unique``, each once: their times first, joined (each
    holds colons, usually the only ones: one count in C), then the other names and text."""
    try:
        times = "\0".join(map(_AT, sent))
    except (KeyError, TypeError):  # (an event without a time as text: counted without)
        times = ""
    yield times
    for event in sent:
        yield "\0".join(
            [*event, *(v for k, v in event.items() if k != "at" and v.__class__ is str)]
        )


def _unknown_fields(names: list[str], p: str, valid: Iterable[str]) -> list[dict[str, str]]:
    """The first ``MAX_ERRORS`` unknown field names (escaped and clipped, each with the field
    of ``valid`` it may be meant for), then one line counting the rest: ten thousand unknown
    names are not ten thousand errors."""
    valid = sorted(valid)
    listed = [
        {"field": f"{p}{shown(str(k))}", "message": unknown_field(k, valid)}
        for k in names[:MAX_ERRORS]
    ]
    if len(names) <= MAX_ERRORS:
        return listed
    more = len(names) - MAX_ERRORS
    where = p[:-1] or "body"
    return [*listed[:MAX_ERRORS], {"field": where, "message": f"{more:,} more unknown fields"}]


def _text(
    item: dict[str, Any], name: str, max_len: int, errors: list[dict[str, str]], p: str
) -> Any:
    value = item.get(name)
    if name == "customer_id" and isinstance(value, int | float) and not isinstance(value, bool):
        errors.append({"field": f"{p}.{name}", "message": number_id(value)})  # as /v1/assign
    elif not isinstance(value, str) or not value.strip():
        errors.append({"field": f"{p}.{name}", "message": "must be a non-empty string"})
    elif len(value) > max_len:
        errors.append({"field": f"{p}.{name}", "message": f"longer than {max_len} characters"})
    elif not readable_id(value):
        errors.append({"field": f"{p}.{name}", "message": id_refusal(value)})
    return value


def _number(item: dict[str, Any], name: str, errors: list[dict[str, str]], p: str) -> float:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        message = "missing" if value is None else "must be a number"
    # an int is finite, and one beyond 1e308 has no float for isfinite (it raised: a 500)
    elif value.__class__ is float and not math.isfinite(value):
        message = "must be a finite number"
    elif value < 0:  # a log's return may be a negative quantity: an event's is not
        message = "must not be negative" + (
            "" if name == "unit_price" else f" (a refund is type 'refund' with a positive {name})"
        )
    elif out_of_range(value):  # (an integer as its float: 2^63 - 1 is 2^63)
        message = _BEYOND
    else:
        return float(value)
    errors.append({"field": f"{p}.{name}", "message": message})
    return 0.0


# a number's unit as a Unix epoch time, by its size (as the training log's reader guesses)
EPOCH_UNITS = ((1e11, "seconds", 1), (1e14, "milliseconds", 1e3), (1e17, "microseconds", 1e6))
NO_EPOCH = 1e8  # seconds after 1970 that are March 1973: smaller numbers are no epoch times


def _epoch_hint(value: Any) -> str:
    """For an ``at`` sent as a number: the ISO time it is as a Unix epoch time (an app's
    events carry ``1718000000``, which was refused as "must be an ISO 8601 time string"
    with no word of what to send instead)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if not math.isfinite(value) or not NO_EPOCH <= value < 1e20:
        return ""
    unit, per = next(((u, d) for bound, u, d in EPOCH_UNITS if value < bound), ("nanoseconds", 1e9))
    try:
        when = datetime.fromtimestamp(value / per, UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return (
        f", not a number: if {value!r} is a Unix epoch time (in {unit}, by its size), send "
        f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')!r}"
    )


def _time(value: Any, now_us: int, errors: list[dict[str, str]], p: str) -> int:
    if not isinstance(value, str) or len(value) > 64:
        message = "must be an ISO 8601 time string" + _epoch_hint(value)
        errors.append({"field": f"{p}.at", "message": message})
        return 0
    try:
        at = datetime.fromisoformat(value)
        at_us = to_us(at)
    except (ValueError, OverflowError):
        errors.append({"field": f"{p}.at", "message": f"not an ISO 8601 time: {value[:40]!r}"})
        return 0
    if at_us > now_us + FUTURE_SLACK_US:
        errors.append({"field": f"{p}.at", "message": _ahead(now_us, naive=at.tzinfo is None)})
    elif at_us < EARLIEST_US:
        errors.append({"field": f"{p}.at", "message": "before 1970-01-01T00:00:00Z"})
    return at_us


def _ahead(now_us: int, naive: bool) -> str:
    """Why a time ahead of the clock is refused: the bound, the clock, and for a time without
    an offset (a shop's local time, say) how it was read."""
    clock = datetime.fromtimestamp(now_us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"more than {FUTURE_SLACK_US // 60_000_000} minutes ahead of the service's clock "
        f"({clock})" + ("; without an offset it is UTC: add yours (+01:00)" if naive else "")
    )


def event_type(value: Any, amounts: AmountFields) -> str | None:
    """``order`` or ``refund`` for an event's ``type``, read as the training log's
    ``refund_column`` is (trimmed, any case: a ``refund_values`` word is a refund), or None
    for any other value (the log reads a word that is no refund as a purchase; an event
    must say ``order``: applied, it cannot be taken back)."""
    if type(value) is not str:
        return None
    word = value.strip().casefold()
    if word == "order":
        return "order"
    if word == "refund" or word in amounts.refund_words:
        return "refund"
    return None


def type_problem(amounts: AmountFields, value: Any = None) -> str:
    """What an event's ``type`` must be, with the model's refund words; for a word the
    training log's lines of no sale say (a subscription's ``skip``), that such an event is
    not sent: training left those lines out, and an order or a refund of it would count."""
    others = sorted(amounts.refund_words - {"refund"})
    words = f"; {', '.join(map(repr, others))} are refunds too" if others else ""
    must = f"must be 'order' or 'refund' (any case{words}, as in the training log)"
    if type(value) is str and value.strip().casefold() in amounts.excluded_words:
        return (
            f"{value.strip()!r} is no sale for this model (its training log's lines of it were "
            f"left out: exclude_values), so such an event is not sent; an event {must}"
        )
    return must


def _id(value: Any, max_len: int) -> bool:
    # an id as /v1/assign takes a customer's: readable text (no control characters, line
    # separators or bidirectional overrides), not blank
    return type(value) is str and 0 < len(value) <= max_len and readable_id(value)


def _amount(value: Any) -> bool:
    t = type(value)
    return (t is float and 0 <= value < _LIMIT) or (t is int and 0 <= value < INT_LIMIT)


def _valid(item: dict[str, Any], amounts: AmountFields, max_id: int, now_us: int) -> Event | None:
    """The common case, checked in one pass: a valid event, or None (then ``parse_event``
    words every error)."""
    allowed = _COMMON_PRODUCT if amounts.product else _COMMON_AMOUNT
    if not allowed.issuperset(item):
        return None
    event_id: Any = item.get("event_id")
    customer_id: Any = item.get("customer_id")
    kind = item.get("type")
    if kind not in TYPES:  # ("Return", " REFUND": read as the log's refund_column is)
        kind = event_type(kind, amounts)
    if not (_id(event_id, max_id) and _id(customer_id, max_id)) or kind is None:
        return None
    order_id: Any = item.get("order_id")
    at = item.get("at")
    if (order_id is not None and not _id(order_id, max_id)) or type(at) is not str:
        return None
    if amounts.product:
        quantity: Any = item.get("quantity")
        price: Any = item.get("unit_price")
        if not (_amount(quantity) and _amount(price)):
            return None
        amount = float(quantity) * float(price)  # as math.prod of the floats
        if not amount < _LIMIT:
            return None
    else:
        given: Any = item.get("amount")
        if not _amount(given):
            return None
        amount = float(given)
    try:
        at_us = to_us(datetime.fromisoformat(at))
    except (ValueError, OverflowError):
        return None
    if not EARLIEST_US <= at_us <= now_us + FUTURE_SLACK_US or len(at) > 64:
        return None
    return Event(
        customer_id,
        event_id,
        at_us,
        signed(amount, kind),
        order_key(order_id, event_id),
    )


def signed(amount: float, kind: object) -> float:
    """An event's amount as the store takes it: an order's non-negative, a refund's negative,
    zero included (``-0.0``: the scripts read a line's sign from its text). ``-0.0`` sent is
    zero: an order of -0.0 was stored as a refund, a refund of -0.0 as an order."""
    magnitude = abs(amount)
    return -magnitude if kind == "refund" else magnitude


def parse_event(
    item: Any, index: int, amounts: AmountFields, max_id: int, now_us: int
) -> Event | list[dict[str, str]]:
    """One event as the store takes it, or its errors (each naming its field)."""
    if type(item) is dict:
        valid = _valid(item, amounts, max_id, now_us)
        if valid is not None:
            return valid
    return checked(item, index, amounts, max_id, now_us)


def checked(
    item: Any, index: int, amounts: AmountFields, max_id: int, now_us: int
) -> Event | list[dict[str, str]]:
    """``parse_event`` field by field: the same event, or every error worded (the slow,
    obvious path; a test checks the one-pass check agrees with it)."""
    p = f"events.{index}"
    if isinstance(item, Repeated):  # (an event that repeats a name: parse_body)
        return [{"field": f"{p}.{name}", "message": REPEATED} for name in item.names]
    if not isinstance(item, dict):
        return [{"field": p, "message": "must be an object"}]
    errors: list[dict[str, str]] = []
    allowed = _COMMON | set(amounts.names)
    unknown = [k for k in item if k not in allowed]
    if "amount" in unknown and "amount" not in amounts.names:  # the model's log had no amount
        unknown.remove("amount")
        needed = " and ".join(amounts.names)
        errors.append(
            {
                "field": f"{p}.amount",
                "message": f"this model was trained on {' x '.join(amounts.names)}: send "
                f"{needed} instead of amount",
            }
        )
    errors += _unknown_fields(unknown, f"{p}.", allowed)
    event_id = _text(item, "event_id", max_id, errors, p)
    customer_id = _text(item, "customer_id", max_id, errors, p)
    kind = event_type(item.get("type"), amounts)
    if kind is None:
        errors.append({"field": f"{p}.type", "message": type_problem(amounts, item.get("type"))})
    values = [_number(item, name, errors, p) for name in amounts.names]
    at_us = _time(item.get("at"), now_us, errors, p)
    order_id = item.get("order_id")
    if order_id is not None:
        order_id = _text(item, "order_id", max_id, errors, p)
    if errors:
        return errors
    amount = math.prod(values)
    if not amount < NUMBER_LIMIT:  # (two numbers within the bound, their product beyond it)
        product = f"quantity x unit_price is {amount:.3g}: the amount {_BEYOND}"
        return [{"field": f"{p}.quantity", "message": product}]
    return Event(
        customer_id,
        event_id,
        at_us,
        signed(amount, kind),
        order_key(order_id, event_id),
    )
