"""Assignment from stored profiles: what a request leaves out comes from the customer's profile.

A website knows a customer's id, not eleven features. Every recorded assignment stores the
features it was made from (the customer's profile, ``docs/redis-keys.md``), so a request may
send only ``customer_id``, or some features: the rest are taken from the profile, what was
sent wins, and the merged features are assigned and stored as the new profile. Where the
features came from is in the answer (``features_from``):

- ``request``: every feature was sent (the profile is not read);
- ``profile``: none was sent;
- ``merged``: some were sent, the others came from the profile.

A customer without a stored profile cannot be completed (404, naming the id and each feature
not sent); a profile that lacks a feature the serving version needs (a retrain added one) is
a 422 naming each; and a profile
that cannot be read (Redis down or slow) is a 503 for one customer, or an error in place for
a batch's item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from app.assignment.validation import ItemInvalid, parse_item
from app.history import HistoryService, RedisUnavailable
from app.history.records import Profile
from app.problems import Problem, bounded, invalid
from app.training.markers import FeatureMarkers

FROM_REQUEST, FROM_PROFILE, MERGED = "request", "profile", "merged"
MERGE_TRIES = 3  # reads of a profile that keeps changing under a merge, before recording it
# null is a value: a feature the caller has no value for is sent as null (imputed as the
# file's blank cell is), never left out, which asks for the stored profile's
SEND_NULL = "null for one you have no value for"
UNKNOWN = f"unknown customer: no stored profile; send every feature ({SEND_NULL})"
# how a profile comes to be stored without a caller sending it (a log model's too)
STORE_FIRST = (
    "segments assign --input FILE --record, a table or an order log; or, for a model trained "
    "on an order log, their orders as events: POST /v1/events"
)
_NO_PROFILE = "missing feature (and this customer has no stored profile): send it, or null"
NOT_STORED = (
    "missing feature: not sent, and not in the customer's stored profile (the serving "
    "version needs it: a retrain may have added it): send it, or null"
)


class UnknownCustomer(Exception):
    """No profile is stored for the customer, and some features were not sent."""

    def __init__(self, customer_id: str, missing: list[str]) -> None:
        super().__init__(customer_id)
        self.missing = missing


def is_complete(features: dict[str, Any], kinds: dict[str, str]) -> bool:
    """Whether the request sent every feature (``parse_item`` refuses unknown names)."""
    return len(features) == len(kinds)


def merge(
    kinds: dict[str, str],
    customer_id: str,
    sent: dict[str, Any],
    stored: Profile | None,
    max_id: int,
    prefix: str = "",
    markers: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
) -> tuple[dict[str, Any], str]:
    """The features to assign (``sent`` over ``stored``) and where they came from.

    Raises ``UnknownCustomer``, or ``ItemInvalid`` naming each feature still missing (or a
    stored value the serving version cannot take, e.g. after a retrain changed its kind).
    """
    p = f"{prefix}." if prefix else ""
    if stored is None:
        raise UnknownCustomer(customer_id, [n for n in kinds if n not in sent])
    values = stored.features
    lacking = [n for n in kinds if n not in sent and n not in values]
    if lacking:
        raise ItemInvalid([{"field": f"{p}features.{n}", "message": NOT_STORED} for n in lacking])
    # a copy (``values`` is the cached profile, shared between requests), read as a request
    # is: the stored values were checked when recorded, against the version of that time
    # (a profile stored before requests read markers as missing, ``"NA"``, or a file's
    # booleans as booleans, ``"TRUE"``, or a feature's own marker, pdays -1: read as now)
    merged = {n: sent[n] if n in sent else values[n] for n in kinds}
    item = {"customer_id": customer_id, "features": merged}
    parse_item(item, kinds, max_id, prefix, missing=markers, feature_markers=feature_markers)
    return merged, MERGED if sent else FROM_PROFILE


def with_unread(
    features: dict[str, Any], stored: Profile | None, kinds: dict[str, str]
) -> dict[str, Any]:
    """The profile to store for ``features`` merged over ``stored``: with the stored features
    the serving version does not read (a retrain dropped them). Stored as this version reads
    them alone, a by-id request deleted them, and after a rollback to a version that reads
    them the customer was a 422 (``features.support_tickets: missing feature``)."""
    if stored is None:
        return features
    unread = {n: v for n, v in stored.features.items() if n not in kinds}
    return features | unread if unread else features


def merge_over(
    kinds: dict[str, str], sent: dict[str, Any], base: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """``merge`` over features assigned earlier in the same batch (``base``, every feature,
    checked): what that item stored is the profile a later item of its customer sees."""
    return {n: sent[n] if n in sent else base[n] for n in kinds}, MERGED if sent else FROM_PROFILE


def unknown_customer(exc: UnknownCustomer, prefix: str = "") -> list[dict[str, str]]:
    """The errors of an unknown customer: the id, then each feature it was not sent."""
    p = f"{prefix}." if prefix else ""
    missing = [{"field": f"{p}features.{n}", "message": _NO_PROFILE} for n in exc.missing]
    return [{"field": f"{p}customer_id", "message": UNKNOWN}, *missing]


def profiles_unavailable(exc: RedisUnavailable) -> Problem:
    return Problem(
        503,
        "Profiles unavailable",
        "the customer's stored profile cannot be read now (Redis is unreachable or slow): "
        "send every feature, or retry",
        type_="/problems/profiles-unavailable",
        headers={"Retry-After": "1"},
    )


async def complete_one(
    history: HistoryService | None,
    kinds: dict[str, str],
    customer_id: str,
    sent: dict[str, Any],
    max_id: int,
    keep: bool = False,
    markers: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
) -> tuple[dict[str, Any], str, Profile]:
    """``merge`` for one request, reading its profile (cached with ``keep``), and the profile
    as read (what a record made from it is checked against); raises 404, 422 and 503
    problems."""
    if history is None:  # recording is off: nothing is stored, every feature must be sent
        missing = [n for n in kinds if n not in sent]
        raise invalid([{"field": f"features.{n}", "message": "missing feature"} for n in missing])
    try:
        stored = (await history.profiles([customer_id], keep))[0]
    except RedisUnavailable as exc:
        raise profiles_unavailable(exc) from None
    try:
        features, source = merge(
            kinds, customer_id, sent, stored, max_id, "", markers, feature_markers
        )
    except UnknownCustomer as exc:
        twin = await stored_twin(history, customer_id)
        raise Problem(
            404,
            "Unknown customer",
            f"customer {customer_id[:64]!r} has no stored profile: send every feature "
            f"({SEND_NULL}), or store the customers first ({STORE_FIRST})" + twin,
            type_="/problems/unknown-customer",
            errors=bounded(unknown_customer(exc)),
        ) from None
    except ItemInvalid as exc:
        raise invalid(exc.found, exc.omitted) from None
    assert stored is not None  # merge raised UnknownCustomer otherwise
    return features, source, stored


ZERO_PADDED = 12  # widths tried for an unknown id of digits: up to this many digits


def _twins(customer_id: str) -> list[str]:
    """The ids an unknown id of digits may be stored as: written as a float (``12364.0``,
    or the converse), or with its leading zeros (``0176093`` for ``176093``, a width up to
    ``ZERO_PADDED``; or without them)."""
    if re.fullmatch(r"[0-9]{1,30}\.0", customer_id):
        return [customer_id[:-2]]
    if not re.fullmatch(r"[0-9]{1,30}", customer_id):
        return []
    twins = [f"{customer_id}.0"]
    digits = customer_id.lstrip("0") or "0"
    if digits != customer_id:
        twins.append(digits)
    twins += [digits.zfill(w) for w in range(len(digits) + 1, ZERO_PADDED + 1)]
    return [t for t in twins if t != customer_id]


async def stored_twin(history: HistoryService, customer_id: str) -> str:
    """Where an unknown ``12364`` is stored as ``12364.0`` (or the converse), or ``176093``
    as ``0176093`` (or the converse), a clause that says so: a log exported with ids as
    floats records them as written, and a spreadsheet drops an id's leading zeros, so the
    CRM's ``12364`` (a telecom's ``176093``) was a 404 with no word of why. One more read
    (of at most 13 keys, in one call), on this 404 only."""
    twins = _twins(customer_id)
    if not twins:
        return ""
    try:
        found = await history.profiles(twins)
    except RedisUnavailable:
        return ""
    twin = next((t for t, profile in zip(twins, found, strict=True) if profile is not None), None)
    if twin is None:
        return ""
    if twin.endswith(".0") or customer_id.endswith(".0"):
        why = "an export that wrote ids as floats, 12364.0, recorded them so"
    else:
        why = "leading zeros count: 0176093 and 176093 are two customers"
    return f"; customer {twin!r} has one: ids are text, exactly as the file wrote them ({why})"


async def complete_many(
    history: HistoryService,
    kinds: dict[str, str],
    items: Sequence[tuple[int, str, dict[str, Any]]],
    max_id: int,
    markers: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
) -> tuple[list[tuple[dict[str, Any], str] | list[dict[str, str]]], list[Profile | None]]:
    """``merge`` for a batch's incomplete ``(index, customer id, sent)`` items, with one read
    of their profiles: per item its features and source, or its errors (reported in place);
    and the profiles as read (what records made from them are checked against; none when
    they could not be read)."""
    try:
        stored = await history.profiles([customer_id for _, customer_id, _ in items])
    except RedisUnavailable:
        message = "not sent, and the stored profiles cannot be read now (Redis unavailable)"
        return [[{"field": f"items.{i}.features", "message": message}] for i, _, _ in items], []
    out: list[tuple[dict[str, Any], str] | list[dict[str, str]]] = []
    for (i, customer_id, sent), profile in zip(items, stored, strict=True):
        try:
            prefix = f"items.{i}"
            out.append(
                merge(kinds, customer_id, sent, profile, max_id, prefix, markers, feature_markers)
            )
        except UnknownCustomer as exc:
            out.append(unknown_customer(exc, f"items.{i}"))
        except ItemInvalid as exc:
            out.append(exc.errors)
    return out, stored
