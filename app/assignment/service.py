"""Assignment: validated features in, a response document out (no HTTP here)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from app.assignment.profiles import (
    FROM_PROFILE,
    MERGE_TRIES,
    complete_many,
    is_complete,
    merge_over,
    with_unread,
)
from app.assignment.validation import (
    BATCH_MAX_ERRORS,
    ErrorBudget,
    ItemInvalid,
    is_unicode,
    parse_item,
)
from app.drift.live import LIVE
from app.history import HistoryService, Outcome, Profile, Record
from app.history.recorder import SAME_AS_BEFORE
from app.history.records import RecordBatch, now_ms
from app.observability import MIGRATIONS, REDIS_ERRORS, REDIS_LATENCY, SUPERSEDED, child
from app.problems import MAX_ECHO, clipped, escaped
from app.serving import ServingModel
from app.serving.compiled import Assignment
from app.serving.model import category_number
from app.training.markers import FeatureMarkers
from app.training.preprocess import MISSING_CATEGORY
from app.words import spelled_alike

Incomplete = Sequence[tuple[int, str, dict[str, Any]]]
LiveMany = Callable[[Incomplete], Awaitable[list[tuple[dict[str, Any], str, str, Any] | None]]]
"""Features derived as of now for a batch's incomplete ``(index, customer id, sent)`` items
(a transactions model's customers, ``app.events.service.live_features_many``): per item, its
features, where they came from, the time they were derived as of and what they were derived
from (compared with ``==`` to what a later call gives: the items recorded are derived anew
when it moved), or None to complete it from the stored profile."""
SETTLE_ROUNDS = 3
"""Most times a request records its customers anew because other requests' events moved their
aggregates meanwhile (each round needs another request's apply in the few ms since the last
read): an events group (``app.events.service._settle``) and an assignment derived from the
aggregates (by id, by batch, by rescore) alike."""


def recorded_after(first: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """A customer's answer when recorded twice by one request: the segment as last recorded,
    the segment before the request's first record (if that one was recorded) and whether the
    request moved the customer from it."""
    if not first["recorded"] or not then["recorded"]:
        return then
    previous = first["previous_segment_id"]
    return {**then, "previous_segment_id": previous, "changed": previous != then["segment_id"]}


Completed = tuple[dict[str, Any], str] | list[dict[str, str]]
"""An incomplete item completed: its features and where they came from, or its errors."""


def explanation(
    serving: ServingModel, a: Assignment, features: Mapping[str, Any]
) -> dict[str, Any]:
    """Why ``features`` went where they did; names the categories training never saw."""
    found = _explanation(serving, a)
    unknown = serving.unknown_categories(features)
    if unknown:  # (a value is echoed readable and short: a batch can send 256 characters each)
        echoed = {name: _echo(value) for name, value in unknown.items()}
        found["unknown_categories"] = echoed
        found["text"] += "; never seen in training: " + ", ".join(
            f"{name} '{value}' ({_counted_as(serving, name)}{_alike(serving, name, unknown[name])})"
            for name, value in echoed.items()
        )
    return found


def _alike(serving: ServingModel, name: str, value: Any) -> str:
    """The categories ``value`` differs from only in case or surrounding spaces (``iOS``:
    ``ios``), as ``segments assign`` names them for a file's rows."""
    if not isinstance(value, str):
        return ""
    near = spelled_alike(serving.known_categories.get(name, ()), value)
    if near:
        return f"; {' or '.join(map(repr, near))} in training: fix the spelling"
    # a code written as a number (an insurance file's Region_Code '28.0', sent as 28)
    number = category_number(value)
    same = serving.numbered_categories.get(name, {}).get(number) if number is not None else None
    if same:
        return (
            f"; {' or '.join(map(repr, same[:3]))} in training: a category is text, "
            "send it as the file writes it"
        )
    return ""


_UNREADABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _echo(value: str) -> str:
    """A category as an answer repeats it: control and direction characters as escapes
    (they would rewrite a log line or a page), cut to ``MAX_ECHO`` characters."""
    readable = _UNREADABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped(value))
    return clipped(readable, MAX_ECHO)


def _counted_as(serving: ServingModel, feature: str) -> str:
    """How the model counts a category of ``feature`` it never saw (the encoder's
    ``handle_unknown="infrequent_if_exist"``: with the infrequent ones, which may be only
    the missing values)."""
    schema = next(f for f in serving.manifest.features if f.name == feature)
    infrequent = set(schema.infrequent or ())
    if not infrequent:
        return "counted as none of its categories"
    if infrequent == {MISSING_CATEGORY}:
        return "counted as a missing value"
    return "counted with its infrequent categories"


SAID_SHARE = 0.05  # a driver the text names weighs at least this share of the first


def said_drivers(drivers: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The drivers an explanation's text names: the first, and those of at least
    ``SAID_SHARE`` of its weight."""
    if not drivers:
        return []
    top = drivers[0][1]
    return [d for i, d in enumerate(drivers) if i == 0 or d[1] >= SAID_SHARE * top]


def _explanation(serving: ServingModel, a: Assignment) -> dict[str, Any]:
    segments = serving.segments
    if a.rule is not None:
        rule = serving.model.rules[a.rule]
        return {
            "kind": "rule",
            "text": f"matched rule '{rule.name}': {rule.text}",
            "rule": rule.text,
            "runner_up_id": None,
            "drivers": [],
        }
    name = segments[a.segment_id].name
    drivers = [{"feature": f, "weight": w} for f, w in a.drivers]
    if a.runner_up is not None and drivers:
        other = segments[a.runner_up].name
        # in words a reader knows (``drivers`` keep the feature names), and only the
        # features that weigh: "mostly on duration, balance" named a balance of weight
        # 0.0001 beside a duration of 0.18 (``drivers`` keep every one, with its weight)
        on = ", ".join(serving.labels.get(f, f) for f, _ in said_drivers(a.drivers))
        text = f"closest to '{name}'; vs '{other}' mostly on {on}"
    else:
        text = f"closest to '{name}'"
    return {
        "kind": "cluster",
        "text": text,
        "rule": None,
        "runner_up_id": a.runner_up,
        "drivers": drivers,
    }


def _result(
    index: int, customer_id: str, segment_id: str, segment_name: str, confidence: float
) -> dict[str, Any]:
    """A batch item's result; a single answer is the same without its index and status
    (recording fills the last three fields)."""
    return {
        "index": index,
        "status": "ok",
        "customer_id": customer_id,
        "segment_id": segment_id,
        "segment_name": segment_name,
        "confidence": round(confidence, 6),
        "previous_segment_id": None,
        "changed": None,
        "recorded": False,
    }


def render(
    serving: ServingModel, customer_id: str, a: Assignment, features: Mapping[str, Any]
) -> dict[str, Any]:
    """The answer to one assignment of ``features``."""
    name = serving.segments[a.segment_id].name
    doc = _result(0, customer_id, a.segment_id, name, a.confidence)
    del doc["index"], doc["status"]  # one literal for both (a batch's is the hot one)
    doc["model_version"] = serving.version
    doc["explanation"] = explanation(serving, a, features)
    return doc


async def answer_batch(
    serving: ServingModel,
    history: HistoryService | None,
    items: list[Any],
    max_id: int,
    explain: bool = False,
    live: LiveMany | None = None,
    traffic: bool = True,
    every_error: bool = False,
) -> dict[str, Any]:
    """Assign (and record) every valid item; an invalid one is reported in place and fails
    nothing else.

    Each result carries the explanation only with ``explain`` (it is most of the bytes). An
    item sent without every feature is completed by ``live`` where it answers (derived as of
    now), else from the customer's stored profile. Without ``traffic`` (a rescore of the
    stored base, which no caller sent) the assignments are not counted into live drift.
    With ``every_error`` each item's errors are given whatever their number (a rescore counts
    them: past the answer's bound, 1,240 of 2,240 customers were counted under "invalid (not
    detailed ...)" instead of the feature their profiles lacked).
    """
    kinds = serving.feature_kinds
    results: list[dict[str, Any] | None] = [None] * len(items)
    # the answer stays bounded however many items are bad
    budget = ErrorBudget(sys.maxsize if every_error else BATCH_MAX_ERRORS)

    def refuse(i: int, errors: list[dict[str, str]]) -> None:
        item = items[i]
        cid = item.get("customer_id") if isinstance(item, dict) else None
        echo = isinstance(cid, str) and len(cid) <= max_id and is_unicode(cid)
        results[i] = {
            "index": i,
            "status": "error",
            "customer_id": cid if echo else None,  # no answer can hold a lone surrogate
            "errors": budget.take(errors, f"items.{i}"),
        }

    valid: list[tuple[int, str, dict[str, Any]]] = []
    for i, item in enumerate(items):
        try:
            customer_id, features = parse_item(
                item,
                kinds,
                max_id,
                prefix=f"items.{i}",
                partial=history is not None,
                missing=serving.missing_markers,
                feature_markers=serving.feature_markers,
            )
        except ItemInvalid as exc:
            refuse(i, exc.errors)
            continue
        valid.append((i, customer_id, features))
    incomplete = [item for item in valid if not is_complete(item[2], kinds)]
    merged: dict[int, dict[str, Any]] = {}
    sources: dict[int, str] = {}
    read_at: int | None = None  # when the behaviour was read: the derived rows' records' stamp
    as_of: dict[int, str] = {}  # the time the derived rows were derived as of
    used: dict[int, Any] = {}  # what they were derived from (a log model's aggregates)
    derived_items: list[tuple[int, str, dict[str, Any]]] = []
    if incomplete and live is not None:
        started = now_ms()  # before the read: a forget landing after it wins (Redis ignores
        # older records after a tombstone), as an events batch's records are stamped
        derived = await live(incomplete)
        if any(found is not None for found in derived):  # (a log model's customers)
            read_at = started
        for (i, _, _), found in zip(incomplete, derived, strict=True):
            if found is not None:
                merged[i], sources[i], as_of[i], used[i] = found
        derived_items = [item for item, found in zip(incomplete, derived, strict=True) if found]
        incomplete = [item for item, found in zip(incomplete, derived, strict=True) if not found]
    expected: dict[int, str] = {}
    sent: dict[int, tuple[int, str, dict[str, Any]]] = {}  # the items as sent, for a redo
    live_found: dict[int, dict[str, Any]] = {}  # derived as of now: as they are on a redo
    read: dict[int, Profile] = {}  # the stored profiles the incomplete items were read from
    if incomplete:  # the rest of their features comes from their stored profiles
        assert history is not None  # (parse_item lets features out only then)
        sent = {item[0]: item for item in valid}
        live_found = dict(merged)
        expected, _ = await _complete(
            history,
            kinds,
            max_id,
            valid,
            live_found,
            incomplete,
            merged,
            sources,
            refuse,
            True,
            serving.missing_markers,
            serving.feature_markers,
            read,
        )
        _after_replaced(valid, kinds, as_of, read)

    async def answer(
        chosen: Sequence[tuple[int, str, dict[str, Any]]], expected: dict[int, str]
    ) -> list[int]:
        """Assign and record the ``chosen`` items (their completed features), each checked
        against its ``expected`` profile; the stale ones, to redo."""
        indices = [i for i, _, _ in chosen]
        ids = [customer_id for _, customer_id, _ in chosen]
        rows = [merged.get(i, features) for i, _, features in chosen]
        column = [expected.get(i) for i in indices] if expected else None
        # an item assigned from its stored profile alone leaves that profile as it is, as
        # POST /v1/assign by id does: stored again as this version reads it, it lost the
        # features the version does not read (a rescore by a retrain without a feature
        # deleted it from every customer, and a rollback could assign nobody by id)
        profiles = [
            None
            if sources.get(i) == FROM_PROFILE and i not in as_of
            else with_unread(row, read.get(i), kinds)
            for i, row in zip(indices, rows, strict=True)
        ]
        return await _answer_into(
            results,
            serving,
            history,
            indices,
            ids,
            rows,
            explain,
            column,
            read_at,
            traffic,
            profiles,
        )

    valid = [item for item in valid if results[item[0]] is None]
    stale = await answer(valid, expected)
    assigned, tries = len(valid), 1
    while stale:  # what a forget or another write changed between the read and the record
        assert history is not None
        tries += 1
        if tries > MERGE_TRIES + 2:  # not reached: a '*' record is stale only when its
            # customer has no profile, and the read after it finds the customer unknown
            for i in stale:
                refuse(i, [{"field": f"items.{i}", "message": KEPT_CHANGING}])
                sources.pop(i, None)
            assigned -= len(stale)
            break
        again = [sent[i] for i in stale]
        missing = [
            item for item in again if item[0] not in live_found and not is_complete(item[2], kinds)
        ]
        check = tries < MERGE_TRIES  # then only that the customer is still there
        expected, refused = await _complete(
            history,
            kinds,
            max_id,
            again,
            live_found,
            missing,
            merged,
            sources,
            refuse,
            check,
            serving.missing_markers,
            serving.feature_markers,
            read,
        )
        _after_replaced(valid, kinds, as_of, read)
        for i in refused:
            sources.pop(i, None)
        assigned -= len(refused)
        stale = await answer([item for item in again if item[0] not in refused], expected)
    if derived_items:
        assert live is not None
        await _settle(
            results, serving, history, live, derived_items, merged, as_of, used, explain, traffic
        )
    for i, source in sources.items():
        results[i]["features_from"] = source  # type: ignore[index]
        if i in as_of:
            results[i]["features_as_of"] = as_of[i]  # type: ignore[index]
    return _batch_answer(serving, results, assigned)


def _after_replaced(
    valid: Sequence[tuple[int, str, dict[str, Any]]],
    kinds: dict[str, str],
    derived: Mapping[int, Any],
    read: dict[int, Profile],
) -> None:
    """Forget the profile read for an item whose customer has an earlier item in the batch
    that stored every feature (sent, or derived): as sent one after the other, that one
    replaced the profile, and the stored features the version does not read went with it."""
    if len({customer_id for _, customer_id, _ in valid}) == len(valid):
        return
    replaced: set[str] = set()
    for i, customer_id, features in valid:
        if customer_id in replaced:
            read.pop(i, None)
        elif i in derived or is_complete(features, kinds):
            replaced.add(customer_id)


async def _settle(
    results: list[dict[str, Any] | None],
    serving: ServingModel,
    history: HistoryService | None,
    live: LiveMany,
    items: Incomplete,
    merged: dict[int, dict[str, Any]],
    as_of: dict[int, str],
    used: dict[int, Any],
    explain: bool,
    traffic: bool = True,
) -> None:
    """Leave no item derived from a log model's aggregates recorded without events that
    raced it: an events request stamped before the read may apply its events after it, then
    record and settle before these records land (newer, derived without the events: they
    would stand). Once recorded, the items are derived again (stamped before that read); the
    customers whose aggregates moved are recorded anew from them, as an events request
    settles. ``results``, ``merged``, ``as_of`` and ``used`` are updated in place."""
    for _ in range(SETTLE_ROUNDS):
        check = [item for item in items if _recorded(results[item[0]])]
        if not check:  # (superseded: the newer record's writer settles; spooled; forgotten)
            return
        started = now_ms()
        again = await live(check)
        moved = [
            (item, found)
            for item, found in zip(check, again, strict=True)
            if found is not None and found[3] != used[item[0]]
        ]
        if not moved:
            return
        first: dict[int, dict[str, Any]] = {}
        for (i, _, _), found in moved:
            merged[i], _, as_of[i], used[i] = found
            first[i] = results[i]  # type: ignore[assignment]
        items = [item for item, _ in moved]
        indices, ids = [i for i, _, _ in items], [customer_id for _, customer_id, _ in items]
        rows = [merged[i] for i in indices]
        await _answer_into(
            results, serving, history, indices, ids, rows, explain, None, started, traffic
        )
        for i, before in first.items():
            results[i] = recorded_after(before, results[i])  # type: ignore[arg-type]


def _recorded(result: dict[str, Any] | None) -> bool:
    return result is not None and result["status"] == "ok" and bool(result["recorded"])


async def _complete(
    history: HistoryService,
    kinds: dict[str, str],
    max_id: int,
    valid: Sequence[tuple[int, str, dict[str, Any]]],
    derived: dict[int, dict[str, Any]],
    incomplete: Incomplete,
    merged: dict[int, dict[str, Any]],
    sources: dict[int, str],
    refuse: Callable[[int, list[dict[str, str]]], None],
    check: bool,
    markers: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
    stored: dict[int, Profile] | None = None,
) -> tuple[dict[int, str], set[int]]:
    """Complete the ``incomplete`` items of ``valid`` (in order) from their stored profiles
    into ``merged`` and ``sources`` (and the profiles read into ``stored``), refusing those
    that cannot be; returns the profiles the records of ``valid`` are to be checked against
    (without ``check``, ``ANY_PROFILE``), and the items refused.

    A record made from a profile as read expects it (``Profile.stored``); a later record of
    its customer in the batch (merged over it, or not) expects ``=``, what that one left: it
    applies only if the earlier one did, so a customer's records keep their order when the
    earlier one is stale and redone. Records of customers with no item completed from a
    profile are not checked (every feature sent, or derived as of now)."""
    completed, profiles = (
        (await complete_many(history, kinds, incomplete, max_id, markers, feature_markers))
        if incomplete
        else ([], [])
    )
    if len({customer_id for _, customer_id, _ in valid}) < len(valid):
        completed = _in_order(kinds, valid, derived, incomplete, completed)
    refused: set[int] = set()
    for (i, _, _), done in zip(incomplete, completed, strict=True):
        if isinstance(done, list):
            refuse(i, done)
            refused.add(i)
        else:
            merged[i], sources[i] = done
    expected: dict[int, str] = {}
    if not profiles:  # none read: Redis could not answer (or nothing was incomplete)
        return expected, refused
    if stored is not None:
        for (i, _, _), found in zip(incomplete, profiles, strict=True):
            if found is not None:
                stored[i] = found
    read = {
        i: found.stored if check else ANY_PROFILE
        for (i, _, _), found in zip(incomplete, profiles, strict=True)
        if found is not None and i not in refused
    }
    seen: set[str] = set()  # customers with a record before (what a later one merges over)
    chained: set[str] = set()  # customers with a checked record before
    for i, customer_id, _ in valid:
        if i in refused:  # (stores nothing)
            continue
        if customer_id in chained:
            expected[i] = SAME_AS_BEFORE
        elif customer_id not in seen and i in read:
            expected[i] = read[i]
            chained.add(customer_id)
        seen.add(customer_id)
    return expected, refused


# SAME_AS_BEFORE ('='): the expected profile of a record that applies only if its customer's
# checked record before it did (``record.lua``; in an earlier call, the recorder says so)
KEPT_CHANGING = "its stored profile kept changing while it was assigned: send it again"
ANY_PROFILE = "*"
"""The expected profile of a record that applies whatever profile its customer has, but not
when it has none: after ``MERGE_TRIES`` changed reads a record stops insisting on the
profile it read (other writes win or lose by time, as before the checks), never on its
customer still being there (a forget is not undone)."""


def _in_order(
    kinds: dict[str, str],
    valid: Sequence[tuple[int, str, dict[str, Any]]],
    derived: dict[int, dict[str, Any]],
    incomplete: Incomplete,
    completed: list[Completed],
) -> list[Completed]:
    """``completed`` as if the items had been sent one by one, for a batch that names a
    customer more than once: an incomplete item of a customer assigned earlier in the batch
    merges over that earlier item's features (which it stores), not over the profile read
    before the batch. Items are recorded in order, so the answers and the history then equal
    those of the same requests sent one after the other."""
    done = {i: found for (i, _, _), found in zip(incomplete, completed, strict=True)}
    latest: dict[str, dict[str, Any]] = {}  # each customer's features as assigned so far
    for i, customer_id, sent in valid:
        found = done.get(i)
        if found is None:  # every feature sent, or derived as of now: assigned as they are
            latest[customer_id] = derived.get(i, sent)
            continue
        base = latest.get(customer_id)
        if base is not None:
            done[i] = found = merge_over(kinds, sent, base)
        if isinstance(found, tuple):  # (an item refused stores nothing)
            latest[customer_id] = found[0]
    return [done[i] for i, _, _ in incomplete]


async def answer_valid(
    serving: ServingModel,
    history: HistoryService | None,
    ids: list[str],
    rows: list[dict[str, Any]],
    explain: bool = False,
) -> dict[str, Any]:
    """``answer_batch`` of items already known valid, given as customer ids and features."""
    results: list[dict[str, Any] | None] = [None] * len(ids)
    await _answer_into(results, serving, history, range(len(ids)), ids, rows, explain)
    return _batch_answer(serving, results, len(ids))


async def _answer_into(
    results: list[dict[str, Any] | None],
    serving: ServingModel,
    history: HistoryService | None,
    indices: Sequence[int],
    ids: list[str],
    rows: list[dict[str, Any]],
    explain: bool,
    expected: Sequence[str | None] | None = None,
    at: int | None = None,
    traffic: bool = True,
    profiles: Sequence[dict[str, Any] | None] | None = None,
) -> list[int]:
    """Put the answer for ``ids``/``rows`` at ``indices`` of ``results``, recorded (stamped
    now, or at ``at``); counted into live drift with ``traffic``. ``profiles`` (per row, the
    profile to store, None to keep the stored one) defaults to the rows.

    The records go to Redis before the answer is built: Redis works on them meanwhile.
    With ``expected`` (per row, the profile its record is checked against, or None), the
    rows whose record was stale are returned: nothing of them was recorded, their answer is
    to be redone (and they are not observed for drift: the redo is).
    """
    assignments = serving.assign_many(rows) if explain else None
    if assignments is not None:
        slots = [a.slot for a in assignments]
        confidences = [a.confidence for a in assignments]
    else:
        slots, confidences = serving.assign_slots(rows)
    if expected is None and traffic:
        LIVE.observe_many(serving, rows, slots)  # in process (app/drift/live.py)
    answers = serving.slot_answers
    recording = None
    if history is not None and ids:
        pairs = [answers[slot] for slot in slots]
        segments, names = [p[0] for p in pairs], [p[1] for p in pairs]
        batch = RecordBatch(
            ids,
            segments,
            names,
            serving.version,
            at,
            profiles=rows if profiles is None else profiles,
            expected=expected,
        )
        recording = asyncio.ensure_future(_record_batch(history, batch))
        await asyncio.sleep(0)  # it packs and sends the records, then waits for Redis
    for i, customer_id, slot, confidence in zip(indices, ids, slots, confidences, strict=True):
        results[i] = _result(i, customer_id, *answers[slot], confidence)
    if assignments is not None:
        for i, a, row in zip(indices, assignments, rows, strict=True):
            results[i]["explanation"] = explanation(serving, a, row)  # type: ignore[index]
    if recording is None:
        return []
    outcomes = await recording
    if expected is None:
        for i, outcome in zip(indices, outcomes, strict=True):
            _fill(results[i], outcome, serving)  # type: ignore[arg-type]
        return []
    stale: list[int] = []
    kept: list[int] = []
    for n, (i, outcome) in enumerate(zip(indices, outcomes, strict=True)):
        if outcome.stale:
            stale.append(i)
        else:
            kept.append(n)
            _fill(results[i], outcome, serving)  # type: ignore[arg-type]
    if traffic:
        LIVE.observe_many(serving, [rows[n] for n in kept], [slots[n] for n in kept])
    return stale


def _batch_answer(
    serving: ServingModel, results: list[dict[str, Any] | None], assigned: int
) -> dict[str, Any]:
    return {
        "model_version": serving.version,
        "assigned": assigned,
        "failed": len(results) - assigned,
        "results": results,
    }


async def record_one(
    history: HistoryService,
    serving: ServingModel,
    doc: dict[str, Any],
    features: dict[str, Any] | None = None,
    assigned_at: int | None = None,
) -> dict[str, Any]:
    """Record one rendered assignment in Redis (with ``features`` as the customer's stored
    profile) and fill previous/changed/recorded; stamped now, or at ``assigned_at`` (when
    what it was made from was read: a forget after that wins)."""
    record = _record_of(serving, doc, profile=features, assigned_at=assigned_at)
    _fill(doc, await _timed(history.record(record)), serving)
    return doc


async def record_checked(
    history: HistoryService,
    serving: ServingModel,
    doc: dict[str, Any],
    expected: str,
    features: dict[str, Any] | None = None,
) -> bool:
    """``record_one`` of an assignment by id made from a cached profile (``expected``, as
    stored): False, and nothing recorded, when Redis found that profile changed.

    Raises
    ------
    RedisUnavailable
        Redis did not answer in time, or recording spools (the record is not spooled).
    """
    record = _record_of(serving, doc, expected_profile=expected, profile=features)
    outcome = await _timed(history.record_checked(record))
    if outcome.stale:
        return False
    _fill(doc, outcome, serving)
    return True


def _record_of(serving: ServingModel, doc: dict[str, Any], **more: Any) -> Record:
    """The record of one rendered answer (``more``: its profile, or the profile expected)."""
    segment = doc["segment_name"]
    return Record.create(
        doc["customer_id"], doc["segment_id"], serving.version, segment_name=segment, **more
    )


async def _timed(call: Awaitable[Outcome]) -> Outcome:
    """Await one record, observed in the Redis latency histogram."""
    start = time.perf_counter()
    outcome = await call
    child(REDIS_LATENCY, "record").observe(time.perf_counter() - start)
    return outcome


async def _record_batch(history: HistoryService, batch: RecordBatch) -> list[Outcome]:
    """Record a batch's assignments in one pipeline, in order."""
    start = time.perf_counter()
    outcomes = await history.record_many(batch)
    child(REDIS_LATENCY, "record_many").observe(time.perf_counter() - start)
    return outcomes


def _fill(doc: dict[str, Any], outcome: Outcome, serving: ServingModel) -> None:
    if outcome.duplicate:
        # superseded: a newer assignment of this customer was recorded first (another
        # process's, or a batch of this one that overtook a single assignment waiting for its
        # pipeline), so this one changed nothing: not recorded, previous and change unknown
        SUPERSEDED.inc()
        doc["recorded"] = False
        return
    doc["recorded"] = outcome.recorded
    if not outcome.recorded:  # previous segment and change are unknown, not "none"
        child(REDIS_ERRORS, "record").inc()
        return
    doc["previous_segment_id"] = outcome.previous_segment
    doc["changed"] = outcome.changed
    if outcome.changed:
        model = serving.manifest.model_name
        child(MIGRATIONS, model, outcome.previous_segment or "", doc["segment_id"]).inc()
