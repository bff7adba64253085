"""``POST /v1/events`` and assignment by id for a transactions model (no HTTP here).

An events batch is worked in groups of whole customers (``GROUP_EVENTS`` events, two at a
time): a group's events are applied to its customers' running aggregates (one pipeline of
script calls), then every customer an event changed (or a re-sent event names) is re-derived
as of now (one array operation per feature), re-assigned by the compiled assigner's vector
path and recorded
through the recorder's batch API (one pipeline again): a changed segment is a migration like
any other, with its stream event. Python works on one group while Redis works on the other.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from starlette.datastructures import State

from app.assignment.service import SETTLE_ROUNDS, recorded_after
from app.assignment.validation import ErrorBudget, is_unicode
from app.deps import current_serving
from app.drift.live import LIVE
from app.events.derive import feature_rows, rfm_features
from app.events.store import (
    APPLIED,
    BEYOND,
    CONFLICT,
    DUPLICATE,
    LATE,
    Aggregates,
    BehaviourStore,
    Event,
)
from app.events.validation import AmountFields, parse_body, parse_event
from app.history import HistoryService
from app.history.records import (
    NOT_RECORDED,
    Outcome,
    Record,
    RecordBatch,
    RedisUnavailable,
    now_ms,
)
from app.observability import ASSIGNMENTS, MIGRATIONS, child
from app.problems import Problem, redis_unavailable
from app.serving import ServingModel
from app.training.config import STORED, TransactionsConfig

if TYPE_CHECKING:
    from app.models import Models

Clock = Callable[[], float]
GROUP_EVENTS = 500
"""Events per group of whole customers (a batch's unit of work). A batch of 1,000 makes two
groups, so that its Python and Redis work overlap: 1.2x the events per second of one group of
1,000 for the same CPU per event (groups of 250 cost 22% more CPU per event)."""
IN_FLIGHT = 2  # groups worked at a time: one in Python while Redis works on the other
NET_BEYOND = (
    "would take the customer's net amount to 2^63 (about 9.2e18) or beyond, the bound of any "
    "number the service takes: not applied"
)
REUSED_ID = (
    "was applied before with another time, amount, type or order_id: an id names one event, "
    "and a re-send repeats it unchanged; not applied (give a new event a new id)"
)


@dataclass(frozen=True)
class LogSpec:
    """What the serving version's training log declared: how an amount is given, and
    whether an order id counts an order once (``counting``)."""

    amounts: AmountFields
    counting: bool


_SPECS: dict[str, LogSpec | None] = {}


def log_spec(serving: ServingModel) -> LogSpec | None:
    """The serving version's log spec; None for a model not trained on a transaction log."""
    version = serving.version
    if version not in _SPECS:
        manifest = serving.manifest
        spec = None
        if manifest.data.kind == "transactions":
            raw = manifest.config["data"]["transactions"]
            tx = TransactionsConfig.model_validate(raw, context={STORED: True})
            excluded = tx.exclude_values if tx.exclude_column else ()
            amounts = AmountFields.of(tx.amount is None, tx.refund_values, excluded)
            spec = LogSpec(amounts, tx.order is not None)
        _SPECS[version] = spec
    return _SPECS[version]


def now_us(state: State) -> int:
    """The service's clock in epoch microseconds (``state.clock``, injectable in tests)."""
    clock: Clock = getattr(state, "clock", None) or time.time
    return int(clock() * 1_000_000)


def features_of(agg: Aggregates, as_of_us: int, kinds: dict[str, str]) -> dict[str, float]:
    """The features the serving version takes, derived from ``agg`` as of ``as_of_us``."""
    found = rfm_features(agg.first_us, agg.last_us, agg.orders, agg.monetary, as_of_us)
    return {name: float(found[name]) for name in kinds}


def _behaviour(state: State) -> BehaviourStore:
    store: BehaviourStore | None = getattr(state, "behaviour", None)
    if store is None:
        raise Problem(
            503,
            "No Redis",
            "events need Redis for the customers' running aggregates; none is configured",
            type_="/problems/redis-unavailable",
        )
    return store


def _spec(state: State, serving: ServingModel) -> LogSpec:
    spec = log_spec(serving)
    if spec is None:
        raise Problem(
            409,
            "Not a transactions model",
            f"model {serving.manifest.model_name} (version {serving.version}) was trained on "
            "a customer table, not a transaction log: its features cannot be derived from "
            f"events; {_log_models_hint(state)}",
            type_="/problems/not-a-transactions-model",
        )
    return spec


def _log_models_hint(state: State) -> str:
    """Which models served here take events (``?model=NAME``), or how to get one."""
    models: Models | None = getattr(state, "models", None)
    found = []
    for name in models.names if models is not None else []:
        assert models is not None
        current = models.holder(name).current
        if current is not None and log_spec(current) is not None:
            found.append(name)
    if found:
        return f"send them to a model trained on a log: ?model={found[0]}" + (
            f" (such models served here: {', '.join(found)})" if len(found) > 1 else ""
        )
    return (
        "no model served here was trained on one: train and promote one (kind = "
        '"transactions") and send the events with ?model=NAME'
    )


async def ingest(state: State, body: bytes) -> dict[str, Any]:
    """Apply, re-assign and record an events batch; the answer document."""
    serving = current_serving(state)
    spec, store = _spec(state, serving), _behaviour(state)
    settings = state.settings
    items = parse_body(body, settings.max_batch)
    now = now_us(state)
    events: list[Event] = []
    positions: list[int] = []  # each event's index in the batch
    rejected: list[dict[str, Any]] = []
    budget = ErrorBudget()
    for i, item in enumerate(items):
        found = parse_event(item, i, spec.amounts, settings.max_id_length, now)
        if isinstance(found, Event):
            events.append(found)
            positions.append(i)
            continue
        event_id = item.get("event_id") if isinstance(item, dict) else None
        echo = event_id if isinstance(event_id, str) and len(event_id) <= 128 else None
        echo = echo if echo is None or is_unicode(echo) else None  # no answer could hold it
        rejected.append({"index": i, "event_id": echo, "errors": budget.take(found, f"events.{i}")})
    groups = _groups(events)
    lanes = asyncio.Semaphore(IN_FLIGHT)
    work = [
        _work(lanes, store, spec, serving, state.history, [events[i] for i in g], now)
        for g in groups
    ]
    # every group runs to its end (a group applied is recorded) before a failure is answered;
    # one group (every small batch, a single event) is awaited as is: no task to make
    done: list[Any] = []
    if len(work) == 1:
        try:
            done.append(await work[0])
        except RedisUnavailable as exc:
            done.append(exc)
    else:
        done += await asyncio.gather(*work, return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, RedisUnavailable):
            raise redis_unavailable(
                f"the events were not all applied ({outcome.reason}); send them again (their ids "
                "make it safe)",
                retry_after=1,
            ) from None
        if isinstance(outcome, BaseException):
            raise outcome
    statuses = [DUPLICATE] * len(events)
    moved: list[tuple[int, dict[str, Any]]] = []
    for indices, outcome in zip(groups, done, strict=True):
        applied, customers = outcome
        for i, status in zip(indices, applied, strict=True):
            statuses[i] = status
        moved += [(indices[j], doc) for j, doc in customers]
    moved.sort(key=itemgetter(0))  # in the order of each customer's first applied event
    why = {BEYOND: (spec.amounts.names[0], NET_BEYOND), CONFLICT: ("event_id", REUSED_ID)}
    rejected += [
        {
            "index": positions[i],
            "event_id": e.event_id,
            "errors": [
                {"field": f"events.{positions[i]}.{why[status][0]}", "message": why[status][1]}
            ],
        }
        for i, (e, status) in enumerate(zip(events, statuses, strict=True))
        if status in why
    ]
    rejected.sort(key=itemgetter("index"))
    return {
        "model_version": serving.version,
        "accepted": statuses.count(APPLIED),
        "duplicate": statuses.count(DUPLICATE),
        "late": statuses.count(LATE),
        "rejected": len(rejected),
        "customers": [doc for _, doc in moved],
        "errors": rejected,
        "late_events": [
            {"index": positions[i], "event_id": e.event_id}
            for i, (e, status) in enumerate(zip(events, statuses, strict=True))
            if status == LATE
        ],
    }


def _groups(events: list[Event]) -> list[list[int]]:
    """The events' indices in groups of whole customers (each customer's events in one group,
    in order) of about ``GROUP_EVENTS``: a customer's aggregates are touched by one group."""
    count = -(-len(events) // GROUP_EVENTS)
    if count <= 1:
        return [list(range(len(events)))] if events else []
    groups: list[list[int]] = [[] for _ in range(count)]
    for i, e in enumerate(events):
        groups[hash(e.customer_id) % count].append(i)
    return [g for g in groups if g]


async def _work(
    lanes: asyncio.Semaphore,
    store: BehaviourStore,
    spec: LogSpec,
    serving: ServingModel,
    history: HistoryService | None,
    events: list[Event],
    now: int,
) -> tuple[list[int], list[tuple[int, dict[str, Any]]]]:
    """Apply a group's events, then re-derive, re-assign and record the customers they moved:
    each status, and each moved customer's answer after the index of its first applied event.

    ``IN_FLIGHT`` groups at a time, so that Python works on one while Redis works on another
    (two cores), and a group's records wait behind one other group's calls at most."""
    async with lanes:
        # the records are stamped as the events are applied, not later: a forget landing in
        # between (its tombstone newer than the stamp) makes Redis ignore them, as if the
        # events had come first; stamped after it, they brought the customer back
        applied_at = now_ms()
        statuses, aggregates = await store.apply(events, spec.counting)
        # a customer with an event applied, or whose events were all applied before (a
        # re-send: the first sending may have failed after Redis applied them, a timeout,
        # before the customer was re-assigned; re-assigned as of now, it is not left stale)
        first: dict[str, int] = {}
        for j, (e, s) in enumerate(zip(events, statuses, strict=True)):
            if s in (APPLIED, DUPLICATE) and e.customer_id not in first:
                first[e.customer_id] = j
        touched = [c for c in first if c in aggregates]
        used = [aggregates[c] for c in touched]
        rows = feature_rows(used, now, serving.feature_kinds)
        docs, ignored, older = await _assign(serving, history, touched, rows, applied_at, now)
        if ignored:
            await _after_a_forget(store, serving, history, touched, docs, ignored, now)
        if history is not None and touched:
            await _settle(store, serving, history, touched, used, docs, older, now)
    return statuses, list(zip((first[c] for c in touched), docs, strict=True))


async def _settle(
    store: BehaviourStore,
    serving: ServingModel,
    history: HistoryService,
    ids: list[str],
    used: list[Aggregates],
    docs: list[dict[str, Any]],
    older: list[int],
    now: int,
) -> None:
    """Leave no customer recorded from part of their events when requests race for them.

    Another request's events for a customer may be applied after this group's and recorded
    before its record: this record, derived without them, would then stand last (the record
    id is stamped before the apply, in each process's own order). Or this record, derived
    from every event, is ignored as older than the other request's (stamped earlier, applied
    earlier, derived without these events). Either way the customer's segment and profile
    would miss events until something assigned them again. So the aggregates are read again
    after recording: a customer whose aggregates moved since they were derived, or whose
    record was ignored as older (``older``), is derived and recorded anew, with a record id
    of a later millisecond than the read (newer than every racing record, each stamped before
    its apply, which the read saw). ``docs`` is updated in place.

    Only customers recorded in Redis are settled: while records go to the spool (Redis slow
    or away), nothing is read again, and a read that fails leaves the answers as they are."""
    settled = [j for j, doc in enumerate(docs) if doc["recorded"]]
    redo = set(older)
    for _ in range(SETTLE_ROUNDS):
        if not settled and not redo:
            return
        check = sorted(redo.union(settled))
        try:
            found = dict(zip(check, await store.read([ids[j] for j in check]), strict=True))
        except RedisUnavailable:
            return  # (the records stand; the next event or assignment of them settles them)
        read_at = now_ms()
        redo |= {j for j in settled if found[j] is not None and found[j] != used[j]}
        redo = {j for j in redo if found[j] is not None}  # (forgotten since: stays so)
        if not redo:
            return
        while (again_at := now_ms()) <= read_at:
            await asyncio.sleep(0.001)
        order = sorted(redo)
        fresh = [agg for j in order if (agg := found[j]) is not None]
        rows = feature_rows(fresh, now, serving.feature_kinds)
        redone, _, again = await _assign(
            serving, history, [ids[j] for j in order], rows, again_at, now
        )
        for j, agg, doc in zip(order, fresh, redone, strict=True):
            used[j] = agg
            docs[j] = recorded_after(docs[j], doc)
        settled = [j for j in order if docs[j]["recorded"]]
        redo = {order[k] for k in again}


async def _after_a_forget(
    store: BehaviourStore,
    serving: ServingModel,
    history: HistoryService | None,
    ids: list[str],
    docs: list[dict[str, Any]],
    ignored: list[int],
    now: int,
) -> None:
    """Redis ignored the records of ``ids[ignored]``: a forget's tombstone is newer than
    their stamp. The forget landed after the stamp, but before or after the apply? After
    it, it deleted the aggregates: the customer stays forgotten. Before it, the events
    started the customer afresh (their aggregates exist): recorded from a new read, stamped
    before it (a forget after that read wins again). ``docs`` is updated in place.

    The new stamp is in a later millisecond than the ignoring: the tombstone, made before
    it, can be of the same millisecond on a fast machine, and a stamp not newer than a
    tombstone is ignored again (seen in CI: the customer was left in no segment)."""
    ignored_by = now_ms()
    while (again_at := now_ms()) <= ignored_by:
        await asyncio.sleep(0.001)
    found = await store.read([ids[j] for j in ignored])
    alive = [(j, agg) for j, agg in zip(ignored, found, strict=True) if agg is not None]
    if not alive:
        return
    rows = feature_rows([agg for _, agg in alive], now, serving.feature_kinds)
    alive_ids = [ids[j] for j, _ in alive]
    redone, _, _ = await _assign(serving, history, alive_ids, rows, again_at, now)
    for (j, _), doc in zip(alive, redone, strict=True):
        docs[j] = doc


async def _assign(
    serving: ServingModel,
    history: HistoryService | None,
    ids: list[str],
    rows: Sequence[Mapping[str, float]],
    at: int,
    as_of: int,
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Assign and record ``ids`` from ``rows`` (stamped ``at``, derived as of ``as_of``, in
    microseconds): their answers, the positions of those whose record Redis ignored for a
    forget's tombstone, and of those whose record it ignored as older than the last one."""
    if not ids:
        return [], [], []
    ignored: list[int] = []
    older: list[int] = []
    features_as_of = as_of_text(as_of)  # as the by-id answer says it
    slots, confidences = serving.assign_slots(rows)
    LIVE.observe_many(serving, rows, slots)  # as the assign endpoints count (app/drift/live.py)
    pairs = [serving.slot_answers[slot] for slot in slots]
    model = serving.manifest.model_name
    outcomes: Sequence[Outcome] = [NOT_RECORDED] * len(ids)
    if history is not None:
        segments, names = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(ids) == 1:  # single events: coalesced with concurrent requests' records
            one = Record.create(
                ids[0], segments[0], serving.version, names[0], assigned_at=at, profile=rows[0]
            )
            outcomes = [await history.record(one)]
        else:
            batch = RecordBatch(ids, segments, names, serving.version, at, profiles=rows)
            outcomes = await history.record_many(batch)
    out = []
    for j, (cid, (seg, name), conf, outcome) in enumerate(
        zip(ids, pairs, confidences, outcomes, strict=True)
    ):
        fresh = outcome.recorded and not outcome.duplicate
        if fresh and outcome.changed:
            child(MIGRATIONS, model, outcome.previous_segment or "", seg).inc()
        elif outcome.recorded and outcome.duplicate and outcome.previous_segment is None:
            ignored.append(j)  # no current record, yet not applied: a tombstone
        elif outcome.recorded and outcome.duplicate:
            older.append(j)  # another record, newer, stands
        out.append(
            {
                "customer_id": cid,
                "segment_id": seg,
                "segment_name": name,
                "confidence": round(conf, 6),
                "features_as_of": features_as_of,
                "previous_segment_id": outcome.previous_segment if fresh else None,
                "changed": outcome.changed if fresh else None,
                "recorded": fresh,
            }
        )
    for segment, count in Counter(seg for seg, _ in pairs).items():
        child(ASSIGNMENTS, model, segment).inc(count)
    return out, ignored, older


def as_of_text(as_of_us: int) -> str:
    """The time features were derived as of, as an answer says it (``features_as_of``):
    ISO 8601 in UTC, to the microsecond the derivation used (events strictly before it)."""
    moment = datetime.fromtimestamp(as_of_us / 1_000_000, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


Derived = tuple[dict[str, Any], str, str, Aggregates]
"""A customer's features derived as of now (what was sent wins), where they came from
(``profile`` or ``merged``), the time they were derived as of (``as_of_text``) and the
aggregates they were derived from: read again after the record, aggregates that moved
meanwhile (another request's events) are derived and recorded anew (see ``_settle``)."""


async def live_features(
    state: State, serving: ServingModel, customer_id: str, sent: dict[str, Any]
) -> Derived | None:
    """For ``POST /v1/assign`` by id: the features of a transactions model's customer derived
    as of now from the stored aggregates (``Derived``); or None to go on as usual (not a
    transactions model, no Redis, no aggregates stored for the customer)."""
    store: BehaviourStore | None = getattr(state, "behaviour", None)
    if store is None or log_spec(serving) is None:
        return None
    try:
        agg = await store.read_one(customer_id)
    except RedisUnavailable:
        return None  # the stored profile's path answers (or says Redis is unavailable)
    if agg is None:
        return None
    as_of = now_us(state)
    derived = features_of(agg, as_of, serving.feature_kinds)
    return {**derived, **sent}, "merged" if sent else "profile", as_of_text(as_of), agg


async def live_features_many(
    state: State, serving: ServingModel, items: Sequence[tuple[int, str, dict[str, Any]]]
) -> list[Derived | None]:
    """``live_features`` for the incomplete ``(index, customer id, sent)`` items of
    ``POST /v1/assign/batch``, with one read of their aggregates; None for an item to go on
    as usual."""
    store: BehaviourStore | None = getattr(state, "behaviour", None)
    return await derived_now(store, serving, items, lambda: now_us(state))


async def derived_now(
    store: BehaviourStore | None,
    serving: ServingModel,
    items: Sequence[tuple[int, str, dict[str, Any]]],
    now: Callable[[], int],
) -> list[Derived | None]:
    """``live_features_many`` on ``store``, as of ``now()`` (epoch us, read after the
    aggregates): for the service and ``segments customers rescore`` alike."""
    if store is None or log_spec(serving) is None or not items:
        return [None] * len(items)
    try:
        stored = await store.read([customer_id for _, customer_id, _ in items])
    except RedisUnavailable:
        return [None] * len(items)  # the stored profiles' path answers (or says why not)
    known = [agg for agg in stored if agg is not None]
    as_of = now()
    rows, when = iter(feature_rows(known, as_of, serving.feature_kinds)), as_of_text(as_of)
    return [
        None
        if agg is None
        else ({**next(rows), **sent}, "merged" if sent else "profile", when, agg)
        for (_, _, sent), agg in zip(items, stored, strict=True)
    ]
