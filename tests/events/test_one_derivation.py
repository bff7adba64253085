"""One derivation (issue 13, item 3): the events path equals the training derivation.

Random transaction logs (several lines per order, refunds, refunds of 0, customers with
refunds only, customers with one line, lines without an order id) are derived by the training
job's ``derive_rfm`` and, as events, posted to the real Redis through ``apply.lua`` in a
shuffled order with duplicates, in one to three batches: every customer's features as of the
same instant agree to 1e-9 (a customer with refunds only has none on either side), and so do
the segments a model gives them.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from app.events.derive import RFM_FEATURES, rfm_features, to_us
from app.events.store import BehaviourStore, Event, order_key
from app.history.keys import Keys
from app.training.data import derive_rfm
from tests.events.conftest import delete_prefix

START = datetime(2025, 1, 1)
REFERENCE = date(2026, 1, 1)


@st.composite
def logs(draw: st.DrawFn) -> pd.DataFrame:
    """A log: per customer, orders of one or more lines (some refunded), a few lone lines."""
    rows: list[dict[str, Any]] = []
    customers = draw(st.integers(1, 8))
    for c in range(customers):
        returner = draw(st.integers(0, 4)) == 0  # every line a refund: no purchase
        for o in range(draw(st.integers(1, 4))):
            lines = draw(st.integers(1, 3))
            for _ in range(lines):
                seconds = draw(st.integers(0, 364 * 86_400))
                micros = draw(st.integers(0, 999_999))
                amount = draw(
                    st.just(0.0) | st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2))
                )
                refund = returner or (draw(st.booleans()) and draw(st.booleans()))
                lone = draw(st.integers(0, 9)) == 0  # a line without an order id
                rows.append(
                    {
                        "customer": f"{c:03d}",  # text ids: 001 is not 1
                        "when": START + timedelta(seconds=seconds, microseconds=micros),
                        "amount": -amount if refund else amount,
                        "order": None if lone else f"{c}-{o}",
                    }
                )
    return pd.DataFrame(rows)


def _orders(log: pd.DataFrame) -> list[str | None]:
    if "order" not in log:
        return [None] * len(log)
    return [None if pd.isna(o) else str(o) for o in log["order"]]


def _events(log: pd.DataFrame, rng: random.Random) -> list[Event]:
    """The log's lines as events (refunds as positive amounts of type refund, made signed as
    the endpoint makes them), shuffled, with some sent twice."""
    events = [
        Event(
            row.customer,
            f"ev-{i}",
            to_us(row.when.to_pydatetime()),
            float(row.amount),
            order_key(order, f"ev-{i}"),
        )
        for i, (row, order) in enumerate(
            zip(log.itertuples(index=False), _orders(log), strict=True)
        )
    ]
    resent = [e for e in events if rng.random() < 0.3]
    events += resent
    rng.shuffle(events)
    return events


async def _via_redis(
    url: str, prefix: str, batches: list[list[Event]], counting: bool, customers: list[str]
) -> Any:
    """Apply the batches one after the other: every status, each customer's aggregates as
    the last call naming it answered, and every customer's as stored."""
    async with Redis.from_url(url, decode_responses=True) as client:
        store = BehaviourStore(client, Keys(prefix, shards=3), timeout_s=10.0)
        statuses: list[int] = []
        aggregates: dict[str, Any] = {}
        for batch in batches:
            found, answered = await store.apply(batch, counting)
            statuses += found
            aggregates.update(answered)
        return statuses, aggregates, await store.read(customers)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), seed=st.integers(0, 2**32 - 1), with_orders=st.booleans())
def test_events_derive_what_training_derives(
    service_redis: str, log: pd.DataFrame, seed: int, with_orders: bool
) -> None:
    if not with_orders:
        log = log.drop(columns=["order"])
    note(repr(log.to_dict("records")))
    expected = derive_rfm(log, REFERENCE)
    rng = random.Random(seed)
    events = _events(log, rng)
    cuts = sorted(rng.sample(range(1, len(events)), min(2, len(events) - 1)))[: rng.randint(0, 2)]
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    customers = sorted(set(log["customer"]))
    prefix = f"evprop{seed}:"
    try:
        statuses, aggregates, stored = asyncio.run(
            _via_redis(service_redis, prefix, batches, with_orders, customers)
        )
    finally:
        delete_prefix(service_redis, prefix)
    assert statuses.count(1) == len(log)  # each line applied once, its copies duplicates
    assert sorted(aggregates) == list(expected.index)  # customers with refunds only: none
    assert [c for c, agg in zip(customers, stored, strict=True) if agg is not None] == list(
        expected.index
    )
    as_of = to_us(datetime(2026, 1, 1, tzinfo=UTC))
    for customer_id in expected.index:
        agg = stored[customers.index(customer_id)]
        assert agg == aggregates[customer_id]  # what the call answered is what is stored
        got = rfm_features(agg.first_us, agg.last_us, agg.orders, agg.monetary, as_of)
        for name in RFM_FEATURES:
            want = float(expected.loc[customer_id, name])
            assert _close(float(got[name]), want), (customer_id, name, got[name], want)


def test_the_example_log_as_events_gets_the_segments_training_gave(
    service_redis: str, tx_trained: Any
) -> None:
    """The trained model's own log, posted as shuffled events: every customer's features as
    of the training reference equal the training frame's, and so do the segments."""
    from app.serving.model import build_serving_model
    from app.training.config import TrainConfig
    from app.training.data import load_training_data

    store, result = tx_trained
    config = TrainConfig.model_validate(result.manifest.config)
    training = load_training_data(config).frame
    serving = build_serving_model(store, result.manifest.model_name, result.manifest.version)
    log = pd.read_csv(config.data.path, dtype={"customer_id": str, "order_id": str})
    log = log[log["customer_id"].isin(training.index[:400])]
    log = pd.DataFrame(
        {
            "customer": log["customer_id"],
            "when": pd.to_datetime(log["timestamp"]),
            "amount": log["amount"],
            "order": log["order_id"],
        }
    )
    events = _events(log, random.Random(5))
    prefix = "evexample:"
    try:
        _, aggregates, _ = asyncio.run(_via_redis(service_redis, prefix, [events], True, []))
    finally:
        delete_prefix(service_redis, prefix)
    reference = result.manifest.data.reference_date
    assert reference is not None
    as_of = to_us(date.fromisoformat(reference))
    names = list(serving.feature_kinds)
    ids = sorted(aggregates)
    rows = []
    for customer_id in ids:
        a = aggregates[customer_id]
        got = rfm_features(a.first_us, a.last_us, a.orders, a.monetary, as_of)
        for name in RFM_FEATURES:
            assert _close(float(got[name]), float(training.loc[customer_id, name]))
        rows.append({n: float(got[n]) for n in names})
    want = [r.to_dict() for _, r in training.loc[ids, names].iterrows()]
    assert serving.assign_slots(rows)[0] == serving.assign_slots(want)[0]
    assert len(ids) == 400


def test_a_groups_features_at_once_equal_each_customers_own() -> None:
    """``feature_rows`` (one array operation per feature, the events path) gives exactly the
    features ``features_of`` gives customer by customer (the scalar path)."""
    from app.events.derive import feature_rows
    from app.events.service import features_of
    from app.events.store import Aggregates

    rng = random.Random(7)
    day = 86_400_000_000
    now = to_us(datetime(2026, 12, 2, 13, 0, 7, 123_457, tzinfo=UTC))
    aggs = []
    for _ in range(500):
        first = now - rng.randrange(0, 3_000 * day)
        aggs.append(
            Aggregates(
                first,
                rng.randint(first, now),
                rng.randrange(0, 40),
                round(rng.uniform(-500, 20_000), 2),
            )
        )
    kinds = dict.fromkeys(reversed(RFM_FEATURES), "numeric")
    rows = feature_rows(aggs, now, kinds)
    assert list(rows) == [features_of(agg, now, kinds) for agg in aggs]
    assert [rows[i] for i in range(len(rows))] == list(rows)  # a row asked for: the same
    assert [list(row) for row in rows[:1]] == [list(kinds)]
    assert len(feature_rows([], now, kinds)) == 0


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none()
    ),
    st.integers(-23 * 3600, 23 * 3600),
    st.booleans(),
)
def test_epoch_microseconds_summed_equal_the_floor_division(
    when: datetime, offset_s: int, naive: bool
) -> None:
    """``to_us`` sums a time's days, seconds and microseconds since the epoch (an event's
    cheaper path); the obvious ``(when - epoch) // 1 us`` gives the same integer, before the
    epoch too, with or without an offset."""
    from datetime import timezone

    at = when if naive else when.replace(tzinfo=timezone(timedelta(seconds=offset_s)))
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    assert to_us(at) == (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
