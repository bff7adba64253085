"""``BehaviourStore.apply`` against the suite's Redis: statuses and aggregates per event.

``apply.lua`` reads each customer once and writes it once, with the customer's events sent
together; these tests pin that the statuses still come back for each event where the
caller put it, and that a customer's new, duplicate and late events in one call count as
they would one by one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
from redis.asyncio import Redis

from app.events.store import (
    APPLIED,
    CONFLICT,
    DUPLICATE,
    LATE,
    Aggregates,
    BehaviourStore,
    Event,
    Seed,
)
from app.history.keys import Keys

DAY = 86_400_000_000
T0 = 1_780_000_000_000_000  # epoch us, 2026


def _run(url: str, prefix: str, work: Any) -> Any:
    async def go() -> Any:
        async with Redis.from_url(url, decode_responses=True) as client:
            store = BehaviourStore(client, Keys(prefix, shards=2), timeout_s=10.0)
            return await work(store, client)

    return asyncio.run(go())


def test_statuses_come_back_in_the_order_the_events_were_given(
    service_redis: str, prefix: str
) -> None:
    """Customers' events interleaved (so the script's grouping reorders them), with a
    repeat of an id inside the batch and a second line of one order."""
    events = [
        Event("a", "a1", T0 + 5 * DAY, 10.0, "oA"),
        Event("b", "b1", T0 + 1 * DAY, 7.5, "eb1"),
        Event("a", "a1", T0 + 5 * DAY, 10.0, "oA"),  # the same event again
        Event("c", "c1", T0, -2.0, "oC"),  # a refund first: only refunds so far
        Event("b", "b2", T0 + 3 * DAY, 2.5, "oB"),
        Event("a", "a2", T0 + 2 * DAY, 5.0, "oA"),  # a second, older line of order oA
        Event("b", "b2", T0 + 3 * DAY, 2.5, "oB"),
    ]

    bought = Event("c", "c2", T0 + DAY, 30.0, "oC")  # then the order the refund was of

    async def work(store: BehaviourStore, client: Redis) -> Any:
        first = await store.apply(events, counting=True)
        again = await store.apply(events[::-1], counting=True)
        stored = await store.read(["a", "b", "c", "d"])
        return first, again, stored, await store.apply([bought], counting=True)

    (statuses, found), (repeat, after), stored, (_, purchase) = _run(service_redis, prefix, work)
    assert statuses == [APPLIED, APPLIED, DUPLICATE, APPLIED, APPLIED, APPLIED, DUPLICATE]
    assert repeat == [DUPLICATE] * len(events)
    assert found == {
        "a": Aggregates(T0 + 2 * DAY, T0 + 5 * DAY, 1, 15.0),
        "b": Aggregates(T0 + 1 * DAY, T0 + 3 * DAY, 2, 10.0),
    }  # c has refunds only: no purchase, no aggregates to derive features from
    assert after == found  # a batch of duplicates answers the stored aggregates
    assert stored == [found["a"], found["b"], None, None]
    # its refund was kept: the purchase makes one order, net of the refund, at its own time
    assert purchase == {"c": Aggregates(T0 + DAY, T0 + DAY, 1, 28.0)}


def test_an_id_applied_with_other_contents_is_a_conflict_in_a_call_and_across_calls(
    service_redis: str, prefix: str
) -> None:
    """The script compares a repeated id's time, amount and order key with what it applied:
    the same is a duplicate, another is a conflict and is not applied (whether the first was
    applied in this call or an earlier one, without an order column too)."""
    events = [
        Event("q", "q1", T0, 10.0, "oA"),
        Event("q", "q1", T0, 12.0, "oA"),  # same id, another amount, same call
        Event("q", "q2", T0 + DAY, 1.0, "eq2"),
    ]
    later = [
        Event("q", "q1", T0, 10.0, "oA"),
        Event("q", "q1", T0 + 1, 10.0, "oA"),
        Event("q", "q1", T0, 10.0, "oB"),
        Event("q", "q2", T0 + DAY, -1.0, "eq2"),  # the same event as a refund
    ]

    async def work(store: BehaviourStore, client: Redis) -> Any:
        first = await store.apply(events, counting=True)
        return first, await store.apply(later, counting=False)

    (statuses, found), (again, after) = _run(service_redis, prefix, work)
    assert statuses == [APPLIED, CONFLICT, APPLIED]
    assert again == [DUPLICATE, CONFLICT, CONFLICT, CONFLICT]
    assert found == after == {"q": Aggregates(T0, T0 + DAY, 2, 11.0)}


def test_late_duplicate_and_new_events_of_one_customer_in_one_call(
    service_redis: str, prefix: str
) -> None:
    """After a seeding as of T0 + 10 days (the log counted order oS): an event before the
    reference is late, a second line of a counted order adds its amount only, and a
    counted-once order key within the call stays counted once."""
    seed = Seed("s", Aggregates(T0, T0 + 9 * DAY, 2, 100.0), order_keys=("oS", "oT"))
    events = [
        Event("s", "late", T0 + 3 * DAY, 50.0, "oX"),
        Event("s", "n1", T0 + 11 * DAY, 5.0, "oS"),  # a line of an order the log counted
        Event("s", "n2", T0 + 12 * DAY, 20.0, "oN"),
        Event("s", "n3", T0 + 13 * DAY, -4.0, "oN"),  # a refund line of the same new order
        Event("s", "n2", T0 + 12 * DAY, 20.0, "oN"),
        Event("s", "lone", T0 + 10 * DAY, 1.0, "elone"),  # at the reference: not late
    ]

    async def work(store: BehaviourStore, client: Redis) -> Any:
        await store.seed([seed], T0 + 10 * DAY, counting=True)
        return await store.apply(events, counting=True)

    statuses, found = _run(service_redis, prefix, work)
    assert statuses == [LATE, APPLIED, APPLIED, APPLIED, DUPLICATE, APPLIED]
    # the refund (day 13) lowers the net amount only: the last purchase is day 12's
    assert found == {"s": Aggregates(T0, T0 + 12 * DAY, 4, 122.0)}


def test_a_refund_of_zero_is_no_order_and_no_purchase_time(service_redis: str, prefix: str) -> None:
    """A refund of 0 arrives as -0.0 (a cancelled free item: -1 x 0.0): a refund like any
    other (it counted an order and moved the last purchase, since -0.0 < 0 is false), as the
    log's derivation reads it (``purchases``: the sign bit)."""
    from app.events.derive import aggregate_log

    events = [
        Event("z", "z1", T0, 40.0, "oA"),
        Event("z", "z2", T0 + 5 * DAY, -0.0, "oC1"),
        Event("z", "z3", T0 + 6 * DAY, -0.0, "ez3"),
        Event("z", "z4", T0 + 7 * DAY, 0.0, "oFree"),  # a free order is an order
    ]

    async def work(store: BehaviourStore, client: Redis) -> Any:
        return await store.apply(events, counting=True)

    _, found = _run(service_redis, prefix, work)
    assert found == {"z": Aggregates(T0, T0 + 7 * DAY, 2, 40.0)}
    log = pd.DataFrame(
        {
            "customer": ["z"] * 4,
            "when": pd.to_datetime([e.at_us for e in events], unit="us"),
            "amount": [e.amount for e in events],
            "order": ["A", "C1", None, "Free"],
        }
    )
    agg = aggregate_log(log).loc["z"]
    assert (agg["first_us"], agg["last_us"], agg["orders"], agg["monetary"]) == (
        T0,
        T0 + 7 * DAY,
        2,
        40.0,
    )


def test_without_an_order_column_every_event_is_an_order(service_redis: str, prefix: str) -> None:
    events = [
        Event("x", "x1", T0, 3.0, "o1"),
        Event("x", "x2", T0 + DAY, 4.0, "o1"),  # an order id is ignored without the column
        Event("x", "x1", T0, 3.0, "o1"),
    ]

    async def work(store: BehaviourStore, client: Redis) -> Any:
        return await store.apply(events, counting=False)

    statuses, found = _run(service_redis, prefix, work)
    assert statuses == [APPLIED, APPLIED, DUPLICATE]
    assert found == {"x": Aggregates(T0, T0 + DAY, 2, 7.0)}


def test_ids_outside_ascii_are_sent_by_their_bytes(service_redis: str, prefix: str) -> None:
    """A call whose text is not all ASCII is packed argument by argument (lengths in bytes):
    the same statuses and aggregates as for any other id."""
    events = [
        Event("kunde-ö", "é1", T0, 9.5, "oZürich"),
        Event("plain", "p1", T0 + DAY, 1.0, "ep1"),
        Event("kunde-ö", "é2", T0 + DAY, 0.5, "oZürich"),
        Event("kunde-ö", "é1", T0, 9.5, "oZürich"),
    ]

    async def work(store: BehaviourStore, client: Redis) -> Any:
        first = await store.apply(events, counting=True)
        return first, await store.read(["kunde-ö", "plain"])

    (statuses, found), stored = _run(service_redis, prefix, work)
    assert statuses == [APPLIED, APPLIED, APPLIED, DUPLICATE]
    assert found == {
        "kunde-ö": Aggregates(T0, T0 + DAY, 1, 10.0),
        "plain": Aggregates(T0 + DAY, T0 + DAY, 1, 1.0),
    }
    assert stored == [found["kunde-ö"], found["plain"]]


def test_an_apply_call_packed_at_once_equals_its_arguments_packed_one_by_one() -> None:
    """``_apply_call`` packs a call as one f-string per key and per event; the obvious way,
    each argument of ``_apply_args`` packed by ``_resp``, gives the same text and count, for
    ASCII ids (the fast path) and ids outside ASCII (which take the obvious way)."""
    from app.events.store import _resp

    store = BehaviourStore(Redis(), Keys("p:", shards=3), timeout_s=1.0)
    events = [
        Event(f"C{i % 7}", f"ev-{i}", T0 + i * 1_234_567, (-1) ** i * (i + 0.1) / 3, f"o{i % 5}")
        for i in range(60)
    ]
    events += [Event("Zoë", "é1", T0, 0.0, "eé1"), Event("C1", "x", T0, -0.0, "ex")]
    for shard, indices in store._by_shard([e.customer_id for e in events]).items():
        for mode in ("0", "1"):
            (count, text), customers, sent = store._apply_call(events, shard, indices, mode)
            by_customer = {c: [i for i in sent if events[i].customer_id == c] for c in customers}
            assert sent == [i for c in customers for i in by_customer[c]]
            assert sorted(sent) == sorted(indices)
            args = store._apply_args(events, by_customer, mode)
            assert (count, text) == (len(args), _resp(args))
            assert args[1 : 1 + len(customers)] == [store.keys.behaviour(c) for c in customers]


def test_reads_of_one_customer_asked_at_once_share_a_round_trip_and_see_earlier_writes(
    service_redis: str, prefix: str
) -> None:
    """``read_one`` (an assignment by id) coalesces: reads asked while one is in flight go
    together in the next, each answered with its own customer's aggregates (None for one
    without any); a read asked after an apply returned sees it."""
    ids = [f"r{i}" for i in range(20)]

    async def work(store: BehaviourStore, client: Redis) -> Any:
        await store.apply(
            [Event(c, f"{c}-1", T0, 10.0 + i, f"o{c}") for i, c in enumerate(ids)], True
        )
        sent: list[int] = []
        real = store.read

        async def counted(customer_ids: Any) -> Any:
            sent.append(len(customer_ids))
            return await real(customer_ids)

        store.read = counted  # type: ignore[method-assign]
        found = await asyncio.gather(*(store.read_one(c) for c in [*ids, "nobody"]))
        assert [a.monetary if a else None for a in found] == [10.0 + i for i in range(20)] + [None]
        assert sum(sent) == 21 and len(sent) <= 2, sent  # the first alone, the rest together
        await store.apply([Event("r0", "r0-2", T0 + DAY, 5.0, "o2")], True)
        again = await store.read_one("r0")
        assert again is not None and (again.orders, again.monetary) == (2, 15.0)

    _run(service_redis, prefix, work)
