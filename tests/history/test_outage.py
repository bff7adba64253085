"""Redis outages: recording never fails or stalls, and no migration is lost or doubled."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from app.health import history_check
from app.history import HistoryConfig, HistoryService, Record, Recorder, Spool
from app.history.records import now_ms
from app.recording.rescore import customer_ids
from tests.history.conftest import RedisProcess, delete_prefix, free_port, make_config

pytestmark = pytest.mark.anyio
DURABLE = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]


@asynccontextmanager
async def service_for(
    config: HistoryConfig, replayer: bool = True
) -> AsyncIterator[HistoryService]:
    assert config.redis_url is not None
    recorder = Recorder.connect(config.redis_url, config)
    spool = Spool(config.spool_dir, config.spool_max_records)
    service = HistoryService(recorder, spool)
    task = asyncio.create_task(service.run_replayer()) if replayer else None
    try:
        yield service
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await recorder.aclose()
        spool.close()


async def drained(service: HistoryService, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not (service.redis_up and service.spool.depth() == 0):
        assert time.monotonic() < deadline, await service.status()
        await asyncio.sleep(0.02)


def journeys(customers: int, steps: int, t0: int) -> list[Record]:
    """Each customer changes segment every other step (so half the records are unchanged)."""
    return [
        Record.create(f"C{c:02d}", f"S{(c + step // 2) % 3}", "v1", assigned_at=t0 + step)
        for step in range(steps)
        for c in range(customers)
    ]


async def assert_each_migration_once_in_order(recorder: Recorder, plan: list[Record]) -> None:
    last: dict[str, str] = {}
    expected: dict[str, list[tuple[str | None, str, int, str]]] = {}
    for r in plan:
        if last.get(r.customer_id) != r.segment_id:
            expected.setdefault(r.customer_id, []).append(
                (last.get(r.customer_id), r.segment_id, r.assigned_at, r.record_id)
            )
            last[r.customer_id] = r.segment_id
    events: dict[str, list[str]] = {}
    for event in await recorder.events(count=100_000):
        events.setdefault(event.customer_id, []).append(event.record_id)
    pairs: dict[tuple[str | None, str], int] = {}
    for customer, migrations in expected.items():
        history = await recorder.history(customer, limit=1000)
        got = [(m.from_segment, m.to_segment, m.at) for m in reversed(history)]
        assert got == [(source, target, at) for source, target, at, _ in migrations], customer
        assert events[customer] == [rid for _, _, _, rid in migrations], customer
        state = await recorder.current(customer)
        assert state is not None and state.segment_id == last[customer]
        for source, target, _, _ in migrations:
            pairs[(source, target)] = pairs.get((source, target), 0) + 1
    flows = await recorder.flows(plan[0].assigned_at, plan[-1].assigned_at + 1)
    assert {(f.from_segment, f.to_segment): f.count for f in flows.flows} == pairs
    for segment in {r.segment_id for r in plan}:
        page = await recorder.members(segment, limit=1000)
        assert sorted(m.customer_id for m in page.members) == sorted(
            c for c, s in last.items() if s == segment
        )


async def test_no_migration_is_lost_or_doubled_across_a_redis_crash(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    server = start_redis(tmp_path / "redis", args=DURABLE).start()
    config = make_config(server.url, tmp_path, history_cap=1000, timeout_ms=100)
    plan = journeys(customers=30, steps=24, t0=now_ms() - 60_000)  # 720 records
    killed, back = asyncio.Event(), asyncio.Event()
    outcomes = []

    async def record_all() -> None:
        for i in range(0, len(plan), 6):
            chunk = plan[i : i + 6]
            if i % 12:
                outcomes.extend(await service.record_many(chunk))
            else:
                outcomes.extend([await service.record(r) for r in chunk])
            if i >= len(plan) // 3 and not killed.is_set():
                server.stop(signal.SIGKILL)  # mid-run, possibly mid-pipeline
                killed.set()
            if i >= 2 * len(plan) // 3 and not back.is_set():
                await asyncio.to_thread(server.start)  # same port, same data folder
                back.set()
            await asyncio.sleep(0.001)

    async with service_for(config) as service:
        await record_all()
        await drained(service)
        status = await service.status()

        assert killed.is_set() and back.is_set()
        assert sum(not o.recorded for o in outcomes) > len(plan) // 4  # really went to the spool
        assert (status.spool_dropped, status.rejected) == (0, 0)
        assert status.replayed == status.spooled
        await assert_each_migration_once_in_order(service.recorder, plan)
        await delete_prefix(service.recorder)


async def test_a_hung_redis_costs_one_timeout_and_a_late_write_is_not_doubled(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    server = start_redis(tmp_path / "redis", args=DURABLE).start()
    config = make_config(server.url, tmp_path, timeout_ms=100, batch_timeout_ms=150)
    plan = journeys(customers=5, steps=8, t0=now_ms() - 60_000)  # 40 records
    async with service_for(config, replayer=False) as service:
        await service.record_many(plan[:10])
        server.send(signal.SIGSTOP)

        started = time.perf_counter()
        batch = await service.record_many(plan[10:30])  # waits for the batch deadline, once
        batch_took = time.perf_counter() - started
        started = time.perf_counter()
        rest = [await service.record(r) for r in plan[30:]]  # spooled straight away
        rest_took = time.perf_counter() - started

        assert not any(o.recorded for o in [*batch, *rest])
        assert 0.14 < batch_took < 0.4
        assert rest_took < 0.5  # ten records; each would wait 0.1 s without the switch
        assert await service.replay_pending() == 0  # still hung: nothing replayed

        # Resumed, the server runs the pipeline the client gave up on: a partial write, as
        # far as the spool knows. Replaying it must not count those migrations again.
        server.send(signal.SIGCONT)
        await asyncio.sleep(0.2)
        state = await service.recorder.current("C00")
        assert state is not None and state.assigned_at == plan[25].assigned_at
        assert await service.replay_pending() == 30
        assert service.redis_up and service.spool.depth() == 0
        await assert_each_migration_once_in_order(service.recorder, plan)
        assert (await service.record(Record.create("C00", "S9", "v1"))).recorded
        await delete_prefix(service.recorder)


async def test_an_unreachable_redis_fills_the_spool_then_drops_and_counts(
    tmp_path: Path,
) -> None:
    config = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path, spool_max_records=4)
    async with service_for(config, replayer=False) as service:
        started = time.perf_counter()
        outcomes = [await service.record(r) for r in journeys(2, 2, t0=now_ms())]
        outcomes += await service.record_many(journeys(2, 1, t0=now_ms()))

        assert time.perf_counter() - started < 0.5
        assert not any(o.recorded for o in outcomes)
        status = await service.status()
        assert (status.redis_up, status.spool_depth, status.spool_dropped) == (False, 4, 2)


async def test_a_restarted_process_replays_what_it_spooled_before(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    down = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    plan = journeys(customers=4, steps=4, t0=now_ms() - 60_000)
    async with service_for(down, replayer=False) as service:
        await service.record_many(plan)
        assert service.spool.depth() == len(plan)

    up = make_config(redis_server.url, tmp_path)  # same spool folder, Redis reachable
    async with service_for(up) as service:
        assert not service.redis_up  # queues behind the spooled records
        late = Record.create("C00", "S2", "v1")
        assert not (await service.record(late)).recorded
        await drained(service)
        await assert_each_migration_once_in_order(service.recorder, [*plan, late])
        await delete_prefix(service.recorder)


async def test_listing_the_customers_across_a_redis_restart_finds_every_one(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    """A rescore lists the customers with SCAN; a restarted Redis (its hash seed new) reads
    the cursor of the one before as a place in another order: carried on, the listing
    skipped thousands, and the service's rescore ended done without moving them."""
    server = start_redis(tmp_path / "redis", args=DURABLE).start()
    config = make_config(server.url, tmp_path)
    async with service_for(config) as service:
        client, keys = service.recorder.client, service.recorder.keys
        ids = [f"C{i:06d}" for i in range(20_000)]
        for start in range(0, len(ids), 2_000):
            async with client.pipeline(transaction=False) as pipe:
                for customer_id in ids[start : start + 2_000]:
                    pipe.hset(keys.customer(customer_id), "s", "seg-001")
                await pipe.execute()

        async def back() -> None:
            while True:
                try:
                    await client.ping()
                    return
                except (RedisError, OSError):
                    await asyncio.sleep(0.05)

        found: list[str] = []
        async for customer_id in customer_ids(service, keys, back):
            found.append(customer_id)
            if len(found) == 3_000:
                server.stop(signal.SIGKILL)
                await asyncio.to_thread(server.start)  # same data: every customer is there
        assert set(found) == set(ids), f"{len(set(ids) - set(found)):,} customers never listed"


async def test_listing_the_customers_needs_no_info_command(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    """A least-privilege ACL user (``-@dangerous``, which takes INFO away) lists every
    customer as before: the restart check is left out, not the listing stopped."""
    server = start_redis(tmp_path / "redis").start()
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("ACL", "SETUSER", "lister", "on", ">pw", "~*", "+@all", "-@dangerous")
    url = f"redis://lister:pw@127.0.0.1:{server.port}/0"
    async with service_for(make_config(url, tmp_path)) as service:
        client, keys = service.recorder.client, service.recorder.keys
        with pytest.raises(RedisError, match="NOPERM|no permissions"):
            await client.info("server")
        ids = [f"C{i:05d}" for i in range(3_000)]
        async with client.pipeline(transaction=False) as pipe:
            for customer_id in ids:
                pipe.hset(keys.customer(customer_id), "s", "seg-001")
            await pipe.execute()
        found = [c async for c in customer_ids(service, keys)]
        assert sorted(found) == ids


async def test_a_short_stall_is_replayed_soon_not_at_the_next_interval(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    """A stall past the deadline (a busy machine) switches the process to the spool; until
    the replay every customer recorded meanwhile is spooled and their assignment by id is a
    503. The replayer tries soon after the switch (20 ms, then twice as long each time), not
    only at the next ``replay_interval_ms`` (here a minute): a stall of 0.3 s costs well
    under a second of spooling."""
    server = start_redis(tmp_path / "redis", args=DURABLE).start()
    config = make_config(server.url, tmp_path, timeout_ms=100, replay_interval_ms=60_000)
    plan = journeys(customers=5, steps=4, t0=now_ms() - 60_000)  # 20 records
    async with service_for(config) as service:
        await asyncio.sleep(0.1)  # the replayer is waiting out its first interval
        assert (await service.record(plan[0])).recorded
        server.send(signal.SIGSTOP)
        assert not (await service.record(plan[1])).recorded  # past the deadline: spooled
        assert not service.redis_up
        await asyncio.sleep(0.3)
        server.send(signal.SIGCONT)
        resumed = time.monotonic()
        await drained(service, seconds=5.0)
        assert time.monotonic() - resumed < 2.0  # the retries doubling from 20 ms
        outcomes = [await service.record(r) for r in plan[2:]]
        assert all(o.recorded for o in outcomes)
        assert (await service.status()).replayed == 1
        await assert_each_migration_once_in_order(service.recorder, plan)
        await delete_prefix(service.recorder)


async def test_a_redis_out_of_memory_spools_the_records_and_writes_them_when_it_has_room(
    start_redis: Callable[..., RedisProcess], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by a hostile audit: with Redis at its maxmemory, the recording script's write
    failed as a whole (-OOM), which redis-py raises as OutOfMemoryError with the code cut
    from its text; read as no transient refusal, each record was refused for good and lost
    (the answer said recorded: false, the spool stayed empty), and the error log printed the
    whole record, the customer's features with it. Such a refusal is "not now": the records
    are spooled and written when Redis has room again; the log names no feature."""
    server = start_redis(tmp_path / "oom", args=["--save", "", "--appendonly", "no"]).start()
    config = make_config(server.url, tmp_path)
    client = redis.Redis.from_url(server.url)
    async with service_for(config) as service:
        assert (await service.record(Record.create("warm", "S0", "v1"))).recorded
        client.config_set("maxmemory", "1")  # every write refused: -OOM
        try:
            secret = {"monetary": 123456.789}
            one = Record.create("C-oom", "S1", "v1", profile=secret)
            batch = [Record.create(f"B-oom{i}", "S2", "v1", profile=secret) for i in range(3)]
            outcomes = [await service.record(one), *await service.record_many(batch)]
            assert [o.error for o in outcomes] == [None] * 4
            assert not any(o.recorded for o in outcomes)
            assert service.spool.depth() == 4 and service.rejected == 0
        finally:
            client.config_set("maxmemory", "0")
        await drained(service)
        for rec in [one, *batch]:
            state = await service.recorder.current(rec.customer_id)
            assert state is not None and state.segment_id == rec.segment_id
        assert "123456.789" not in caplog.text
        await delete_prefix(service.recorder)
    client.close()


async def test_a_record_refused_for_good_is_logged_without_the_customer_features(
    config: HistoryConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A record Redis refuses for good (here its customer's key is of another type) is logged
    by its ids and the error, never its profile: features and keys are not logged."""
    async with service_for(config, replayer=False) as service:
        await service.recorder.client.set(service.recorder.keys.customer("C-wrong"), "text")
        rec = Record.create("C-wrong", "S1", "v1", profile={"monetary": 654321.987})
        outcome = await service.record(rec)
        assert outcome.error is not None and not outcome.recorded
        assert "C-wrong" in caplog.text and rec.record_id in caplog.text
        assert "654321.987" not in caplog.text and "monetary" not in caplog.text
        await delete_prefix(service.recorder)


async def test_readiness_says_redis_refuses_writes_while_it_is_out_of_memory(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    """Found by a hostile audit: with Redis at its maxmemory (it answers pings, refuses every
    write), readiness said "Redis is back: the spool is being replayed", while nothing could
    be replayed. It says what is true: Redis refused the last write, and why; once Redis takes
    writes again and the spool is drained, readiness is ok with no note."""
    server = start_redis(tmp_path / "oom-ready", args=["--save", "", "--appendonly", "no"]).start()
    config = make_config(server.url, tmp_path)
    client = redis.Redis.from_url(server.url)
    async with service_for(config, replayer=False) as service:
        assert (await service.record(Record.create("warm", "S0", "v1"))).recorded
        assert (await history_check(service))["note"] is None
        client.config_set("maxmemory", "1")  # every write refused: -OOM
        try:
            assert not (await service.record(Record.create("C-oom", "S1", "v1"))).recorded
            for _ in range(2):  # as the record found it, and after a replay that failed
                check = await history_check(service)
                assert (check["ok"], check["reachable"], check["mode"]) == (
                    False,
                    True,
                    "spooling",
                )
                assert "being replayed" not in check["note"], check["note"]
                assert "refused the last write" in check["note"], check["note"]
                assert "out of memory" in check["note"], check["note"]
                assert await service.replay_pending() == 0
        finally:
            client.config_set("maxmemory", "0")
        assert await service.replay_pending() == 1
        check = await history_check(service)
        assert (check["ok"], check["mode"], check["note"]) == (True, "direct", None)
        await delete_prefix(service.recorder)
    client.close()
