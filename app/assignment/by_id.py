"""Assignment by id (``POST /v1/assign`` with only ``customer_id``) in one Redis round trip.

Without a cache, assigning by id takes two trips through the recording lane: read the stored
profile, then record the assignment made from it. The process keeps the profiles it read
(``app/history/profile_cache.py``); on a hit the assignment is made at once and its record
carries the profile as it was read, for Redis to check in the same atomic call. When the
check fails (the profile changed behind this process: another worker, a batch, a file run, a
merge, a forget), nothing was recorded, and the request goes the uncached way: read (which
caches the fresh profile), assign, record. A transactions model's customers are not served
from here: their features are derived as of now (``app.events.service.live_features``).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from app.assignment.profiles import (
    MERGE_TRIES,
    MERGED,
    UnknownCustomer,
    complete_one,
    merge,
    with_unread,
)
from app.assignment.service import (
    ANY_PROFILE,
    KEPT_CHANGING,
    record_checked,
    record_one,
    render,
)
from app.assignment.validation import ItemInvalid
from app.history import HistoryService, Profile, RedisUnavailable
from app.problems import Problem
from app.serving import Assignment, ServingModel


async def assign_by_id(
    history: HistoryService, serving: ServingModel, customer_id: str, max_id: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded answer for ``customer_id`` from its stored profile, and the features it
    was assigned from; raises the 404, 422 and 503 problems of ``complete_one``.

    From the cached profile when there is one and Redis confirms it, else (no entry, the
    profile changed, or Redis did not answer the checked record) from a fresh read.
    """
    cached = history.cached_profile(customer_id)
    if cached is not None:
        made = _made(history, serving, customer_id, cached, max_id)
        if made is not None:
            doc = made.answer(serving, customer_id)
            # not confirmed (Redis slow or away): the uncached way decides, as without a
            # cache (a read under its own deadline, else a 503)
            with contextlib.suppress(RedisUnavailable):
                if await record_checked(history, serving, doc, cached.stored):
                    return doc, made.features
    doc, features, _ = await assign_merged(history, serving, customer_id, {}, max_id, keep=True)
    return doc, features


class Made:
    """What a cached profile makes for the serving version: the features to assign from, their
    assignment, and the answer rendered from them (recording's fields not filled).

    The features and the assignment are a pure function of the profile and the version. The
    answer also holds the serving model's names (segments, features), and a name edit serves
    another ``ServingModel`` of the same version: the answer is kept for the serving model
    it was rendered by (compared by identity, held weakly) and rendered again for another.
    (Shared between requests: read only; each request answers with its own copy.)
    """

    __slots__ = ("_answer", "_by", "assignment", "features")

    def __init__(self, features: dict[str, Any], assignment: Assignment) -> None:
        self.features, self.assignment = features, assignment
        self._by: weakref.ref[ServingModel] | None = None
        self._answer: dict[str, Any] = {}

    def answer(self, serving: ServingModel, customer_id: str) -> dict[str, Any]:
        """A copy of the answer as ``render`` makes it for ``serving``: rendering (the
        explanation's text, the unknown categories) was the same work on every request
        (about 1.4 KB more per cached customer, tracemalloc). The copy is shallow: an
        answer's nested parts are not changed after rendering."""
        if self._by is None or self._by() is not serving:
            self._answer = render(serving, customer_id, self.assignment, self.features)
            self._by = weakref.ref(serving)
        return dict(self._answer)


def _made(
    history: HistoryService,
    serving: ServingModel,
    customer_id: str,
    cached: Profile,
    max_id: int,
) -> Made | None:
    """What ``cached`` makes for the serving version, or None (the entry dropped) when its
    features do not fit that version: a fresh read decides (it may have been completed since).

    It is a pure function of the profile and the serving version (``Made``), so the cache
    keeps it with the profile (``ProfileCache.keep_made``): a customer asked for again, as a
    website asks on every page view, is neither checked, assigned nor rendered again.
    """
    cache = history.profile_cache
    made: Made | None = cache.made(customer_id, serving.version)
    if made is not None:
        return made
    try:
        kinds, markers = serving.feature_kinds, serving.missing_markers
        marked = serving.feature_markers
        features = merge(kinds, customer_id, {}, cached, max_id, "", markers, marked)[0]
    except (UnknownCustomer, ItemInvalid):
        cache.drop(customer_id)
        return None
    made = Made(features, serving.assign_one(features))
    cache.keep_made(customer_id, cached, serving.version, made)
    return made


async def assign_merged(
    history: HistoryService,
    serving: ServingModel,
    customer_id: str,
    sent: dict[str, Any],
    max_id: int,
    keep: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The recorded answer for ``sent`` (some features, or none) completed from the stored
    profile, the features assigned, and where they came from; raises the problems of
    ``complete_one``.

    The record is checked against the profile as read: applied only if Redis still holds
    it, else read again (a forget in between: the customer is unknown now, a 404; another
    write: merged over the new profile). Unchecked, a request that read the profile before a
    forget wrote it back after it, the whole forgotten profile with it. After
    ``MERGE_TRIES`` changed reads the record only checks that the customer still has a
    profile (``ANY_PROFILE``: the other writes win or lose by time, a forget is never
    undone). When Redis does not confirm in time, the record goes the unchecked way
    (spooled if Redis is away), as before the check.
    """
    kinds = serving.feature_kinds
    for tries in range(MERGE_TRIES + 2):  # a '*' record is stale only without a profile,
        # and the read after it finds the customer unknown (a 404): the bound is not reached
        features, source, stored = await complete_one(
            history,
            kinds,
            customer_id,
            sent,
            max_id,
            keep,
            serving.missing_markers,
            serving.feature_markers,
        )
        doc = render(serving, customer_id, serving.assign_one(features), features)
        # read alone: not written again; merged: with what the version does not read
        profile = with_unread(features, stored, kinds) if source == MERGED else None
        expected = stored.stored if tries < MERGE_TRIES else ANY_PROFILE
        try:
            if await record_checked(history, serving, doc, expected, profile):
                return doc, features, source
        except RedisUnavailable:
            break
    else:
        raise Problem(503, "Profile kept changing", KEPT_CHANGING, headers={"Retry-After": "1"})
    await record_one(history, serving, doc, profile)
    return doc, features, source
