"""Checked records: an assignment by id made from a cached profile is recorded only if Redis
still holds exactly that profile (``record.lua``, ``app/history/profile_cache.py``)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from app.history import Profile, Record, Recorder, RedisUnavailable
from app.history import recorder as recorder_module
from app.history.records import RecordBatch, now_ms
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


def _batch(
    rows: list[tuple[str, str, dict[str, Any] | None, str | None]],
) -> RecordBatch:
    """A batch of (customer, segment, profile, expected) rows (profile None: keep it)."""
    return RecordBatch(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [None] * len(rows),
        "v1",
        profiles=[r[2] or {} for r in rows],
        expected=[r[3] for r in rows],
    )


async def test_a_same_as_before_record_applies_only_after_its_customers_checked_one(
    recorder: Recorder,
) -> None:
    """A batch's later item of a customer, merged over an earlier item made from the stored
    profile, expects '=': what that earlier record left. It applies when that one applied
    (and a third after it too), and is stale when that one was stale, or when it is the
    first checked record of its customer in the call."""
    for customer in ("E1", "E2", "E3"):
        await recorder.record(Record.create(customer, "A", "v1", profile=AWKWARD))
    read = await _read(recorder, "E1")
    changed = await _read(recorder, "E2")
    await recorder.record(Record.create("E2", "A", "v1", profile={"spend": 9.0}))  # behind

    outcomes = await recorder.record_many(
        _batch(
            [
                ("E1", "B", {"spend": 1.0}, read.stored),  # applies
                ("E2", "B", {"spend": 1.0}, changed.stored),  # stale
                ("E1", "A", {"spend": 2.0}, "="),  # applies: E1's first did
                ("E2", "A", {"spend": 2.0}, "="),  # stale: E2's first was
                ("E1", "B", {"spend": 3.0}, "="),  # applies
                ("E3", "B", {"spend": 3.0}, "="),  # stale: none of E3's before it here
            ]
        )
    )

    assert [o.stale for o in outcomes] == [False, True, False, True, False, True]
    assert [o.changed for o in outcomes] == [True, False, True, False, True, False]
    e1, e2, e3 = [await recorder.current(c) for c in ("E1", "E2", "E3")]
    assert e1 is not None and e1.profile is not None and e1.segment_id == "B"
    assert e1.profile.features == {"spend": 3.0} and e1.migrations == 4
    assert e2 is not None and e2.profile is not None and e2.segment_id == "A"
    assert e2.profile.features == {"spend": 9.0}  # what the other write left
    assert e3 is not None and e3.profile is not None and e3.profile.features == AWKWARD


async def test_a_same_as_before_record_in_another_call_follows_its_customers_record(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch split into several script calls: a '=' record whose customer's record before
    it went in an earlier call applies if that one did, and only then (it was stale
    whatever that one did: a batch naming a customer more often than a call holds failed
    its later items once their redo rounds ran out)."""
    await recorder.record(Record.create("E4", "A", "v1", profile=AWKWARD))
    read = await _read(recorder, "E4")
    monkeypatch.setattr(recorder_module, "RECORDS_PER_CALL", 1)

    outcomes = await recorder.record_many(
        _batch([("E4", "B", {"spend": 1.0}, read.stored), ("E4", "A", {"spend": 2.0}, "=")])
    )

    assert [(o.stale, o.changed) for o in outcomes] == [(False, True), (False, True)]
    state = await recorder.current("E4")
    assert state is not None and state.profile is not None
    assert (state.segment_id, state.profile.features) == ("A", {"spend": 2.0})
    # made from the profile as read before those two: stale, and so is the one after it
    outcomes = await recorder.record_many(
        _batch([("E4", "B", {"spend": 3.0}, read.stored), ("E4", "B", {"spend": 4.0}, "=")])
    )
    assert [o.stale for o in outcomes] == [True, True]
    state = await recorder.current("E4")
    assert state is not None and state.profile is not None
    assert (state.segment_id, state.profile.features) == ("A", {"spend": 2.0})


def test_a_batch_part_and_its_records_keep_their_expected_profiles() -> None:
    batch = _batch([("E5", "A", {"x": 1}, None), ("E5", "B", {"x": 2}, "=")])
    assert [r.expected_profile for r in batch] == [None, "="]
    assert [r.expected_profile for r in batch.part(1, 2)] == ["="]
    assert [r.expected_profile for r in batch.unchecked()] == [None, None]
    assert [r.record_id for r in batch.unchecked()] == list(batch.record_ids)


async def test_a_checked_batch_that_goes_to_the_spool_goes_unchecked(
    start_redis: type[RedisProcess], tmp_path: Path
) -> None:
    """Nothing confirmed the profiles its rows were made from: the spool keeps them
    without an expectation (as a single assignment), and replays them as made."""
    server = start_redis(tmp_path / "redis").start()
    config = make_config(server.url, tmp_path, timeout_ms=100, batch_timeout_ms=100)
    async with service_for(config, replayer=False) as service:
        await service.record(Record.create("E6", "A", "v1", profile={"x": 1}))
        [read] = await service.profiles(["E6"])
        assert read is not None
        batch = _batch([("E6", "B", {"x": 2}, read.stored), ("E6", "A", {"x": 3}, "=")])
        server.send(signal.SIGSTOP)
        try:
            outcomes = await service.record_many(batch)
        finally:
            server.send(signal.SIGCONT)
        assert [(o.recorded, o.stale) for o in outcomes] == [(False, False)] * 2
        spooled = [rec for _, rec in service.spool.peek_batch(10)]
        assert [r.expected_profile for r in spooled] == [None, None]
        assert [r.record_id for r in spooled] == list(batch.record_ids)
        assert await service.replay_pending() == 2
        state = await service.recorder.current("E6")
        assert state is not None and state.profile is not None
        assert (state.segment_id, state.profile.features, state.migrations) == ("A", {"x": 3}, 3)
        await delete_prefix(service.recorder)
