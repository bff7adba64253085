"""Checked records: an assignment by id made from a cached profile is recorded only if Redis
still holds exactly that profile (``record.lua``, ``app/history/profile_cache.py``)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from app.history import Profile, Record, Recorder, RedisUnavailable
from app.history.records import now_ms
from tests.history.conftest import RedisProcess, delete_prefix, make_config
from tests.history.test_outage import service_for
from tests.history.test_profiles import AWKWARD

pytestmark = pytest.mark.anyio


async def _read(recorder: Recorder, customer_id: str) -> Profile:
    [profile] = await recorder.profiles([customer_id])
    assert profile is not None and profile.stored
    return profile


async def _snapshot(recorder: Recorder, customer_id: str) -> tuple[dict[str, Any], int]:
    """The customer's hash and the length of the shard's stream."""
    keys = recorder.keys
    client = recorder.client
    stream = await client.xlen(keys.events(keys.shard_of(customer_id)))
    return await client.hgetall(keys.customer(customer_id)), stream


def _checked(customer_id: str, segment: str, profile: Profile) -> Record:
    return Record.create(customer_id, segment, "v1", expected_profile=profile.stored)


async def test_a_checked_record_of_the_profile_as_read_is_applied(recorder: Recorder) -> None:
    await recorder.record(Record.create("C1", "A", "v1", profile=AWKWARD))
    read = await _read(recorder, "C1")

    same = await recorder.record(_checked("C1", "A", read))
    moved = await recorder.record(_checked("C1", "B", read))

    assert (same.recorded, same.stale, same.changed) == (True, False, False)
    assert (moved.recorded, moved.stale, moved.changed) == (True, False, True)
    assert moved.previous_segment == "A"
    state = await recorder.current("C1")
    assert state is not None and state.segment_id == "B" and state.profile is not None
    assert state.profile.features == AWKWARD  # a by-id record stores no profile


@pytest.mark.parametrize(
    "change",
    [
        {"spend": 2.5},  # another schema (other names): 'p' differs
        {**AWKWARD, "unknown": 1},  # same schema, a value in the second chunk
        {**AWKWARD, "spend": 0.5},  # same schema, a value in the first chunk
    ],
)
async def test_a_checked_record_of_a_changed_profile_is_stale_and_changes_nothing(
    recorder: Recorder, change: dict[str, Any]
) -> None:
    await recorder.record(Record.create("C2", "A", "v1", profile=AWKWARD))
    read = await _read(recorder, "C2")
    await recorder.record(Record.create("C2", "A", "v1", profile=change))  # behind its back
    before = await _snapshot(recorder, "C2")

    outcome = await recorder.record(_checked("C2", "B", read))

    assert (outcome.stale, outcome.recorded, outcome.changed) == (True, False, False)
    assert await _snapshot(recorder, "C2") == before  # no segment, time, stream entry


async def test_an_unchanged_profile_rewritten_stays_valid(recorder: Recorder) -> None:
    """Stored again with the same values (a plain assignment, a file run), the profile is
    the same: a record made from it is still right, and applies."""
    await recorder.record(Record.create("C3", "A", "v1", profile=AWKWARD, assigned_at=1000))
    read = await _read(recorder, "C3")
    await recorder.record(Record.create("C3", "A", "v1", profile=AWKWARD))

    assert (await recorder.record(_checked("C3", "B", read))).changed


async def test_a_checked_record_of_a_forgotten_customer_is_stale_and_does_not_revive_it(
    recorder: Recorder,
) -> None:
    await recorder.record(Record.create("C4", "A", "v1", profile=AWKWARD, assigned_at=1000))
    read = await _read(recorder, "C4")
    assert await recorder.forget("C4")

    assert (await recorder.record(_checked("C4", "B", read))).stale
    assert not await recorder.client.exists(recorder.keys.customer("C4"))


async def test_concurrent_checked_records_of_one_customer_do_not_make_each_other_stale(
    recorder: Recorder,
) -> None:
    """The hot customer: a by-id record leaves the profile as it is, so 32 of them in one
    call (as a coalescing lane sends them) all apply."""
    await recorder.record(Record.create("hot", "A", "v1", profile={"spend": 1.0}))
    read = await _read(recorder, "hot")
    records = [_checked("hot", "AB"[i % 2], read) for i in range(32)]

    outcomes = await recorder.record_many(records)

    assert [o.stale for o in outcomes] == [False] * 32
    assert all(o.recorded and not o.duplicate for o in outcomes)
    state = await recorder.current("hot")
    assert state is not None and state.migrations == 32  # A, then B, A, ... 31 moves more
    assert state.assigned_at <= now_ms()


async def test_a_checked_record_that_misses_its_deadline_is_not_spooled(
    start_redis: type[RedisProcess], tmp_path: Path
) -> None:
    """Nothing confirmed the cached profile it was made from: the service raises (the
    request then reads afresh), spools nothing, and uses no cached profile while it spools."""
    server = start_redis(tmp_path / "redis").start()
    config = make_config(server.url, tmp_path, timeout_ms=100)
    async with service_for(config, replayer=False) as service:
        await service.record(Record.create("C5", "A", "v1", profile={"x": 1}))
        [read] = await service.profiles(["C5"], keep=True)
        assert read is not None and service.cached_profile("C5") == read
        server.send(signal.SIGSTOP)
        try:
            with pytest.raises(RedisUnavailable):
                await service.record_checked(_checked("C5", "B", read))
            assert not service.redis_up and service.spool.depth() == 0
            assert service.cached_profile("C5") is None  # spooling: only Redis answers
        finally:
            server.send(signal.SIGCONT)
        assert await service.replay_pending() == 0  # back to direct writes
        assert service.cached_profile("C5") == read
        assert (await service.record_checked(_checked("C5", "B", read))).recorded
        await delete_prefix(service.recorder)
