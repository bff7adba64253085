"""Profile reads through the recording lanes (assignment by id) equal the obvious read.

The lanes send the by-id reads and the records of concurrent requests in one packed
pipeline (``Recorder.exchange``); the obvious read is the customer's whole hash
(``HGETALL``, ``Recorder.current``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

import app.history.service as service_module
from app.history import HistoryConfig, Record, Recorder
from app.history.records import Profile, RedisUnavailable, now_ms
from tests.history.conftest import RedisProcess, delete_prefix, make_config
from tests.history.test_outage import service_for
from tests.history.test_profiles import AWKWARD

pytestmark = pytest.mark.anyio

LONG = {f"note_{i:02}": f"{i:02}" + "x" * 50 for i in range(12)}  # more chunks than one HMGET


async def obvious(recorder: Recorder, customer_id: str) -> Profile | None:
    state = await recorder.current(customer_id)
    return None if state is None else state.profile


async def test_lane_reads_equal_the_whole_hash_read(
    config: HistoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchanges: list[tuple[int, int]] = []
    original = Recorder.exchange

    async def counted(self: Recorder, recs: list[Record], ids: list[str], *args: Any) -> object:
        exchanges.append((len(recs), len(ids)))
        return await original(self, recs, ids, *args)

    monkeypatch.setattr(Recorder, "exchange", counted)
    t0 = now_ms() - 10_000
    profiles = {
        "Jürgen:1": AWKWARD,
        "0007": {"spend": 1.5},
        "7": {"spend": 2.5},
        "long": LONG,
        **{f"c{i}": {"spend": float(i), "plan": f"p{i % 3}"} for i in range(40)},
    }
    async with service_for(config, replayer=False) as service:
        try:
            recorder = service.recorder
            await recorder.record_many(
                [
                    Record.create(c, "A", "v1", profile=p, assigned_at=t0)
                    for c, p in profiles.items()
                ]
            )
            await recorder.record(Record.create("no-features", "A", "v1", assigned_at=t0))
            ids = [*profiles, "no-features", "nobody"]
            exchanges.clear()

            found = await asyncio.gather(*(service.profiles([c]) for c in ids))

            assert [f[0] for f in found] == [await obvious(recorder, c) for c in ids]
            assert [f[0].features if f[0] else None for f in found] == [
                *profiles.values(),
                None,
                None,
            ]
            assert sum(n for _, n in exchanges) == len(ids)
            assert len(exchanges) < len(ids) / 4, exchanges  # shared round trips
            # a batch's read (one pipeline, not a lane) gives the same
            assert await service.profiles(ids) == [f[0] for f in found]
        finally:
            await delete_prefix(service.recorder)


async def test_a_read_queued_with_records_sees_the_records_before_it(
    config: HistoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records and reads of one lane go in one pipeline, the records first."""
    mixed: list[tuple[int, int]] = []
    original = Recorder.exchange

    async def counted(self: Recorder, recs: list[Record], ids: list[str], *args: Any) -> object:
        mixed.append((len(recs), len(ids)))
        return await original(self, recs, ids, *args)

    monkeypatch.setattr(Recorder, "exchange", counted)
    async with service_for(config, replayer=False) as service:
        try:
            first = Record.create("walker", "A", "v1", profile={"spend": 1.0})
            await service.record(first)
            mixed.clear()
            # the first record goes at once; the rest queue behind it, records before reads
            later = [
                Record.create("walker", "B", "v1", profile={"spend": 2.0}),
                *(Record.create(f"o{i}", "A", "v1", profile={"spend": 0.5}) for i in range(10)),
            ]
            results = await asyncio.gather(
                *(service.record(r) for r in later), service.profiles(["walker"])
            )
            [profile] = results[-1]  # type: ignore[misc]
            assert profile is not None and profile.features == {"spend": 2.0}
            assert any(recs and ids for recs, ids in mixed), mixed  # one pipeline held both
        finally:
            await delete_prefix(service.recorder)


async def test_a_read_redis_refuses_fails_that_read_only(config: HistoryConfig) -> None:
    async with service_for(config, replayer=False) as service:
        try:
            recorder = service.recorder
            await recorder.record(Record.create("fine", "A", "v1", profile={"spend": 1.0}))
            await recorder.client.set(recorder.keys.customer("broken"), "not a hash")

            fine, broken = await asyncio.gather(
                service.profiles(["fine"]), service.profiles(["broken"]), return_exceptions=True
            )

            assert isinstance(broken, ResponseError) and "WRONGTYPE" in str(broken)
            assert not isinstance(fine, BaseException)
            assert fine[0] is not None and fine[0].features == {"spend": 1.0}
            assert service.redis_up  # a refused read is no outage
        finally:
            await delete_prefix(service.recorder)


async def test_a_large_pipeline_is_written_in_pieces_and_counts_every_record(
    recorder: Recorder,
) -> None:
    """Over ``WRITE_BYTES`` of commands go as several writes; every reply is read."""
    from app.history import recorder as module

    t0 = now_ms() - 10_000
    recs = [
        Record.create(f"b{i}", "AB"[i % 2], "v1", profile={"note": "n" * 40}, assigned_at=t0)
        for i in range(3000)
    ]
    outcomes, read = await recorder.exchange(recs, ["b0", "b2999"], None)
    assert module.WRITE_BYTES < 3000 * 60  # (so the commands did not fit one write)
    assert all(o.recorded and o.changed for o in outcomes)
    assert [p.features if isinstance(p, Profile) else p for p in read] == [
        {"note": "n" * 40},
        {"note": "n" * 40},
    ]


async def test_a_stall_over_the_recording_deadline_does_not_refuse_reads(
    start_redis: Callable[..., RedisProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read has its own deadline: when its lane's pipeline outlives the recording's (a
    paused server), its records go to the spool but the read is retried alone and answered
    once the server is back; while this process spools, a customer it spooled nothing for is
    read from Redis, and one whose record waits in the spool is refused (Redis's copy is
    stale) until the replay."""
    monkeypatch.setattr(service_module, "LANES", 1)  # the records and reads share a pipeline
    server = start_redis(tmp_path / "redis").start()
    config = make_config(server.url, tmp_path, timeout_ms=100, read_timeout_ms=30_000)
    t0 = now_ms() - 10_000
    async with service_for(config, replayer=False) as service:
        await service.record(Record.create("stored", "A", "v1", profile={"x": 1}, assigned_at=t0))
        server.send(signal.SIGSTOP)
        late = Record.create("late", "B", "v1", profile={"x": 2}, assigned_at=t0 + 1)
        record = asyncio.ensure_future(service.record(late))
        read = asyncio.ensure_future(service.profiles(["stored"]))
        stale = asyncio.ensure_future(service.profiles(["late"]))
        assert not (await record).recorded  # past the recording's deadline: spooled
        assert not service.redis_up
        with pytest.raises(RedisUnavailable):  # its record was in the failed pipeline
            await stale
        server.send(signal.SIGCONT)
        [profile] = await read
        assert profile is not None and profile.features == {"x": 1}

        # spooling: a read goes to Redis, unless this process spooled the customer's record
        [again] = await service.profiles(["stored"])
        assert again is not None and again.features == {"x": 1}
        with pytest.raises(RedisUnavailable, match="spooled"):
            await service.profiles(["late"])
        assert await service.replay_pending() == 1
        [replayed] = await service.profiles(["late"])
        assert replayed is not None and replayed.features == {"x": 2}
        await delete_prefix(service.recorder)
