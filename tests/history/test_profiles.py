"""Profiles: the features the service last saw of a customer, stored with its current state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.history import HistoryConfig, Record, Recorder, RedisUnavailable
from app.history.records import now_ms
from tests.history.conftest import RedisProcess, free_port, make_config
from tests.history.test_outage import drained, service_for

pytestmark = pytest.mark.anyio

AWKWARD: dict[str, Any] = {
    "spend": 0.1 + 0.2,  # 0.30000000000000004: repr round trip, not a rounded text
    "tiny": 5e-324,
    "whole": 3.0,  # a float, not the int 3
    "count": 7,
    "negative": -0.0,
    "city": "Zürich ✓ 東京",
    "looks_numeric": "3.0",  # a string, not a number
    "empty": "",
    "flag": True,
    "unknown": None,
}


async def test_a_profile_round_trips_exactly(recorder: Recorder) -> None:
    at = now_ms() - 1000
    await recorder.record(Record.create("Jürgen:1", "A", "v1", profile=AWKWARD, assigned_at=at))

    [profile] = await recorder.profiles(["Jürgen:1"])

    assert profile is not None and profile.updated_at == at
    assert profile.features == AWKWARD
    types = {name: type(value) for name, value in profile.features.items()}
    assert types == {name: type(value) for name, value in AWKWARD.items()}
    assert str(profile.features["negative"]) == "-0.0"
    state = await recorder.current("Jürgen:1")
    assert state is not None and state.profile == profile
    # in chunks of at most 64 bytes, so Redis keeps the hash in its compact encoding
    key = recorder.keys.customer("Jürgen:1")
    assert await recorder.client.object("encoding", key) in ("listpack", "ziplist")
    assert await recorder.client.hexists(key, "1")  # (this profile takes two chunks)


async def test_a_long_profile_is_read_whole_and_the_history_is_not_read(
    recorder: Recorder,
) -> None:
    """Assignment by id reads the profile's fields only: up to eight chunks at once, and a
    profile of more (over 512 bytes) whole."""
    long = {f"note_{i:02}": f"{i:02}" + "x" * 50 for i in range(12)}  # twelve 64-byte chunks
    short = {"spend": 1.5}
    t0 = now_ms() - 10_000
    await recorder.record(Record.create("L", "A", "v1", profile=long, assigned_at=t0))
    await recorder.record(Record.create("S", "A", "v1", profile=short, assigned_at=t0))
    for step in range(1, 4):  # history the profile read has no use for
        await recorder.record(Record.create("S", "AB"[step % 2], "v1", assigned_at=t0 + step))
    assert await recorder.client.hexists(recorder.keys.customer("L"), "11")

    found = await recorder.profiles(["L", "S", "nobody"])

    assert [p.features if p else None for p in found] == [long, short, None]
    assert [(await recorder.profiles([c]))[0] for c in ("L", "S")] == found[:2]


async def test_a_retrain_that_adds_or_removes_features_keeps_the_profile_exact(
    recorder: Recorder,
) -> None:
    t0 = now_ms() - 10_000
    old = {"spend": 1.5, "plan": "pro"}
    added = {**old, "tenure_days": 400, "note": "n" * 60}  # a retrain added features
    dropped = {"tenure_days": 401}  # and the next one dropped two

    await recorder.record(Record.create("C1", "A", "v1", profile=old, assigned_at=t0))
    assert (await recorder.profiles(["C1"]))[0].features == old  # type: ignore[union-attr]
    await recorder.record(Record.create("C1", "A", "v2", profile=added, assigned_at=t0 + 1))
    [after_add] = await recorder.profiles(["C1"])
    assert await recorder.client.hexists(recorder.keys.customer("C1"), "1")  # two chunks
    await recorder.record(Record.create("C1", "B", "v3", profile=dropped, assigned_at=t0 + 2))
    [after_drop] = await recorder.profiles(["C1"])

    assert after_add is not None and after_add.features == added
    assert after_add.updated_at == t0 + 1  # an unchanged assignment refreshes the profile
    assert after_drop is not None and after_drop.features == dropped
    fields = await recorder.client.hkeys(recorder.keys.customer("C1"))
    assert sorted(f for f in fields if f.isdigit()) == ["0"]  # no chunk left of the longer


async def test_profiles_reads_many_ids_in_one_call(recorder: Recorder) -> None:
    await recorder.record_many(
        [
            Record.create("with", "A", "v1", profile={"x": 1.25}),
            Record.create("without", "A", "v1"),  # recorded with no features
        ]
    )

    got = await recorder.profiles(["with", "nobody", "without"])

    assert [p.features if p else None for p in got] == [{"x": 1.25}, None, None]


async def test_profiles_raise_when_redis_is_unreachable(tmp_path: Path) -> None:
    config = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    async with service_for(config, replayer=False) as service:
        with pytest.raises(RedisUnavailable):
            await service.profiles(["C1"])
        with pytest.raises(RedisUnavailable):  # (spooling now: no round trip at all)
            await service.profiles(["C1"])


async def test_the_spool_keeps_and_replays_the_profile(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    down = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    async with service_for(down, replayer=False) as service:
        outcome = await service.record(Record.create("C1", "A", "v1", profile=AWKWARD))
        assert not outcome.recorded and service.spool.depth() == 1

    up: HistoryConfig = make_config(redis_server.url, tmp_path)  # the same spool folder
    async with service_for(up) as service:
        await drained(service)
        [profile] = await service.profiles(["C1"])
        assert profile is not None and profile.features == AWKWARD
        await service.forget("C1")
