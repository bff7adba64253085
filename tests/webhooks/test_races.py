"""Edits and deletes of subscriptions racing each other and the dispatcher, on the suite's real
Redis: a deleted subscription stays deleted, no edit undoes another, and nothing of a deleted
subscription is written back."""

from __future__ import annotations

import asyncio

import pytest

from app.history import Recorder
from app.webhooks.dispatcher import running
from app.webhooks.store import SubscriptionStore
from tests.webhooks.conftest import (
    Receiver,
    dispatcher,
    expected_events,
    scripted_run,
    store_of,
    verify_all,
    wait_for,
)

pytestmark = pytest.mark.anyio
EVENTS = ["segment.entered", "segment.exited"]


async def test_a_delete_racing_edits_stays_deleted(recorder: Recorder) -> None:
    store = store_of(recorder)
    for round_ in range(10):
        sub = await store.create("http://127.0.0.1:9/hook", EVENTS, None, "")
        edits = [store.update(sub.id, {"description": f"edit {i}"}) for i in range(20)]
        results = await asyncio.gather(*edits[:10], store.delete(sub.id), *edits[10:])
        assert results[10] is True, f"round {round_}"
        assert await store.get(sub.id) is None, f"round {round_}: written back after its delete"
        assert sub.id not in {s.id for s in await store.all()}


async def test_concurrent_edits_never_undo_each_other(recorder: Recorder) -> None:
    """A pause answered with the paused subscription is what is kept, whatever other edits
    ran beside it."""
    store = store_of(recorder)
    sub = await store.create("http://127.0.0.1:9/hook", EVENTS, None, "")
    for round_ in range(10):
        others = [store.update(sub.id, {"description": f"r{round_} e{i}"}) for i in range(10)]
        paused = round_ % 2 == 0
        results = await asyncio.gather(*others, store.update(sub.id, {"paused": paused}))
        answered = results[-1]
        assert answered is not None and answered.paused is paused
        kept = await store.get(sub.id)
        assert kept is not None and kept.paused is paused, f"round {round_}: the edit was undone"
        assert kept.description.startswith(f"r{round_} e")


@pytest.mark.parametrize("answer", ["late success", "timeout"])
async def test_a_subscription_deleted_during_an_attempt_leaves_no_keys(
    recorder: Recorder, answer: str
) -> None:
    """The attempt's end (delivered, or failed) writes nothing for a subscription deleted
    while it ran: its status and delivery log are not made again."""
    if answer == "late success":
        receiver = Receiver(delay_s=1.0)  # answers 200 within the 2 s deadline
    else:
        receiver = Receiver(hang_rate=1.0, hang_s=3.0)  # past the deadline: a failure
    receiver.start()
    try:
        store = store_of(recorder)
        sub = await store.create(receiver.url, EVENTS, None, "")
        async with running(dispatcher(recorder, retry_for_s=60.0)):
            await recorder.record_many(scripted_run(customers=1, steps=1, seed=9))
            await wait_for(lambda: receiver.arrived > 0)  # the attempt is under way
            assert await store.delete(sub.id)
            await asyncio.sleep(3.0)  # the attempt ends (answered, or timed out) meanwhile
        left = [key async for key in recorder.client.scan_iter(match=f"*{sub.id}*")]
        assert left == [], f"keys of the deleted subscription were written back: {left}"
    finally:
        receiver.stop()


async def test_a_subscription_made_while_the_fan_out_trusts_its_list_gets_every_event_after_it(
    recorder: Recorder, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An audit: 8 of 10 migrations recorded just after a new subscription's 201 never
    reached it (the fan-out trusted its list of subscriptions for 0.5 s, and acknowledged
    the entries without it). The list is trusted for a minute here: the fan-out script's
    check of the subscriptions' version must catch the new one."""
    import app.webhooks.dispatcher as dispatching

    monkeypatch.setattr(dispatching, "SUBS_TTL_S", 60.0)
    store = store_of(recorder)
    early = Receiver().start()
    try:
        await store.create(early.url, EVENTS, None, "listed first")
        records = scripted_run(customers=40, steps=4)
        half = len(records) // 2
        async with running(dispatcher(recorder)):
            await recorder.record_many(records[:half])  # the fan-out lists the one endpoint
            await wait_for(lambda: len(early.delivered_ids()) > 0)
            late = await store.create(receiver.url, EVENTS, None, "made while listed")
            await recorder.record_many(records[half:])  # recorded after the 201
            after = expected_events(records[half:], records[:half])
            total = sum(len(v) for v in after.values())
            await wait_for(lambda: len(receiver.delivered_ids()) >= total, within_s=30)
        got = {e["id"] for r in receiver.accepted() for e in r.events()}
        assert len(got) == total
        assert verify_all(receiver, late.secret) == len(receiver.received)
    finally:
        early.stop()


async def test_a_replay_racing_a_delete_writes_nothing_back(recorder: Recorder) -> None:
    """An audit: 6 of 30 deleted subscriptions kept a status hash (no expiry) written by a
    replay that raced the delete."""
    store = store_of(recorder)
    for _ in range(20):
        sub = await store.create("http://127.0.0.1:9/hook", EVENTS, None, "")
        results = await asyncio.gather(
            store.replay(sub.id), store.delete(sub.id), store.replay(sub.id)
        )
        assert results[1] is True
        assert await store.get(sub.id) is None
        assert not await recorder.client.exists(*recorder_keys(store, sub.id))
    assert await store.replay("wh_0000000000000000") is None


def recorder_keys(store: SubscriptionStore, sub_id: str) -> list[str]:
    return list(store.keys.all_of(sub_id))
