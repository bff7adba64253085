"""Delivery against a real receiver and a real Redis: at least once, in order per customer,
signed, filtered; through failures and timeouts; dead letters and replay."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from app.history import Recorder
from app.webhooks.dispatcher import running
from tests.webhooks.conftest import (
    NAMES,
    Receiver,
    dispatcher,
    expected_events,
    first_deliveries,
    scripted_run,
    store_of,
    verify_all,
    wait_for,
)

pytestmark = pytest.mark.anyio


async def test_every_migration_arrives_in_order_signed_and_filtered(
    recorder: Recorder, receiver: Receiver
) -> None:
    store = store_of(recorder)
    everything = await store.create(receiver.url, ["segment.entered", "segment.exited"], None, "")
    # a second endpoint on the same receiver, wanting only entries into seg-002
    other = Receiver().start()
    try:
        only = await store.create(other.url, ["segment.entered"], ["seg-002"], "filtered")
        records = scripted_run(customers=150, steps=5)
        async with running(dispatcher(recorder)):
            for start in range(0, len(records), 100):
                await recorder.record_many(records[start : start + 100])
            expected = expected_events(records)
            total = sum(len(v) for v in expected.values())
            await wait_for(lambda: len(receiver.delivered_ids()) >= total)
            wanted = {
                (cid, pair) for cid, pairs in expected.items() for pair in pairs
                if pair == ("segment.entered", "seg-002")
            }  # fmt: skip
            await wait_for(lambda: len(other.delivered_ids()) >= len(wanted))

            async def acknowledged() -> bool:  # the receiver answered; then the queue moves
                return (await store.status(everything.id)).backlog == 0

            await wait_for(acknowledged)
            status = await store.status(everything.id)
        assert first_deliveries(receiver) == expected
        assert verify_all(receiver, everything.secret) == len(receiver.received)
        assert verify_all(other, only.secret) == len(other.received)
        got = {(c, p) for c, pairs in first_deliveries(other).items() for p in pairs}
        assert got == wanted
        assert status.backlog == 0 and status.dead_letters == 0
        assert status.delivered >= total and status.last_success_at is not None
        # what an event carries
        event = receiver.accepted()[-1].events()[-1]
        assert set(event) == {
            "id", "type", "customer_id", "model", "segment", "from_segment", "to_segment",
            "model_version", "occurred_at", "seq", "record_id",
        }  # fmt: skip
        assert event["model"] is None  # a store made from a list of streams: unnamed
        assert event["to_segment"]["name"] == NAMES[event["to_segment"]["id"]]
        assert event["model_version"] == "v1"
    finally:
        other.stop()


async def test_failures_and_timeouts_still_deliver_everything(recorder: Recorder) -> None:
    receiver = Receiver(fail_rate=0.3, hang_rate=0.05, hang_s=0.8).start()
    try:
        store = store_of(recorder)
        sub = await store.create(receiver.url, ["segment.entered", "segment.exited"], None, "")
        records = scripted_run(customers=100, steps=4, seed=2)
        async with running(dispatcher(recorder, timeout_s=0.4)):
            await recorder.record_many(records)
            expected = expected_events(records)
            total = sum(len(v) for v in expected.values())
            await wait_for(lambda: len(receiver.delivered_ids()) >= total, within_s=120)

            async def acknowledged() -> bool:
                return (await store.status(sub.id)).backlog == 0

            await wait_for(acknowledged)
            status = await store.status(sub.id)
            attempts = await store.attempts(sub.id, 1000)
        assert first_deliveries(receiver) == expected
        statuses = [r.status for r in receiver.received]
        assert 500 in statuses and 599 in statuses  # both kinds of failure happened
        assert status.dead_letters == 0 and status.backlog == 0
        assert status.last_failure_at is not None
        assert {a["status"] for a in attempts if not a["ok"]} <= {500, None}
        assert any(a["error"] and "timed out" in a["error"] for a in attempts)
        verify_all(receiver, sub.secret)
    finally:
        receiver.stop()


async def test_a_receiver_down_all_run_dead_letters_then_replay_delivers(
    recorder: Recorder,
) -> None:
    receiver = Receiver()  # not started: connections are refused
    store = store_of(recorder)
    sub = await store.create(receiver.url, ["segment.entered", "segment.exited"], None, "")
    records = scripted_run(customers=40, steps=3, seed=3)
    expected = expected_events(records)
    total = sum(len(v) for v in expected.values())
    async with running(dispatcher(recorder, retry_for_s=0.3, disable_after_s=0.6)):
        await recorder.record_many(records[:60])

        async def all_dead() -> bool:
            return (await store.status(sub.id)).dead_letters == total

        await recorder.record_many(records[60:])  # some arrive after it was disabled
        await wait_for(all_dead)
        status = await store.status(sub.id)
        assert status.disabled_at is not None and "failing for" in (status.disabled_reason or "")
        assert status.backlog == 0 and status.last_failure_status is None  # no answer at all
        receiver.start()
        try:
            assert await store.replay(sub.id) == (total, True)
            await wait_for(lambda: len(receiver.delivered_ids()) >= total)
        finally:
            receiver.stop()
        status = await store.status(sub.id)
    assert status.dead_letters == 0 and status.disabled_at is None
    assert {cid: sorted(p) for cid, p in first_deliveries(receiver).items()} == {
        cid: sorted(p) for cid, p in expected.items()
    }
    verify_all(receiver, sub.secret)


async def test_a_4xx_is_not_retried_and_goes_to_the_dead_letters(recorder: Recorder) -> None:
    receiver = Receiver().start()
    try:
        store = store_of(recorder)
        missing = receiver.url.replace("/hook", "/missing")  # the receiver answers 404 there
        sub = await store.create(missing, ["segment.entered"], None, "")
        records = scripted_run(customers=3, steps=1, seed=4)
        async with running(dispatcher(recorder)):
            await recorder.record_many(records)

            async def dead() -> bool:
                return (await store.status(sub.id)).dead_letters == 3

            await wait_for(dead)
            status = await store.status(sub.id)
            attempts = await store.attempts(sub.id, 10)
        assert len(receiver.received) == 1  # not retried
        assert status.last_failure_status == 404 and status.disabled_at is None
        assert [(a["ok"], a["status"], a["events"]) for a in attempts] == [(False, 404, 3)]
    finally:
        receiver.stop()


async def test_a_429_is_retried_after_the_time_it_asks_for(recorder: Recorder) -> None:
    # backoff alone would retry within 100 ms (fast settings); Retry-After asks for 1 s
    receiver = Receiver(script=[429], retry_after="1").start()
    try:
        store = store_of(recorder)
        sub = await store.create(receiver.url, ["segment.entered"], None, "")
        async with running(dispatcher(recorder, retry_max_ms=5_000)):
            await recorder.record_many(scripted_run(customers=5, steps=1, seed=10))
            await wait_for(lambda: len(receiver.delivered_ids()) >= 5)
        first, second = receiver.received[:2]
        assert (first.status, second.status) == (429, 200)
        assert second.at - first.at >= 0.9  # waited what was asked (a floor, not a speed)
        assert first.headers["webhook-id"] == second.headers["webhook-id"]  # same message
        assert (await store.status(sub.id)).last_failure_status == 429
    finally:
        receiver.stop()


async def test_a_forgotten_customer_leaves_their_segment_for_the_receivers(
    recorder: Recorder, receiver: Receiver
) -> None:
    """A forget reaches the receivers as the customer's last ``segment.exited``, to no
    segment, so that an audience built from the webhooks drops them too."""
    store = store_of(recorder)
    endpoint = await store.create(receiver.url, ["segment.entered", "segment.exited"], None, "")
    records = scripted_run(customers=3, steps=2)
    who = records[0].customer_id
    async with running(dispatcher(recorder)):
        await recorder.record_many(records)
        assert await recorder.forget(who) is True
        expected = expected_events(records)
        total = sum(len(v) for v in expected.values()) + 1  # and the forget's exit
        await wait_for(lambda: len(receiver.delivered_ids()) >= total)
    events = [e for batch in receiver.accepted() for e in batch.events()]
    last = [e for e in events if e["customer_id"] == who][-1]
    assert last["type"] == "segment.exited" and last["to_segment"] is None
    assert last["from_segment"] == last["segment"] and last["segment"]["id"] in NAMES
    assert last["record_id"].startswith("forget-")
    assert verify_all(receiver, endpoint.secret) == len(receiver.received)
    # nobody else left anything
    assert sum(e["to_segment"] is None for e in events) == 1


async def test_a_subscription_gets_no_event_recorded_before_it(
    recorder: Recorder, receiver: Receiver
) -> None:
    """A subscription gets every event recorded after its 201, and none before (an email tool
    subscribed for welcome mails must not be sent a day of old entries). The consumer group
    stays where the dispatcher last read while no subscription exists (it reads nothing
    then), so the next subscription was given every entry recorded since the last one went:
    up to the stream's cap of old events."""
    store = store_of(recorder)
    before, after = scripted_run(customers=30, steps=2, seed=3), scripted_run(30, 2, seed=4)
    before = [dataclasses.replace(r, customer_id=f"old{r.customer_id}") for r in before]
    async with running(dispatcher(recorder)):
        first = await store.create(receiver.url, ["segment.entered"], None, "")
        await store.delete(first.id)  # the group stays, where the dispatcher left it
        await recorder.record_many(before)  # recorded while nobody subscribes
        other = Receiver().start()
        try:
            await store.create(other.url, ["segment.entered", "segment.exited"], None, "")
            await recorder.record_many(after)
            expected = expected_events(after)
            total = sum(len(v) for v in expected.values())
            await wait_for(lambda: len(other.delivered_ids()) >= total)
            await asyncio.sleep(0.5)  # (what more would come: the old ones came first)
            assert first_deliveries(other) == expected
        finally:
            other.stop()


async def test_a_subscription_starts_after_every_entry_recorded_before_it(
    recorder: Recorder,
) -> None:
    """A subscription's first millisecond is after every entry recorded before its creation:
    with Redis's now, an entry recorded in the same millisecond was older but sent (CI: 15
    customers of a batch recorded just before the subscription)."""
    store = store_of(recorder)
    (stream,) = [s for source in store.sources() for s in source.streams]
    for i in range(40):  # each a chance to fall in one millisecond
        await recorder.record_many(scripted_run(customers=1, steps=1, seed=i))
        (last, _), *_ = await recorder.client.xrevrange(stream, count=1)
        sub = await store.create("http://127.0.0.1:9/", ["segment.entered"], None, "")
        await store.delete(sub.id)
        recorded = int(str(last).split("-")[0])
        assert sub.created_at > recorded, (i, sub.created_at, last)
