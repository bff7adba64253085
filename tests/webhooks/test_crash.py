"""``segments dispatch`` SIGKILLed mid-run and started again: nothing is lost, and only the
batch in flight at the kill arrives twice. Two dispatchers: one works, the other stands by."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.history import Recorder
from app.webhooks import Dispatcher
from app.webhooks.dispatcher import LeaseLost
from tests.webhooks.conftest import (
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
SEGMENTS = Path(sys.executable).parent / "segments"


def start_dispatch(recorder: Recorder, redis_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SEGMENTS_REDIS_URL": redis_url,
        "SEGMENTS_KEY_PREFIX": recorder.keys.prefix,
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        "SEGMENTS_MODEL_STORE": str(tmp_path / "no-models"),
        "SEGMENTS_WEBHOOK_ALLOW_PRIVATE": "true",
        "SEGMENTS_WEBHOOK_ALLOW_HTTP_HOSTS": "127.0.0.1",
        "SEGMENTS_WEBHOOK_BATCH_SIZE": "10",
        "SEGMENTS_WEBHOOK_BATCH_WAIT_MS": "0",
        "SEGMENTS_WEBHOOK_RETRY_BASE_MS": "10",
        "SEGMENTS_WEBHOOK_RETRY_MAX_MS": "100",
        "SEGMENTS_WEBHOOK_LEASE_MS": "1000",
    }
    log = (tmp_path / "dispatch.log").open("ab")
    return subprocess.Popen([str(SEGMENTS), "dispatch"], env=env, stdout=log, stderr=log)


async def quiet(receiver: Receiver, for_s: float = 0.5) -> None:
    """Until the receiver has answered every request begun and none began for ``for_s`` (a
    request the killed process sent can still wait in the socket, unread)."""
    last, since = -1, time.monotonic()
    while True:
        with receiver.lock:
            begun, answered = receiver.arrived, len(receiver.received)
        if begun != last or begun != answered:
            last, since = begun, time.monotonic()
        elif time.monotonic() - since >= for_s:
            return
        await asyncio.sleep(0.05)


async def test_sigkill_loses_nothing_and_repeats_only_the_batch_in_flight(
    recorder: Recorder, service_redis: str, tmp_path: Path
) -> None:
    receiver = Receiver(delay_s=0.01).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = store_of(recorder)
        sub = await store.create(receiver.url, ["segment.entered", "segment.exited"], None, "")
        records = scripted_run(customers=300, steps=3, seed=5)
        expected = expected_events(records)
        total = sum(len(v) for v in expected.values())
        procs.append(start_dispatch(recorder, service_redis, tmp_path))
        await recorder.record_many(records[:600])
        await wait_for(lambda: len(receiver.delivered_ids()) >= 300)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        await quiet(receiver)  # it has answered the request it was handling, if any
        before = receiver.accepted()
        await recorder.record_many(records[600:])  # recorded while no dispatcher runs
        procs.append(start_dispatch(recorder, service_redis, tmp_path))
        await wait_for(lambda: len(receiver.delivered_ids()) >= total, within_s=120)

        assert first_deliveries(receiver) == expected
        seen: set[str] = set()
        duplicates = set()
        for request in receiver.accepted():
            for event in request.events():
                if event["id"] in seen:
                    duplicates.add(event["id"])
                seen.add(event["id"])
        in_flight = {e["id"] for e in before[-1].events()}
        assert duplicates <= in_flight
        assert len(before) < len(receiver.accepted())  # the second process delivered the rest
        verify_all(receiver, sub.secret)

        async def acknowledged() -> bool:
            return (await store.status(sub.id)).backlog == 0

        await wait_for(acknowledged)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
        receiver.stop()


async def stop(task: asyncio.Task[None], dispatcher: Dispatcher) -> None:
    """As the service stops one: the flag, then the cancel (a cancel alone can be lost on
    Python 3.11, see ``Dispatcher.stop``, and the task then never ends)."""
    dispatcher.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_of_two_dispatchers_one_works_and_the_other_takes_over(
    recorder: Recorder, receiver: Receiver
) -> None:
    store = store_of(recorder)
    await store.create(receiver.url, ["segment.entered"], None, "")
    first, second = dispatcher(recorder), dispatcher(recorder)
    one = asyncio.create_task(first.run())
    await wait_for(lambda: first.working)
    two = asyncio.create_task(second.run())
    try:
        await recorder.record_many(scripted_run(customers=20, steps=1, seed=6))
        await wait_for(lambda: len(receiver.delivered_ids()) >= 20)
        assert first.working and not second.working
        await stop(one, first)  # releases the lease on the way out
        await wait_for(lambda: second.working)
        await recorder.record_many(scripted_run(customers=40, steps=1, seed=7)[20:])
        await wait_for(lambda: len(receiver.delivered_ids()) >= 40)
    finally:
        await stop(one, first)
        await stop(two, second)


async def test_a_lapsed_lease_nobody_took_still_ends_the_batch_it_sent(
    recorder: Recorder,
) -> None:
    """A process that stalled past its lease while a batch was out pops the batch it sent if
    nobody took the lease and nobody popped the batch (else it would be sent again); if
    another holds the lease, or the batch no longer heads the queue, it pops nothing."""
    store = store_of(recorder)
    sub = await store.create("http://127.0.0.1:9/hook", ["segment.entered"], None, "")
    one, client = dispatcher(recorder), recorder.client
    queue, lease = one.keys.queue(sub.id), one.keys.lease
    await client.rpush(queue, "a", "b", "c")

    await one._end(sub.id, ["a", "b"], "ok", "")  # lapsed, free, the batch at the head
    assert await client.lrange(queue, 0, -1) == ["c"]
    assert await client.get(lease) == one.token  # taken back
    assert 0 < await client.pttl(lease) <= one.config.lease_ms

    await client.set(lease, "another")
    with pytest.raises(LeaseLost):
        await one._end(sub.id, ["c"], "ok", "")
    assert await client.lrange(queue, 0, -1) == ["c"]

    await client.delete(lease)
    with pytest.raises(LeaseLost):  # "a" was popped already: not the head
        await one._end(sub.id, ["a"], "ok", "")
    assert await client.lrange(queue, 0, -1) == ["c"]
    assert await client.get(lease) is None
