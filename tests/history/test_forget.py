"""Forgetting a customer: every key goes, and no spool brings the customer back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.history import Record, Recorder
from app.history.records import now_ms
from tests.history.conftest import RedisProcess, delete_prefix, free_port, make_config
from tests.history.test_outage import service_for

pytestmark = pytest.mark.anyio
WHO = "Zoë-7"


async def everything_mentioning(recorder: Recorder, text: str) -> list[str]:
    """Keys of the prefix whose name or contents mention ``text`` (membership included)."""
    client: Any = recorder.client
    found = []
    async for key in client.scan_iter(match=recorder.keys.pattern()):
        kind = await client.type(key)
        if kind == "hash":
            contents = str(await client.hgetall(key))
        elif kind == "zset":
            contents = str(await client.zrange(key, 0, -1))
        else:
            contents = ""  # streams age out with their cap; flows hold no ids
        if text in key or text in contents:
            found.append(key)
    return found


async def test_forget_removes_every_key_of_the_customer(recorder: Recorder) -> None:
    t0 = now_ms() - 10_000
    await recorder.record_many(
        [
            Record.create(WHO, "A", "v1", profile={"x": 1.0}, assigned_at=t0),
            Record.create("other", "A", "v1", assigned_at=t0),
            Record.create(WHO, "B", "v1", profile={"x": 2.0}, assigned_at=t0 + 1),
            Record.create(WHO, "A", "v2", assigned_at=t0 + 2),
        ]
    )
    assert await everything_mentioning(recorder, WHO)

    assert await recorder.forget(WHO) is True

    assert await everything_mentioning(recorder, WHO) == []
    assert await recorder.current(WHO) is None and await recorder.history(WHO) == []
    assert await recorder.profiles([WHO]) == [None]
    assert [m.customer_id for m in (await recorder.members("A")).members] == ["other"]
    assert await recorder.member_count("A") == 1
    assert await recorder.current("other") is not None
    assert await recorder.forget(WHO) is False  # unknown now


async def test_forget_leaves_a_last_exit_event_for_the_consumers(recorder: Recorder) -> None:
    """The stream's consumers (and the webhooks) learn of the forget: one last entry, the
    customer leaving their segment for none, numbered after their last migration; forgetting
    an unknown customer writes nothing."""
    t0 = now_ms() - 10_000
    await recorder.record_many(
        [
            Record.create(WHO, "A", "v1", assigned_at=t0),
            Record.create(WHO, "B", "v2", assigned_at=t0 + 1),
        ]
    )
    assert await recorder.forget(WHO, at_ms=t0 + 5) is True
    events = [e for e in await recorder.events() if e.customer_id == WHO]
    assert [(e.from_segment, e.to_segment, e.seq) for e in events] == [
        (None, "A", 1),
        ("A", "B", 2),
        ("B", None, 3),
    ]
    last = events[-1]
    assert last.model_version == "v2" and last.assigned_at == t0 + 5
    assert last.record_id.startswith("forget-") and last.record_id != events[1].record_id
    assert await recorder.forget(WHO) is False
    assert len([e for e in await recorder.events() if e.customer_id == WHO]) == 3


async def test_a_spool_replayed_after_forget_does_not_bring_the_customer_back(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    up = make_config(redis_server.url, tmp_path / "a")
    # host B could not reach Redis: its spool holds records of the customer made before
    elsewhere = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path / "b")
    elsewhere = replace(elsewhere, key_prefix=up.key_prefix)
    async with service_for(elsewhere, replayer=False) as host_b:
        await host_b.record(Record.create(WHO, "B", "v1", profile={"x": 9.0}))
    # host A (this one) spooled some too, then Redis came back
    down_a = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path / "a")
    async with service_for(down_a, replayer=False) as host_a:
        await host_a.record(Record.create(WHO, "C", "v1"))
        await host_a.record(Record.create("other", "C", "v1"))

    async with service_for(up, replayer=False) as host_a:
        await host_a.recorder.record(Record.create(WHO, "A", "v1"))  # a live one, then forget
        assert await host_a.forget(WHO) is True
        assert host_a.spool.depth() == 1  # this host's records of the customer are gone
        await host_a.replay_pending()
        later = replace(elsewhere, redis_url=redis_server.url)
        async with service_for(later, replayer=False) as host_b:
            assert await host_b.replay_pending() == 1  # replayed, and ignored

        recorder = host_a.recorder
        assert await recorder.current(WHO) is None
        assert await everything_mentioning(recorder, WHO) == []
        assert await recorder.current("other") is not None
        # a new assignment made after the forget records the customer afresh
        assert (await host_a.record(Record.create(WHO, "A", "v1"))).changed
        state = await recorder.current(WHO)
        assert state is not None and state.migrations == 1
        await delete_prefix(recorder)


async def test_a_customer_known_only_to_the_spool_is_forgotten_as_known(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """A hostile tester assigned a new customer while Redis was down (spooled), then, with
    Redis back and before the replay, asked to forget them: their records were discarded,
    yet the answer was False (a 404 "no assignment recorded"), as if nothing was forgotten."""
    down = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path / "a")
    async with service_for(down, replayer=False) as host:
        await host.record(Record.create(WHO, "C", "v1", profile={"x": 1.0}))
        await host.record(Record.create("other", "C", "v1"))
    up = replace(down, redis_url=redis_server.url)
    async with service_for(up, replayer=False) as host:
        assert host.spool.depth() == 2
        assert await host.forget(WHO) is True
        assert host.spool.depth() == 1
        assert await host.forget(WHO) is False  # nothing of theirs is left anywhere
        assert await host.replay_pending() == 1
        assert await host.recorder.current(WHO) is None
        assert await host.recorder.current("other") is not None
        await delete_prefix(host.recorder)


def migrations(source: str, target: str) -> float:
    labels = {"model": "tiers", "source": source, "target": target}
    return REGISTRY.get_sample_value("segments_migrations_total", labels) or 0.0


async def test_migrations_written_by_a_replay_are_counted(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    down = make_config(f"redis://127.0.0.1:{free_port()}/0", tmp_path, model="tiers")
    t0 = now_ms() - 10_000
    segment = f"S-{tmp_path.name[-12:]}"  # a label no other test counts
    plan = [
        Record.create("C1", segment, "v1", assigned_at=t0),
        Record.create("C1", segment, "v1", assigned_at=t0 + 1),  # unchanged: not counted
        Record.create("C1", "T", "v1", assigned_at=t0 + 2),
    ]
    async with service_for(down, replayer=False) as service:
        await service.record_many(plan)
    new_before, moved_before = migrations("", segment), migrations(segment, "T")

    up = make_config(redis_server.url, tmp_path, model="tiers")  # counted under its model
    async with service_for(up, replayer=False) as service:
        assert await service.replay_pending() == 3
        await delete_prefix(service.recorder)

    assert migrations("", segment) == new_before + 1
    assert migrations(segment, "T") == moved_before + 1
